"""Time windows as people type them: ``30m``, ``1h``, ``24h``, ``7d``, ``2w``, an
ISO date or datetime (UTC unless it says otherwise), or epoch seconds."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d|w)")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float | None:
    m = _DURATION.fullmatch(text.strip().lower())
    return float(m.group(1)) * _UNIT[m.group(2)] if m else None


def parse_time(text: str, now: float | None = None) -> float:
    """A point in time as epoch seconds; a duration means that long before ``now``."""
    now = time.time() if now is None else now
    text = text.strip()
    span = parse_duration(text)
    if span is not None:
        return now - span
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use a duration like 30m, 1h, 24h, 7d, "
            "or an ISO date/datetime like 2025-01-31 or 2025-01-31T12:00:00Z"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def month_start(now: float) -> float:
    """The first instant of ``now``'s calendar month, UTC (budgets are monthly)."""
    d = datetime.fromtimestamp(now, UTC)
    return datetime(d.year, d.month, 1, tzinfo=UTC).timestamp()
