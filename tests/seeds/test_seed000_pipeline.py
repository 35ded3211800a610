"""Seed 000 (marketing content pipeline), held against its own examples.

The seed's model names (gpt-4o-mini, gpt-4o, gpt-5.1) are served by the fake
provider over HTTP (``models:`` entries of those names pointing at it), so each
test can script failures and read what reached the wire; the backward-compatibility
and default-model tests use the built-in simulator with no key at all.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from typer.testing import CliRunner

from polyroute import ManualClock, Router
from polyroute.cli import app
from polyroute.pipelines import FunctionPipeline, PipelineConfig, PipelineStepConfig, PromptStep
from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV, fake_config

CHAT = "/v1/chat/completions"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The seed's seven steps, in its order ("Example Configuration").
SEED_STEPS = [
    "seo_keywords",
    "marketing_brief",
    "article_generation",
    "seo_optimization",
    "suggested_links",
    "content_formatting",
    "design_kit",
]
FAIL_5_TIMES = [{"kind": "status", "status": 503}] * 5


def seed_models(fake: FakeProviderThread) -> dict[str, Any]:
    """The seed's model names, each served by the fake under the same name."""
    return {
        name: {
            "provider": "fake-openai",
            "model": name,
            "price": {"input": 1.0, "output": 2.0},
            "context_window": 128000,
            "capabilities": ["text", "json"],
        }
        for name in ("gpt-4o-mini", "gpt-4o", "gpt-5.1")
    }


def seed_config(fake: FakeProviderThread, **sections: Any) -> dict[str, Any]:
    cfg = fake_config(fake, **sections)
    cfg["models"] = {**cfg["models"], **seed_models(fake)}
    return cfg


def seed_router(fake: FakeProviderThread, **sections: Any) -> Router:
    return Router.from_config(
        seed_config(fake, **sections), environ=ENV, clock=ManualClock(), rng=random.Random(0)
    )


def sent_models(fake: FakeProviderThread) -> list[str]:
    return [r.body["model"] for r in fake.requests_to(CHAT)]


def prompts(*names: str) -> list[PromptStep]:
    return [PromptStep(n, f"{n} for: {{content}}") for n in names]


# -- max_retries / default_max_retries (PipelineStepConfig, PipelineConfig) --------------


async def test_step_max_retries_5_is_served_on_the_sixth_attempt(
    fake: FakeProviderThread,
) -> None:
    router = seed_router(fake)  # policies.retry.max_attempts: 3 would give up after 3
    # The seed's PipelineStepConfig example, with max_retries raised to 5.
    step_config = PipelineStepConfig(
        step_name="seo_keywords",
        model="gpt-4o-mini",  # Use cheaper model
        temperature=0.7,
        max_retries=5,
    )
    pipeline = FunctionPipeline(
        pipeline_config=PipelineConfig(
            default_model="gpt-5.1", step_configs={"seo_keywords": step_config}
        ),
        router=router,
        steps=prompts("seo_keywords"),
    )
    fake.script("gpt-4o-mini", FAIL_5_TIMES)
    run = await pipeline.run("drums")
    s = run.steps[0]
    assert run.status == "ok" and s.model == "gpt-4o-mini"
    assert s.retries == 5 and s.max_retries == 5
    assert sent_models(fake) == ["gpt-4o-mini"] * 6  # served on the sixth attempt
    await router.aclose()


async def test_max_retries_0_does_not_retry(fake: FakeProviderThread) -> None:
    router = seed_router(fake)
    pipeline = FunctionPipeline(
        PipelineConfig(
            step_configs={
                "seo_keywords": PipelineStepConfig(
                    step_name="seo_keywords", model="gpt-4o-mini", max_retries=0
                )
            }
        ),
        router=router,
        steps=prompts("seo_keywords"),
    )
    fake.script("gpt-4o-mini", FAIL_5_TIMES)
    run = await pipeline.run("drums")
    assert run.status == "error" and run.steps[0].error_type in (
        "ServerError",
        "RouteExhaustedError",
    )
    assert sent_models(fake) == ["gpt-4o-mini"]  # one attempt, no retry
    await router.aclose()


