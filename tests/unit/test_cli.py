"""The ``polyroute`` command line, driven through typer's CliRunner.

The CLI reads ``os.environ``; an autouse fixture removes every variable polyroute
reads and moves into an empty directory, so the developer's keys and
./polyroute.yaml never leak in.  Nothing here reaches the network: without keys
every built-in pool runs on the simulator.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from polyroute._version import __version__
from polyroute.cli import app

KEY_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GROQ_API_KEY",
    "COHERE_API_KEY",
    "AI_PROVIDER",
    "POLYROUTE_CONFIG",
)
_POLYROUTE_VAR = re.compile(r"^(AI_|MODEL_|ALLOWED_MODEL_PROVIDERS$)|_(API_KEY|BASE_URL)$")

# Wide enough that rich never truncates a table cell.
WIDE = {"COLUMNS": "200"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if _POLYROUTE_VAR.search(name):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})})


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"polyroute {__version__}"


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert "models" in result.output
    assert "doctor" in result.output


class TestModels:
    def test_json_catalog(self) -> None:
        rows = ok_json(invoke("models", "--json"))
        by_id = {r["id"]: r for r in rows}
        assert "gpt-4o" in by_id
        assert by_id["gpt-4o"]["provider"] == "openai"
        assert by_id["gpt-4o"]["price"]["input"] == 2.5
        assert by_id["dall-e-3"]["price"]["per_image"] == 0.04
        assert "image_generation" in by_id["dall-e-3"]["capabilities"]
        assert {"anthropic", "gemini", "groq", "cohere"} <= {r["provider"] for r in rows}

    def test_provider_filter(self) -> None:
        rows = ok_json(invoke("models", "--json", "--provider", "gemini"))
        assert rows
        assert {r["provider"] for r in rows} == {"gemini"}
        assert "gemini-2.0-flash" in {r["id"] for r in rows}

    def test_user_model_is_listed(self, clean_env: Path) -> None:
        cfg = clean_env / "cfg.yaml"
        cfg.write_text("models:\n  light-1:\n    provider: openai\n    model: gpt-4o-mini\n")
        rows = ok_json(invoke("models", "--json", "--config", str(cfg)))
        light = next(r for r in rows if r["id"] == "light-1")
        assert light["model"] == "gpt-4o-mini"

    def test_table(self) -> None:
        result = invoke("models")
        assert result.exit_code == 0
        assert "gpt-4o-mini" in result.stdout
        assert "claude-sonnet-4-20250514" in result.stdout


class TestRoutes:
    def test_json(self) -> None:
        rows = ok_json(invoke("routes", "--json"))
        by_route = {r["route"]: r for r in rows}
        for name in (
            "tier:fast",
            "tier:expert",
            "task:text",
            "task:video-slides",
            "role:writer",
            "role:writer@landing",
        ):
            assert name in by_route, name
        fast = by_route["tier:fast"]
        assert fast["strategy"] == "fallback"
        assert fast["models"][0] == "simulator/claude-3-5-haiku-20241022"
        assert fast["params"] == {"max_tokens": 256, "temperature": 0.3}
        assert fast["timeout"] == 5.0
        assert by_route["role:writer@landing"]["models"] == [
            "simulator/gpt-4o-mini",
            "simulator/gpt-4o",
        ]

    def test_json_with_config_file(self, clean_env: Path) -> None:
        cfg = clean_env / "cfg.yaml"
        cfg.write_text(
            "routes:\n  compare-all: {strategy: parallel, models: [gpt-4o, gemini-2.0-flash]}\n"
            "pipelines:\n  mk:\n    steps:\n      seo: {model: gpt-4o-mini}\n"
        )
        by_route = {r["route"]: r for r in ok_json(invoke("routes", "--json", "-c", str(cfg)))}
        assert by_route["compare-all"]["strategy"] == "parallel"
        assert by_route["compare-all"]["models"] == ["gpt-4o", "gemini-2.0-flash"]
        assert by_route["step:mk/seo"]["models"] == ["gpt-4o-mini"]

    def test_max_tier_warning_is_shown(self) -> None:
        rows = ok_json(invoke("routes", "--json", env={"AI_MAX_TIER": "balanced"}))
        expert = next(r for r in rows if r["route"] == "tier:expert")
        assert expert["warnings"] == ["tier expert capped to balanced by budget.max_tier"]


class TestDoctor:
    def test_builtin_defaults_are_healthy(self) -> None:
        result = invoke("doctor")
        assert result.exit_code == 0, result.output
        assert "built-in defaults" in result.stdout
        assert "simulator" in result.stdout
        assert "all providers in use are ready" in result.stdout

    def _one_provider_config(self, directory: Path) -> Path:
        cfg = directory / "polyroute-openai.yaml"
        cfg.write_text("tiers:\n  fast:\n    models: [openai/gpt-4o-mini]\n")
        return cfg

    def test_missing_key_exits_1_naming_variable_and_key_page(self, clean_env: Path) -> None:
        cfg = self._one_provider_config(clean_env)
        result = invoke("doctor", "--config", str(cfg))
        assert result.exit_code == 1, result.output
        assert "OPENAI_API_KEY" in result.output
        assert "https://platform.openai.com/api-keys" in result.output
        assert "missing" in result.output

    def test_missing_key_through_polyroute_config(self, clean_env: Path) -> None:
        cfg = self._one_provider_config(clean_env)
        result = invoke("doctor", env={"POLYROUTE_CONFIG": str(cfg)})
        assert result.exit_code == 1, result.output
        assert "OPENAI_API_KEY" in result.output

    def test_key_present_exits_0(self, clean_env: Path) -> None:
        cfg = self._one_provider_config(clean_env)
        result = invoke("doctor", "--config", str(cfg), env={"OPENAI_API_KEY": "sk-doctor-test"})
        assert result.exit_code == 0, result.output
        assert "key set" in result.output
        assert "sk-doctor-test" not in result.output

    def test_key_page_is_readable_in_an_80_column_terminal(self, clean_env: Path) -> None:
        cfg = self._one_provider_config(clean_env)
        result = CliRunner().invoke(app, ["doctor", "--config", str(cfg)], env={"COLUMNS": "80"})
        assert result.exit_code == 1
        assert "https://platform.openai.com/api-keys" in result.output

    def test_invalid_config_exits_2_naming_the_path(self, clean_env: Path) -> None:
        cfg = clean_env / "bad.yaml"
        cfg.write_text("defaults:\n  temperature: 3\ntiers:\n  fast:\n    models: [gpt-4o-mnii]\n")
        result = invoke("doctor", "--config", str(cfg))
        assert result.exit_code == 2, result.output
        assert "defaults.temperature" in result.output
        assert "2.0" in result.output

    def test_invalid_reference_exits_2_naming_the_path(self, clean_env: Path) -> None:
        cfg = clean_env / "bad.yaml"
        cfg.write_text("tiers:\n  fast:\n    models: [gpt-4o-mnii]\n")
        result = invoke("doctor", "--config", str(cfg))
        assert result.exit_code == 2, result.output
        assert "tiers.fast.models[0]" in result.output

    def test_invalid_environment_exits_2_naming_the_variable(self) -> None:
        result = invoke("doctor", env={"AI_MAX_COST_PER_REQUEST": "abc"})
        assert result.exit_code == 2, result.output
        assert "AI_MAX_COST_PER_REQUEST" in result.output

    def test_ping_answers_from_every_usable_provider(self) -> None:
        result = invoke("doctor", "--ping")
        assert result.exit_code == 0, result.output
        assert "ping" in result.stdout and "ok" in result.stdout and "(simulated)" in result.stdout
        assert "failed" not in result.stdout

    def test_ping_failure_and_missing_key_are_problems(self, clean_env: Path) -> None:
        cfg = clean_env / "ping.yaml"
        cfg.write_text(
            "providers:\n  flaky:\n    type: simulator\n    simulator:\n"
            "      failure_rate: 1.0\n      error_kinds: [server_error]\n"
            "policies:\n  retry:\n    max_attempts: 1\n"
            "tiers:\n  fast:\n    models: [flaky/gpt-4o-mini, openai/gpt-4o-mini]\n"
        )
        result = invoke("doctor", "--ping", "--config", str(cfg))
        assert result.exit_code == 1, result.output
        assert "failed" in result.stdout  # flaky answered every ping with a 500
        assert "skipped (no key)" in result.stdout  # openai has no key: never pinged
        assert "2 problem(s)" in result.stdout

    def test_local_polyroute_yaml_is_found(self, clean_env: Path) -> None:
        (clean_env / "polyroute.yaml").write_text("defaults:\n  temperature: 3\n")
        result = invoke("doctor")
        assert result.exit_code == 2
        assert "defaults.temperature" in result.output


class TestAskAndCompare:
    def test_ask_json_envelope(self) -> None:
        env = ok_json(invoke("ask", "hi", "-r", "tier:fast", "--json"))
        assert env["simulated"] is True
        assert env["route"] == "tier:fast"
        assert env["provider"] == "simulator"
        assert env["model"] == "simulator/claude-3-5-haiku-20241022"
        assert env["content"]
        assert env["usage"]["total_tokens"] == (
            env["usage"]["prompt_tokens"] + env["usage"]["completion_tokens"]
        )
        assert env["cost"] > 0
        assert [a["outcome"] for a in env["attempts"]] == ["success"]

    def test_ask_real_model_without_key_exits_1_naming_the_variable(self) -> None:
        # A model the caller names is never swapped for the simulator.
        result = invoke("ask", "hi", "-r", "gpt-4o-mini", "--json")
        assert result.exit_code == 1
        assert "OPENAI_API_KEY" in result.output
        assert "https://platform.openai.com/api-keys" in result.output

    def test_ask_simulated_catalog_model_cost(self) -> None:
        env = ok_json(invoke("ask", "hi", "-r", "simulator/gpt-4o-mini", "--json"))
        u = env["usage"]
        expected = (u["prompt_tokens"] * 0.15 + u["completion_tokens"] * 0.60) / 1e6
        assert env["cost"] == pytest.approx(expected, rel=1e-9)

    def test_ask_role_with_product_type(self) -> None:
        env = ok_json(
            invoke("ask", "hi", "-r", "role:writer", "--product-type", "landing", "--json")
        )
        assert env["model"] == "simulator/gpt-4o-mini"

    def test_ask_unknown_route_exits_1(self) -> None:
        result = invoke("ask", "hi", "-r", "nope-route", "--json")
        assert result.exit_code == 1
        assert "nope-route" in result.output

    def test_ask_invalid_config_exits_2(self, clean_env: Path) -> None:
        (clean_env / "polyroute.yaml").write_text("bogus: 1\n")
        result = invoke("ask", "hi")
        assert result.exit_code == 2
        assert "bogus" in result.output

    def test_compare_json_default_pool(self) -> None:
        rows = ok_json(invoke("compare", "hi", "--json"))
        assert len(rows) == 4  # the built-in balanced tier's pool
        assert [r["model"] for r in rows] == [
            "simulator/claude-sonnet-4-20250514",
            "simulator/gpt-4o",
            "simulator/llama-3.3-70b-versatile",
            "simulator/command-r",
        ]
        assert all(r["ok"] for r in rows)
        assert all(r["simulated"] for r in rows)
        assert len({r["content"] for r in rows}) == 4

    def test_compare_chosen_models(self) -> None:
        rows = ok_json(
            invoke(
                "compare",
                "hi",
                "-m",
                "simulator/gpt-4o",
                "-m",
                "simulator/claude-sonnet-4-20250514",
                "--json",
            )
        )
        assert [r["model"] for r in rows] == [
            "simulator/gpt-4o",
            "simulator/claude-sonnet-4-20250514",
        ]

    def test_compare_table(self) -> None:
        result = invoke("compare", "hi")
        assert result.exit_code == 0, result.output
        assert "simulated" in result.stdout
