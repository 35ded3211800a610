"""UsageStore on a temporary SQLite file: round trip, summaries, percentiles,
month-to-date cost, flush and close."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from polyroute.types import Attempt, CallRecord, Usage
from polyroute.usage.queries import GroupByError, percentile
from polyroute.usage.records import error_kind, to_row
from polyroute.usage.store import UsageStore

NOW = time.time()


def rec(**kw: Any) -> CallRecord:
    """A successful chat call; keyword arguments override any field."""
    base: dict[str, Any] = {
        "kind": "chat",
        "route": "tier:fast",
        "model": "gpt-4o-mini",
        "provider": "simulator",
        "status": "ok",
        "time": NOW - 60,
        "usage": Usage(100, 20),
        "cost": 0.25,
        "latency": 1.0,
        "labels": {"tier": "fast"},
        "attempts": [Attempt("gpt-4o-mini", "simulator", "success", request_id="req-1")],
        "request_id": "req-1",
    }
    base.update(kw)
    return CallRecord(**base)


def store_at(tmp_path: Path, **kw: Any) -> UsageStore:
    kw.setdefault("flush_interval", 3600)  # tests flush explicitly
    return UsageStore(f"sqlite:///{tmp_path / 'usage.db'}", **kw)


async def test_round_trip_of_every_kind_of_call(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    failed = rec(
        status="RouteExhaustedError",
        model="gpt-4o",
        cost=0.0,
        usage=Usage(),
        fallbacks=2,
        retries=3,
        error="route tier:fast: every candidate failed",
        attempts=[
            Attempt("gpt-4o-mini", "simulator", "error", trigger="timeout", retries=1),
            Attempt("gpt-4o", "simulator", "error", trigger="rate_limit", retries=2),
        ],
        request_id=None,
        labels={"pipeline": "marketing", "step": "seo", "api_key": "key_1", "customer": "acme"},
    )
    cached = rec(cache_hit=True, cost=0.0, saved_cost=0.75, attempts=[])
    stream = rec(kind="stream", ttft=0.125, latency=2.5, labels={"role": "writer"})
    for r in (rec(), failed, cached, stream):
        store.record(r)
    assert store.pending == 4
    await store.flush()
    assert store.pending == 0
    rows = {r["kind"] + r["status"] + str(r["cache_hit"]): r for r in await store.recent(10)}
    ok = rows["chatokFalse"]
    assert ok["tokens_in"] == 100 and ok["tokens_out"] == 20 and ok["cost"] == 0.25
    assert ok["tier"] == "fast" and ok["request_id"] == "req-1" and ok["labels"] is None
    assert ok["attempts"][0]["request_id"] == "req-1"
    bad = rows["chatRouteExhaustedErrorFalse"]
    assert bad["error_kind"] == "rate_limit"  # the last failed attempt's trigger
    assert (bad["retries"], bad["fallbacks"]) == (3, 2)
    assert (bad["pipeline"], bad["step"], bad["api_key"]) == ("marketing", "seo", "key_1")
    assert bad["labels"] == {"customer": "acme"}
    assert [a["trigger"] for a in bad["attempts"]] == ["timeout", "rate_limit"]
    hit = rows["chatokTrue"]
    assert hit["cost"] == 0.0 and hit["saved_cost"] == 0.75 and hit["attempts"] is None
    st = rows["streamokFalse"]
    assert st["ttft"] == 0.125 and st["latency"] == 2.5 and st["role"] == "writer"
    assert st["time"].endswith("Z") and st["timestamp"] == pytest.approx(NOW - 60)
    assert await store.close() == 0


def test_row_mapping_details() -> None:
    # No tier label (a role or step route): the answering model's catalog tier.
    row = to_row("id1", rec(labels={"role": "writer"}), tier_of=lambda m: "fast")
    assert (row["tier"], row["role"]) == ("fast", "writer")
    assert to_row("id2", rec(labels={"tier": "expert"}), lambda m: "fast")["tier"] == "expert"
    # No failed attempt to name a trigger: the exception class, in snake case.
    assert error_kind(rec(status="BudgetExceededError", attempts=[])) == "budget_exceeded"
    assert error_kind(rec()) is None


def _latency_records() -> list[CallRecord]:
    out = []
    for i in range(1, 11):  # fast tier: latencies 1..10 s, cost 0.25 each
        out.append(rec(latency=float(i), labels={"tier": "fast", "api_key": "key_a"}))
    for i, lat in enumerate((0.5, 4.0)):  # balanced tier: two calls
        out.append(
            rec(
                route="tier:balanced",
                model="gpt-4o",
                latency=lat,
                cost=0.5,
                usage=Usage(1000, 500),
                labels={"tier": "balanced", "api_key": "key_b"},
                fallbacks=i,
                cache_hit=False,
            )
        )
    out.append(
        rec(cache_hit=True, cost=0.0, saved_cost=0.125, latency=0.0, labels={"tier": "fast"})
    )
    return out


async def test_summary_groups_with_exact_arithmetic(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for r in _latency_records():
        store.record(r)
    await store.flush()
    total = await store.totals("1h")
    assert total["count"] == 13 and total["errors"] == 0
    assert total["cost"] == 10 * 0.25 + 2 * 0.5  # the cache hit paid nothing
    assert total["saved_cost"] == 0.125
    assert total["tokens_in"] == 11 * 100 + 2 * 1000 and total["tokens_out"] == 11 * 20 + 1000
    assert total["cache_hit_rate"] == 1 / 13 and total["fallback_rate"] == 1 / 13
    by_tier = {r["tier"]: r for r in await store.summary("1h", group_by=["tier"])}
    assert by_tier["fast"]["count"] == 11 and by_tier["fast"]["cost_per_request"] == 2.5 / 11
    assert by_tier["balanced"]["cost"] == 1.0 and by_tier["balanced"]["fallbacks"] == 1
    by_key = {r["api_key"]: r["count"] for r in await store.summary("1h", group_by=["key"])}
    assert by_key == {"key_a": 10, "key_b": 2, None: 1}
    two = await store.summary("1h", group_by=["model", "route"])
    assert [(r["model"], r["route"], r["count"]) for r in two] == [
        ("gpt-4o-mini", "tier:fast", 11),
        ("gpt-4o", "tier:balanced", 2),
    ]  # sorted by cost, highest first
    assert await store.summary(NOW + 10, group_by=["model"]) == []
    with pytest.raises(GroupByError):
        await store.summary("1h", group_by=["colour"])
    await store.close()


async def test_percentiles_match_a_hand_computed_list(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for r in _latency_records():
        store.record(r)
    await store.flush()
    fast = (await store.summary("1h", group_by=["tier"]))[0]
    assert fast["tier"] == "fast"
    # sorted latencies [0, 1, 2, ..., 10]: percentile_cont at (n-1)*p = 10p
    assert fast["latency_p50"] == pytest.approx(5.0)
    assert fast["latency_p95"] == pytest.approx(9.5)
    assert fast["latency_p99"] == pytest.approx(9.9)
    assert fast["latency_avg"] == pytest.approx(55 / 11) and fast["latency_max"] == 10.0
    balanced = {r["tier"]: r for r in await store.summary("1h", group_by=["tier"])}["balanced"]
    assert balanced["latency_p50"] == pytest.approx(2.25)  # halfway between 0.5 and 4
    assert balanced["latency_p99"] == pytest.approx(0.5 + 3.5 * 0.99)
    total = await store.totals("1h")
    lats = [r.latency for r in _latency_records()]
    for name, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert total[f"latency_{name}"] == pytest.approx(percentile(lats, p))
    one = await store.summary("1h", group_by=["labels.nothing"])  # a label nobody set
    assert one[0]["labels.nothing"] is None and one[0]["count"] == 13
    await store.close()


async def test_month_to_date_cost_per_key_includes_unwritten(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    now = datetime(2025, 3, 15, 12, tzinfo=UTC).timestamp()
    feb = datetime(2025, 2, 28, 23, 59, tzinfo=UTC).timestamp()
    march = datetime(2025, 3, 1, 0, 0, 1, tzinfo=UTC).timestamp()
    store.record(rec(time=feb, cost=5.0, labels={"api_key": "k1"}))
    store.record(rec(time=march, cost=1.0, labels={"api_key": "k1"}))
    store.record(rec(time=march, cost=2.0, labels={"api_key": "k2"}))
    await store.flush()
    store.record(rec(time=now, cost=0.5, labels={"api_key": "k1"}))  # queued, not written
    assert store.pending == 1
    assert await store.month_to_date_cost("k1", now=now) == 1.5
    assert await store.month_to_date_cost("k2", now=now) == 2.0
    assert await store.month_to_date_cost(now=now) == 3.5
    assert await store.month_to_date_cost("k3", now=now) == 0.0
    assert await store.month_to_date_by_key(now=now) == ({"k1": 1.5, "k2": 2.0}, 3.5)
    await store.flush()
    assert await store.month_to_date_cost("k1", now=now) == 1.5  # now from the table alone
    await store.close()


async def test_flush_and_close_leave_nothing_behind(tmp_path: Path) -> None:
    store = store_at(tmp_path, batch_size=7)
    for i in range(100):
        store.record(rec(latency=float(i)))
    await store.flush()
    assert store.pending == 0 and store.stats()["written"] == 100
    for _ in range(5):
        store.record(rec())
    assert await store.close() == 0
    assert store.pending == 0
    assert not list((tmp_path / "usage.db.spool").iterdir())  # segments deleted
    reader = store_at(tmp_path)
    assert (await reader.totals())["count"] == 105


async def test_writer_thread_flushes_on_its_own(tmp_path: Path) -> None:
    store = store_at(tmp_path, flush_interval=0.05, batch_size=1000)
    store.record(rec())
    deadline = time.monotonic() + 5
    while store.stats()["written"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.stats()["written"] == 1
    await store.close()


async def test_reading_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    store = UsageStore(f"sqlite:///{tmp_path / 'none.db'}", spool=False)
    assert await store.summary("1h", group_by=["model"]) == []
    assert (await store.totals())["count"] == 0
    assert await store.recent() == []
    assert await store.month_to_date_cost() == 0.0
    assert not (tmp_path / "none.db").exists()


def test_bad_urls_are_refused_with_a_reason() -> None:
    from polyroute.errors import ConfigError
    from polyroute.usage.errors import UsageStoreError

    with pytest.raises(ConfigError, match="sqlite:/// or postgresql://") as info:
        UsageStore("mysql://u:secret@h/db")
    assert "secret" not in str(info.value)
    with pytest.raises(UsageStoreError, match="plain SQL identifier"):
        UsageStore("sqlite://", table="usage; drop table x")
