"""Seed 002 (prompt workflow builder: several models per step), held against its text.

The seed's providers are named as its users write them (``openai``, ``anthropic``,
``google``, ``custom``) and read their keys from the seed's variables
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``).  Here every
provider's base URL variable points at the fake provider, so the real provider
code paths (OpenAI wire for openai and Gemini, Anthropic wire for Claude) run
over HTTP and the tests read what reached the wire.
"""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Iterator, Mapping
from typing import Any

import httpx2 as httpx
import pytest

from polyroute import ConfigError, ManualClock, Router
from polyroute.logs import JsonFormatter
from polyroute.pipelines import (
    FunctionPipeline,
    ModelSpec,
    PipelineConfig,
    PipelineStepConfig,
    PromptStep,
    StepContext,
    step,
)
from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
CLAUDE = "claude-sonnet-4-20250514"
FAST_RETRY = {"retry": {"max_attempts": 3, "base_delay": 0.001, "max_delay": 0.002}}


def seed_env(fake: FakeProviderThread, **extra: str) -> dict[str, str]:
    """The seed's credential variables (and, for the test, base URLs at the fake)."""
    return {
        "OPENAI_API_KEY": "sk-openai-test",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "GEMINI_API_KEY": "gemini-test",
        "OPENAI_BASE_URL": fake.openai_base_url,
        "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
        "GEMINI_BASE_URL": fake.openai_base_url,
        **extra,
    }


def seed_router(
    fake: FakeProviderThread, env: Mapping[str, str] | None = None, **sections: Any
) -> Router:
    cfg: dict[str, Any] = {"policies": FAST_RETRY, **sections}
    return Router.from_config(
        cfg, environ=env or seed_env(fake), clock=ManualClock(), rng=random.Random(0)
    )


def chat_models(fake: FakeProviderThread) -> list[str]:
    return [r.body["model"] for r in fake.requests_to(CHAT)]


def claude_models(fake: FakeProviderThread) -> list[str]:
    return [r.body["model"] for r in fake.requests_to(MESSAGES)]


# The seed's ``models: ModelConfig[]`` for one prompt step: provider, model, parameters.
SEED_MODELS: list[dict[str, Any]] = [
    {"provider": "openai", "model": "gpt-4o", "parameters": {"temperature": 0.7}},
    {
        "provider": "anthropic",
        "model": CLAUDE,
        "parameters": {"temperature": 0.5, "max_output_tokens": 400},
    },
    {"provider": "google", "model": "gemini-2.0-flash", "parameters": {"top_p": 0.9}},
]


def compare_config(routing: str = "parallel", **top: Any) -> dict[str, Any]:
    return {
        "step_configs": {"compare": {"models": SEED_MODELS, "routing": routing}},
        **top,
    }


def compare_step() -> list[PromptStep]:
    return [PromptStep("compare", "Explain jitter: {content}")]


# -- modelOutputs[provider][model], under the names the user wrote ---------------------


async def test_parallel_step_files_outputs_under_the_written_provider_names(
    fake: FakeProviderThread,
) -> None:
    router = seed_router(fake)
    run = await FunctionPipeline(compare_config(), router, compare_step()).run("retries")
    s = run.steps[0]
    assert run.status == "ok", run.error
    assert {p: sorted(m) for p, m in s.model_outputs.items()} == {
        "openai": ["gpt-4o"],
        "anthropic": [CLAUDE],
        "google": ["gemini-2.0-flash"],  # as written: google, not polyroute's gemini
    }
    for cards in s.model_outputs.values():
        for card in cards.values():
            assert card["content"] and card["error"] is None
            assert card["usage"]["total_tokens"] > 0 and card["retries"] == 0
    # google is served by polyroute's gemini provider (GEMINI_API_KEY, OpenAI wire).
    sent = {r.body["model"]: r.body for r in fake.requests_to(CHAT)}
    assert set(sent) == {"gpt-4o", "gemini-2.0-flash"}
    assert sent["gpt-4o"]["temperature"] == 0.7 and sent["gemini-2.0-flash"]["top_p"] == 0.9
    [claude] = [r.body for r in fake.requests_to(MESSAGES)]
    assert claude["model"] == CLAUDE and claude["max_tokens"] == 400
    await router.aclose()


