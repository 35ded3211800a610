"""Prometheus metrics, fed by the router's call observer (off the request path's
critical section: a few counter increments per call).

Two modes:

* One process (the default, and tests): each gateway has its own
  ``CollectorRegistry`` so two apps in one process (tests, embedding) do not
  collide on metric names.
* Several uvicorn workers (``polyroute serve --workers N``): ``serve`` points
  ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before any worker starts, so
  prometheus-client writes every counter and histogram to a per-process file
  there, and whichever worker answers ``/metrics`` adds up the files of all of
  them (``MultiProcessCollector``): the totals cover every worker, dead ones too.

Gauges computed at scrape time cannot be shared through those files; they are
the answering worker's view (``polyroute_models_cooling_down``, the usage
gauges of ``polyroute.usage.gauges``).  With ``state.url`` on Redis every worker
shares the cooldowns, and the usage gauges read the shared usage database, so
those views agree; only ``polyroute_usage_pending_records`` (the answering
worker's own write queue) is per worker.  ``polyroute_config_info`` is a
per-worker gauge with a ``pid`` label in multiprocess mode.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from polyroute.routing.cooldown import CooldownTracker
from polyroute.types import CallRecord

log = logging.getLogger("polyroute.server")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# The hop itself: tens of microseconds when all is well, so the buckets start low.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONFIG_POLL = 1.0  # seconds: how soon a worker's polyroute_config_info follows a reload
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, or None in single-process mode.

    prometheus-client picks its value class once, when it is first imported: the
    variable must have been set before that (``serve`` sets it before any worker
    starts).  Set later, it is ignored here too, with a warning, rather than
    failing every metric."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return None
    if not getattr(prometheus_values.ValueClass, "_multiprocess", False):
        log.warning(
            "%s is set but prometheus-client was imported before it: per-process metrics",
            MULTIPROC_ENV,
        )
        return None
    if not os.path.isdir(path):
        raise RuntimeError(f"{MULTIPROC_ENV}={path!r} is not a directory")
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class _CoolingCollector(Collector):
    """``polyroute_models_cooling_down`` read at scrape time (the answering process's
    cooldown tracker; shared by every process when ``state.url`` is on Redis)."""

    def __init__(self) -> None:
        self.tracker: CooldownTracker | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count = 0.0
        if self.tracker is not None:
            count = float(sum(1 for v in self.tracker.snapshot().values() if v["cooling_for"]))
        yield GaugeMetricFamily(
            "polyroute_models_cooling_down", "Models in cooldown now", value=count
        )


class Metrics:
    def __init__(self) -> None:
        path = self.multiprocess_dir = multiprocess_dir()
        self.registry = CollectorRegistry()  # what /metrics renders
        if path is not None:
            from prometheus_client.multiprocess import MultiProcessCollector

            # Every worker's files, added up; the metric objects below only write
            # to this process's files (registered nowhere, so not exported twice).
            MultiProcessCollector(self.registry, path=path)  # type: ignore[no-untyped-call]
            r: CollectorRegistry | None = None
        else:
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
            # Multiprocess: one series per live worker (a pid label), so workers that
            # run different configurations show; a dead worker's series goes with it.
            multiprocess_mode="liveall",
        )
        self._version: str | None = None
        self._version_lock = threading.Lock()
        self._cooling = _CoolingCollector()
        self.registry.register(self._cooling)
        self._follow_stop: threading.Event | None = None

    @property
    def multiprocess(self) -> bool:
        return self.multiprocess_dir is not None

    def watch_cooldown(self, tracker: CooldownTracker) -> None:
        self._cooling.tracker = tracker

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
        with self._version_lock:
            if self.multiprocess:
                if version == self._version:
                    return
                # A worker's file cannot forget a series: the old version goes to 0.
                if self._version is not None:
                    self.config.labels(self._version).set(0)
                self.config.labels(version).set(1)
            else:
                self.config.clear()
                self.config.labels(version).set(1)
            self._version = version

    def follow_config(self, version_of: Callable[[], str], every: float = CONFIG_POLL) -> None:
        """Multiprocess mode: keep this worker's ``polyroute_config_info`` current from a
        background thread (the scrape is answered by one worker; the others must keep
        their own series right: a reload shared over Redis changes them too)."""
        if not self.multiprocess or self._follow_stop is not None:
            return
        stop = self._follow_stop = threading.Event()

        def run() -> None:
            while True:
                try:
                    self.config_version(version_of())
                except Exception:  # never let the metrics thread die on a bad read
                    log.debug("config version not read", exc_info=True)
                if stop.wait(every):
                    return

        threading.Thread(target=run, name="polyroute-metrics-config", daemon=True).start()

    def close(self) -> None:
        """This process is leaving: stop following the config and, in multiprocess mode,
        drop its live gauges (``mark_process_dead``); its counters stay in the totals."""
        if self._follow_stop is not None:
            self._follow_stop.set()
        if self.multiprocess_dir is not None:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]

    def _forget_dead_workers(self, path: str) -> None:
        """Workers killed without a clean exit (SIGKILL, OOM) left live gauges behind."""
        from prometheus_client.multiprocess import mark_process_dead

        me = os.getpid()
        dead: set[int] = set()
        for f in glob.glob(os.path.join(path, "gauge_live*_*.db")):
            m = _LIVE_FILE.search(os.path.basename(f))
            if m and int(m.group(1)) != me and not _alive(int(m.group(1))):
                dead.add(int(m.group(1)))
        for pid in dead:
            with contextlib.suppress(FileNotFoundError):  # another worker got there first
                mark_process_dead(pid, path)  # type: ignore[no-untyped-call]

    def render(self) -> bytes:
        if self.multiprocess_dir is not None:
            self._forget_dead_workers(self.multiprocess_dir)
        return generate_latest(self.registry)
