"""The live view of a recent window: summary, per-tier cost and alerts, kept
fresh by a background task and on demand (a Prometheus scrape), so the
gauges and the alert log read a snapshot instead of querying per metric."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyroute.usage.alerts import Alert, AlertLog, AlertThresholds, evaluate

if TYPE_CHECKING:
    from polyroute.usage.store import UsageStore

log = logging.getLogger("polyroute.usage")


@dataclass(slots=True)
class Snapshot:
    at: float  # when it was computed (the window's end)
    window: float  # seconds
    totals: dict[str, Any]
    by_tier: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


async def window_view(
    store: UsageStore, thresholds: AlertThresholds, since: float, until: float
) -> tuple[dict[str, Any], list[dict[str, Any]], list[Alert]]:
    """Totals, rows by tier and the alerts they raise, for one window."""
    totals, by_tier = await asyncio.gather(
        store.totals(since, until), store.summary(since, until, ["tier"])
    )
    return totals, by_tier, evaluate(totals, thresholds, by_tier)


class UsageMonitor:
    def __init__(
        self,
        store: UsageStore,
        thresholds: AlertThresholds | Callable[[], AlertThresholds] | None = None,
        *,
        window: float = 3600.0,
        interval: float = 60.0,
        clock: Callable[[], float] = time.time,
        alert_log: AlertLog | None = None,
    ) -> None:
        self.store = store
        # A callable follows config reloads (the gateway passes one).
        self._thresholds = thresholds or AlertThresholds()
        self.window = window
        self.interval = interval
        self.clock = clock
        self.alert_log = alert_log or AlertLog(clock=clock)
        self.snapshot: Snapshot | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def thresholds(self) -> AlertThresholds:
        t = self._thresholds
        return t if isinstance(t, AlertThresholds) else t()

    async def refresh(self, max_age: float = 0.0) -> Snapshot:
        """Recompute unless the last snapshot is younger than ``max_age`` seconds;
        concurrent callers (scrapes) share one computation."""
        async with self._lock:
            now = self.clock()
            snap = self.snapshot
            if snap is not None and now - snap.at < max_age:
                return snap
            totals, by_tier, alerts = await window_view(
                self.store, self.thresholds, now - self.window, now
            )
            self.alert_log.update(alerts)
            self.snapshot = Snapshot(now, self.window, totals, by_tier, alerts)
            return self.snapshot

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down; try again next round
                log.warning("usage monitor could not read the store: %s", exc)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="polyroute-usage-monitor"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
