"""Seed 003's alert rules over a usage summary, and logging each alert once.

| rule | default | level |
| --- | --- | --- |
| cost per request (per tier) > 0.10 USD | ``cost_per_request_warning`` | warning |
| cost per request (per tier) > 0.50 USD | ``cost_per_request_critical`` | critical |
| latency p95 > 30 s | ``latency_p95_warning`` | warning |
| fallback rate > 10 % | ``fallback_rate_warning`` | warning |
| cache hit rate < 20 % | ``cache_hit_rate_review`` | info ("review caching strategy") |

A rule set to ``None`` is off.  A group with fewer than ``min_requests`` calls
in the window raises nothing: three slow calls at night are not an outage.
Comparisons are strict, as the seed writes them, on values rounded to nine
decimals, so twenty calls of exactly $0.10 (whose float mean is a hair above
0.1) do not fire the "> $0.10" rule.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["critical", "warning", "info"]
LEVELS: tuple[Level, ...] = ("critical", "warning", "info")
NonNeg = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
log = logging.getLogger("polyroute.alerts")


class AlertThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cost_per_request_warning: NonNeg | None = 0.10  # USD
    cost_per_request_critical: NonNeg | None = 0.50  # USD
    latency_p95_warning: NonNeg | None = 30.0  # seconds
    fallback_rate_warning: Fraction | None = 0.10
    cache_hit_rate_review: Fraction | None = 0.20
    min_requests: Annotated[int, Field(ge=1)] = 20


@dataclass(frozen=True, slots=True)
class Alert:
    level: Level
    metric: str
    value: float
    threshold: float
    message: str
    group: str | None = None  # "tier=fast" for per-tier rules; None for the whole window

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.metric, self.level, self.group)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _r(v: float) -> float:
    return round(v, 9)


def _cost_alert(row: Mapping[str, Any], t: AlertThresholds, group: str | None) -> Alert | None:
    value = row.get("cost_per_request")
    if value is None:
        return None
    where = f" ({group.replace('=', ' ')}, {row['count']} requests)" if group else ""
    rules: tuple[tuple[Level, float | None], ...] = (
        ("critical", t.cost_per_request_critical),
        ("warning", t.cost_per_request_warning),
    )
    for level, limit in rules:
        if limit is not None and _r(value) > _r(limit):
            return Alert(
                level,
                "cost_per_request",
                value,
                limit,
                f"cost per request ${value:.4f} > ${limit:.2f}{where}",
                group,
            )
    return None


def evaluate(
    totals: Mapping[str, Any],
    thresholds: AlertThresholds,
    by_tier: Sequence[Mapping[str, Any]] | None = None,
) -> list[Alert]:
    """Alerts for one window: ``totals`` is the window's summary row,
    ``by_tier`` its rows grouped by tier (cost per request is judged per tier
    when given, else over the whole window).  Most severe first."""
    t = thresholds
    out: list[Alert] = []
    enough = int(totals.get("count") or 0) >= t.min_requests
    if by_tier is not None:
        for row in by_tier:
            if int(row.get("count") or 0) >= t.min_requests:
                a = _cost_alert(row, t, f"tier={row.get('tier') or 'none'}")
                if a:
                    out.append(a)
    elif enough:
        a = _cost_alert(totals, t, None)
        if a:
            out.append(a)
    if not enough:
        return _sorted(out)
    p95 = totals.get("latency_p95")
    limit = t.latency_p95_warning
    if limit is not None and p95 is not None and _r(p95) > _r(limit):
        msg = f"latency p95 {p95:.2f} s > {limit:g} s"
        out.append(Alert("warning", "latency_p95", p95, limit, msg))
    fb = totals.get("fallback_rate")
    limit = t.fallback_rate_warning
    if limit is not None and fb is not None and _r(fb) > _r(limit):
        msg = f"fallback rate {fb:.1%} > {limit:.0%}"
        out.append(Alert("warning", "fallback_rate", fb, limit, msg))
    hit = totals.get("cache_hit_rate")
    limit = t.cache_hit_rate_review
    if limit is not None and hit is not None and _r(hit) < _r(limit):
        msg = f"cache hit rate {hit:.1%} < {limit:.0%}: review caching strategy"
        out.append(Alert("info", "cache_hit_rate", hit, limit, msg))
    return _sorted(out)


def _sorted(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (LEVELS.index(a.level), a.metric, a.group or ""))


class AlertLog:
    """Logs each alert when it starts (and again every ``repeat_every`` seconds
    while it lasts), and once when it clears; never on every evaluation."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        repeat_every: float | None = 3600.0,
        logger: logging.Logger = log,
    ) -> None:
        self.clock = clock
        self.repeat_every = repeat_every
        self.log = logger
        self._active: dict[tuple[str, str, str | None], tuple[Alert, float, float]] = {}

    def update(self, alerts: Iterable[Alert]) -> list[Alert]:
        """Record this evaluation's alerts; returns the ones logged now."""
        now = self.clock()
        current = {a.key: a for a in alerts}
        logged: list[Alert] = []
        for key, a in current.items():
            seen = self._active.get(key)
            if seen is None:
                self._emit(a, "")
                self._active[key] = (a, now, now)
                logged.append(a)
            elif self.repeat_every is not None and now - seen[2] >= self.repeat_every:
                self._emit(a, f" (still, for {now - seen[1]:.0f} s)")
                self._active[key] = (a, seen[1], now)
                logged.append(a)
            else:
                self._active[key] = (a, seen[1], seen[2])
        for key in [k for k in self._active if k not in current]:
            a = self._active.pop(key)[0]
            self.log.info("alert cleared: %s", a.message, extra={"alert": a.to_dict()})
        return logged

    def _emit(self, a: Alert, suffix: str) -> None:
        level = logging.ERROR if a.level == "critical" else logging.WARNING
        self.log.log(
            level, "%s alert: %s%s", a.level, a.message, suffix, extra={"alert": a.to_dict()}
        )

    def active(self) -> list[dict[str, Any]]:
        """Alerts now in force, with when each started."""
        return [{**a.to_dict(), "since": first} for a, first, _ in self._active.values()]
