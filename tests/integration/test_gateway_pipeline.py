"""Seed 000's pipeline endpoints with the seed's own example bodies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer

SEED_STEPS = [
    "seo_keywords",
    "marketing_brief",
    "article_generation",
    "seo_optimization",
    "suggested_links",
    "content_formatting",
    "design_kit",
]


def config(db: str = "sqlite:///:memory:") -> dict[str, Any]:
    steps = {
        name: {"model": "simulator/gpt-4o-mini", "prompt": f"{name} for: {{content}}"}
        for name in SEED_STEPS
    }
    steps["article_generation"] = {
        "model": "simulator/gpt-5.1",
        "temperature": 0.8,
        "prompt": "Write an article using {outputs[marketing_brief]} and {outputs[seo_keywords]}",
    }
    steps["marketing_brief"]["model"] = "simulator/gpt-4o"
    return {
        "defaults": {"model": "simulator/gpt-4o"},
        "pipelines": {"marketing": {"default_model": "simulator/gpt-4o", "steps": steps}},
        "usage": {"store": db},
    }


@pytest.fixture(scope="module")
def gw(
    fake_provider: FakeProviderThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    db = tmp_path_factory.mktemp("runs") / "usage.db"
    with GatewayServer(config(f"sqlite:///{db}"), {}) as server:
        yield server


def post(gw: GatewayServer, path: str, body: Any) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, timeout=30)


def test_named_pipeline_runs_every_step_with_its_model(gw: GatewayServer) -> None:
    r = post(gw, "/api/v1/pipeline", {"content": {"title": "Drums 101"}, "pipeline": "marketing"})
    assert r.status_code == 200, r.text
    run = r.json()
    assert [s["step_name"] for s in run["steps"]] == SEED_STEPS
    models = {s["step_name"]: s["model"] for s in run["steps"]}
    assert models["seo_keywords"] == "simulator/gpt-4o-mini"
    assert models["article_generation"] == "simulator/gpt-5.1"
    assert models["marketing_brief"] == "simulator/gpt-4o"
    for s in run["steps"]:
        assert s["provider"] == "simulator" and s["cost"] > 0 and s["latency"] >= 0
        assert s["attempts"] and s["usage"]["prompt_tokens"] > 0
    assert run["total_cost"] == pytest.approx(sum(s["cost"] for s in run["steps"]))


def test_seed_body_overrides_per_step_models(gw: GatewayServer) -> None:
    body = {
        "content": {"title": "x"},
        "pipeline": "marketing",
        "pipeline_config": {
            "default_model": "simulator/gpt-5.1",
            "default_temperature": 0.7,
            "step_configs": {
                "seo_keywords": {"step_name": "seo_keywords", "model": "simulator/gpt-4o"},
            },
        },
    }
    run = post(gw, "/api/v1/pipeline", body).json()
    models = {s["step_name"]: s["model"] for s in run["steps"]}
    assert models["seo_keywords"] == "simulator/gpt-4o"


def test_seed_body_without_a_named_pipeline(gw: GatewayServer) -> None:
    body = {
        "content": {"text": "hello"},
        "pipeline_config": {
            "default_model": "simulator/gpt-5.1",
            "default_temperature": 0.7,
            "step_configs": {
                "seo_keywords": {"step_name": "seo_keywords", "model": "simulator/gpt-4o-mini"},
                "article_generation": {
                    "step_name": "article_generation",
                    "model": "simulator/gpt-4o",
                },
            },
        },
    }
    r = post(gw, "/api/v1/pipeline", body)
    assert r.status_code == 200, r.text
    assert [s["model"] for s in r.json()["steps"]] == ["simulator/gpt-4o-mini", "simulator/gpt-4o"]


def test_step_execute_with_seed_body(gw: GatewayServer) -> None:
    body = {
        "content": {"title": "x"},
        "context": {"audience": "drummers"},
        "pipeline_config": {
            "default_model": "simulator/gpt-4o-mini",
            "step_configs": {
                "seo_keywords": {"step_name": "seo_keywords", "model": "simulator/gpt-4o-mini"}
            },
        },
    }
    r = post(gw, "/api/v1/pipeline/steps/seo_keywords/execute", body)
    assert r.status_code == 200, r.text
    step = r.json()
    assert step["step_name"] == "seo_keywords" and step["model"] == "simulator/gpt-4o-mini"
    assert step["output"] and step["cost"] > 0


def test_pipeline_validation_errors(gw: GatewayServer) -> None:
    bad = {
        "content": "x",
        "pipeline_config": {"default_temperature": 3, "step_configs": {"a": {"model": "x"}}},
    }
    r = post(gw, "/api/v1/pipeline", bad)
    assert r.status_code == 400
    assert "pipeline_config" in r.json()["error"]["param"]
    assert "2.0" in r.json()["error"]["message"]
    r = post(gw, "/api/v1/pipeline", {"content": "x", "pipeline": "nope"})
    assert r.status_code == 404
    r = post(gw, "/api/v1/pipeline", {"pipeline": "marketing"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "content"


def test_runs_are_recorded_and_listed(gw: GatewayServer) -> None:
    run = post(gw, "/api/v1/pipeline", {"content": "x", "pipeline": "marketing"}).json()
    listed = httpx.get(gw.url + "/api/v1/runs?pipeline=marketing").json()["runs"]
    assert run["run_id"] in [r["run_id"] for r in listed]
    row = next(r for r in listed if r["run_id"] == run["run_id"])
    assert row["steps"] == 7 and row["total_cost"] == pytest.approx(run["total_cost"])
    full = httpx.get(gw.url + f"/api/v1/runs/{run['run_id']}").json()
    assert [s["model"] for s in full["steps"]] == [s["model"] for s in run["steps"]]
    assert httpx.get(gw.url + "/api/v1/runs/nope").status_code == 404
