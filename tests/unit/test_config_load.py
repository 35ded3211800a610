"""Config loading: where the file comes from, and every kind of error it can hold.

Every test passes ``environ=`` explicitly so nothing depends on the developer's
real environment; every ConfigError is checked for naming its dotted path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from polyroute import ConfigError, Settings, load_settings
from polyroute.config.defaults import BUILTIN_TIERS


def load(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    return load_settings(data=data, environ=dict(environ or {}))


def config_error(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(data, environ)
    err = info.value
    # Every problem names its dotted path, and the message shows each path.
    for path, _msg in err.problems:
        assert path, f"problem without a path: {err.problems}"
        assert path in str(err)
    return err


def problem_for(err: ConfigError, path: str) -> str:
    """The message of the problem at exactly ``path`` (fails listing all problems)."""
    found = [m for p, m in err.problems if p == path]
    assert found, f"no problem at {path!r}; got {err.problems}"
    return found[0]


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, "utf-8")
    return p


FAST_YAML = "tiers:\n  fast:\n    models: [gpt-4o-mini]\n"


# ---------------------------------------------------------------------------- sources


class TestWhereTheConfigComesFrom:
    def test_explicit_path(self, tmp_path: Path) -> None:
        p = write(tmp_path, "cfg.yaml", FAST_YAML)
        s = load_settings(p, environ={})
        assert s.path == p
        assert s.config.tiers["fast"].model_ids() == ["gpt-4o-mini"]

    def test_explicit_path_as_string(self, tmp_path: Path) -> None:
        p = write(tmp_path, "cfg.yaml", FAST_YAML)
        s = load_settings(str(p), environ={})
        assert s.config.tiers["fast"].model_ids() == ["gpt-4o-mini"]

    def test_file_pool_keeps_builtin_tier_limits(self, tmp_path: Path) -> None:
        # Only models is given for tiers.fast; the built-in limits stay underneath.
        s = load_settings(write(tmp_path, "cfg.yaml", FAST_YAML), environ={})
        fast = s.config.tiers["fast"]
        assert fast.max_tokens == BUILTIN_TIERS["fast"]["max_tokens"] == 256
        assert fast.temperature == 0.3
        assert fast.timeout == 5.0

    def test_polyroute_config_variable(self, tmp_path: Path) -> None:
        p = write(tmp_path, "from-env.yaml", FAST_YAML)
        s = load_settings(environ={"POLYROUTE_CONFIG": str(p)})
        assert s.path == p
        assert s.config.tiers["fast"].model_ids() == ["gpt-4o-mini"]

    def test_explicit_path_beats_polyroute_config(self, tmp_path: Path) -> None:
        explicit = write(tmp_path, "explicit.yaml", FAST_YAML)
        other = write(tmp_path, "other.yaml", "tiers:\n  fast:\n    models: [gpt-4.1]\n")
        s = load_settings(explicit, environ={"POLYROUTE_CONFIG": str(other)})
        assert s.path == explicit
        assert s.config.tiers["fast"].model_ids() == ["gpt-4o-mini"]

    def test_local_polyroute_yaml(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        write(tmp_path, "polyroute.yaml", "tiers:\n  fast:\n    models: [gpt-3.5-turbo]\n")
        monkeypatch.chdir(tmp_path)
        s = load_settings(environ={})
        assert s.path is not None
        assert s.path.name == "polyroute.yaml"
        assert s.config.tiers["fast"].model_ids() == ["gpt-3.5-turbo"]

    def test_polyroute_config_beats_local_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        write(tmp_path, "polyroute.yaml", "tiers:\n  fast:\n    models: [gpt-3.5-turbo]\n")
        other = write(tmp_path, "other.yaml", FAST_YAML)
        monkeypatch.chdir(tmp_path)
        s = load_settings(environ={"POLYROUTE_CONFIG": str(other)})
        assert s.path == other
        assert s.config.tiers["fast"].model_ids() == ["gpt-4o-mini"]

    def test_no_file_means_builtin_defaults(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        s = load_settings(environ={})
        assert s.path is None
        assert set(s.config.tiers) == {"fast", "balanced", "advanced", "expert"}
        assert set(s.config.tasks) == {"text", "image", "agent", "video-slides", "embedding"}
        assert set(s.config.roles) == {
            "classifier",
            "writer",
            "expander",
            "validator",
            "style_refiner",
        }
        # No key: built-in pools are simulator stand-ins for seed 003's fast tier.
        assert s.config.tiers["fast"].model_ids() == [
            "simulator/claude-3-5-haiku-20241022",
            "simulator/gpt-4o-mini",
            "simulator/llama-3.1-8b-instant",
            "simulator/command-light",
        ]

    def test_empty_file_means_builtin_defaults(self, tmp_path: Path) -> None:
        s = load_settings(write(tmp_path, "empty.yaml", ""), environ={})
        assert s.config.defaults.model == "simulator/gpt-4o"
        assert len(s.config.tiers["fast"].models) == 4

    def test_missing_explicit_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as info:
            load_settings(tmp_path / "nope.yaml", environ={})
        assert info.value.path == "--config"
        assert "nope.yaml" in str(info.value)
        assert "does not exist" in str(info.value)

    def test_missing_file_named_by_polyroute_config(self, tmp_path: Path) -> None:
        missing = tmp_path / "gone.yaml"
        with pytest.raises(ConfigError) as info:
            load_settings(environ={"POLYROUTE_CONFIG": str(missing)})
        assert info.value.path == "POLYROUTE_CONFIG"
        assert "POLYROUTE_CONFIG" in str(info.value)
        assert str(missing) in str(info.value)


# ------------------------------------------------------------------------- YAML errors


class TestYamlErrors:
    def test_invalid_yaml_reports_file_and_line(self, tmp_path: Path) -> None:
        p = write(tmp_path, "bad.yaml", "defaults:\n  model: gpt-4o\ntiers: a: b\n")
        with pytest.raises(ConfigError) as info:
            load_settings(p, environ={})
        msg = str(info.value)
        assert f"{p}:3:" in msg
        assert "not valid YAML" in msg

    def test_invalid_yaml_line_of_unclosed_flow_sequence(self, tmp_path: Path) -> None:
        p = write(tmp_path, "bad.yaml", "a: 1\nb: 2\nc: 3\nd: [1, 2\ne: 5\n")
        with pytest.raises(ConfigError) as info:
            load_settings(p, environ={})
        # The parser notices the problem on line 5 (where the sequence should have closed).
        assert f"{p}:5:" in str(info.value)

    def test_top_level_must_be_a_mapping(self, tmp_path: Path) -> None:
        p = write(tmp_path, "list.yaml", "- a\n- b\n")
        with pytest.raises(ConfigError) as info:
            load_settings(p, environ={})
        assert str(p) in str(info.value)
        assert "mapping" in str(info.value)


# ---------------------------------------------------------------------- schema errors


class TestUnknownFields:
    def test_top_level(self) -> None:
        err = config_error({"tierz": {}})
        assert "unknown field" in problem_for(err, "tierz")

    @pytest.mark.parametrize(
        ("data", "path"),
        [
            ({"defaults": {"modle": "gpt-4o"}}, "defaults.modle"),
            ({"tiers": {"fast": {"modelz": ["gpt-4o"]}}}, "tiers.fast.modelz"),
            ({"policies": {"retry": {"max_attempt": 3}}}, "policies.retry.max_attempt"),
            ({"pipelines": {"p": {"steps": {"s": {"modle": "x"}}}}}, "pipelines.p.steps.s.modle"),
            (
                {"providers": {"mine": {"type": "openai-compatible", "bse_url": "x"}}},
                "providers.mine.bse_url",
            ),
            (
                {"models": {"m": {"provider": "openai", "price": {"inputt": 1}}}},
                "models.m.price.inputt",
            ),
            ({"routes": {"r": {"models": ["gpt-4o"], "stratgy": "single"}}}, "routes.r.stratgy"),
            ({"server": {"hots": "0.0.0.0"}}, "server.hots"),
        ],
    )
    def test_nested(self, data: dict[str, Any], path: str) -> None:
        err = config_error(data)
        assert "unknown field" in problem_for(err, path)

    def test_pool_member_with_unknown_key(self) -> None:
        err = config_error({"tiers": {"fast": {"models": [{"model": "gpt-4o", "wieght": 2}]}}})
        assert "unknown field" in problem_for(err, "tiers.fast.models[0].wieght")

    def test_unknown_strategy_lists_allowed(self) -> None:
        err = config_error({"routes": {"r": {"models": ["gpt-4o"], "strategy": "roundrobin"}}})
        msg = problem_for(err, "routes.r.strategy")
        for s in ("single", "fallback", "parallel", "loadbalance", "cascade"):
            assert s in msg

    def test_unknown_tier_name_lists_allowed(self) -> None:
        with pytest.raises(ConfigError) as info:
            load({"tiers": {"ultra": {"models": ["gpt-4o"]}}})
        msg = str(info.value)
        assert "ultra" in msg
        assert "tiers" in msg
        assert "fast, balanced, advanced, expert" in msg

    def test_unknown_tier_name_problem_has_a_path(self) -> None:
        with pytest.raises(ConfigError) as info:
            load({"tiers": {"ultra": {"models": ["gpt-4o"]}}})
        assert info.value.path.startswith("tiers")


class TestRanges:
    @pytest.mark.parametrize("value", [3, -0.1, 2.01])
    @pytest.mark.parametrize(
        ("make", "path"),
        [
            (lambda v: {"defaults": {"temperature": v}}, "defaults.temperature"),
            (lambda v: {"tiers": {"fast": {"temperature": v}}}, "tiers.fast.temperature"),
            (
                lambda v: {"routes": {"r": {"models": ["gpt-4o"], "temperature": v}}},
                "routes.r.temperature",
            ),
            (
                lambda v: {"pipelines": {"p": {"steps": {"s": {"temperature": v}}}}},
                "pipelines.p.steps.s.temperature",
            ),
            (
                lambda v: {"pipelines": {"p": {"default_temperature": v}}},
                "pipelines.p.default_temperature",
            ),
        ],
    )
    def test_temperature_out_of_range(self, make: Any, path: str, value: float) -> None:
        err = config_error(make(value))
        msg = problem_for(err, path)
        assert "0.0" in msg
        assert "2.0" in msg
        assert str(float(value)) in msg

    @pytest.mark.parametrize("value", [0.0, 2.0, 1.3])
    def test_temperature_bounds_are_inclusive(self, value: float) -> None:
        s = load({"defaults": {"temperature": value}, "tiers": {"fast": {"temperature": value}}})
        assert s.config.defaults.temperature == value
        assert s.config.tiers["fast"].temperature == value

    @pytest.mark.parametrize(
        ("data", "path"),
        [
            ({"pipelines": {"p": {"default_max_retries": -1}}}, "pipelines.p.default_max_retries"),
            (
                {"pipelines": {"p": {"steps": {"s": {"max_retries": -1}}}}},
                "pipelines.p.steps.s.max_retries",
            ),
            ({"defaults": {"max_retries": -1}}, "defaults.max_retries"),
        ],
    )
    def test_negative_retries(self, data: dict[str, Any], path: str) -> None:
        err = config_error(data)
        assert ">= 0" in problem_for(err, path)

    def test_zero_retries_is_fine(self) -> None:
        s = load({"pipelines": {"p": {"default_max_retries": 0}}, "defaults": {"max_retries": 0}})
        assert s.config.pipelines["p"].default_max_retries == 0
        assert s.config.defaults.max_retries == 0

    def test_retry_policy_needs_one_attempt(self) -> None:
        err = config_error({"policies": {"retry": {"max_attempts": 0}}})
        assert "1" in problem_for(err, "policies.retry.max_attempts")


# ------------------------------------------------------------------ reference errors


class TestReferences:
    def test_unknown_model_in_pool_with_close_match(self) -> None:
        err = config_error({"tiers": {"fast": {"models": ["gpt-4o-mnii"]}}})
        msg = problem_for(err, "tiers.fast.models[0]")
        assert "gpt-4o-mnii" in msg
        assert "did you mean" in msg
        assert "gpt-4o-mini" in msg

    def test_unknown_model_second_in_pool(self) -> None:
        err = config_error({"tasks": {"text": {"models": ["gpt-4o", "claude-3-5-sonet-20241022"]}}})
        msg = problem_for(err, "tasks.text.models[1]")
        assert "claude-3-5-sonnet-20241022" in msg

    def test_unknown_model_in_step_and_defaults(self) -> None:
        err = config_error(
            {
                "defaults": {"model": "gtp-4o"},
                "pipelines": {"p": {"default_model": "nope", "steps": {"s": {"model": "gpt-5.2"}}}},
            }
        )
        assert "gtp-4o" in problem_for(err, "defaults.model")
        assert "'nope'" in problem_for(err, "pipelines.p.default_model")
        assert "gpt-5.1" in problem_for(err, "pipelines.p.steps.s.model")

    def test_unknown_provider_of_a_model_entry(self) -> None:
        err = config_error({"models": {"x": {"provider": "openaii"}}})
        msg = problem_for(err, "models.x.provider")
        assert "openaii" in msg
        assert "openai" in msg.split("known:")[1]

    def test_provider_ref_with_known_provider_needs_no_catalog_entry(self) -> None:
        s = load({"tiers": {"fast": {"models": ["openai/gpt-9-preview", "ollama/llama3"]}}})
        assert s.config.tiers["fast"].model_ids() == ["openai/gpt-9-preview", "ollama/llama3"]
        assert "openai/gpt-9-preview" not in s.catalog
        assert s.catalog.lookup("openai/gpt-9-preview").provider == "openai"

    def test_provider_ref_to_a_user_provider(self) -> None:
        s = load(
            {
                "providers": {
                    "my-vllm": {"type": "openai-compatible", "base_url": "http://127.0.0.1:1/v1"}
                },
                "tiers": {"fast": {"models": ["my-vllm/llama"]}},
            }
        )
        assert s.catalog.lookup("my-vllm/llama").provider == "my-vllm"

    def test_provider_ref_with_unknown_provider(self) -> None:
        err = config_error({"tiers": {"fast": {"models": ["nope/gpt-4o"]}}})
        assert "nope/gpt-4o" in problem_for(err, "tiers.fast.models[0]")

    def test_provider_ref_without_model_name(self) -> None:
        err = config_error({"tiers": {"fast": {"models": ["openai/"]}}})
        assert "openai/" in problem_for(err, "tiers.fast.models[0]")

    def test_unknown_route_ref_in_pool(self) -> None:
        err = config_error({"tiers": {"fast": {"models": ["gpt-4o", "tier:nope"]}}})
        assert "tier:nope" in problem_for(err, "tiers.fast.models[1]")

    @pytest.mark.parametrize("ref", ["task:nope", "role:nobody", "step:nopipe/x"])
    def test_other_unknown_route_refs(self, ref: str) -> None:
        err = config_error({"routes": {"r": {"models": [ref]}}})
        assert ref in problem_for(err, "routes.r.models[0]")

    def test_known_route_refs_are_accepted(self) -> None:
        s = load(
            {
                "pipelines": {"mk": {"steps": {"seo": {"model": "gpt-4o-mini"}}}},
                "routes": {
                    "r": {
                        "models": ["tier:fast", "task:text", "role:writer@landing", "step:mk/seo"]
                    }
                },
            }
        )
        assert len(s.config.routes["r"].models) == 4

    def test_route_cycle_between_two_routes(self) -> None:
        err = config_error({"routes": {"a": {"models": ["b"]}, "b": {"models": ["a"]}}})
        cyc = [(p, m) for p, m in err.problems if "cycle" in m]
        assert cyc, err.problems
        path, msg = cyc[0]
        assert path.startswith("routes.")
        assert "a" in msg and "b" in msg

    def test_route_naming_itself(self) -> None:
        err = config_error({"routes": {"a": {"models": ["gpt-4o", "a"]}}})
        msg = problem_for(err, "routes.a.models")
        assert "cycle" in msg
        assert "a -> a" in msg

    def test_cycle_through_a_tier(self) -> None:
        err = config_error(
            {"routes": {"a": {"models": ["tier:fast"]}}, "tiers": {"fast": {"models": ["a"]}}}
        )
        assert any("cycle" in m for _, m in err.problems)
        assert any(p.startswith(("routes.", "tiers.")) for p, _ in err.problems)

    def test_empty_pool(self) -> None:
        err = config_error({"tiers": {"fast": {"models": []}}})
        assert "empty" in problem_for(err, "tiers.fast.models")

    def test_empty_named_route(self) -> None:
        err = config_error({"routes": {"r": {"models": []}}})
        assert "empty" in problem_for(err, "routes.r.models")

    def test_role_product_override_with_unknown_model(self) -> None:
        err = config_error({"roles": {"writer": {"by_product": {"landing": ["gpt-4o-mni"]}}}})
        msg = problem_for(err, "roles.writer.by_product.landing[0]")
        assert "gpt-4o-mni" in msg
        assert "gpt-4o-mini" in msg

    def test_allowed_providers_rejects_other_provider(self) -> None:
        err = config_error(
            {
                "server": {"allowed_providers": ["openai"]},
                "tiers": {"fast": {"models": ["gpt-4o-mini", "claude-3-5-haiku-20241022"]}},
            }
        )
        msg = problem_for(err, "tiers.fast.models[1]")
        assert "anthropic" in msg
        assert "allowed_providers" in msg
        assert [p for p, _ in err.problems] == ["tiers.fast.models[1]"]

    def test_allowed_providers_rejects_provider_ref_and_product_override(self) -> None:
        err = config_error(
            {
                "server": {"allowed_providers": ["openai"]},
                "roles": {"writer": {"by_product": {"card": ["gemini/gemini-2.0-flash"]}}},
            }
        )
        assert "gemini" in problem_for(err, "roles.writer.by_product.card[0]")

    def test_simulator_is_always_allowed(self) -> None:
        s = load(
            {
                "server": {"allowed_providers": ["openai"]},
                "tiers": {"fast": {"models": ["simulator/claude-3-5-haiku-20241022"]}},
            }
        )
        assert s.config.tiers["fast"].model_ids() == ["simulator/claude-3-5-haiku-20241022"]

    def test_builtin_simulator_pools_pass_allowed_providers(self) -> None:
        s = load({"server": {"allowed_providers": ["openai"]}})
        assert s.config.server.allowed_providers == ["openai"]

    def test_allowed_providers_naming_unknown_provider(self) -> None:
        err = config_error({"server": {"allowed_providers": ["openai", "opneai"]}})
        assert "opneai" in problem_for(err, "server.allowed_providers")


# ------------------------------------------------------------------------ credentials


class TestApiKeyEnv:
    @pytest.mark.parametrize(
        "value", ["sk-abc-123", "sk-proj-AbC123dEf456", "sk-ant-api03-xyz", "has space", ""]
    )
    def test_key_like_values_are_rejected(self, value: str) -> None:
        err = config_error({"providers": {"mine": {"type": "openai", "api_key_env": value}}})
        msg = problem_for(err, "providers.mine.api_key_env")
        assert "NAME" in msg
        if value:
            assert value not in str(err)  # the rejected key is not echoed back

    def test_variable_names_are_accepted(self) -> None:
        s = load({"providers": {"mine": {"type": "openai", "api_key_env": "MY_VLLM_KEY"}}})
        assert s.providers["mine"].api_key_env == "MY_VLLM_KEY"

    def test_groq_style_key_is_rejected(self) -> None:
        key = "gsk_" + "Xy7Qp2Lm9Rt4" * 4 + "Ab3D"
        with pytest.raises(ConfigError) as info:
            load({"providers": {"groq": {"api_key_env": key}}})
        assert info.value.path == "providers.groq.api_key_env"


# -------------------------------------------------------------------- many at once


class TestManyProblems:
    def test_schema_problems_are_reported_together(self) -> None:
        err = config_error(
            {
                "defaults": {"temperature": 3},
                "tiers": {"fast": {"temperature": -1}},
                "pipelines": {"p": {"default_max_retries": -1}},
                "bogus": 1,
            }
        )
        paths = [p for p, _ in err.problems]
        assert set(paths) == {
            "defaults.temperature",
            "tiers.fast.temperature",
            "pipelines.p.default_max_retries",
            "bogus",
        }
        msg = str(err)
        assert msg.startswith("invalid configuration")
        assert all(p in msg for p in paths)

    def test_reference_problems_are_reported_together(self) -> None:
        err = config_error(
            {
                "tiers": {"fast": {"models": ["nope1"]}, "balanced": {"models": []}},
                "models": {"x": {"provider": "nobody"}},
                "roles": {"writer": {"by_product": {"landing": ["nope2"]}}},
                "routes": {"a": {"models": ["a"]}},
            }
        )
        paths = {p for p, _ in err.problems}
        assert {
            "tiers.fast.models[0]",
            "tiers.balanced.models",
            "models.x.provider",
            "roles.writer.by_product.landing[0]",
            "routes.a.models",
        } <= paths

    def test_provider_and_model_sections_are_reported_together(self) -> None:
        err = config_error(
            {
                "providers": {"x": {"api_key_env": "sk-abc-123"}},
                "models": {"y": {"provider": "openai", "tier": "ultra"}},
            }
        )
        assert {p for p, _ in err.problems} == {"providers.x.api_key_env", "models.y.tier"}

    def test_config_error_is_a_value_error_with_status_400(self) -> None:
        err = config_error({"bogus": 1})
        assert isinstance(err, ValueError)
        assert err.status_code == 400
        assert err.path == "bogus"
