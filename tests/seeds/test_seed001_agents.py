"""Seed 001 (landing-page / app builder): ``should_fallback`` and agents, held against
the seed's own code blocks.

The seed's ``MODEL_CATALOG`` ids (light-1, stable-1, stable-2, ...) and
``MODEL_POOLS`` are the config; their models are served by the fake provider
over HTTP (``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` point at it).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import pytest

from polyroute import (
    FallbackTrigger,
    ManualClock,
    ModelPoolManager,
    ModelRole,
    ProviderConnectionError,
    ProviderError,
    RouteExhaustedError,
    Router,
    ServerError,
    should_fallback,
)
from polyroute.agents import BaseAgent, WriterAgent
from polyroute.facades import SEED_001_FALLBACK_RULES, FallbackRules
from polyroute.routing.validators import PASS, Validation, Verdict
from tests.fakeprovider import FakeProviderThread

CLAUDE = "claude-sonnet-4-20250514"


def seed_config() -> dict[str, Any]:
    """The seed's MODEL_CATALOG and MODEL_POOLS, as polyroute config."""
    return {
        "models": {
            "light-1": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "capabilities": ["text"],
                "context_window": 128000,
            },
            "stable-1": {
                "provider": "openai",
                "model": "gpt-4o",
                "capabilities": ["text", "vision"],
                "context_window": 128000,
            },
            "stable-2": {
                "provider": "anthropic",
                "model": CLAUDE,
                "capabilities": ["text", "vision"],
                "context_window": 200000,
            },
            "fast-1": {
                "provider": "openai",
                "model": "gpt-4.1-mini",
                "capabilities": ["text"],
                "context_window": 128000,
            },
        },
        "roles": {
            "classifier": {"models": ["light-1", "stable-1"]},
            "writer": {
                "models": ["stable-1", "stable-2"],
                "by_product": {
                    "landing": ["fast-1", "stable-1"],
                    "card": ["fast-1", "stable-1"],
                    "ecommerce": ["stable-1", "stable-2"],
                    "booking": ["stable-1", "stable-2"],
                    "dashboard": ["stable-1", "stable-2"],
                },
            },
        },
        "policies": {"retry": {"max_attempts": 1}, "fallback": {"max_fallbacks": 3}},
    }


@pytest.fixture
def router(fake: FakeProviderThread) -> Router:
    env = {
        "OPENAI_API_KEY": "sk-openai-test",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "OPENAI_BASE_URL": fake.openai_base_url,
        "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
    }
    return Router.from_config(seed_config(), environ=env, clock=ManualClock(), rng=random.Random(0))


# -- should_fallback(error, response, role): the seed's "Fallback Conditions" -----------


@dataclass
class ValidatorResult:
    hard_fail: bool


@dataclass
class WriterResponse:
    """What the seed's writer returns: ``state_contract``, ``product_type`` and,
    once validated, ``validator_result``."""

    product_type: str
    state_contract: dict[str, Any] | None = None
    validator_result: ValidatorResult | None = None


def test_request_level_failures() -> None:
    # if isinstance(error, TimeoutError): return FallbackTrigger.TIMEOUT
    assert should_fallback(TimeoutError("slow"), None, "writer") is FallbackTrigger.TIMEOUT
    # if isinstance(error, ConnectionError): return FallbackTrigger.CONNECTION_ERROR
    assert (
        should_fallback(ConnectionError("reset"), None, "writer")
        is FallbackTrigger.CONNECTION_ERROR
    )
    assert should_fallback(None, None, "writer") is None


def test_validator_hard_fail() -> None:
    # if response.validator_result.hard_fail: return FallbackTrigger.VALIDATOR_HARD_FAIL
    failed = WriterResponse("landing", validator_result=ValidatorResult(hard_fail=True))
    assert should_fallback(None, failed, "validator") is FallbackTrigger.VALIDATOR_HARD_FAIL
    passed = WriterResponse("landing", validator_result=ValidatorResult(hard_fail=False))
    assert should_fallback(None, passed, "validator") is None
    # polyroute's own Validation works as validator_result too.
    checked = WriterResponse("landing", validator_result=Validation(Verdict.HARD_FAIL))  # type: ignore[arg-type]
    assert should_fallback(None, checked, "writer") is FallbackTrigger.VALIDATOR_HARD_FAIL


@pytest.mark.parametrize("product_type", ["ecommerce", "booking"])
def test_writer_without_state_contract_is_a_missing_field(product_type: str) -> None:
    # if response and role == "writer":
    #     if not response.state_contract and response.product_type in ["ecommerce", "booking"]:
    #         return FallbackTrigger.MISSING_FIELD
    response = WriterResponse(product_type, state_contract=None)
    assert should_fallback(None, response, "writer") is FallbackTrigger.MISSING_FIELD
    assert should_fallback(None, response, ModelRole.WRITER) is FallbackTrigger.MISSING_FIELD
    with_contract = WriterResponse(product_type, state_contract={"cart": "open"})
    assert should_fallback(None, with_contract, "writer") is None
    # Only the writer: the rule is the writer's.
    assert should_fallback(None, response, "expander") is None
    # Dicts and JSON answers carry the same fields.
    assert should_fallback(None, {"product_type": product_type}, "writer") is (
        FallbackTrigger.MISSING_FIELD
    )
    answer = json.dumps({"state_contract": {"cart": "open"}})
    assert should_fallback(None, answer, "writer", product_type=product_type) is None
    assert should_fallback(None, "not json", "writer", product_type=product_type) is (
        FallbackTrigger.INVALID_STRUCTURE
    )


