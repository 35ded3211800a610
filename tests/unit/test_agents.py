"""Seed 001's agents on a real Router with no keys: every model is simulated.

``flaky/...`` models always fail with a 500 (one attempt each), so fallback and
exhaustion are real router behaviour, not mocks.  Simulator models borrow the
real model's capabilities: ``simulator/gpt-4o`` has vision,
``simulator/gpt-3.5-turbo`` does not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from polyroute import (
    FallbackTrigger,
    ModelExhaustedError,
    ModelPoolManager,
    ModelRole,
    ProviderError,
    RouteExhaustedError,
    Router,
    ServerError,
    Verdict,
    should_fallback,
)
from polyroute.agents import (
    BaseAgent,
    ClassifierAgent,
    ExpanderAgent,
    StyleRefinerAgent,
    ValidatorAgent,
    WriterAgent,
)
from polyroute.routing.validators import PASS, Validation

FLAKY = {"type": "simulator", "simulator": {"failure_rate": 1.0, "error_kinds": ["server_error"]}}
IMAGE = "https://example.com/reference.png"


def make_router(**roles: Any) -> Router:
    return Router.from_config(
        {
            "providers": {"flaky": FLAKY},
            "policies": {"retry": {"max_attempts": 1}},
            "roles": roles,
        },
        environ={},
    )


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    r = make_router(
        writer={
            "models": ["simulator/gpt-4o"],
            "by_product": {
                "landing": ["simulator/gpt-4o-mini", "simulator/gpt-4o"],
                "booking": ["flaky/gpt-4o", "simulator/claude-sonnet-4-20250514"],
                "ecommerce": ["flaky/gpt-4o", "flaky/gpt-4o-mini"],
            },
        },
        style_refiner={
            "models": ["simulator/gpt-3.5-turbo"],  # no vision
            "by_product": {
                "landing": ["simulator/gpt-4o", "simulator/gpt-3.5-turbo"],
                "card": ["simulator/gpt-3.5-turbo", "simulator/gpt-4o"],
            },
        },
    )
    yield r
    await r.aclose()


def spy(router: Router, monkeypatch: pytest.MonkeyPatch, content: str | None = None) -> list[Any]:
    """Record every router.complete call; optionally replace the answer's text."""
    calls: list[Any] = []
    real = router.complete

    async def complete(route: str, messages: Any, **kw: Any) -> Any:
        calls.append({"route": route, "messages": messages, **kw})
        env = await real(route, messages, **kw)
        if content is not None:
            env.content = content
        return env

    monkeypatch.setattr(router, "complete", complete)
    return calls


async def test_call_llm_routes_through_the_role_pool_for_the_product(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy(router, monkeypatch)
    agent = BaseAgent(role=ModelRole.WRITER, product_type="landing", router=router, system="S")
    text = await agent.call_llm("Hero text", temperature=0.2)

    assert text and agent.last is not None and text == agent.last.content
    assert agent.last.model == "simulator/gpt-4o-mini"  # the landing pool's first model
    assert agent.last.route == "role:writer" and agent.last.cost > 0
    assert calls[0]["route"] == "role:writer" and calls[0]["product_type"] == "landing"
    assert calls[0]["messages"] == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Hero text"},
    ]
    assert calls[0]["temperature"] == 0.2
    assert agent.pool() == ["simulator/gpt-4o-mini", "simulator/gpt-4o"]

    plain = BaseAgent(role="writer", router=router)  # no product type: the role's own pool
    await plain.call_llm("x")
    assert plain.last is not None and plain.last.model == "simulator/gpt-4o"


async def test_fallback_is_transparent(router: Router) -> None:
    agent = WriterAgent(product_type="booking", router=router)
    text = await agent.call_llm("Booking form copy")
    assert text and agent.last is not None
    assert agent.last.model == "simulator/claude-sonnet-4-20250514"
    assert [a.outcome for a in agent.last.attempts] == ["error", "success"]
    assert agent.last.attempts[0].trigger == "server_error"


async def test_all_models_failing_raises_with_the_provider_error_chained(router: Router) -> None:
    agent = WriterAgent(product_type="ecommerce", router=router)
    # Seed 001: "original exception re-raised" — the last model's own error, with the
    # route's attempts attached.
    with pytest.raises(ServerError) as info:
        await agent.call_llm("Product page")
    err = info.value
    assert isinstance(err, ProviderError) and err.status == 500
    assert err.model == "gpt-4o-mini"  # the last one tried
    exhausted = err.exhausted  # type: ignore[attr-defined]
    assert isinstance(exhausted, RouteExhaustedError) and exhausted.route == "role:writer"
    attempts = err.attempts  # type: ignore[attr-defined]
    assert [a.model for a in attempts] == ["flaky/gpt-4o", "flaky/gpt-4o-mini"]
    assert agent.last is None and agent.calls == []