async def test_google_in_a_fallback_step_and_its_missing_key(fake: FakeProviderThread) -> None:
    router = seed_router(fake)
    fake.script("gemini-2.0-flash", [{"kind": "status", "status": 500}] * 3)
    cfg = {
        "step_configs": {
            "s": {
                "routing": "fallback",
                "models": [
                    {"provider": "google", "model": "gemini-2.0-flash"},
                    {"provider": "openai", "model": "gpt-4o"},
                ],
            }
        }
    }
    run = await FunctionPipeline(cfg, router, [PromptStep("s", "hi")]).run("x")
    assert run.status == "ok" and run.steps[0].model == "openai/gpt-4o"
    assert [a["model"] for a in run.steps[0].attempts] == [
        "gemini/gemini-2.0-flash",
        "openai/gpt-4o",
    ]
    await router.aclose()
    # No GEMINI_API_KEY: the step fails naming the seed's variable and the key page.
    env = {k: v for k, v in seed_env(fake).items() if k != "GEMINI_API_KEY"}
    bare = seed_router(fake, env)
    one = {"step_configs": {"s": {"models": [{"provider": "google", "model": "gemini-2.0-flash"}]}}}
    failed = await FunctionPipeline(one, bare, [PromptStep("s", "hi")]).run("x")
    assert failed.status == "error"
    assert "GEMINI_API_KEY" in (failed.error or "") and "aistudio" in (failed.error or "")
    await bare.aclose()


async def test_custom_provider_is_the_openai_compatible_endpoint(fake: FakeProviderThread) -> None:
    env = seed_env(
        fake,
        OPENAI_COMPATIBLE_BASE_URL=fake.openai_base_url,
        OPENAI_COMPATIBLE_API_KEY="sk-custom",
    )
    router = seed_router(fake, env)
    cfg = {
        "step_configs": {
            "s": {
                "routing": "parallel",
                "models": [
                    {"provider": "custom", "model": "my-model"},
                    {"provider": "openai", "model": "gpt-4o"},
                ],
            }
        }
    }
    run = await FunctionPipeline(cfg, router, [PromptStep("s", "hi")]).run("x")
    assert run.status == "ok", run.error
    assert sorted(run.steps[0].model_outputs) == ["custom", "openai"]
    assert run.steps[0].model_outputs["custom"]["my-model"]["content"]
    custom = [r for r in fake.requests_to(CHAT) if r.body["model"] == "my-model"]
    assert custom and custom[0].headers.get("authorization") == "Bearer sk-custom"
    await router.aclose()


async def test_custom_provider_defined_in_the_config_wins(fake: FakeProviderThread) -> None:
    providers = {
        "custom": {
            "type": "openai-compatible",
            "base_url": fake.openai_base_url,
            "api_key_env": "CUSTOM_API_KEY",
        }
    }
    router = seed_router(fake, seed_env(fake, CUSTOM_API_KEY="sk-mine"), providers=providers)
    cfg = {"step_configs": {"s": {"models": [{"provider": "custom", "model": "my-model"}]}}}
    run = await FunctionPipeline(cfg, router, [PromptStep("s", "hi")]).run("x")
    assert run.status == "ok" and run.steps[0].provider == "custom"
    [req] = fake.requests_to(CHAT)
    assert req.headers.get("authorization") == "Bearer sk-mine"
    await router.aclose()


def test_custom_provider_without_a_base_url_says_what_to_set(fake: FakeProviderThread) -> None:
    router = seed_router(fake)
    body = {"step_configs": {"s": {"models": [{"provider": "custom", "model": "my-model"}]}}}
    with pytest.raises(ConfigError) as info:
        PipelineConfig.parse(body, router=router)
    why = dict(info.value.problems)["step_configs.s.models[0].provider"]
    assert "OPENAI_COMPATIBLE_BASE_URL" in why and "providers.custom" in why


# -- the workflow.multiModel feature flag -----------------------------------------------


