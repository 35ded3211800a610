"""Budgets: per-request estimates, tier step-down, monthly limits, bursts, token caps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from polyroute import BudgetExceededError, Router
from polyroute.routing.budget import estimate_cost
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import make_router

pytestmark = pytest.mark.asyncio


def sim_router(budget: dict[str, Any], **extra: Any) -> Router:
    cfg: dict[str, Any] = {
        "providers": {"slowsim": {"type": "simulator", "simulator": {"latency": 0.05}}},
        "models": {
            "pricey": {
                "provider": "simulator",
                "model": "pricey",
                "price": {"input": 15, "output": 75},
                "max_output_tokens": 4096,
            },
            "cheap": {
                "provider": "simulator",
                "model": "cheap",
                "price": {"input": 0.15, "output": 0.6},
                "max_output_tokens": 4096,
            },
            "slow-cheap": {
                "provider": "slowsim",
                "model": "slow-cheap",
                "price": {"input": 0.15, "output": 0.6},
                "max_output_tokens": 4096,
            },
        },
        "routes": {"pc": {"models": ["pricey", "cheap"]}, "slow": {"models": ["slow-cheap"]}},
        "budget": budget,
        **extra,
    }
    return Router.from_config(cfg, environ={})


async def test_over_budget_candidates_are_skipped_before_calling() -> None:
    router = sim_router({"max_cost_per_request": 0.01})
    env = await router.complete("pc", "hi", max_tokens=1000)  # pricey: 1000*75/1e6 = $0.075
    assert env.model == "cheap"
    assert env.attempts[0].outcome == "skipped"
    assert (env.attempts[0].trigger or "").startswith("budget:max_cost_per_request")


async def test_refusal_names_estimate_and_limit() -> None:
    router = sim_router({"max_cost_per_request": 0.0001})
    with pytest.raises(BudgetExceededError) as info:
        await router.complete("pc", "hi", max_tokens=1000)
    msg = str(info.value)
    assert "max_cost_per_request $0.000100" in msg
    expected = estimate_cost(
        router.catalog.lookup("cheap"), [{"role": "user", "content": "hi"}], 1000
    )
    assert f"${expected:.6f}" in msg
    assert info.value.status_code == 402


async def test_tier_steps_down_when_allowed() -> None:
    pricey = {"models": ["pricey"]}
    tiers = {
        "fast": {"models": ["cheap"]},
        "balanced": pricey,
        "advanced": pricey,
        "expert": pricey,
    }
    router = sim_router({"max_cost_per_request": 0.01, "step_down": True}, tiers=tiers)
    env = await router.complete("tier:expert", "hi", max_tokens=1000)
    assert env.model == "cheap"
    assert sum("stepped down to tier:" in w for w in env.warnings) == 3  # expert→…→fast
    strict = sim_router({"max_cost_per_request": 0.01}, tiers=tiers)
    with pytest.raises(BudgetExceededError):
        await strict.complete("tier:expert", "hi", max_tokens=1000)


async def test_monthly_budget_stop_and_warn() -> None:
    router = sim_router({"monthly": 1.0})
    router.ledger.seed(0.9999)
    with pytest.raises(BudgetExceededError, match=r"monthly budget \$1\.00"):
        await router.complete("cheap", "hi", max_tokens=1000)
    warn = sim_router({"monthly": 1.0, "on_monthly_exceeded": "warn"})
    warn.ledger.seed(0.9999)
    env = await warn.complete("cheap", "hi", max_tokens=1000)
    assert any("monthly budget" in w for w in env.warnings)
    assert warn.ledger.spent() == pytest.approx(0.9999 + env.cost)


async def test_per_key_budget() -> None:
    router = sim_router({"per_key_monthly": 0.0005, "keys": {"key_big": {"monthly": 10}}})
    await router.complete("cheap", "hi", max_tokens=100, labels={"api_key": "key_small"})
    router.ledger.seed(0.0005, scope="key_small")
    with pytest.raises(BudgetExceededError, match="key_small"):
        await router.complete("cheap", "hi", max_tokens=100, labels={"api_key": "key_small"})
    router.ledger.seed(0.0005, scope="key_big")
    await router.complete("cheap", "hi", max_tokens=100, labels={"api_key": "key_big"})
    await router.complete("cheap", "hi", max_tokens=100)  # no key: only the global limit


async def test_concurrent_burst_cannot_overspend() -> None:
    router = sim_router({"monthly": 0.003})
    one = estimate_cost(
        router.catalog.lookup("slow-cheap"), [{"role": "user", "content": "go"}], 1000
    )
    results = await asyncio.gather(
        *(router.complete("slow", "go", max_tokens=1000) for _ in range(40)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(ok) + len(refused) == 40
    assert len(ok) == int(0.003 // one)  # exactly what fits, reserved at worst case
    assert router.ledger.spent() <= 0.003
    assert router.ledger.reserved() == pytest.approx(0.0, abs=1e-12)


async def test_tier_max_tokens_is_a_ceiling(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, tiers={"fast": {"models": ["a"], "max_tokens": 256}})
    await router.complete("tier:fast", "hi", max_tokens=5000)
    await router.complete("tier:fast", "hi", max_tokens=100)
    sent = [r.body["max_tokens"] for r in fake.requests_to("/v1/chat/completions")]
    assert sent == [256, 100]
    await router.aclose()