async def test_agent_validator_rejects_and_the_pool_falls_back(router: Router) -> None:
    seen: list[str | None] = []

    def validate(content: str | None) -> bool:
        seen.append(content)
        return len(seen) >= 2  # the first model's answer is refused

    agent = WriterAgent(product_type="landing", router=router, validate=validate)
    await agent.call_llm("Hero")
    assert agent.last is not None and agent.last.model == "simulator/gpt-4o"
    assert agent.last.attempts[0].trigger == "validator_hard_fail"


async def test_model_pool_manager_and_role_defaults(router: Router) -> None:
    agent = ExpanderAgent(model_pool=ModelPoolManager(router))
    assert agent.router is router and agent.role is ModelRole.EXPANDER
    assert agent.route == "role:expander" and "role='expander'" in repr(agent)
    await agent.call_llm("Expand")
    await agent.call_llm("Again")
    first, second = agent.calls
    assert first.cost > 0 and second.cost > 0 and first is not second
    assert agent.total_cost == pytest.approx(first.cost + second.cost)
    with pytest.raises(ValueError, match="unknown role 'poet'"):
        BaseAgent(role="poet", router=router)
    with pytest.raises(TypeError, match="needs a role"):
        BaseAgent(router=router)


def test_call_llm_sync(router: Router) -> None:
    agent = WriterAgent(product_type="landing", router=router)
    try:
        assert agent.call_llm_sync("Hero")
        assert agent.last is not None and agent.last.model == "simulator/gpt-4o-mini"
    finally:
        router.close()