@pytest.mark.parametrize("routing", ["parallel", "fallback"])
async def test_multi_model_flag_off_runs_the_first_model(
    fake: FakeProviderThread, routing: str
) -> None:
    router = seed_router(fake)
    cfg = compare_config(routing, feature_flags={"workflow.multiModel": False})
    run = await FunctionPipeline(cfg, router, compare_step()).run("x")
    s = run.steps[0]
    assert run.status == "ok" and s.model == "openai/gpt-4o"
    assert chat_models(fake) == ["gpt-4o"] and claude_models(fake) == []
    assert s.config["routing"] == "single" and s.config["models"] == ["openai/gpt-4o"]
    assert s.model_outputs == {}
    assert any("workflow.multiModel is off" in w for w in s.warnings)
    await router.aclose()


async def test_multi_model_flag_from_the_environment(fake: FakeProviderThread) -> None:
    env = seed_env(fake, POLYROUTE_FEATURE_FLAGS="workflow.multiModel=false")
    router = seed_router(fake, env)
    run = await FunctionPipeline(compare_config(), router, compare_step()).run("x")
    assert run.steps[0].config["models"] == ["openai/gpt-4o"]
    # A pipeline config's own flag overrides the deployment's.
    on = compare_config(feature_flags={"workflow.multiModel": True})
    run = await FunctionPipeline(on, router, compare_step()).run("x")
    assert sorted(run.steps[0].model_outputs) == ["anthropic", "google", "openai"]
    await router.aclose()


def test_unknown_feature_flag_is_an_error(fake: FakeProviderThread) -> None:
    with pytest.raises(ConfigError, match=r"did you mean workflow\.multiModel"):
        PipelineConfig.parse({"feature_flags": {"workflow.multimodel": False}})
    router = seed_router(fake, seed_env(fake, POLYROUTE_FEATURE_FLAGS="workflow.multiModel=maybe"))
    with pytest.raises(ConfigError, match="POLYROUTE_FEATURE_FLAGS"):
        FunctionPipeline(compare_config(), router, compare_step()).run_step_sync("compare", "x")


# -- the high token warning ---------------------------------------------------------------


