"""Pipelines on a real Router with no keys: every model runs on the simulator.

``flaky/...`` is a simulator provider that always fails with a 500, and
``policies.retry.max_attempts: 1`` keeps its failures to one attempt each.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from polyroute import ConfigError, Router
from polyroute.pipelines import (
    FunctionPipeline,
    PipelineConfig,
    PipelineError,
    PipelineStepConfig,
    PromptStep,
    PromptTemplateError,
    StepContext,
    UnknownStepError,
    select_models,
    step,
)

FLAKY = {
    "type": "simulator",
    # A user-defined simulator provider needs a base URL today (see the report).
    "base_url": "simulator://flaky",
    "simulator": {"failure_rate": 1.0, "error_kinds": ["server_error"]},
}
MARKETING_FILE = {
    "default_model": "simulator/gpt-4o",
    "default_temperature": 0.7,
    "default_max_retries": 2,
    "steps": {
        "brief": {"prompt": "Brief for {content}", "system": "You are a marketer."},
        "seo_keywords": {"model": "simulator/gpt-4o-mini", "prompt": "Keywords: {outputs[brief]}"},
        "article_generation": {"model": "simulator/gpt-5.1", "temperature": 0.8, "prompt": "X"},
    },
}
SEED_000_BODY = {
    "default_model": "gpt-5.1",
    "default_temperature": 0.7,
    "step_configs": {
        "seo_keywords": {"step_name": "seo_keywords", "model": "gpt-4o-mini"},
        "article_generation": {"step_name": "article_generation", "model": "gpt-4o"},
    },
}


def make_router(**sections: Any) -> Router:
    base: dict[str, Any] = {
        "providers": {"flaky": FLAKY},
        "policies": {"retry": {"max_attempts": 1}},
    }
    return Router.from_config({**base, **sections}, environ={})


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    r = make_router(pipelines={"marketing": MARKETING_FILE})
    yield r
    await r.aclose()


def spy(router: Router, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, dict[str, Any]]]:
    """Record every router.complete call (fan_out goes through it too)."""
    calls: list[tuple[str, Any, dict[str, Any]]] = []
    real = router.complete

    async def complete(route: str, messages: Any, **kw: Any) -> Any:
        calls.append((route, messages, kw))
        return await real(route, messages, **kw)

    monkeypatch.setattr(router, "complete", complete)
    return calls


def prompts(*names: str) -> list[PromptStep]:
    return [PromptStep(n, f"{n}: {{content}}") for n in names]


# -- configuration ------------------------------------------------------------------


def test_seed_000_body_and_python_shapes_parse() -> None:
    cfg = PipelineConfig.parse(SEED_000_BODY)
    assert cfg.default_model == "gpt-5.1" and cfg.default_temperature == 0.7
    assert cfg.step_configs["seo_keywords"].model == "gpt-4o-mini"
    same = PipelineConfig(
        default_model="gpt-5.1",
        default_temperature=0.7,
        step_configs={
            "seo_keywords": PipelineStepConfig(step_name="seo_keywords", model="gpt-4o-mini"),
            "article_generation": PipelineStepConfig(
                step_name="article_generation", model="gpt-4o"
            ),
        },
    )
    assert same == cfg
    # step_name may be left to the key; a different one is an error.
    assert PipelineConfig.parse({"step_configs": {"s": {}}}).step_configs["s"].step_name == "s"
    with pytest.raises(ConfigError, match=r"step_configs\.s\.step_name"):
        PipelineConfig.parse({"step_configs": {"s": {"step_name": "t"}}})


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"step_configs": {"s": {"temperature": 2.5}}}, "step_configs.s.temperature"),
        ({"default_temperature": -0.1}, "default_temperature"),
        ({"step_configs": {"s": {"max_retries": -1}}}, "step_configs.s.max_retries"),
        ({"default_max_retries": -1}, "default_max_retries"),
        ({"default_model": "  "}, "default_model"),
        ({"step_configs": {"s": {"modle": "gpt-4o"}}}, "step_configs.s.modle"),
        ({"step_configs": {"s": {"model": "a", "models": ["b"]}}}, "step_configs.s"),
        ({"step_configs": {"s": {"models": []}}}, "step_configs.s.models"),
        (
            {"step_configs": {"s": {"models": [{"model": "a", "parameters": {"temperature": 3}}]}}},
            "step_configs.s.models[0].parameters",
        ),
    ],
)
def test_invalid_values_name_their_field(body: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        PipelineConfig.parse(body)
    assert info.value.path == path


def test_pydantic_models_validate_directly() -> None:
    with pytest.raises(ValidationError, match=r"between 0\.0 and 2\.0"):
        PipelineStepConfig(step_name="s", temperature=2.5)
    with pytest.raises(ValidationError, match=">= 0"):
        PipelineConfig(default_max_retries=-1)


def test_duplicate_models_in_a_step() -> None:
    with pytest.raises(ConfigError, match=r"models\[1\] duplicates models\[0\]"):
        PipelineConfig.parse({"step_configs": {"s": {"models": ["simulator/gpt-4o"] * 2}}})
    # Spelt differently, the same model: caught against the router's catalog.
    same = [{"provider": "google", "model": "gemini-2.0-flash"}, "gemini-2.0-flash"]
    with pytest.raises(ConfigError, match=r"step_configs\.s\.models\[1\]: duplicate"):
        PipelineConfig.parse({"step_configs": {"s": {"models": same}}}, router=make_router())


def test_unknown_models_named_by_path_with_close_matches(router: Router) -> None:
    body = {
        "step_configs": {
            "seo_keywords": {"model": "gpt-4o-mni"},
            "x": {"models": [{"provider": "custom", "model": "m"}, "tier:fastest"]},
        }
    }
    with pytest.raises(ConfigError) as info:
        PipelineConfig.parse(body, router=router)
    problems = dict(info.value.problems)
    assert "did you mean gpt-4o-mini" in problems["step_configs.seo_keywords.model"]
    assert "unknown provider 'custom'" in problems["step_configs.x.models[0].provider"]
    assert "tier:fast" in problems["step_configs.x.models[1].model"]
    pipe = FunctionPipeline(router=router, steps=prompts("seo_keywords"))
    with pytest.raises(ConfigError, match=r"step_configs\.seo_keywords\.model"):
        pipe.pipeline_config = {"step_configs": {"seo_keywords": {"model": "gpt-4o-mni"}}}
    # Routes and catalog ids are fine.
    PipelineConfig.parse({"default_model": "tier:fast", **SEED_000_BODY}, router=router)


async def test_step_config_for_a_step_the_pipeline_lacks(router: Router) -> None:
    pipe = FunctionPipeline({"step_configs": {"seo_keyword": {}}}, router, prompts("seo_keywords"))
    with pytest.raises(ConfigError, match="did you mean seo_keywords"):
        await pipe.run("x")


# -- model selection ----------------------------------------------------------------


async def test_model_order_step_then_pipeline_then_router(router: Router) -> None:
    cfg = {
        "default_model": "simulator/gpt-4o",
        "step_configs": {"a": {"model": "simulator/gpt-4o-mini"}},
    }
    run = await FunctionPipeline(cfg, router, prompts("a", "b")).run("x")
    assert [(s.model, s.config["source"]) for s in run.steps] == [
        ("simulator/gpt-4o-mini", "step"),
        ("simulator/gpt-4o", "pipeline"),
    ]
    bare = await FunctionPipeline(None, router, prompts("a")).run("x")  # no config: defaults
    # Seed 000's third level: FunctionPipeline's own default, gpt-5.1 (simulated here).
    assert bare.steps[0].model == "simulator/gpt-5.1"
    assert bare.steps[0].config["source"] == "function_pipeline"


async def test_temperature_and_max_tokens_reach_the_call(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy(router, monkeypatch)
    cfg = {
        "default_temperature": 0.7,
        "default_max_retries": 2,
        "step_configs": {"a": {"temperature": 0.2, "max_tokens": 50, "max_retries": 0}},
    }
    run = await FunctionPipeline(cfg, router, prompts("a", "b")).run("x")
    labels = [{"pipeline": "pipeline", "step": s} for s in ("a", "b")]
    assert [c[2] for c in calls] == [
        {"temperature": 0.2, "max_tokens": 50, "labels": labels[0]},
        {"temperature": 0.7, "labels": labels[1]},
    ]  # the usage record learns the pipeline and step from the labels
    # max_retries is recorded on the plan (and sets the step's retry attempts).
    assert [s.max_retries for s in run.steps] == [0, 2]


async def test_reassigned_config_applies_to_the_next_run(router: Router) -> None:
    pipe = FunctionPipeline({"default_model": "simulator/gpt-4o"}, router, prompts("a"))
    assert (await pipe.run("x")).steps[0].model == "simulator/gpt-4o"
    pipe.pipeline_config = PipelineConfig(default_model="simulator/gpt-5.1")
    assert (await pipe.run("x")).steps[0].model == "simulator/gpt-5.1"
    pipe.pipeline_config = None
    assert (await pipe.run("x")).steps[0].model == "simulator/gpt-5.1"


def test_from_settings_and_api_overlay(router: Router) -> None:
    cfg = PipelineConfig.from_settings(router, "marketing")
    assert cfg.default_model == "simulator/gpt-4o" and cfg.default_max_retries == 2
    assert cfg.step_configs["article_generation"].temperature == 0.8
    over = PipelineConfig.from_settings(
        router, "marketing", {"step_configs": {"article_generation": {"model": "simulator/gpt-4o"}}}
    )
    art = over.step_configs["article_generation"]
    assert (art.model, art.temperature) == ("simulator/gpt-4o", 0.8)  # file's temperature kept
    plan = select_models(over, "seo_keywords", router)
    assert [t.ref for t in plan.targets] == ["simulator/gpt-4o-mini"]
    with pytest.raises(PipelineError, match="did you mean marketing"):
        PipelineConfig.from_settings(router, "marketin")


async def test_file_pipeline_runs_like_an_api_one(router: Router) -> None:
    run = await FunctionPipeline.from_settings(router, "marketing").run("drums")
    assert run.status == "ok"
    assert [s.model for s in run.steps] == [
        "simulator/gpt-4o",
        "simulator/gpt-4o-mini",
        "simulator/gpt-5.1",
    ]
    # The router's own step: route for the same step agrees.
    route = router.resolve("step:marketing/seo_keywords")
    assert route.candidates[0].info.id == run.steps[1].model


# -- steps --------------------------------------------------------------------------


async def test_decorator_steps_async_and_sync(router: Router) -> None:
    @step("seo_keywords")
    async def keywords(ctx: StepContext) -> str:
        return await ctx.llm(f"Keywords for {ctx.content}", system="Be brief.")

    @step("links")
    def links(ctx: StepContext) -> dict[str, Any]:  # sync: runs in a worker thread
        text = ctx.llm_sync(f"Links for {ctx.outputs['seo_keywords']}")
        return {"keywords": ctx.outputs["seo_keywords"], "links": text, "tone": ctx.context["tone"]}

    @step()
    def no_llm(ctx: StepContext) -> str:
        return str(ctx.outputs["links"]["tone"]).upper()

    cfg = {"step_configs": {"links": {"model": "simulator/gpt-4o-mini"}}}
    pipe = FunctionPipeline(cfg, router, [keywords, links, no_llm], name="mk")
    run = await pipe.run("drums", context={"tone": "warm"})
    assert run.status == "ok", run.error
    out = run.outputs
    assert out["seo_keywords"].startswith("[simulated gpt-5.1]")
    assert out["links"]["keywords"] == out["seo_keywords"] and out["no_llm"] == "WARM"
    assert run.steps[1].model == "simulator/gpt-4o-mini"
    assert run.steps[2].model is None and run.steps[2].cost == 0.0
    assert keywords.name == "seo_keywords" and callable(keywords)


async def test_prompt_steps_see_earlier_outputs_and_context(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy(router, monkeypatch)
    steps = [
        PromptStep("a", "Topic: {content}", system="Voice: {context[voice]}"),
        PromptStep("b", "Improve: {outputs[a]}"),
    ]
    run = await FunctionPipeline(None, router, steps).run("drums", {"voice": "calm"})
    assert calls[0][1] == [
        {"role": "system", "content": "Voice: calm"},
        {"role": "user", "content": "Topic: drums"},
    ]
    assert calls[1][1][-1]["content"] == f"Improve: {run.outputs['a']}"


async def test_template_mistakes_are_clear(router: Router) -> None:
    with pytest.raises(PromptTemplateError, match=r"\{contnt\}.*did you mean content"):
        PromptStep("a", "Hi {contnt}")
    with pytest.raises(PipelineError, match="no earlier step is named 'b'"):
        FunctionPipeline(None, router, [PromptStep("a", "{outputs[b]}"), PromptStep("b", "x")])
    pipe = FunctionPipeline(None, router, [PromptStep("a", "For {context[brand]}")])
    run = await pipe.run("x", context={"brnd": "y"})
    assert run.status == "error" and run.steps[0].error_type == "PromptTemplateError"
    assert "{context[brand]}" in (run.error or "") and "did you mean brnd" in (run.error or "")


async def test_run_step_alone_and_unknown_step(router: Router) -> None:
    pipe = FunctionPipeline(None, router, [PromptStep("a", "x"), PromptStep("b", "{outputs[a]}")])
    result = await pipe.run_step("b", "drums", outputs={"a": "given"})
    assert result.ok and result.model == "simulator/gpt-5.1"  # FunctionPipeline's default
    missing = await pipe.run_step("b", "drums")
    assert not missing.ok and "outputs[a]" in (missing.error or "")
    with pytest.raises(UnknownStepError, match="did you mean b"):
        await pipe.run_step("bb", "drums")


# -- tracking, multi-model steps, failures -------------------------------------------


async def test_run_totals_are_the_sum_of_steps(router: Router) -> None:
    run = await FunctionPipeline.from_settings(router, "marketing").run("drums")
    assert run.total_cost == pytest.approx(sum(s.cost for s in run.steps)) and run.total_cost > 0
    assert run.total_tokens == sum(s.tokens_in + s.tokens_out for s in run.steps) > 0
    assert run.total_latency == pytest.approx(sum(s.latency for s in run.steps))
    assert run.usage_by_provider["simulator"].total_tokens == run.total_tokens
    for s in run.steps:
        info = router.catalog.lookup(s.model or "")
        assert s.cost == pytest.approx(info.cost(s.usage))
        assert [a["outcome"] for a in s.attempts] == ["success"]
    d = json.loads(json.dumps(run.to_dict()))
    assert len(d["run_id"]) == 32 and d["status"] == "ok" and len(d["steps"]) == 3
    assert d["total_tokens"] == run.total_tokens and d["steps"][0]["usage"]["total_tokens"] > 0


async def test_parallel_step_keeps_every_model_and_survives_one_failure(router: Router) -> None:
    models = ["flaky/gpt-4o", "simulator/gpt-4o", {"provider": "simulator", "model": "gpt-5.1"}]
    cfg = {"step_configs": {"a": {"models": models, "routing": "parallel"}}}

    @step("judge")  # a later step sees every model's card, not only the chosen output
    def judge(ctx: StepContext) -> dict[str, Any]:
        return {p: sorted(m) for p, m in ctx.results["a"].model_outputs.items()}

    run = await FunctionPipeline(cfg, router, [*prompts("a"), judge]).run("x")
    assert run.outputs["judge"] == {"flaky": ["gpt-4o"], "simulator": ["gpt-4o", "gpt-5.1"]}
    a = run.steps[0]
    assert run.status == "ok" and a.config["routing"] == "parallel"
    sim = a.model_outputs["simulator"]
    assert set(sim) == {"gpt-4o", "gpt-5.1"} and sim["gpt-4o"]["error"] is None
    assert a.output == sim["gpt-4o"]["content"] and a.model == "simulator/gpt-4o"
    assert a.cost == pytest.approx(sim["gpt-4o"]["cost"] + sim["gpt-5.1"]["cost"])
    flaky = a.model_outputs["flaky"]["gpt-4o"]
    assert flaky["content"] is None and "simulated server error" in flaky["error"]
    assert {(x["model"], x["outcome"]) for x in a.attempts} >= {("flaky/gpt-4o", "error")}
    assert json.dumps(a.to_dict())


async def test_parallel_step_fails_when_every_model_fails(router: Router) -> None:
    cfg = {
        "step_configs": {
            "a": {"models": ["flaky/gpt-4o", "flaky/gpt-4o-mini"], "routing": "parallel"}
        }
    }
    run = await FunctionPipeline(cfg, router, prompts("a")).run("x")
    assert run.status == "error" and run.steps[0].error_type == "RouteExhaustedError"
    assert set(run.steps[0].model_outputs["flaky"]) == {"gpt-4o", "gpt-4o-mini"}


async def test_fallback_step_moves_on_from_a_failing_model(router: Router) -> None:
    cfg = {"step_configs": {"a": {"models": ["flaky/gpt-4o", "simulator/gpt-4o"]}}}
    run = await FunctionPipeline(cfg, router, prompts("a")).run("x")
    a = run.steps[0]
    assert run.status == "ok" and a.config["routing"] == "fallback"
    assert a.model == "simulator/gpt-4o" and a.output.startswith("[simulated gpt-4o]")
    assert [(x["model"], x["outcome"], x["trigger"]) for x in a.attempts] == [
        ("flaky/gpt-4o", "error", "server_error"),
        ("simulator/gpt-4o", "success", None),
    ]
    assert any("fell back to simulator/gpt-4o" in w for w in a.warnings)


async def test_a_failing_step_stops_the_run(router: Router) -> None:
    cfg = {"step_configs": {"b": {"model": "flaky/gpt-4o"}}}
    run = await FunctionPipeline(cfg, router, prompts("a", "b", "c")).run("x")
    assert run.status == "error" and [s.step_name for s in run.steps] == ["a", "b"]
    a, b = run.steps
    assert a.ok and a.output and not b.ok and b.output is None
    assert "simulated server error" in (b.error or "") and run.error and "'b'" in run.error
    assert b.attempts[0]["trigger"] == "server_error"
    assert run.outputs == {"a": a.output}


# -- seed 000's marketing pipeline, end to end ----------------------------------------

SEED_000_STEPS = {  # the seed's recommended model per step
    "seo_keywords": "gpt-4o-mini",
    "marketing_brief": "gpt-4o",
    "article_generation": "gpt-5.1",
    "seo_optimization": "gpt-4o",
    "suggested_links": "gpt-4o-mini",
    "content_formatting": "gpt-4o-mini",
    "design_kit": "gpt-4o-mini",
}


async def test_seed_000_marketing_pipeline(router: Router) -> None:
    names = list(SEED_000_STEPS)
    steps = [PromptStep(names[0], "SEO keywords for: {content}")] + [
        PromptStep(n, f"{n} using {{outputs[{prev}]}}") for prev, n in itertools.pairwise(names)
    ]
    configs = {
        n: PipelineStepConfig(step_name=n, model=f"simulator/{m}")
        for n, m in SEED_000_STEPS.items()
    }
    configs["article_generation"].temperature = 0.8
    cfg = PipelineConfig(default_model="simulator/gpt-4o", step_configs=configs)
    run = await FunctionPipeline(cfg, router, steps, name="marketing").run("a drum shop")
    assert run.status == "ok" and [s.step_name for s in run.steps] == names
    assert [s.model for s in run.steps] == [f"simulator/{m}" for m in SEED_000_STEPS.values()]
    assert run.step("article_generation").config["temperature"] == 0.8  # type: ignore[union-attr]
    assert run.total_cost == pytest.approx(sum(s.cost for s in run.steps))


def test_run_sync_outside_a_loop() -> None:
    r = make_router()
    run = FunctionPipeline(None, r, prompts("a")).run_sync("x")
    assert run.status == "ok" and run.steps[0].model == "simulator/gpt-5.1"


async def test_run_sync_inside_a_loop_says_use_await(router: Router) -> None:
    with pytest.raises(PipelineError, match=r"await pipeline\.run"):
        FunctionPipeline(None, router, prompts("a")).run_sync("x")
