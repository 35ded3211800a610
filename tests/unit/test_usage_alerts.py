"""Seed 003's alert rules at their boundaries, logging once, the monitor and
its Prometheus gauges."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from polyroute.usage.alerts import Alert, AlertLog, AlertThresholds, evaluate
from polyroute.usage.gauges import register
from polyroute.usage.monitor import UsageMonitor
from tests.unit.test_usage_store import NOW, rec, store_at

T = AlertThresholds()


def row(**kw: Any) -> dict[str, Any]:
    """A quiet, healthy window of 20 calls; keyword arguments override."""
    base: dict[str, Any] = {
        "count": 20,
        "cost_per_request": 0.01,
        "latency_p95": 1.0,
        "fallback_rate": 0.0,
        "cache_hit_rate": 0.5,
    }
    base.update(kw)
    return base


def metrics(alerts: list[Alert]) -> list[tuple[str, str]]:
    return [(a.level, a.metric) for a in alerts]


def test_defaults_are_the_seeds() -> None:
    assert T.cost_per_request_warning == 0.10 and T.cost_per_request_critical == 0.50
    assert T.latency_p95_warning == 30.0 and T.fallback_rate_warning == 0.10
    assert T.cache_hit_rate_review == 0.20 and T.min_requests == 20
    with pytest.raises(ValidationError):
        AlertThresholds(fallback_rate_warning=1.5)
    with pytest.raises(ValidationError):
        AlertThresholds(unknown=1)  # type: ignore[call-arg]


def test_a_healthy_window_raises_nothing() -> None:
    assert evaluate(row(), T) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.10, []),
        (0.1000001, [("warning", "cost_per_request")]),
        (0.50, [("warning", "cost_per_request")]),
        (0.5000001, [("critical", "cost_per_request")]),
    ],
)
def test_cost_per_request_boundaries(value: float, expected: list[tuple[str, str]]) -> None:
    assert metrics(evaluate(row(cost_per_request=value), T)) == expected


def test_twenty_calls_of_exactly_ten_cents_do_not_fire() -> None:
    mean = sum([0.1] * 20) / 20  # 0.10000000000000002 in floats
    assert mean > 0.1
    assert evaluate(row(cost_per_request=mean), T) == []


def test_cost_is_judged_per_tier() -> None:
    tiers: list[dict[str, Any]] = [
        {"tier": "fast", "count": 50, "cost_per_request": 0.001},
        {"tier": "expert", "count": 20, "cost_per_request": 0.6},
        {"tier": "advanced", "count": 19, "cost_per_request": 0.9},  # too few calls
        {"tier": None, "count": 30, "cost_per_request": 0.2},
    ]
    alerts = evaluate(row(count=119), T, tiers)
    assert [(a.level, a.group) for a in alerts] == [
        ("critical", "tier=expert"),
        ("warning", "tier=none"),
    ]
    assert "tier expert, 20 requests" in alerts[0].message


@pytest.mark.parametrize(
    ("field", "at", "above", "metric", "level"),
    [
        ("latency_p95", 30.0, 30.001, "latency_p95", "warning"),
        ("fallback_rate", 0.10, 0.15, "fallback_rate", "warning"),
    ],
)
def test_over_rules_fire_above_and_not_at(
    field: str, at: float, above: float, metric: str, level: str
) -> None:
    assert evaluate(row(**{field: at}), T) == []
    assert metrics(evaluate(row(**{field: above}), T)) == [(level, metric)]


def test_cache_hit_rate_fires_below_and_not_at() -> None:
    assert evaluate(row(cache_hit_rate=0.20), T) == []
    alerts = evaluate(row(cache_hit_rate=0.19), T)
    assert metrics(alerts) == [("info", "cache_hit_rate")]
    assert "review caching strategy" in alerts[0].message


def test_min_requests_keeps_a_quiet_window_quiet() -> None:
    bad = {"cost_per_request": 9.0, "latency_p95": 99.0, "fallback_rate": 1.0}
    assert evaluate(row(count=19, cache_hit_rate=0.0, **bad), T) == []
    assert len(evaluate(row(count=20, cache_hit_rate=0.0, **bad), T)) == 4
    lenient = AlertThresholds(min_requests=1, cache_hit_rate_review=None)
    assert metrics(evaluate(row(count=1, cache_hit_rate=0.0), lenient)) == []


def test_alert_log_logs_each_alert_once_and_its_end(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    alog = AlertLog(clock=lambda: now[0], repeat_every=600)
    slow = evaluate(row(latency_p95=45.0), T)
    pricey = evaluate(row(cost_per_request=0.9), T)
    with caplog.at_level(logging.INFO, "polyroute.alerts"):
        assert alog.update(slow) == slow
        now[0] += 60
        assert alog.update(slow) == []  # same alert: not logged again
        assert alog.update(slow + pricey) == pricey
        now[0] += 600
        assert alog.update(slow + pricey) == slow + pricey  # a reminder after repeat_every
        assert alog.active()[0]["since"] == 1000.0
        assert alog.update([]) == []
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels[0] == ("WARNING", "warning alert: latency p95 45.00 s > 30 s")
    assert levels[1][0] == "ERROR" and "critical alert: cost per request $0.9000" in levels[1][1]
    assert "(still, for 660 s)" in levels[2][1]
    assert [m for lvl, m in levels if lvl == "INFO"] == [
        "alert cleared: latency p95 45.00 s > 30 s",
        "alert cleared: cost per request $0.9000 > $0.50",
    ]
    assert alog.active() == []


async def test_monitor_and_gauges(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = store_at(tmp_path)
    for i in range(20):
        store.record(rec(latency=float(i), cost=0.2, labels={"tier": "balanced"}))
    store.record(rec(cost=0.001, labels={"tier": "fast"}))
    await store.flush()
    monitor = UsageMonitor(store, window=3600, clock=lambda: NOW)
    registry = CollectorRegistry()
    register(monitor, registry)
    assert b"polyroute_usage_pending_records 0.0" in generate_latest(registry)
    with caplog.at_level(logging.WARNING, "polyroute.alerts"):
        snap = await monitor.refresh()
    assert snap.totals["count"] == 21
    assert [(a.level, a.metric, a.group) for a in snap.alerts] == [
        ("warning", "cost_per_request", "tier=balanced"),
        ("info", "cache_hit_rate", None),
    ]
    assert len(caplog.records) == 2
    assert await monitor.refresh(max_age=10) is snap  # fresh enough: no second query
    text = generate_latest(registry).decode()
    assert 'polyroute_usage_window_cost_per_request_usd{tier="balanced"} 0.2' in text
    assert "polyroute_usage_window_requests 21.0" in text
    assert 'polyroute_usage_window_latency_seconds{quantile="0.5"} 9.0' in text
    assert 'polyroute_usage_alerts{level="warning"} 1.0' in text
    assert "polyroute_usage_window_cache_hit_rate 0.0" in text
    await store.close()


async def test_monitor_follows_thresholds_from_a_callable(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for _ in range(3):
        store.record(rec(cost=0.2, labels={"tier": "fast"}))
    await store.flush()
    current = [AlertThresholds()]  # min_requests 20: three calls raise nothing
    monitor = UsageMonitor(store, lambda: current[0], clock=lambda: NOW)
    assert (await monitor.refresh()).alerts == []
    current[0] = AlertThresholds(min_requests=1, cache_hit_rate_review=None)  # a reload
    assert metrics((await monitor.refresh()).alerts) == [("warning", "cost_per_request")]
    await store.close()


async def test_monitor_task_survives_a_failing_store(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    monitor = UsageMonitor(store, interval=0.01)

    async def broken(*a: Any, **k: Any) -> Any:
        raise ConnectionError("down")

    store.totals = broken  # type: ignore[method-assign]
    monitor.start()
    import asyncio

    await asyncio.sleep(0.05)
    assert monitor._task is not None and not monitor._task.done()
    await monitor.stop()
    assert monitor.snapshot is None