@pytest.fixture
def pipeline_log() -> Iterator[io.StringIO]:
    """The ``polyroute.pipelines`` log as JSON lines (what ``--log-format json`` prints)."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("polyroute.pipelines")
    old = (logger.handlers[:], logger.level)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    yield buf
    logger.handlers[:], logger.level = old


def lines(buf: io.StringIO, msg: str) -> list[dict[str, Any]]:
    return [x for x in map(json.loads, buf.getvalue().splitlines()) if x["msg"] == msg]


BIG = {"kind": "content", "content": "a long answer", "input_tokens": 3000, "output_tokens": 2000}


async def test_high_token_warning_on_step_envelope_and_log(
    fake: FakeProviderThread, pipeline_log: io.StringIO
) -> None:
    router = seed_router(fake)
    envelopes = []

    @step("article")
    async def article(ctx: StepContext) -> str:
        text = await ctx.llm("Write the article")
        envelopes.append(ctx.last)
        return text

    cfg = PipelineConfig(
        high_token_warning=4000,
        step_configs={"article": PipelineStepConfig(step_name="article", model="openai/gpt-4o")},
    )
    fake.script("gpt-4o", [BIG])  # 5000 tokens > 4000
    run = await FunctionPipeline(cfg, router, [article]).run("x")
    [warning] = run.steps[0].warnings
    assert "high token usage" in warning and "5000 tokens" in warning and "4000" in warning
    assert envelopes[0] is not None and warning in envelopes[0].warnings  # the call's envelope
    [logged] = lines(pipeline_log, "high token usage")
    assert (logged["tokens"], logged["threshold"], logged["step"]) == (5000, 4000, "article")
    assert logged["level"] == "warning" and logged["model"] == "openai/gpt-4o"
    # Under the threshold: nothing.
    small = await FunctionPipeline(cfg, router, [article]).run("x")
    assert small.steps[0].warnings == []
    await router.aclose()


async def test_high_token_warning_per_model_card_and_from_env(fake: FakeProviderThread) -> None:
    router = seed_router(fake, seed_env(fake, POLYROUTE_HIGH_TOKEN_WARNING="4000"))
    fake.script(CLAUDE, [BIG])
    run = await FunctionPipeline(compare_config(), router, compare_step()).run("x")
    s = run.steps[0]
    claude_card = s.model_outputs["anthropic"][CLAUDE]
    assert any("high token usage" in w for w in claude_card["warnings"])
    assert s.model_outputs["openai"]["gpt-4o"]["warnings"] == []
    assert any("high token usage" in w for w in s.warnings)
    # A step's own threshold wins over the pipeline's and the environment's.
    fake.script(CLAUDE, [BIG])
    cfg = compare_config()
    cfg["step_configs"]["compare"]["high_token_warning"] = 10000
    quiet = await FunctionPipeline(cfg, router, compare_step()).run("x")
    assert quiet.steps[0].warnings == [] and quiet.steps[0].config["high_token_warning"] == 10000
    await router.aclose()


# -- telemetry: provider, model, response time, retry count, status per prompt step ------


async def test_one_structured_log_line_per_finished_step(
    fake: FakeProviderThread, pipeline_log: io.StringIO
) -> None:
    router = seed_router(fake)
    fake.script("gpt-4o", [{"kind": "status", "status": 429}] * 2)  # two retries, then ok
    fake.script(CLAUDE, [{"kind": "status", "status": 400}])  # a bad request: the step fails
    cfg = {
        "step_configs": {
            "draft": {"models": [{"provider": "openai", "model": "gpt-4o"}]},
            "review": {"models": [{"provider": "anthropic", "model": CLAUDE}]},
        }
    }
    steps = [PromptStep("draft", "Draft: {content}"), PromptStep("review", "{outputs[draft]}")]
    run = await FunctionPipeline(cfg, router, steps, name="workflow").run("x")
    assert [s.status for s in run.steps] == ["ok", "error"]
    draft, review = lines(pipeline_log, "pipeline step finished")
    assert {k: draft[k] for k in ("provider", "model", "retry_count", "status", "step")} == {
        "provider": "openai",
        "model": "openai/gpt-4o",
        "retry_count": 2,
        "status": "ok",
        "step": "draft",
    }
    assert draft["response_time"] >= 0 and draft["pipeline"] == "workflow"
    assert draft["tokens"] > 0 and draft["level"] == "info"
    assert (review["status"], review["level"], review["provider"]) == (
        "error",
        "warning",
        "anthropic",
    )
    assert review["model"] == f"anthropic/{CLAUDE}" and review["error_type"] == "BadRequestError"
    await router.aclose()


# -- the same through the gateway --------------------------------------------------------


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    cfg = {"policies": FAST_RETRY, "usage": {"store": "sqlite://", "spool": False}}
    with GatewayServer(cfg, seed_env(fake_provider)) as server:
        yield server


def test_http_step_with_seed_models_and_flags(gw: GatewayServer, fake: FakeProviderThread) -> None:
    body: dict[str, Any] = {
        "content": "Explain jitter",
        "context": {"tone": "plain"},
        "pipeline_config": compare_config(high_token_warning=4000),
    }
    fake.script("gemini-2.0-flash", [BIG])
    url = gw.url + "/api/v1/pipeline/steps/compare/execute"
    r = httpx.post(url, json=body, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()
    assert sorted(out["model_outputs"]) == ["anthropic", "google", "openai"]
    card = out["model_outputs"]["google"]["gemini-2.0-flash"]
    assert card["usage"]["total_tokens"] == 5000 and card["warnings"]
    body["pipeline_config"]["feature_flags"] = {"workflow.multiModel": False}
    r = httpx.post(url, json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["config"]["models"] == ["openai/gpt-4o"] and r.json()["model_outputs"] == {}


def test_model_spec_ref_and_output_key() -> None:
    spec = ModelSpec(provider="google", model="gemini-2.0-flash")
    assert spec.ref == "gemini/gemini-2.0-flash" and spec.output_key == (
        "google",
        "gemini-2.0-flash",
    )
    assert spec.ref_on({"google"}) == "google/gemini-2.0-flash"  # a provider named google wins
    assert ModelSpec(provider="custom", model="m").ref == "openai-compatible/m"