async def test_classifier_and_validator_agents(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy(router, monkeypatch, content="This is a **card** product")
    classifier = ClassifierAgent(router=router)
    assert await classifier.classify("a business card", ["landing", "card"]) == "card"
    assert await classifier.classify("x", ["booking"], default="landing") == "landing"

    monkeypatch.undo()
    spy(router, monkeypatch, content="FAIL: the CTA is missing")
    verdict = await ValidatorAgent(router=router).check("Hero", "needs a call to action")
    assert verdict.hard_fail and verdict.message == "the CTA is missing"

    monkeypatch.undo()
    calls = spy(router, monkeypatch, content="PASS")
    verdict = await ValidatorAgent(router=router).check("Hero")
    assert verdict.verdict is Verdict.PASS and calls[0]["route"] == "role:validator"

    monkeypatch.undo()
    spy(router, monkeypatch, content="looks good")  # no verdict word: not let through
    verdict = await ValidatorAgent(router=router).check("Hero")
    assert verdict.hard_fail and "no PASS/FAIL verdict" in verdict.message


# -- style refiner: vision or graceful degradation --------------------------------------


def image_parts(messages: list[dict[str, Any]]) -> list[Any]:
    return [
        p
        for m in messages
        if isinstance(m["content"], list)
        for p in m["content"]
        if p.get("type") == "image_url"
    ]


async def test_full_mimic_sends_images_to_a_vision_model(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy(router, monkeypatch)
    agent = StyleRefinerAgent("landing", router, mode="full_mimic", images=[IMAGE])
    assert agent.vision_models() == ["simulator/gpt-4o"]
    out = await agent.refine("Hero: Book a drum lesson", style="warm, minimal")

    assert out and agent.mode == "full_mimic" and agent.warnings == []
    assert image_parts(calls[0]["messages"]) == [{"type": "image_url", "image_url": {"url": IMAGE}}]
    assert agent.last is not None and agent.last.model == "simulator/gpt-4o"
    assert agent.last.warnings == []


async def test_full_mimic_skips_pool_models_without_vision(router: Router) -> None:
    # card's pool lists a text-only model first: the router skips it for image input
    agent = StyleRefinerAgent("card", router, mode="full_mimic", images=[IMAGE])
    await agent.refine("Card copy")
    assert agent.mode == "full_mimic" and agent.last is not None
    assert agent.last.model == "simulator/gpt-4o"
    assert agent.last.attempts[0].trigger == "capability:vision"


async def test_full_mimic_degrades_to_text_only_without_a_vision_model(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy(router, monkeypatch)
    agent = StyleRefinerAgent("dashboard", router, mode="full_mimic", images=[IMAGE])
    assert agent.vision_models() == []
    out = await agent.refine("Dashboard header")

    assert out and agent.mode == "text_only" and agent.requested_mode == "full_mimic"
    assert image_parts(calls[0]["messages"]) == []  # the images were dropped
    assert isinstance(calls[0]["messages"][0]["content"], str)
    assert agent.last is not None and agent.last.model == "simulator/gpt-3.5-turbo"
    [warning] = agent.warnings
    assert "needs a vision model" in warning and "simulator/gpt-3.5-turbo" in warning
    assert warning in agent.last.warnings


async def test_images_join_the_last_user_message(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy(router, monkeypatch)
    agent = StyleRefinerAgent("landing", router, mode="full_mimic")
    history = [
        {"role": "user", "content": "Earlier"},
        {"role": "assistant", "content": "Ok"},
        {"role": "user", "content": "Now restyle"},
    ]
    await agent.call_llm(history, images=[IMAGE])
    sent = calls[0]["messages"]
    assert sent[2]["content"][0] == {"type": "text", "text": "Now restyle"}
    assert len(image_parts(sent)) == 1 and image_parts(sent[:2]) == []
    assert history[2]["content"] == "Now restyle"  # the caller's list is untouched

    await agent.call_llm("no images given: text only")
    assert image_parts(calls[1]["messages"]) == []


def test_style_mode_is_checked(router: Router) -> None:
    with pytest.raises(ValueError, match="mode must be"):
        StyleRefinerAgent(router=router, mode="mimic")  # type: ignore[arg-type]


# -- seed 001's pool facades -------------------------------------------------------------


def test_pool_manager_skips_cooling_models_and_counts_failures() -> None:
    router = Router.from_config(
        {
            "policies": {"cooldown": {"after_failures": 2}},
            "roles": {"writer": {"models": ["simulator/gpt-4o", "simulator/gpt-4o-mini"]}},
        },
        environ={},
    )
    pools = ModelPoolManager(router)
    assert pools.pool("writer") == ["simulator/gpt-4o", "simulator/gpt-4o-mini"]
    assert pools.get_model(ModelRole.WRITER).model_id == "simulator/gpt-4o"

    pools.report_failure("simulator/gpt-4o")
    assert pools.failure_count("simulator/gpt-4o") == 1
    assert pools.get_model("writer").model_id == "simulator/gpt-4o"  # one failure: still in
    pools.report_failure("simulator/gpt-4o")
    assert pools.get_model("writer").model_id == "simulator/gpt-4o-mini"  # cooling down

    pools.reset_failure_count("simulator/gpt-4o")
    assert pools.failure_count("simulator/gpt-4o") == 0
    assert pools.get_model("writer").model_id == "simulator/gpt-4o"
    with pytest.raises(ValueError):
        pools.pool("poet")


def test_pool_manager_without_a_usable_client_is_exhausted() -> None:
    router = Router.from_config(
        {"roles": {"writer": {"models": ["openai/gpt-4o", "anthropic/claude-x"]}}}, environ={}
    )
    pools = ModelPoolManager(router)
    with pytest.raises(ModelExhaustedError) as info:
        pools.get_model("writer")
    attempts = info.value.attempts
    assert [(a.model, a.outcome, a.trigger) for a in attempts] == [
        ("openai/gpt-4o", "error", "missing_credentials"),
        ("anthropic/claude-x", "error", "missing_credentials"),
    ]
    assert "OPENAI_API_KEY" in (attempts[0].error or "")
    assert pools.failure_count("openai/gpt-4o") == 1  # a missing key counts as a failure


async def test_pooled_model_generates_on_its_own_model(router: Router) -> None:
    model = ModelPoolManager(router).get_model("writer", "landing")
    assert model.model_id == "simulator/gpt-4o-mini"
    env = await model.complete("Hero")
    assert env.model == "simulator/gpt-4o-mini" and env.content
    assert await model.generate("Hero")


def test_should_fallback() -> None:
    assert should_fallback(None) is None
    assert should_fallback(ServerError("boom", status=500)) is FallbackTrigger.SERVER_ERROR
    assert should_fallback(TimeoutError()) is FallbackTrigger.TIMEOUT

    class Checked:
        validator_result = Validation(Verdict.HARD_FAIL, message="no CTA")
        title = "ok"
        body = ""

    assert should_fallback(None, Checked()) is FallbackTrigger.VALIDATOR_HARD_FAIL
    Checked.validator_result = PASS
    assert should_fallback(None, Checked(), required_fields=["title"]) is None
    assert should_fallback(None, Checked(), required_fields=["title", "body"]) is (
        FallbackTrigger.MISSING_FIELD
    )
    assert should_fallback(None, {"title": "t"}, required_fields=["title"]) is None
    assert should_fallback(None, {"title": []}, required_fields=["title"]) is (
        FallbackTrigger.MISSING_FIELD
    )
