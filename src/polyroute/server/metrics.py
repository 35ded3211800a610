"""Prometheus metrics, fed by the router's call observer (off the request path's
critical section: a few counter increments per call).

Each gateway has its own ``CollectorRegistry`` so two apps in one process (tests,
embedding) do not collide on metric names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from polyroute.routing.cooldown import CooldownTracker
from polyroute.types import CallRecord

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# The hop itself: tens of microseconds when all is well, so the buckets start low.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        labels = ("route", "model", "provider")
        self.requests = Counter(
            "polyroute_requests",
            "Calls served, by outcome",
            [*labels, "kind", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "polyroute_request_latency_seconds",
            "Whole-call latency",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "polyroute_time_to_first_chunk_seconds",
            "Streams: first chunk",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "polyroute_gateway_overhead_seconds",
            "Time a call spent in polyroute itself: its latency minus the time its "
            "candidates took (upstream calls, their retries and backoff)",
            ["kind"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.retries = Counter("polyroute_retries", "Retries of a candidate", labels, registry=r)
        self.fallbacks = Counter(
            "polyroute_fallbacks", "Candidates given up for the next", ["route"], registry=r
        )
        self.tokens = Counter("polyroute_tokens", "Tokens", [*labels, "direction"], registry=r)
        self.cost = Counter(
            "polyroute_cost_usd", "Cost in USD from catalog prices", labels, registry=r
        )
        self.malformed = Counter(
            "polyroute_stream_malformed_events",
            "Malformed events skipped inside otherwise good streams",
            labels,
            registry=r,
        )
        self.config = Gauge(
            "polyroute_config_info",
            "The configuration this process runs (version: a hash of it)",
            ["version"],
            registry=r,
        )
        self.cooling = Gauge("polyroute_models_cooling_down", "Models in cooldown now", registry=r)
        self._cooldown: CooldownTracker | None = None
        self.cooling.set_function(self._cooling_count)

    def watch_cooldown(self, tracker: CooldownTracker) -> None:
        self._cooldown = tracker

    def _cooling_count(self) -> float:
        if self._cooldown is None:
            return 0.0
        return float(sum(1 for v in self._cooldown.snapshot().values() if v["cooling_for"]))

    def observe(self, rec: CallRecord) -> None:
        lv = (rec.route, rec.model or "", rec.provider or "")
        self.requests.labels(*lv, rec.kind, rec.status).inc()
        self.latency.labels(*lv).observe(rec.latency)
        if rec.status == "ok" and not rec.cache_hit:
            # A stream's candidates "answer" at their first chunk: its hop is to there.
            spent = rec.ttft if rec.kind == "stream" and rec.ttft is not None else rec.latency
            upstream = sum(a.latency for a in rec.attempts if a.outcome != "skipped")
            # (A stream with several attempts may have been recovered after its first
            # chunk, and those attempts are not part of the hop to it: left out.)
            if rec.kind != "stream" or len(rec.attempts) == 1:
                self.overhead.labels(rec.kind).observe(max(0.0, spent - upstream))
        if rec.ttft is not None:
            self.ttft.labels(*lv).observe(rec.ttft)
        if rec.retries:
            self.retries.labels(*lv).inc(rec.retries)
        if rec.fallbacks:
            self.fallbacks.labels(rec.route).inc(rec.fallbacks)
        if rec.usage.prompt_tokens:
            self.tokens.labels(*lv, "input").inc(rec.usage.prompt_tokens)
        if rec.usage.completion_tokens:
            self.tokens.labels(*lv, "output").inc(rec.usage.completion_tokens)
        if rec.cost:
            self.cost.labels(*lv).inc(rec.cost)
        if rec.malformed_events:
            self.malformed.labels(*lv).inc(rec.malformed_events)

    def config_version(self, version: str) -> None:
        self.config.clear()
        self.config.labels(version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