async def test_default_max_retries_covers_steps_without_their_own(
    fake: FakeProviderThread,
) -> None:
    router = seed_router(fake)
    # The seed's PipelineConfig example: default_max_retries=2 for every step.
    pipeline_config = PipelineConfig(
        default_model="gpt-5.1",
        default_temperature=0.7,
        default_max_retries=2,
        step_configs={
            "seo_keywords": PipelineStepConfig(
                step_name="seo_keywords",
                model="gpt-4o-mini",  # Cheaper for simple step
            ),
            "article_generation": PipelineStepConfig(
                step_name="article_generation",
                model="gpt-4o",  # More powerful for complex step
                temperature=0.8,
            ),
        },
    )
    pipeline = FunctionPipeline(
        pipeline_config=pipeline_config,
        router=router,
        steps=prompts("seo_keywords", "article_generation"),
    )
    fake.script("gpt-4o-mini", [{"kind": "status", "status": 503}] * 2)  # 2 retries: served
    fake.script("gpt-4o", [{"kind": "status", "status": 503}] * 3)  # 3 failures: over budget
    run = await pipeline.run("drums")
    seo, article = run.steps
    assert seo.ok and seo.retries == 2 and seo.max_retries == 2
    assert not article.ok and article.max_retries == 2
    assert sent_models(fake) == ["gpt-4o-mini"] * 3 + ["gpt-4o"] * 3
    await router.aclose()


def marketing_yaml(fake: FakeProviderThread, tmp_path: Path, seo_retries: int) -> Path:
    """A polyroute config with ``pipelines:`` in seed 000's shape."""
    steps: dict[str, Any] = {
        "seo_keywords": {
            "model": "gpt-4o-mini",
            "max_retries": seo_retries,
            "prompt": "Keywords for {content}",
        },
        "article_generation": {
            "model": "gpt-4o",
            "temperature": 0.8,
            "prompt": "Article using {outputs[seo_keywords]}",
        },
    }
    cfg = seed_config(
        fake,
        pipelines={
            "marketing": {
                "default_model": "gpt-5.1",
                "default_temperature": 0.7,
                "default_max_retries": 2,
                "steps": steps,
            }
        },
    )
    path = tmp_path / "polyroute.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.parametrize(("seo_retries", "attempts", "status"), [(5, 6, "ok"), (0, 1, "error")])
async def test_yaml_pipelines_max_retries(
    fake: FakeProviderThread, tmp_path: Path, seo_retries: int, attempts: int, status: str
) -> None:
    path = marketing_yaml(fake, tmp_path, seo_retries)
    router = Router.from_config(path, environ=ENV, clock=ManualClock(), rng=random.Random(0))
    fake.script("gpt-4o-mini", FAIL_5_TIMES)
    run = await FunctionPipeline.from_settings(router, "marketing").run("drums")
    assert run.status == status
    assert sent_models(fake)[:attempts] == ["gpt-4o-mini"] * attempts
    assert sent_models(fake).count("gpt-4o-mini") == attempts
    assert run.steps[0].retries == attempts - 1
    # The step: route of the same YAML step applies the same budget.
    fake.reset()
    fake.script("gpt-4o-mini", FAIL_5_TIMES)
    try:
        env = await router.complete("step:marketing/seo_keywords", "hi")
    except Exception:
        assert status == "error"
    else:
        assert status == "ok" and env.retries == 5
    assert sent_models(fake) == ["gpt-4o-mini"] * attempts
    await router.aclose()


# -- the HTTP bodies -------------------------------------------------------------------


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    # A real clock: tiny backoff delays keep six attempts fast.
    cfg = seed_config(
        fake_provider,
        policies={"retry": {"max_attempts": 3, "base_delay": 0.001, "max_delay": 0.002}},
    )
    cfg["pipelines"] = {
        "marketing": {
            "default_model": "gpt-5.1",
            "default_max_retries": 2,
            "steps": {
                "seo_keywords": {
                    "model": "gpt-4o-mini",
                    "max_retries": 5,
                    "prompt": "Keywords for {content}",
                }
            },
        }
    }
    with GatewayServer(cfg, ENV) as server:
        yield server


def post(gw: GatewayServer, path: str, body: Any) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, timeout=30)


def seed_api_body(seo_retries: int) -> dict[str, Any]:
    """The seed's ``POST /api/v1/pipeline`` body, with a max_retries on seo_keywords."""
    return {
        "content": {"title": "Drums 101"},
        "pipeline_config": {
            "default_model": "gpt-5.1",
            "default_temperature": 0.7,
            "step_configs": {
                "seo_keywords": {
                    "step_name": "seo_keywords",
                    "model": "gpt-4o-mini",
                    "max_retries": seo_retries,
                },
                "article_generation": {"step_name": "article_generation", "model": "gpt-4o"},
            },
        },
    }


