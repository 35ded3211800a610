"""Prometheus gauges for the monitor's window: latency p50/p95/p99, cache hit
rate, fallback rate, error rate, cost per request by tier, tokens, alerts by
level, and the writer's backlog.

A custom collector reads the monitor's latest snapshot at scrape time: no
database work happens inside ``collect()`` (it runs on the event loop), so the
scrape handler refreshes the snapshot first with ``await monitor.refresh(max_age)``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from polyroute.usage.alerts import LEVELS
from polyroute.usage.monitor import UsageMonitor
from polyroute.usage.queries import PERCENTILES

P = "polyroute_usage_window_"


class UsageCollector(Collector):
    def __init__(self, monitor: UsageMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        m = self.monitor
        yield GaugeMetricFamily(
            "polyroute_usage_pending_records",
            "Usage records accepted but not yet in the database",
            value=m.store.pending,
        )
        snap = m.snapshot
        if snap is None:
            return
        t = snap.totals
        yield GaugeMetricFamily(P + "seconds", "Length of the usage window", value=snap.window)
        yield GaugeMetricFamily(P + "requests", "Calls in the window", value=t["count"])
        lat = GaugeMetricFamily(
            P + "latency_seconds", "Call latency percentiles in the window", labels=["quantile"]
        )
        for name, p in PERCENTILES:
            v = t.get(f"latency_{name}")
            if v is not None:
                lat.add_metric([f"{p:g}"], v)
        yield lat
        for key, doc in (
            ("cache_hit_rate", "Share of calls answered from the cache"),
            ("fallback_rate", "Share of calls that fell back at least once"),
            ("error_rate", "Share of calls that failed"),
        ):
            if t.get(key) is not None:
                yield GaugeMetricFamily(P + key, doc, value=t[key])
        tokens = GaugeMetricFamily(P + "tokens", "Tokens in the window", labels=["direction"])
        tokens.add_metric(["input"], t["tokens_in"])
        tokens.add_metric(["output"], t["tokens_out"])
        yield tokens
        cpr = GaugeMetricFamily(
            P + "cost_per_request_usd", "Mean cost per call by tier", labels=["tier"]
        )
        for row in snap.by_tier:
            cpr.add_metric([row.get("tier") or "none"], row["cost_per_request"])
        yield cpr
        alerts = GaugeMetricFamily(
            "polyroute_usage_alerts", "Alerts in force for the window", labels=["level"]
        )
        for level in LEVELS:
            alerts.add_metric([level], sum(1 for a in snap.alerts if a.level == level))
        yield alerts


def register(monitor: UsageMonitor, registry: CollectorRegistry) -> UsageCollector:
    collector = UsageCollector(monitor)
    registry.register(collector)
    return collector
