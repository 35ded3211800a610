"""Time-of-day routing (seed 003): a pool may swap models during given hours.

``schedules: [{hours: "22-06", days: [sat, sun], timezone: Europe/Berlin,
models: [cheap-1, cheap-2]}]`` — the first schedule whose window contains the
current time wins; otherwise the pool's own models serve.  Hours are
``start-end`` on a 24-hour clock, end exclusive, wrapping past midnight.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from polyroute.config.schema import Schedule

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hours(spec: str) -> tuple[int, int]:
    start, _, end = spec.partition("-")
    return int(start), int(end)


def in_window(schedule: Schedule, epoch: float) -> bool:
    now = datetime.fromtimestamp(epoch, ZoneInfo(schedule.timezone))
    start, end = parse_hours(schedule.hours)
    h = now.hour
    inside = start <= h < end if start < end else (h >= start or h < end)
    if not inside:
        return False
    if not schedule.days:
        return True
    # After midnight in a wrapping window, the window belongs to the day it started.
    day = now.weekday() if (start < end or h >= start) else (now.weekday() - 1) % 7
    return DAYS[day] in schedule.days


def active_schedule(schedules: Sequence[Schedule], epoch: float) -> int | None:
    for i, s in enumerate(schedules):
        if in_window(s, epoch):
            return i
    return None
