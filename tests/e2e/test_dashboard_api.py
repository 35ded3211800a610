"""The dashboard's HTTP side without a browser: page and static files, and the
JSON endpoints the pages use, against a real gateway on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from polyroute.config.schema import PipelineConfig as FilePipelineConfig
from polyroute.pipelines import PipelineConfig
from polyroute.server import Gateway, create_app
from polyroute.server.dashboard import mount
from tests.e2e.kit import DashboardServer, e2e_config, paths

KEYS = {"POLYROUTE_API_KEYS": "user-key", "POLYROUTE_ADMIN_KEYS": "admin-key"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    db = tmp_path_factory.mktemp("api") / "usage.db"
    with DashboardServer(e2e_config(f"sqlite:///{db}"), {}) as server:
        yield server


def get(gw: DashboardServer, path: str, **kw: Any) -> httpx.Response:
    return httpx.get(gw.url + path, timeout=30, **kw)


def post(gw: DashboardServer, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, timeout=30, **kw)


# -- page and files ------------------------------------------------------------------


def test_mount_replaces_the_status_page_once() -> None:
    app = create_app(Gateway(data={}, environ={}))
    mount(app)
    mount(app)  # twice: still one handler per path
    routes = [getattr(r, "path", None) for r in app.router.routes]
    assert routes.count("/") == 1 and routes.count("/api/v1/catalog") == 1
    assert {"/static/{path:path}", "/api/v1/pipelines/validate"} <= paths(app)


def test_index_and_static_files(gw: DashboardServer) -> None:
    r = get(gw, "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css")):
        r = get(gw, f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype), name
        assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
        again = get(gw, f"/static/{name}", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    "path", ["/static/nope.js", "/static/..%2F__init__.py", "/static/../api.py", "/static/.x"]
)
def test_static_serves_only_its_own_files(gw: DashboardServer, path: str) -> None:
    assert get(gw, path).status_code == 404


def test_every_page_module_is_shipped() -> None:
    from polyroute.server.dashboard import STATIC

    names = {p.name for p in STATIC.iterdir()}
    pages = {"compare.js", "routes.js", "pipelines.js", "usage.js", "runs.js"}
    assert {"index.html", "style.css", "app.js", *pages} <= names


# -- session and access --------------------------------------------------------------


def test_session_and_keys(tmp_path: Path) -> None:
    data = e2e_config(f"sqlite:///{tmp_path / 'u.db'}")
    with DashboardServer(data, KEYS) as server:
        anon = get(server, "/api/v1/dashboard/session").json()
        assert anon["auth_required"] and not anon["authenticated"] and not anon["admin"]
        user = get(
            server, "/api/v1/dashboard/session", headers={"authorization": "Bearer user-key"}
        )
        assert user.json()["authenticated"] and not user.json()["admin"]
        admin = get(server, "/api/v1/dashboard/session", headers={"x-api-key": "admin-key"})
        assert admin.json()["admin"]
        assert get(server, "/api/v1/catalog").status_code == 401
        ok = get(server, "/api/v1/catalog", headers={"authorization": "Bearer user-key"})
        assert ok.status_code == 200
        assert get(server, "/").status_code == 200  # the page itself asks for the key


def test_session_without_keys(gw: DashboardServer) -> None:
    s = get(gw, "/api/v1/dashboard/session").json()
    assert s == {**s, "auth_required": False, "authenticated": True, "usage_enabled": True}


# -- catalog, pipelines --------------------------------------------------------------


def test_catalog(gw: DashboardServer) -> None:
    c = get(gw, "/api/v1/catalog").json()
    by_id = {m["id"]: m for m in c["models"]}
    assert by_id["gpt-4o"]["provider"] == "openai" and not by_id["gpt-4o"]["usable"]
    assert by_id["gpt-4o"]["key_variable"] == "OPENAI_API_KEY"
    assert by_id["gpt-4o"]["price"]["input"] > 0
    assert by_id["flaky/gpt-4o"]["kind"] == "referenced" and by_id["flaky/gpt-4o"]["usable"]
    sim = by_id["simulator/gpt-4o"]
    assert sim["kind"] in ("simulated", "referenced") and sim["usable"]
    assert sim["price"] == by_id["gpt-4o"]["price"]
    assert len(c["suggested"]) == 3 and all(by_id[m]["usable"] for m in c["suggested"])
    routes = {r["name"]: r for r in c["routes"]}
    assert routes["flaky-route"]["models"] == ["flaky/gpt-4o", "simulator/gpt-4o-mini"]
    assert "tier:fast" in routes and "text" in c["tasks"]


def test_pipelines_list(gw: DashboardServer) -> None:
    (article,) = get(gw, "/api/v1/pipelines").json()["pipelines"]
    assert article["name"] == "article" and article["runnable"]
    steps = {s["name"]: s for s in article["steps"]}
    assert steps["draft"]["needs"] == ["outline"]
    assert steps["draft"]["resolved"]["models"] == [
        "simulator/gpt-4o",
        "simulator/claude-sonnet-4-20250514",
    ]
    assert steps["outline"]["config"] == {"model": "simulator/gpt-4o-mini"}
    # The listed pipeline_config is what PipelineConfig.parse takes.
    PipelineConfig.parse(article["pipeline_config"], gw.gateway.router)


def validate(gw: DashboardServer, step: dict[str, Any]) -> dict[str, Any]:
    body = {"pipeline": "article", "pipeline_config": {"step_configs": {"outline": step}}}
    r = post(gw, "/api/v1/pipelines/validate", body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_validate_duplicates_are_errors_with_paths(gw: DashboardServer) -> None:
    same = validate(gw, {"models": ["simulator/gpt-4o", {"model": "simulator/gpt-4o"}]})
    assert not same["valid"]
    assert [(p["level"], p["path"]) for p in same["problems"]] == [
        ("error", "step_configs.outline.models")
    ]
    assert "models[1] duplicates models[0]" in same["problems"][0]["message"]
    # Two spellings of one model: caught against the catalog, on the second one.
    spelt = validate(gw, {"models": ["gpt-4o", {"provider": "openai", "model": "gpt-4o"}]})
    assert not spelt["valid"]
    errors = [p for p in spelt["problems"] if p["level"] == "error"]
    assert [p["path"] for p in errors] == ["step_configs.outline.models[1]"]
    assert "duplicate of models[0]" in errors[0]["message"]


def test_validate_missing_credentials_are_warnings(gw: DashboardServer) -> None:
    out = validate(gw, {"models": ["simulator/gpt-4o", "gpt-4.1"], "routing": "parallel"})
    assert out["valid"]  # a warning does not block
    (w,) = out["problems"]
    assert w["level"] == "warning" and w["path"] == "step_configs.outline.models[1].model"
    assert w["key_variable"] == "OPENAI_API_KEY" and w["key_page"].startswith("https://")
    assert "OPENAI_API_KEY" in w["message"]
    # A route with one usable candidate can still answer: no warning.
    assert validate(gw, {"model": "needs-openai"})["problems"] == []


@pytest.mark.parametrize(
    ("step", "path"),
    [
        ({"model": "gpt-4o-typo"}, "step_configs.outline.model"),
        ({"models": [{"model": "x", "parameters": {"temperature": 9}}]}, "step_configs.outline"),
        ({"models": [{"provider": "nope", "model": "m"}]}, "step_configs.outline.models[0]"),
    ],
)
def test_validate_reports_field_paths(gw: DashboardServer, step: dict[str, Any], path: str) -> None:
    out = validate(gw, step)
    assert not out["valid"]
    assert any(p["path"].startswith(path) and p["level"] == "error" for p in out["problems"])


def test_validate_unknown_step_and_pipeline(gw: DashboardServer) -> None:
    r = post(
        gw,
        "/api/v1/pipelines/validate",
        {"pipeline": "nope", "step_configs": {"x": {"model": "simulator/gpt-4o"}}},
    ).json()
    assert [p["path"] for p in r["problems"]] == ["pipeline"]
    r = post(
        gw,
        "/api/v1/pipelines/validate",
        {"pipeline": "article", "pipeline_config": {"step_configs": {"outlin": {}}}},
    ).json()
    assert r["problems"][0]["path"] == "step_configs.outlin"
    assert "did you mean" in r["problems"][0]["message"]


def test_yaml_round_trips(gw: DashboardServer) -> None:
    cfg = {
        "default_model": "simulator/gpt-4o-mini",
        "step_configs": {
            "outline": {
                "models": [
                    {"provider": "simulator", "model": "gpt-4o", "parameters": {"top_p": 0.5}},
                    "simulator/gpt-4o-mini",
                ],
                "routing": "parallel",
                "temperature": 0.2,
            }
        },
    }
    r = post(gw, "/api/v1/pipelines/yaml", {"pipeline": "article", "pipeline_config": cfg})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["filename"] == "article.pipeline.yaml" and out["format"] == "pipeline_config"
    parsed = PipelineConfig.parse(yaml.safe_load(out["yaml"]), gw.gateway.router)
    assert parsed == PipelineConfig.parse(cfg)

    r = post(
        gw,
        "/api/v1/pipelines/yaml",
        {"pipeline": "article", "pipeline_config": cfg, "format": "config"},
    )
    section = yaml.safe_load(r.json()["yaml"])["pipelines"]["article"]
    file_cfg = FilePipelineConfig.model_validate(section)
    assert file_cfg.steps["outline"].models == ["simulator/gpt-4o", "simulator/gpt-4o-mini"]
    assert file_cfg.steps["outline"].routing == "parallel"
    assert file_cfg.steps["draft"].prompt  # the file's prompts come along
    assert file_cfg.steps["outline"].prompt == "Outline a short article about {content}"


def test_yaml_refuses_an_invalid_pipeline(gw: DashboardServer) -> None:
    bad = {"step_configs": {"outline": {"models": ["simulator/gpt-4o", "simulator/gpt-4o"]}}}
    r = post(gw, "/api/v1/pipelines/yaml", {"pipeline": "article", "pipeline_config": bad})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "pipeline_config.step_configs.outline.models"
    r = post(gw, "/api/v1/pipelines/yaml", {"pipeline_config": {}, "format": "toml"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "format"


# -- configuration and usage ---------------------------------------------------------


def test_config_validation_names_missing_keys(gw: DashboardServer) -> None:
    out = get(gw, "/api/v1/config/validation").json()
    assert out["source"] == "built-in defaults" and out["generation"] >= 1
    by_path = {m["path"]: m for m in out["messages"]}
    openai = by_path["providers.openai"]
    assert openai["level"] == "warning" and openai["key_variable"] == "OPENAI_API_KEY"
    assert openai["key_page"].startswith("https://") and "needs-openai" not in openai["message"]
    assert by_path["providers.simulator"]["level"] == "info"


def test_usage_series(gw: DashboardServer) -> None:
    r = post(gw, "/api/v1/compare", {"prompt": "hi", "models": ["simulator/gpt-4o-mini"]})
    assert r.json()["results"][0]["ok"]
    deadline = time.monotonic() + 5
    while True:  # the store writes in the background: give it a moment
        s = get(gw, "/api/v1/usage/series?since=1h&buckets=6&by=model").json()
        if s["groups"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(s["buckets"]) == 6 and s["by"] == "model"
    assert "simulator/gpt-4o-mini" in s["groups"]
    last = s["buckets"][-1]
    assert last["totals"]["count"] >= 1 and last["totals"]["latency_p95"] is not None
    assert last["groups"]["simulator/gpt-4o-mini"] > 0
    empty = s["buckets"][0]
    assert empty["totals"]["count"] == 0 and empty["totals"]["latency_p50"] is None
    assert get(gw, "/api/v1/usage/series?by=colour").json()["error"]["param"] == "by"
    assert get(gw, "/api/v1/usage/series?buckets=0").status_code == 400


def test_usage_series_without_a_store(tmp_path: Path) -> None:
    data = e2e_config(f"sqlite:///{tmp_path / 'u.db'}", usage=False)
    with DashboardServer(data, {}) as s:
        r = get(s, "/api/v1/usage/series")
        assert r.status_code == 404 and r.json()["error"]["code"] == "usage_disabled"
        assert not get(s, "/api/v1/dashboard/session").json()["usage_enabled"]
        messages = get(s, "/api/v1/config/validation").json()["messages"]
        assert any(m["path"] == "usage.store" for m in messages)