@pytest.mark.parametrize("product_type", ["landing", "card", "dashboard"])
def test_other_product_types_need_no_state_contract(product_type: str) -> None:
    assert should_fallback(None, WriterResponse(product_type), "writer") is None


def test_product_type_rules_are_configurable() -> None:
    dashboard = WriterResponse("dashboard")
    ecommerce = WriterResponse("ecommerce")
    # Rules of one's own replace the seed's.
    rules = FallbackRules({"writer": {"dashboard": ["state_contract", "widgets"]}})
    assert should_fallback(None, dashboard, "writer", rules=rules) is FallbackTrigger.MISSING_FIELD
    assert should_fallback(None, ecommerce, "writer", rules=rules) is None
    # ... or extend them.
    more = SEED_001_FALLBACK_RULES.with_rule("writer", "dashboard", ["state_contract"])
    assert should_fallback(None, dashboard, "writer", rules=more) is FallbackTrigger.MISSING_FIELD
    assert should_fallback(None, ecommerce, "writer", rules=more) is FallbackTrigger.MISSING_FIELD
    # "default" covers every product type without its own entry; none at all checks nothing.
    every = FallbackRules({"expander": ["sections"]})
    assert should_fallback(None, {"product_type": "card"}, "expander", rules=every) is (
        FallbackTrigger.MISSING_FIELD
    )
    assert should_fallback(None, ecommerce, "writer", rules=FallbackRules({})) is None
    assert more.fields_for("writer", "booking") == ("state_contract",)


# -- BaseAgent: the seed's agent integration --------------------------------------------


def missing_contract() -> dict[str, Any]:
    return {"kind": "content", "content": json.dumps({"hero": "Buy drums"})}


def with_contract() -> dict[str, Any]:
    body = {"hero": "Buy drums", "state_contract": {"cart": ["sticks"]}}
    return {"kind": "content", "content": json.dumps(body)}


async def test_writer_falls_back_when_state_contract_is_missing(
    router: Router, fake: FakeProviderThread
) -> None:
    agent = WriterAgent("ecommerce", router, fallback_rules=SEED_001_FALLBACK_RULES)
    fake.script("gpt-4o", [missing_contract()])  # stable-1 forgets the state contract
    fake.script(CLAUDE, [with_contract()])  # stable-2 brings it
    answer = json.loads(await agent.call_llm("Product page for drum sticks"))
    assert answer["state_contract"] == {"cart": ["sticks"]}
    assert agent.last is not None and agent.last.model == "stable-2"
    assert [(a.model, a.outcome, a.trigger) for a in agent.last.attempts] == [
        ("stable-1", "error", "missing_field"),
        ("stable-2", "success", None),
    ]
    # A landing page needs no state contract: the first answer stands.
    landing = WriterAgent("landing", router, fallback_rules=SEED_001_FALLBACK_RULES)
    fake.script("gpt-4.1-mini", [missing_contract()])
    await landing.call_llm("Hero for a drum course")
    assert landing.last is not None and landing.last.model == "fast-1"
    await router.aclose()


async def test_fallback_rules_run_before_the_callers_validator(
    router: Router, fake: FakeProviderThread
) -> None:
    seen: list[str | None] = []

    def theirs(content: str | None) -> Validation:
        seen.append(content)
        return PASS

    agent = WriterAgent("booking", router, fallback_rules=SEED_001_FALLBACK_RULES, validate=theirs)
    fake.script("gpt-4o", [missing_contract()])
    fake.script(CLAUDE, [with_contract()])
    await agent.call_llm("Booking page")
    assert agent.last is not None and agent.last.model == "stable-2"
    assert len(seen) == 1  # only the answer that passed the field check reached it
    await router.aclose()


async def test_all_models_failing_reraises_the_original_exception(
    router: Router, fake: FakeProviderThread
) -> None:
    # BaseAgent(role=AgentRole.WRITER, product_type=..., model_pool=...) as the seed builds it.
    agent = BaseAgent(
        role=ModelRole.WRITER, product_type="ecommerce", model_pool=ModelPoolManager(router)
    )
    fake.script("gpt-4o", [{"kind": "status", "status": 500}])
    fake.script(CLAUDE, [{"kind": "status", "status": 500}])
    with pytest.raises(ServerError) as info:  # the provider's own exception, not a wrapper
        await agent.call_llm("Product page")
    err = info.value
    assert isinstance(err, ProviderError) and err.status == 500
    assert err.model == CLAUDE  # the last model tried
    attempts = err.attempts  # type: ignore[attr-defined]
    assert [(a.model, a.outcome, a.trigger) for a in attempts] == [
        ("stable-1", "error", "server_error"),
        ("stable-2", "error", "server_error"),
    ]
    assert isinstance(err.exhausted, RouteExhaustedError)  # type: ignore[attr-defined]
    assert err.exhausted.route == "role:writer"  # type: ignore[attr-defined]
    notes = "\n".join(getattr(err, "__notes__", []))
    assert "stable-1" in notes and "stable-2" in notes
    assert agent.last is None and agent.calls == []
    await router.aclose()


async def test_reraised_error_feeds_should_fallback(
    router: Router, fake: FakeProviderThread
) -> None:
    agent = WriterAgent("dashboard", router)
    fake.script("gpt-4o", [{"kind": "reset"}])
    fake.script(CLAUDE, [{"kind": "reset"}])
    with pytest.raises(ProviderConnectionError) as info:
        await agent.call_llm("Dashboard copy")
    assert should_fallback(info.value, None, "writer") is FallbackTrigger.CONNECTION_ERROR
    assert len(info.value.attempts) == 2  # type: ignore[attr-defined]
    await router.aclose()
