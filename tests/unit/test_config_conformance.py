"""Config checks the seeds ask for, at load: base URLs, model-name format, what each
pool's models can do, models a provider does not list, and budgets printed in full.

Every error names the config field's dotted path or the environment variable and
says how to fix it; ``polyroute doctor`` shows the same (exit 2 for errors, warnings
printed on a valid config).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from polyroute import ConfigError, Settings, load_settings
from polyroute.cli import app
from polyroute.config.schema import model_name_problem, usd
from polyroute.providers.presets import builtin_presets_data


def load(
    data: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    return load_settings(data=dict(data or {}), environ=dict(environ or {}))


def refused(
    data: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(data, environ)
    return info.value


def problem_at(err: ConfigError, path: str) -> str:
    found = [m for p, m in err.problems if p == path]
    assert found, f"no problem at {path!r}; got {err.problems}"
    return found[0]


# ------------------------------------------------------------------------ base URLs


class TestBaseUrl:
    @pytest.mark.parametrize(
        "url", ["not a url", "api.openai.com/v1", "ftp://h.example", "https://"]
    )
    def test_provider_base_url_must_be_http(self, url: str) -> None:
        err = refused({"providers": {"my-vllm": {"type": "openai-compatible", "base_url": url}}})
        msg = problem_at(err, "providers.my-vllm.base_url")
        assert "not an http(s) URL" in msg and "e.g. https://api.openai.com/v1" in msg

    def test_a_pasted_host_gets_the_url_it_probably_meant(self) -> None:
        err = refused({"providers": {"openai": {"base_url": "api.openai.com/v1"}}})
        assert "did you mean https://api.openai.com/v1?" in problem_at(
            err, "providers.openai.base_url"
        )

    def test_local_hosts_are_offered_http(self) -> None:
        err = refused({"providers": {"ollama": {"base_url": "localhost:11434/v1"}}})
        assert "did you mean http://localhost:11434/v1?" in problem_at(
            err, "providers.ollama.base_url"
        )

    def test_simulator_urls_stay_valid_for_the_simulator(self) -> None:
        s = load({"providers": {"sim2": {"type": "simulator", "base_url": "simulator://two"}}})
        assert s.providers["sim2"].base_url == "simulator://two"

    def test_simulator_url_on_an_http_provider_is_refused(self) -> None:
        err = refused({"providers": {"openai": {"base_url": "simulator://local"}}})
        assert "only for providers of type simulator" in problem_at(
            err, "providers.openai.base_url"
        )

    def test_base_url_variable_without_scheme_is_refused_naming_it(self) -> None:
        err = refused(environ={"OPENAI_BASE_URL": "api.openai.com/v1"})
        assert err.path == "OPENAI_BASE_URL"
        msg = problem_at(err, "OPENAI_BASE_URL")
        assert "not an http(s) URL: 'api.openai.com/v1'" in msg
        assert "https://api.openai.com/v1" in msg and "'openai'" in msg

    def test_the_example_is_the_providers_own_url(self) -> None:
        err = refused(environ={"GEMINI_BASE_URL": "generativelanguage.googleapis.com"})
        assert "e.g. https://generativelanguage.googleapis.com/v1beta/openai" in str(err)

    @pytest.mark.parametrize(
        ("var", "url"),
        [
            ("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com/openai/"),  # seed 004
            ("OLLAMA_BASE_URL", "http://localhost:11434/v1"),
            ("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:8000/v1"),
        ],
    )
    def test_the_seeds_base_url_variables_load(self, var: str, url: str) -> None:
        load(environ={var: url})

    def test_every_problem_at_once(self) -> None:
        err = refused(
            {"providers": {"my-vllm": {"type": "openai-compatible", "base_url": "nope"}}},
            {"OPENAI_COMPATIBLE_BASE_URL": "also nope"},
        )
        assert {p for p, _ in err.problems} == {
            "providers.my-vllm.base_url",
            "OPENAI_COMPATIBLE_BASE_URL",
        }


# ---------------------------------------------------------------- model name format

BAD_NAMES = ["gpt 4o / / mini!!", "openai/", "", "   ", "/gpt-4o", "gpt-4o\n"]

# (config, path of the problem) for every place the config names a model
PLACES: list[tuple[str, Any, str]] = [
    ("tier", lambda m: {"tiers": {"fast": {"models": [m]}}}, "tiers.fast.models[0]"),
    ("task", lambda m: {"tasks": {"text": {"models": [m]}}}, "tasks.text.models[0]"),
    ("role", lambda m: {"roles": {"writer": {"models": [m]}}}, "roles.writer.models[0]"),
    (
        "by_product",
        lambda m: {"roles": {"writer": {"by_product": {"landing": [m]}}}},
        "roles.writer.by_product.landing[0]",
    ),
    ("route", lambda m: {"routes": {"r": {"models": [m]}}}, "routes.r.models[0]"),
    (
        "weighted",
        lambda m: {"routes": {"r": {"models": [{"model": m, "weight": 2}]}}},
        "routes.r.models[0]",
    ),
    (
        "schedule",
        lambda m: {
            "tiers": {"fast": {"schedules": [{"hours": "22-06", "models": [m]}]}},
        },
        "tiers.fast.schedules[0].models[0]",
    ),
    (
        "step",
        lambda m: {"pipelines": {"p": {"steps": {"s": {"model": m}}}}},
        "pipelines.p.steps.s.model",
    ),
    (
        "step models",
        lambda m: {"pipelines": {"p": {"steps": {"s": {"models": [m]}}}}},
        "pipelines.p.steps.s.models[0]",
    ),
    (
        "pipeline default",
        lambda m: {"pipelines": {"p": {"default_model": m}}},
        "pipelines.p.default_model",
    ),
    ("defaults", lambda m: {"defaults": {"model": m}}, "defaults.model"),
]


class TestModelNameFormat:
    @pytest.mark.parametrize("name", BAD_NAMES)
    @pytest.mark.parametrize(("where", "make", "path"), PLACES, ids=[p[0] for p in PLACES])
    def test_malformed_name_is_a_format_error(
        self, where: str, make: Any, path: str, name: str
    ) -> None:
        msg = problem_at(refused(make(name)), path)
        assert msg.startswith(f"not a valid model name: {name!r}")
        assert "letters, digits and . _ - : /" in msg
        assert "did you mean" not in msg

    @pytest.mark.parametrize(
        "var",
        ["AI_TEXT_MODEL", "AI_TEXT_FALLBACK_MODEL", "AI_MODEL_FAST", "MODEL_WRITER"],
    )
    def test_malformed_name_in_a_variable_names_the_variable(self, var: str) -> None:
        env = {var: "gpt 4o / / mini!!"}
        if var.startswith("AI_TEXT"):
            env["AI_TEXT_PROVIDER"] = "openai"
        err = refused(environ=env)
        assert err.path == var
        assert "not a valid model name: 'gpt 4o / / mini!!'" in problem_at(err, var)

    def test_provider_model_name_in_a_catalog_entry(self) -> None:
        err = refused({"models": {"x": {"provider": "openai", "model": "gpt 4o"}}})
        assert "not a valid model name" in problem_at(err, "models.x.model")

    @pytest.mark.parametrize(
        "name",
        [
            "gpt-4o-mini",
            "openai/gpt-4o-mini",
            "ollama/llama3:8b",
            "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "openrouter/openai/gpt-4o:free",
        ],
    )
    def test_well_formed_names_pass(self, name: str) -> None:
        assert model_name_problem(name) is None
        load({"tiers": {"fast": {"models": [name]}}})

    def test_a_misspelt_but_well_formed_name_still_gets_suggestions(self) -> None:
        msg = problem_at(
            refused({"tiers": {"fast": {"models": ["gpt-4o-mnii"]}}}), "tiers.fast.models[0]"
        )
        assert "did you mean gpt-4o-mini" in msg


# ------------------------------------------------------------------ capabilities


class TestCapabilities:
    @pytest.mark.parametrize(
        ("data", "path"),
        [
            ({"tiers": {"fast": {"models": ["dall-e-3"]}}}, "tiers.fast.models[0]"),
            ({"tasks": {"text": {"models": ["dall-e-3"]}}}, "tasks.text.models[0]"),
            ({"tasks": {"agent": {"models": ["gpt-image-1"]}}}, "tasks.agent.models[0]"),
            ({"tasks": {"video-slides": {"models": ["dall-e-2"]}}}, "tasks.video-slides.models[0]"),
            ({"roles": {"writer": {"models": ["dall-e-3"]}}}, "roles.writer.models[0]"),
            (
                {"pipelines": {"p": {"steps": {"s": {"model": "imagen-3.0-generate-002"}}}}},
                "pipelines.p.steps.s.model",
            ),
            ({"defaults": {"model": "text-embedding-3-small"}}, "defaults.model"),
        ],
    )
    def test_a_model_without_text_on_a_text_pool(self, data: dict[str, Any], path: str) -> None:
        msg = problem_at(refused(data), path)
        assert "cannot serve text" in msg and "capability 'text'" in msg

    def test_a_text_model_on_the_image_task(self) -> None:
        msg = problem_at(
            refused({"tasks": {"image": {"models": ["gpt-4o-mini"]}}}), "tasks.image.models[0]"
        )
        assert "'gpt-4o-mini' cannot generate images" in msg
        assert "openai models that can:" in msg and "dall-e-3" in msg

    def test_a_text_model_on_the_embedding_task(self) -> None:
        msg = problem_at(
            refused({"tasks": {"embedding": {"models": ["gpt-4o"]}}}), "tasks.embedding.models[0]"
        )
        assert "cannot embed" in msg and "text-embedding-3-small" in msg

    def test_a_user_model_declared_image_only(self) -> None:
        data = {
            "models": {"pic": {"provider": "openai", "model": "dall-e-3", "capabilities": []}},
            "roles": {"writer": {"models": ["pic"]}},
        }
        assert "its capabilities: none" in problem_at(refused(data), "roles.writer.models[0]")

    def test_a_closed_provider_without_image_models(self) -> None:
        msg = problem_at(
            refused({"tasks": {"image": {"models": ["claude-3-haiku-20240307"]}}}),
            "tasks.image.models[0]",
        )
        assert "cannot generate images" in msg and "openai (dall-e-3)" in msg

    def test_named_routes_and_other_tasks_are_not_judged(self) -> None:
        load({"routes": {"pics": {"models": ["dall-e-3", "gpt-4o"]}}})
        load({"tasks": {"thumbnails": {"models": ["dall-e-2"]}}})

    def test_uncatalogued_refs_have_no_facts_and_are_not_refused(self) -> None:
        load({"tasks": {"image": {"models": ["ollama/flux-dev"]}}})
        load({"tiers": {"fast": {"models": ["together/some-new-model"]}}})

    def test_simulator_twins_borrow_the_real_models_facts(self) -> None:
        load({"tasks": {"image": {"models": ["simulator/dall-e-3"]}}})
        err = refused({"tasks": {"image": {"models": ["simulator/gpt-4o"]}}})
        assert "'simulator/gpt-4o' cannot generate images" in problem_at(
            err, "tasks.image.models[0]"
        )

    def test_builtin_defaults_load_with_no_keys(self) -> None:
        s = load()
        assert s.config.tasks["image"].model_ids()[0] == "simulator/dall-e-3"
        assert s.config.tasks["embedding"].model_ids()[0] == "simulator/text-embedding-3-small"
        assert s.warnings == []

    def test_builtin_defaults_load_with_every_key(self) -> None:
        keys = {
            str(p["api_key_env"]): "k"
            for p in builtin_presets_data().values()
            if p.get("api_key_env")
        }
        s = load(environ=keys)
        assert s.config.tasks["image"].model_ids()[0] == "dall-e-3"
        assert s.warnings == []

    @pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini", "ollama", "groq"])
    def test_ai_provider_preference_loads(self, provider: str) -> None:
        assert load(environ={"AI_PROVIDER": provider}).warnings == []


# ------------------------------------------------- models the provider does not list


class TestClosedCatalogs:
    def test_which_presets_know_their_models(self) -> None:
        closed = {n for n, p in builtin_presets_data().items() if p.get("closed_catalog")}
        assert closed == {"openai", "anthropic", "gemini"}

    def test_a_provider_model_not_listed_is_a_warning(self) -> None:
        s = load({"tiers": {"fast": {"models": ["anthropic/claude-4-haiku"]}}})
        [(path, msg)] = s.warnings
        assert path == "tiers.fast.models[0]"
        assert "the catalog lists no anthropic model 'claude-4-haiku'" in msg
        assert "closest anthropic models:" in msg and "add it under models:" in msg

    def test_suggestions_fit_the_pool(self) -> None:
        s = load({"tasks": {"image": {"models": ["openai/dall-e-4"]}}})
        [(_, msg)] = s.warnings
        names = re.search(r"closest openai models: ([^(]*)", msg)
        assert names is not None
        assert set(names.group(1).strip().split(", ")) <= {"dall-e-3", "dall-e-2", "gpt-image-1"}

    def test_a_user_provider_may_declare_its_catalog_closed(self) -> None:
        data = {
            "providers": {
                "acme": {
                    "type": "openai-compatible",
                    "base_url": "https://llm.acme.example/v1",
                    "closed_catalog": True,
                }
            },
            "models": {"acme-large": {"provider": "acme", "model": "large"}},
            "tiers": {"fast": {"models": ["acme/large", "acme/larg"]}},
        }
        s = load(data)
        assert [p for p, _ in s.warnings] == ["tiers.fast.models[1]"]


# ------------------------------------------------------------------------ money


class TestBudgetDigits:
    @pytest.mark.parametrize(
        ("amount", "text"),
        [(0.00005, "$0.000050"), (0.1, "$0.10"), (0.105, "$0.105"), (100, "$100.00"), (0, "$0.00")],
    )
    def test_usd(self, amount: float, text: str) -> None:
        assert usd(amount) == text


# ------------------------------------------------------------------------ doctor

_POLYROUTE_VAR = re.compile(
    r"^(AI_|MODEL_|ALLOWED_MODEL_PROVIDERS$|POLYROUTE_)|_(API_KEY|BASE_URL)$"
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if _POLYROUTE_VAR.search(name):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def doctor(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["doctor", *args], env={"COLUMNS": "200", **(env or {})})


class TestDoctor:
    def test_reports_a_bad_base_url_variable(self, clean_env: Path) -> None:
        result = doctor(env={"OPENAI_BASE_URL": "api.openai.com/v1"})
        assert result.exit_code == 2, result.output
        assert "OPENAI_BASE_URL" in result.output
        assert "https://api.openai.com/v1" in result.output

    def test_reports_a_bad_provider_base_url(self, clean_env: Path) -> None:
        cfg = clean_env / "cfg.yaml"
        cfg.write_text('providers:\n  my-vllm:\n    base_url: "not a url"\n')
        result = doctor("--config", str(cfg))
        assert result.exit_code == 2, result.output
        assert "providers.my-vllm.base_url" in result.output

    def test_prints_load_warnings(self, clean_env: Path) -> None:
        result = doctor(env={"AI_TEXT_PROVIDER": "anthropic", "AI_TEXT_MODEL": "gpt-4o"})
        assert result.exit_code == 1, result.output  # the anthropic key is missing
        assert "warning tasks.text.models[0]" in result.output
        assert "not one anthropic serves" in result.output

    def test_prints_sub_cent_budgets_in_full(self, clean_env: Path) -> None:
        result = doctor(env={"AI_MAX_COST_PER_REQUEST": "0.00005", "AI_MONTHLY_BUDGET": "100"})
        assert result.exit_code == 0, result.output
        assert "max_cost_per_request $0.000050" in result.output
        assert "monthly $100.00" in result.output
