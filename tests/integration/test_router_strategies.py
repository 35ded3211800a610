"""Strategies, cooldown and capability skipping over real HTTP to the fake provider."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from polyroute import AllCoolingDownError, RouteExhaustedError
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import make_router

pytestmark = pytest.mark.asyncio
NO_RETRY = {"retry": {"max_attempts": 1}}


async def test_loadbalance_follows_weights(fake: FakeProviderThread) -> None:
    router, _ = make_router(
        fake,
        seed=7,
        routes={
            "spread": {
                "strategy": "loadbalance",
                "models": [{"model": "a", "weight": 3}, {"model": "b", "weight": 1}],
            }
        },
    )
    picks = Counter([(await router.complete("spread", "hi")).model for _ in range(200)])
    assert picks["a"] + picks["b"] == 200
    assert 0.65 <= picks["a"] / 200 <= 0.85  # expected 0.75
    await router.aclose()


async def test_loadbalance_falls_back_to_the_other(fake: FakeProviderThread) -> None:
    router, _ = make_router(
        fake,
        policies=NO_RETRY,
        routes={"spread": {"strategy": "loadbalance", "models": ["a", "b"]}},
    )
    fake.script("model-a", [{"kind": "status", "status": 500}] * 5)
    fake.script("model-b", [{"kind": "status", "status": 500}] * 5)
    with pytest.raises(RouteExhaustedError) as info:
        await router.complete("spread", "hi")
    assert sorted(a.model for a in info.value.attempts) == ["a", "b"]
    await router.aclose()


async def test_cascade_escalates_until_accepted(fake: FakeProviderThread) -> None:
    router, _ = make_router(
        fake,
        routes={
            "cheap-first": {
                "strategy": "cascade",
                "models": ["a", "b", "c"],
                "accept": {"required_fields": ["label"]},
            }
        },
    )
    fake.script("model-a", [{"kind": "content", "content": '{"other": 1}'}])
    fake.script("model-b", [{"kind": "content", "content": '{"label": "funk"}'}])
    env = await router.complete("cheap-first", "classify")
    assert env.model == "b"
    assert [(a.model, a.trigger) for a in env.attempts] == [("a", "missing_field"), ("b", None)]
    assert fake.requests_to("/v1/chat/completions")[-1].body["model"] != "model-c"
    await router.aclose()


async def test_cascade_escalates_on_soft_fail_but_accepts_last(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, routes={"cas": {"strategy": "cascade", "models": ["a", "b"]}})
    from polyroute import Verdict

    env = await router.complete("cas", "x", validate=lambda c: Verdict.SOFT_FAIL)
    assert env.model == "b"
    assert env.attempts[0].trigger == "validator_hard_fail"
    assert any("soft fail" in w for w in env.warnings)
    await router.aclose()


async def test_parallel_route_returns_first_answer_and_cancels_rest(
    fake: FakeProviderThread,
) -> None:
    router, _ = make_router(fake, routes={"race": {"strategy": "parallel", "models": ["a", "b"]}})
    fake.script("model-a", [{"kind": "content", "content": "slow", "delay": 2.0}])
    env = await router.complete("race", "hi")
    assert env.model == "b"
    assert ("a", "skipped", "outrun") in [(a.model, a.outcome, a.trigger) for a in env.attempts]
    await router.aclose()


async def test_fan_out_runs_concurrently_and_keeps_errors(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, policies=NO_RETRY)
    for i, m in enumerate("abcd"):
        fake.script(f"model-{m}", [{"kind": "content", "content": m, "delay": 0.1 * (i + 1)}])
    fake.script("model-e", [{"kind": "status", "status": 500, "delay": 0.1}])
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, fake.in_flight)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    results = await router.fan_out(["a", "b", "c", "d", "e"], "hi")
    watcher.cancel()
    assert peak == 5  # all five upstream calls were in flight at once
    assert [r.model for r in results] == ["a", "b", "c", "d", "e"]
    assert [r.envelope.content for r in results[:4] if r.envelope] == ["a", "b", "c", "d"]
    assert not results[4].ok and isinstance(results[4].error, RouteExhaustedError)
    await router.aclose()


async def test_fan_out_over_a_route_uses_its_pool(fake: FakeProviderThread) -> None:
    router, _ = make_router(
        fake, routes={"all": {"strategy": "parallel", "models": ["a", "b", "c"]}}
    )
    results = await router.fan_out("all", "hi")
    assert [r.model for r in results] == ["a", "b", "c"] and all(r.ok for r in results)
    await router.aclose()


async def test_cooldown_after_failures_and_expiry(fake: FakeProviderThread) -> None:
    router, clock = make_router(
        fake,
        policies={"retry": {"max_attempts": 1}, "cooldown": {"after_failures": 2, "seconds": 30}},
    )
    fake.script("model-a", [{"kind": "status", "status": 500}] * 2)
    for _ in range(2):
        assert (await router.complete("ab", "hi")).model == "b"
    # a is cooling down: skipped without a request
    before = len(fake.requests_to("/v1/chat/completions"))
    env = await router.complete("ab", "hi")
    assert env.model == "b" and env.attempts[0].trigger == "cooldown"
    assert len(fake.requests_to("/v1/chat/completions")) == before + 1
    clock.advance(31)
    env = await router.complete("ab", "hi")
    assert env.model == "a"
    await router.aclose()


async def test_failure_counts_expire_and_success_resets(fake: FakeProviderThread) -> None:
    router, clock = make_router(
        fake,
        policies={
            "retry": {"max_attempts": 1},
            "cooldown": {"after_failures": 2, "seconds": 30, "window": 10},
        },
    )
    fake.script("model-a", [{"kind": "status", "status": 500}])
    await router.complete("ab", "hi")
    clock.advance(11)  # the first failure is forgotten
    fake.script("model-a", [{"kind": "status", "status": 500}])
    await router.complete("ab", "hi")
    assert router.cooldown.cooling_until("a") is None
    assert router.cooldown.failure_count("a") == 1
    assert (await router.complete("ab", "hi")).model == "a"  # success resets
    assert router.cooldown.failure_count("a") == 0
    await router.aclose()


async def test_retry_after_extends_cooldown(fake: FakeProviderThread) -> None:
    router, clock = make_router(
        fake,
        policies={
            "retry": {"max_attempts": 1, "max_retry_after": 1000},
            "cooldown": {"after_failures": 1, "seconds": 10},
        },
    )
    fake.script("model-a", [{"kind": "status", "status": 429, "retry_after": "120"}])
    await router.complete("ab", "hi")
    clock.advance(60)
    assert router.cooldown.cooling_until("a") is not None
    clock.advance(61)
    assert router.cooldown.cooling_until("a") is None
    await router.aclose()


async def test_all_cooling_down_waits_for_earliest_within_timeout(
    fake: FakeProviderThread,
) -> None:
    router, clock = make_router(
        fake,
        policies={
            "retry": {"max_attempts": 1},
            "cooldown": {"after_failures": 1, "seconds": 5, "max_wait": 5},
        },
    )
    fake.script("model-a", [{"kind": "status", "status": 500}])
    fake.script("model-b", [{"kind": "status", "status": 500}])
    with pytest.raises(RouteExhaustedError):
        await router.complete("ab", "hi")
    clock.advance(2)
    env = await router.complete("ab", "hi", timeout=10)
    assert env.model == "a"
    assert clock.sleeps == [pytest.approx(3.0)]
    await router.aclose()


async def test_all_cooling_down_beyond_timeout_fails_clearly(fake: FakeProviderThread) -> None:
    router, _ = make_router(
        fake,
        policies={"retry": {"max_attempts": 1}, "cooldown": {"after_failures": 1, "seconds": 300}},
    )
    fake.script("model-a", [{"kind": "status", "status": 500}])
    fake.script("model-b", [{"kind": "status", "status": 500}])
    with pytest.raises(RouteExhaustedError):
        await router.complete("ab", "hi")
    with pytest.raises(AllCoolingDownError, match="cooling down"):
        await router.complete("ab", "hi", timeout=10)
    await router.aclose()


async def test_vision_input_skips_models_without_vision(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, routes={"av": {"models": ["a", "v"]}})
    msg = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "describe"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        }
    ]
    env = await router.complete("av", msg)
    assert env.model == "v"
    assert (env.attempts[0].model, env.attempts[0].trigger) == ("a", "capability:vision")
    assert [r.body["model"] for r in fake.requests_to("/v1/chat/completions")] == ["model-v"]
    await router.aclose()


async def test_context_window_skip_before_sending(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, routes={"ac": {"models": ["a", "c1"]}})
    long_prompt = "word " * 9000  # about 11k tokens by the estimate; a's window is 8000
    env = await router.complete("ac", long_prompt)
    assert env.model == "c1"
    assert env.attempts[0].trigger == "context_window"
    assert fake.requests_to("/v1/chat/completions") == []
    # max_tokens counts too
    env = await router.complete("ac", "short", max_tokens=7995)
    assert env.model == "c1"
    await router.aclose()


async def test_image_generation_skips_text_models(fake: FakeProviderThread) -> None:
    router, _ = make_router(
        fake,
        models={
            "img": {
                "provider": "fake-openai",
                "model": "dall-e-3",
                "price": {"per_image": 0.04},
                "capabilities": ["image_generation"],
            }
        },
        routes={"pics": {"models": ["a", "img"]}},
    )
    env = await router.generate_image("pics", "a drum kit", n=2)
    assert env.model == "img" and len(env.images or []) == 2
    assert env.cost == pytest.approx(0.08)
    assert env.attempts[0].trigger == "capability:image_generation"
    await router.aclose()


async def test_tier_defaults_sit_under_call_params(fake: FakeProviderThread) -> None:
    router, _ = make_router(
        fake, tiers={"fast": {"models": ["a"], "max_tokens": 256, "temperature": 0.3}}
    )
    await router.complete("tier:fast", "hi")
    await router.complete("tier:fast", "hi", temperature=0.9)
    bodies = [r.body for r in fake.requests_to("/v1/chat/completions")]
    assert (bodies[0]["max_tokens"], bodies[0]["temperature"]) == (256, 0.3)
    assert (bodies[1]["max_tokens"], bodies[1]["temperature"]) == (256, 0.9)
    await router.aclose()
