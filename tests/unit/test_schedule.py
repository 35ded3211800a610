"""Time-of-day routing with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from polyroute import ConfigError, ManualClock, Router


def at(iso: str) -> ManualClock:
    epoch = datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()
    return ManualClock(start=1000.0, wall_start=epoch)


CFG: dict[str, Any] = {
    "routes": {
        "writer": {
            "models": ["simulator/gpt-4o"],
            "schedules": [
                {"hours": "22-06", "models": ["simulator/gpt-4o-mini"]},
                {"hours": "9-17", "days": ["sat", "sun"], "models": ["simulator/gpt-4.1-mini"]},
            ],
        }
    },
    "tiers": {
        "balanced": {
            "models": ["simulator/gpt-4o"],
            "schedules": [
                {
                    "hours": "0-8",
                    "timezone": "America/New_York",
                    "models": ["simulator/gpt-4o-mini"],
                }
            ],
        }
    },
}


@pytest.mark.parametrize(
    ("when", "model"),
    [
        ("2026-11-18T12:00:00", "simulator/gpt-4o"),  # Wednesday noon: the default pool
        ("2026-11-18T23:30:00", "simulator/gpt-4o-mini"),  # off-peak
        ("2026-11-19T05:59:00", "simulator/gpt-4o-mini"),  # still off-peak after midnight
        ("2026-11-19T06:00:00", "simulator/gpt-4o"),  # end is exclusive
        ("2026-11-21T10:00:00", "simulator/gpt-4.1-mini"),  # Saturday daytime
        ("2026-11-20T10:00:00", "simulator/gpt-4o"),  # Friday daytime
    ],
)
def test_route_schedule_windows(when: str, model: str) -> None:
    router = Router.from_config(CFG, environ={}, clock=at(when))
    assert [c.info.id for c in router.resolve("writer").candidates] == [model]


def test_schedule_follows_the_clock_and_time_zone() -> None:
    clock = at("2026-11-18T12:00:00")  # 07:00 in New York: inside 0-8 there
    router = Router.from_config(CFG, environ={}, clock=clock)
    r = router.resolve("tier:balanced")
    assert r.candidates[0].info.id == "simulator/gpt-4o-mini"
    assert any("schedule 0-8 in effect" in w for w in r.warnings)
    clock.advance(2 * 3600)  # 09:00 in New York
    assert router.resolve("tier:balanced").candidates[0].info.id == "simulator/gpt-4o"
    clock.advance(22 * 3600)  # back inside the window the next day
    assert router.resolve("tier:balanced").candidates[0].info.id == "simulator/gpt-4o-mini"


async def test_schedule_serves_calls() -> None:
    router = Router.from_config(CFG, environ={}, clock=at("2026-11-18T23:00:00"))
    env = await router.complete("writer", "hi")
    assert env.model == "simulator/gpt-4o-mini"
    await router.aclose()


@pytest.mark.parametrize(
    ("sched", "needle"),
    [
        ({"hours": "25-3", "models": ["simulator/gpt-4o"]}, "hours"),
        ({"hours": "5-5", "models": ["simulator/gpt-4o"]}, "hours"),
        ({"hours": "1-2", "days": ["funday"], "models": ["simulator/gpt-4o"]}, "days"),
        ({"hours": "1-2", "timezone": "Mars/Base", "models": ["simulator/gpt-4o"]}, "timezone"),
        ({"hours": "1-2", "models": ["no-such-model"]}, "schedules[0].models[0]"),
    ],
)
def test_schedule_validation(sched: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router.from_config(
            {"routes": {"r": {"models": ["simulator/gpt-4o"], "schedules": [sched]}}}, environ={}
        )
    assert needle in str(info.value) and "routes.r.schedules[0]" in str(info.value)
