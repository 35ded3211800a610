"""Pipelines over real HTTP against the fake provider: what each step sends on the wire."""

from __future__ import annotations

from typing import Any

import pytest

from polyroute.pipelines import FunctionPipeline, PromptStep
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import make_router

pytestmark = pytest.mark.asyncio
CHAT = "/v1/chat/completions"


def bodies(fake: FakeProviderThread) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests_to(CHAT)]


async def test_step_parameters_reach_the_wire(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    cfg = {
        "default_model": "a",
        "default_temperature": 0.7,
        "step_configs": {"second": {"model": "b", "temperature": 0.2, "max_tokens": 64}},
    }
    steps = [PromptStep("first", "Topic: {content}"), PromptStep("second", "{outputs[first]}")]
    run = await FunctionPipeline(cfg, router, steps).run("drums")
    assert run.status == "ok"
    sent = bodies(fake)
    assert [(b["model"], b["temperature"]) for b in sent] == [("model-a", 0.7), ("model-b", 0.2)]
    assert sent[1]["max_tokens"] == 64 and "max_tokens" not in sent[0]
    assert sent[1]["messages"][-1]["content"] == run.outputs["first"]
    await router.aclose()


async def test_fallback_step_over_http_errors(fake: FakeProviderThread) -> None:
    router, clock = make_router(fake)
    fake.script("model-a", [{"kind": "status", "status": 500}] * 3)
    cfg = {"step_configs": {"s": {"models": ["a", {"model": "b", "parameters": {"top_p": 0.5}}]}}}
    run = await FunctionPipeline(cfg, router, [PromptStep("s", "hi")]).run("x")
    s = run.steps[0]
    assert run.status == "ok" and s.model == "b"
    assert [(a["model"], a["outcome"], a["retries"]) for a in s.attempts] == [
        ("a", "error", 2),
        ("b", "success", 0),
    ]
    assert s.retries == 2 and len(clock.sleeps) == 2
    assert [b["model"] for b in bodies(fake)] == ["model-a"] * 3 + ["model-b"]
    assert bodies(fake)[-1]["top_p"] == 0.5
    await router.aclose()


async def test_bad_request_does_not_fall_back(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    fake.script("model-a", [{"kind": "status", "status": 400}])
    cfg = {"step_configs": {"s": {"models": ["a", "b"]}}}
    run = await FunctionPipeline(cfg, router, [PromptStep("s", "hi")]).run("x")
    assert run.status == "error" and run.steps[0].error_type == "BadRequestError"
    assert [b["model"] for b in bodies(fake)] == ["model-a"]  # b would refuse it too
    await router.aclose()


async def test_parallel_step_sends_each_model_its_own_parameters(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    fake.script("model-c", [{"kind": "status", "status": 400}])
    models = [
        {"model": "a", "parameters": {"temperature": 0.1}},
        {"model": "b", "parameters": {"temperature": 0.9, "max_output_tokens": 32}},
        "c",
    ]
    cfg = {"step_configs": {"s": {"models": models, "routing": "parallel"}}}
    run = await FunctionPipeline(cfg, router, [PromptStep("s", "hi")]).run("x")
    s = run.steps[0]
    assert run.status == "ok" and s.model == "a"
    sent = {b["model"]: b for b in bodies(fake)}
    assert sent["model-a"]["temperature"] == 0.1
    assert (sent["model-b"]["temperature"], sent["model-b"]["max_tokens"]) == (0.9, 32)
    cards = s.model_outputs["fake-openai"]
    assert cards["model-c"]["error"] and cards["model-c"]["content"] is None
    assert cards["model-a"]["content"] == s.output and cards["model-b"]["usage"]["total_tokens"]
    await router.aclose()


async def test_step_max_retries_sets_the_steps_retry_attempts(fake: FakeProviderThread) -> None:
    router, _clock = make_router(fake)  # policies.retry.max_attempts is 3
    fake.script("model-a", [{"kind": "status", "status": 503}] * 5)
    cfg = {"step_configs": {"s": {"model": "a", "max_retries": 5}}}
    run = await FunctionPipeline(cfg, router, [PromptStep("s", "hi")]).run("x")
    s = run.steps[0]
    assert run.status == "ok" and s.model == "a" and s.retries == 5
    assert len(bodies(fake)) == 6  # served on the sixth attempt
    fake.script("model-a", [{"kind": "status", "status": 503}])
    cfg0 = {"default_max_retries": 0, "step_configs": {"s": {"model": "a"}}}
    run0 = await FunctionPipeline(cfg0, router, [PromptStep("s", "hi")]).run("x")
    assert run0.status == "error" and len(bodies(fake)) == 7  # no retry at all
    await router.aclose()


async def test_step_served_after_fallback_leaves_one_record(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    records: list[Any] = []
    router.observers.append(records.append)
    fake.script("model-a", [{"kind": "status", "status": 500}] * 3)
    cfg = {"step_configs": {"s": {"models": ["a", "b"]}}}
    run = await FunctionPipeline(cfg, router, [PromptStep("s", "hi")], name="p").run("x")
    assert run.status == "ok" and run.steps[0].model == "b"
    [rec] = records
    assert [(a.model, a.outcome) for a in rec.attempts] == [("a", "error"), ("b", "success")]
    assert rec.fallbacks == 1 and rec.model == "b" and rec.labels["step"] == "s"
    await router.aclose()
