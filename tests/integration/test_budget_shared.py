"""Monthly budgets across replicas: one ledger in Redis, reserved atomically.

Two routers stand for two gateway replicas (each with its own memory) on one
Redis; a burst split across both can never spend past the limit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from polyroute import BudgetExceededError, Router
from polyroute.routing.budget import estimate_cost
from polyroute.routing.budget_shared import SharedSpendLedger
from tests.redisprobe import REDIS_URL, redis_or_skip


def replica(budget: dict[str, Any], prefix: str, url: str = REDIS_URL) -> Router:
    cfg = {
        "providers": {"slowsim": {"type": "simulator", "simulator": {"latency": 0.05}}},
        "models": {
            "slow-cheap": {
                "provider": "slowsim",
                "model": "slow-cheap",
                "price": {"input": 0.15, "output": 0.6},
                "max_output_tokens": 4096,
            }
        },
        "routes": {"slow": {"models": ["slow-cheap"]}},
        "budget": budget,
        "state": {"url": url, "prefix": prefix},
    }
    return Router.from_config(cfg, environ={})


async def test_a_burst_across_two_replicas_cannot_overspend() -> None:
    await redis_or_skip()
    prefix = f"budgettest-{uuid.uuid4().hex[:8]}:"
    one, two = replica({"monthly": 0.003}, prefix), replica({"monthly": 0.003}, prefix)
    assert isinstance(one.ledger, SharedSpendLedger)
    cost = estimate_cost(
        one.catalog.lookup("slow-cheap"), [{"role": "user", "content": "go"}], 1000
    )
    calls = [r.complete("slow", "go", max_tokens=1000) for r in (one, two) for _ in range(20)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(ok) + len(refused) == 40
    assert len(ok) == int(0.003 // cost)  # what fits, across both replicas together
    await asyncio.sleep(0.05)  # settles go to Redis in the background
    spent = await one.ledger.spent_shared()  # type: ignore[attr-defined]
    assert spent == pytest.approx(sum(e.cost for e in ok)) and spent <= 0.003
    # Month-to-date spend seeded from a usage store is written once, for every replica.
    await two.ledger.seed_async(123.0)  # ignored: the month's total already exists
    assert await one.ledger.spent_shared() == pytest.approx(spent)  # type: ignore[attr-defined]
    await one.aclose()
    await two.aclose()


async def test_redis_down_falls_back_to_the_replicas_own_view(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = replica({"monthly": 1.0}, "down:", url="redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="polyroute.budget"):
        env = await router.complete("slow", "go", max_tokens=10)
        await asyncio.sleep(0.01)
    assert env.cost > 0 and router.ledger.spent() == pytest.approx(env.cost)
    assert any("shared budget unavailable" in r.message for r in caplog.records)
    await router.aclose()


async def test_a_dead_replicas_reservation_goes_stale() -> None:
    await redis_or_skip()
    prefix = f"budgettest-{uuid.uuid4().hex[:8]}:"
    t = [1_000_000.0]
    died = SharedSpendLedger(REDIS_URL, prefix, lambda: t[0])
    alive = SharedSpendLedger(REDIS_URL, prefix, lambda: t[0])
    held, over = await died.reserve_async(0.8, {"": 1.0}, refuse=True)
    assert held is not None and over == []  # ...and its replica dies before settling
    refused, over = await alive.reserve_async(0.5, {"": 1.0}, refuse=True)
    assert refused is None and over == [""]  # the dead one's 0.8 still counts
    t[0] += 3601  # past STALE_AFTER
    ok, over = await alive.reserve_async(0.5, {"": 1.0}, refuse=True)
    assert ok is not None and over == []
    alive.settle(ok, 0.25)
    await asyncio.sleep(0.05)
    assert await alive.spent_shared() == pytest.approx(0.25)
    await died.close()
    await alive.close()