def test_http_pipeline_max_retries_5_served_on_sixth(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    fake.script("gpt-4o-mini", FAIL_5_TIMES)
    r = post(gw, "/api/v1/pipeline", seed_api_body(5))
    assert r.status_code == 200, r.text
    seo, article = r.json()["steps"]
    assert seo["model"] == "gpt-4o-mini" and seo["retries"] == 5
    assert article["model"] == "gpt-4o"
    assert sent_models(fake) == ["gpt-4o-mini"] * 6 + ["gpt-4o"]


def test_http_pipeline_max_retries_0_does_not_retry(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    fake.script("gpt-4o-mini", FAIL_5_TIMES)
    r = post(gw, "/api/v1/pipeline", seed_api_body(0))
    assert r.status_code == 502  # the run failed at its first step
    assert [s["status"] for s in r.json()["steps"]] == ["error"]
    assert sent_models(fake) == ["gpt-4o-mini"]


@pytest.mark.parametrize(("retries", "attempts", "code"), [(5, 6, 200), (0, 1, 502)])
def test_http_step_execute_honours_max_retries(
    gw: GatewayServer, fake: FakeProviderThread, retries: int, attempts: int, code: int
) -> None:
    # The seed's "Step Execution" body.
    body = {
        "content": {"title": "Drums 101"},
        "context": {"audience": "beginners"},
        "pipeline_config": {
            "default_model": "gpt-4o-mini",
            "step_configs": {
                "seo_keywords": {
                    "step_name": "seo_keywords",
                    "model": "gpt-4o-mini",
                    "max_retries": retries,
                }
            },
        },
    }
    fake.script("gpt-4o-mini", FAIL_5_TIMES)
    r = post(gw, "/api/v1/pipeline/steps/seo_keywords/execute", body)
    assert r.status_code == code, r.text
    assert r.json()["retries"] == attempts - 1
    assert sent_models(fake) == ["gpt-4o-mini"] * attempts


def test_http_named_yaml_pipeline_max_retries(gw: GatewayServer, fake: FakeProviderThread) -> None:
    fake.script("gpt-4o-mini", FAIL_5_TIMES)
    r = post(gw, "/api/v1/pipeline", {"content": "drums", "pipeline": "marketing"})
    assert r.status_code == 200, r.text
    assert r.json()["steps"][0]["retries"] == 5
    assert sent_models(fake) == ["gpt-4o-mini"] * 6
    # The body's step config laid over the file's: 0 retries.
    fake.reset()
    fake.script("gpt-4o-mini", FAIL_5_TIMES)
    body = {
        "content": "drums",
        "pipeline": "marketing",
        "pipeline_config": {"step_configs": {"seo_keywords": {"max_retries": 0}}},
    }
    assert post(gw, "/api/v1/pipeline", body).status_code == 502
    assert sent_models(fake) == ["gpt-4o-mini"]


# -- Model Selection: step → pipeline default → FunctionPipeline default ("gpt-5.1") ----


async def test_model_selection_order(fake: FakeProviderThread) -> None:
    router = seed_router(fake, defaults={"model": "gpt-4o"})
    steps = prompts("seo_keywords", "marketing_brief")
    step_only = {"seo_keywords": PipelineStepConfig(step_name="seo_keywords", model="gpt-4o-mini")}
    # 1. step config, 2. pipeline default model
    run = await FunctionPipeline(
        PipelineConfig(default_model="gpt-4o", step_configs=step_only), router, steps
    ).run("x")
    assert [(s.model, s.config["source"]) for s in run.steps] == [
        ("gpt-4o-mini", "step"),
        ("gpt-4o", "pipeline"),
    ]
    # 3. FunctionPipeline default ("gpt-5.1"): no pipeline default_model
    run = await FunctionPipeline(PipelineConfig(step_configs=step_only), router, steps).run("x")
    assert [(s.model, s.config["source"]) for s in run.steps] == [
        ("gpt-4o-mini", "step"),
        ("gpt-5.1", "function_pipeline"),
    ]
    assert FunctionPipeline.DEFAULT_MODEL == "gpt-5.1"
    # The router's own default is unchanged for everything else.
    env = await router.complete("default", "hi")
    assert env.model == router.config.defaults.model == "gpt-4o"
    assert sent_models(fake) == ["gpt-4o-mini", "gpt-4o", "gpt-4o-mini", "gpt-5.1", "gpt-4o"]
    # FunctionPipeline(default_model=...) changes the third place only.
    own = FunctionPipeline(None, router, prompts("a"), default_model="gpt-4o-mini")
    assert (await own.run("x")).steps[0].model == "gpt-4o-mini"
    await router.aclose()


async def test_function_pipeline_default_runs_on_the_simulator_without_a_key() -> None:
    router = Router.from_config({}, environ={})  # no key anywhere
    run = await FunctionPipeline(router=router, steps=prompts(*SEED_STEPS)).run("drums")
    assert run.status == "ok"
    for s in run.steps:
        assert (s.model, s.provider, s.config["source"]) == (
            "simulator/gpt-5.1",
            "simulator",
            "function_pipeline",
        )
        assert s.cost > 0  # priced like gpt-5.1
    assert str(run.steps[0].output).startswith("[simulated gpt-5.1]")
    # With an OpenAI key the same default is the real gpt-5.1.
    keyed = Router.from_config({}, environ={"OPENAI_API_KEY": "sk-x"})
    assert FunctionPipeline(router=keyed).default_model_for(keyed) == "gpt-5.1"
    await router.aclose()
    await keyed.aclose()


# -- Backward Compatibility: no pipeline_config ------------------------------------------


@pytest.fixture(scope="module")
def sim_gw() -> Iterator[GatewayServer]:
    with GatewayServer({}, {}) as server:  # built-in defaults, no key: the simulator
        yield server


def test_http_content_only_runs_every_step_on_the_default_model(sim_gw: GatewayServer) -> None:
    r = post(sim_gw, "/api/v1/pipeline", {"content": {"title": "Drums 101"}})
    assert r.status_code == 200, r.text
    run = r.json()
    assert [s["step_name"] for s in run["steps"]] == SEED_STEPS
    assert {s["model"] for s in run["steps"]} == {"simulator/gpt-5.1"}
    assert {s["config"]["source"] for s in run["steps"]} == {"function_pipeline"}
    assert run["total_cost"] == pytest.approx(sum(s["cost"] for s in run["steps"]))


def test_http_default_model_alone_applies_to_every_step(sim_gw: GatewayServer) -> None:
    body = {"content": "x", "pipeline_config": {"default_model": "simulator/gpt-4o-mini"}}
    r = post(sim_gw, "/api/v1/pipeline", body)
    assert r.status_code == 200, r.text
    assert [s["model"] for s in r.json()["steps"]] == ["simulator/gpt-4o-mini"] * 7


def test_http_step_execute_without_pipeline_config(sim_gw: GatewayServer) -> None:
    body = {"content": {"title": "x"}, "context": {"audience": "drummers"}}
    r = post(sim_gw, "/api/v1/pipeline/steps/seo_keywords/execute", body)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "simulator/gpt-5.1"


# -- polyroute run with the seed's {content, context} input -------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "POLYROUTE_CONFIG", "AI_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def test_cli_run_marketing_example_with_its_input(clean_env: Path) -> None:
    yaml_file = EXAMPLES / "marketing" / "polyroute.yaml"
    input_file = EXAMPLES / "marketing" / "input.json"
    args = ["run", str(yaml_file), "--input", str(input_file), "--json", "--no-store"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    run = json.loads(r.output)
    assert run["status"] == "ok" and [s["step_name"] for s in run["steps"]] == SEED_STEPS
    # Every {context[...]} of the templates was filled (a missing one fails its step),
    # and {content} is the input's content text, not the whole {content, context} body.
    data = json.loads(input_file.read_text("utf-8"))
    seo = run["steps"][0]
    assert seo["model"] == "simulator/gpt-4o-mini" and seo["error"] is None
    assert f"Source notes: {data['content'][:30]}" in seo["output"]
    # The live table works with the same input too.
    live = CliRunner().invoke(app, ["run", str(yaml_file), "--input", str(input_file)])
    assert live.exit_code == 0, live.output
    assert "7 steps" in live.output and "design_kit" in live.output


def test_cli_input_may_carry_a_pipeline_config(clean_env: Path) -> None:
    data = json.loads((EXAMPLES / "marketing" / "input.json").read_text("utf-8"))
    data["pipeline_config"] = {
        "step_configs": {"seo_keywords": {"step_name": "seo_keywords", "model": "simulator/gpt-4o"}}
    }
    (clean_env / "in.json").write_text(json.dumps(data))
    yaml_file = str(EXAMPLES / "marketing" / "polyroute.yaml")
    r = CliRunner().invoke(app, ["run", yaml_file, "--input", "in.json", "--json", "--no-store"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["steps"][0]["model"] == "simulator/gpt-4o"
