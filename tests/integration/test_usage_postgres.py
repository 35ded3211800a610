"""The usage store against the local PostgreSQL server (127.0.0.1:5432, database
``test``), in a table of its own that is dropped afterwards."""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from polyroute.types import Attempt, Usage
from polyroute.usage.queries import percentile
from polyroute.usage.records import to_row
from polyroute.usage.store import UsageStore
from tests.unit.test_usage_store import rec

URL = "postgresql://postgres@127.0.0.1:5432/test"


def _unavailable() -> str | None:
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    import psycopg

    try:
        psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ).close()
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432/test is not reachable: {exc}"
    return None


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[UsageStore]:
    s = UsageStore(
        URL, table=f"usage_test_{secrets.token_hex(4)}", spool_dir=tmp_path, flush_interval=3600
    )
    try:
        yield s
    finally:
        await s.close()
        s.table.drop(s.engine, checkfirst=True)
        s.engine.dispose()


async def test_round_trip_summary_and_percentiles(store: UsageStore) -> None:
    assert store.engine.dialect.name == "postgresql" and store.engine.driver == "psycopg"
    failed = rec(
        status="RouteExhaustedError",
        cost=0.0,
        usage=Usage(),
        fallbacks=1,
        attempts=[Attempt("gpt-4o-mini", "simulator", "error", trigger="server_error")],
        labels={"pipeline": "marketing", "step": "seo", "customer": "acme"},
    )
    cached = rec(cache_hit=True, cost=0.0, saved_cost=0.5, usage=Usage(1, 1), attempts=[])
    records = [rec(latency=float(i), labels={"tier": "fast", "api_key": "k1"}) for i in range(10)]
    records += [failed, cached, rec(kind="stream", ttft=0.25, latency=3.0, labels={"role": "w"})]
    for r in records:
        store.record(r)
    await store.flush()
    calls = await store.recent(50)
    assert len(calls) == 13
    bad = next(c for c in calls if c["status"] != "ok")
    assert bad["error_kind"] == "server_error" and bad["labels"] == {"customer": "acme"}
    assert bad["attempts"][0]["trigger"] == "server_error"
    hit = next(c for c in calls if c["cache_hit"])
    assert (hit["cost"], hit["saved_cost"]) == (0.0, 0.5)
    assert next(c for c in calls if c["kind"] == "stream")["ttft"] == 0.25

    total = await store.totals("1h")
    assert total["count"] == 13 and total["errors"] == 1 and total["saved_cost"] == 0.5
    assert total["cost"] == pytest.approx(11 * 0.25)
    lats = [r.latency for r in records]
    for name, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert total[f"latency_{name}"] == pytest.approx(percentile(lats, p))
    by_tier = {r["tier"]: r for r in await store.summary("1h", group_by=["tier"])}
    fast = [r.latency for r in records if r.labels.get("tier") == "fast"]
    assert by_tier["fast"]["count"] == len(fast) == 11  # ten calls and the cache hit
    assert by_tier["fast"]["latency_p95"] == pytest.approx(percentile(fast, 0.95))
    by_label = {
        r["labels.customer"]: r["count"]
        for r in await store.summary("1h", group_by=["labels.customer"])
    }
    assert by_label == {"acme": 1, None: 12}
    by_key = await store.summary("1h", group_by=["key", "model"])
    assert (by_key[0]["api_key"], by_key[0]["count"]) == ("k1", 10)
    assert [c["api_key"] for c in await store.recent(5, {"api_key": "k1"})] == ["k1"] * 5


async def test_month_to_date_and_idempotent_rewrite(store: UsageStore) -> None:
    now = datetime(2025, 6, 20, tzinfo=UTC).timestamp()
    may = datetime(2025, 5, 31, 23, tzinfo=UTC).timestamp()
    store.record(rec(time=may, cost=9.0, labels={"api_key": "k1"}))
    store.record(rec(time=now - 5, cost=1.25, labels={"api_key": "k1"}))
    store.record(rec(time=now - 5, cost=2.0, labels={"api_key": "k2"}))
    await store.flush()
    assert await store.month_to_date_cost("k1", now=now) == 1.25
    assert await store.month_to_date_cost(now=now) == 3.25
    # A batch written twice (commit acknowledged late, spool replayed) lands once.
    rows = [to_row("same-id-1", rec()), to_row("same-id-2", rec())]
    await asyncio.to_thread(store._write_rows, rows)
    await asyncio.to_thread(store._write_rows, rows)
    assert (await store.totals())["count"] == 5
