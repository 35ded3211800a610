"""Environment variables overlaid on the configuration: every scheme the README lists.

Each test passes ``environ={...}`` to ``load_settings`` (or ``Router.from_config``),
so the developer's real environment never leaks in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from polyroute import (
    ConfigError,
    MissingCredentialsError,
    RouteExhaustedError,
    Router,
    Settings,
    load_settings,
)
from polyroute.config.catalog import builtin_entries
from polyroute.providers.presets import builtin_presets_data
from polyroute.routing.resolve import Resolver


def load(environ: Mapping[str, str], data: Mapping[str, Any] | None = None) -> Settings:
    return load_settings(data=dict(data or {}), environ=dict(environ))


def pool(s: Settings, section: str, name: str) -> list[str]:
    return getattr(s.config, section)[name].model_ids()


def env_error(environ: Mapping[str, str], data: Mapping[str, Any] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(environ, data)
    return info.value


PRESETS = builtin_presets_data()


def preset_default(provider: str, task: str) -> str:
    return str(PRESETS[provider]["default_models"][task])


# -------------------------------------------------------------------- AI_<TASK>_*


class TestTaskVariables:
    def test_seed_004_text_primary_and_fallback(self) -> None:
        s = load(
            {
                "AI_TEXT_PROVIDER": "anthropic",
                "AI_TEXT_MODEL": "claude-3-5-sonnet-20241022",
                "AI_TEXT_FALLBACK_PROVIDER": "openai",
                "AI_TEXT_FALLBACK_MODEL": "gpt-4o-mini",
            }
        )
        assert pool(s, "tasks", "text") == ["claude-3-5-sonnet-20241022", "gpt-4o-mini"]
        assert "tasks.text.models" in s.env_sources
        assert "AI_TEXT_PROVIDER" in s.env_sources["tasks.text.models"]

    def test_image_primary_and_fallback(self) -> None:
        s = load(
            {
                "AI_IMAGE_PROVIDER": "openai",
                "AI_IMAGE_MODEL": "dall-e-2",
                "AI_IMAGE_FALLBACK_PROVIDER": "openai",
                "AI_IMAGE_FALLBACK_MODEL": "dall-e-3",
            }
        )
        assert pool(s, "tasks", "image") == ["dall-e-2", "dall-e-3"]

    def test_agent_primary_and_fallback(self) -> None:
        s = load(
            {
                "AI_AGENT_PROVIDER": "openai",
                "AI_AGENT_MODEL": "gpt-4.1",
                "AI_AGENT_FALLBACK_PROVIDER": "anthropic",
                "AI_AGENT_FALLBACK_MODEL": "claude-opus-4-5-20251101",
            }
        )
        assert pool(s, "tasks", "agent") == ["gpt-4.1", "claude-opus-4-5-20251101"]

    def test_video_slides(self) -> None:
        s = load(
            {
                "AI_VIDEO_SLIDES_PROVIDER": "gemini",
                "AI_VIDEO_SLIDES_MODEL": "gemini-2.0-flash",
                "AI_VIDEO_SLIDES_FALLBACK_PROVIDER": "groq",
                "AI_VIDEO_SLIDES_FALLBACK_MODEL": "llama-3.1-8b-instant",
            }
        )
        assert pool(s, "tasks", "video-slides") == ["gemini-2.0-flash", "llama-3.1-8b-instant"]
        # Other tasks keep their built-in pools.
        assert pool(s, "tasks", "text") == [
            "simulator/gpt-4o-mini",
            "simulator/claude-3-5-sonnet-20241022",
        ]

    def test_catalog_model_of_that_provider_stays_a_catalog_id(self) -> None:
        # The catalog lists `mistral` as an ollama model.
        assert builtin_entries()["mistral"].provider == "ollama"
        s = load({"AI_TEXT_PROVIDER": "ollama", "AI_TEXT_MODEL": "mistral"})
        assert pool(s, "tasks", "text") == ["mistral"]

    def test_uncatalogued_model_becomes_provider_slash_model(self) -> None:
        assert "llama3" not in builtin_entries()
        s = load({"AI_TEXT_PROVIDER": "ollama", "AI_TEXT_MODEL": "llama3"})
        assert pool(s, "tasks", "text") == ["ollama/llama3"]
        assert s.catalog.lookup("ollama/llama3").provider == "ollama"

    def test_catalog_model_of_another_provider_is_sent_to_the_named_provider(self) -> None:
        s = load({"AI_TEXT_PROVIDER": "openrouter", "AI_TEXT_MODEL": "claude-3-5-sonnet-20241022"})
        assert pool(s, "tasks", "text") == ["openrouter/claude-3-5-sonnet-20241022"]

    def test_provider_names_are_case_insensitive(self) -> None:
        s = load({"AI_TEXT_PROVIDER": "Anthropic", "AI_TEXT_MODEL": "claude-3-5-sonnet-20241022"})
        assert pool(s, "tasks", "text") == ["claude-3-5-sonnet-20241022"]

    @pytest.mark.parametrize(
        ("var", "provider", "task"),
        [
            ("AI_TEXT_PROVIDER", "groq", "text"),
            ("AI_TEXT_PROVIDER", "cohere", "text"),
            ("AI_AGENT_PROVIDER", "anthropic", "agent"),
            ("AI_AGENT_PROVIDER", "gemini", "agent"),
            ("AI_IMAGE_PROVIDER", "openai", "image"),
            ("AI_VIDEO_SLIDES_PROVIDER", "mistral", "video-slides"),
        ],
    )
    def test_provider_without_model_takes_the_preset_default(
        self, var: str, provider: str, task: str
    ) -> None:
        s = load({var: provider})
        expected = preset_default(provider, task)
        assert builtin_entries()[expected].provider == provider
        assert pool(s, "tasks", task) == [expected]

    def test_openai_compatible_provider_default(self) -> None:
        s = load({"AI_TEXT_PROVIDER": "openai-compatible"})
        # The preset's default is a catalog id of another provider: routed by name.
        assert pool(s, "tasks", "text") == [
            "openai-compatible/" + preset_default("openai-compatible", "text")
        ]

    def test_fallback_provider_without_model_takes_its_default(self) -> None:
        s = load(
            {
                "AI_TEXT_PROVIDER": "openai",
                "AI_TEXT_MODEL": "gpt-4o",
                "AI_TEXT_FALLBACK_PROVIDER": "anthropic",
            }
        )
        assert pool(s, "tasks", "text") == ["gpt-4o", preset_default("anthropic", "text")]

    def test_primary_equal_to_fallback_is_listed_once(self) -> None:
        s = load({"AI_TEXT_PROVIDER": "openai", "AI_TEXT_FALLBACK_PROVIDER": "openai"})
        assert pool(s, "tasks", "text") == [preset_default("openai", "text")]

    def test_task_variables_replace_a_configured_pool(self) -> None:
        s = load(
            {"AI_TEXT_MODEL": "gpt-4.1"},
            {"tasks": {"text": {"models": ["gpt-4o", "claude-3-haiku-20240307"]}}},
        )
        assert pool(s, "tasks", "text") == ["gpt-4.1"]

    def test_fallback_only_keeps_the_current_primary(self) -> None:
        s = load(
            {"AI_TEXT_FALLBACK_MODEL": "gpt-4.1"},
            {"tasks": {"text": {"models": ["gpt-4o", "claude-3-haiku-20240307"]}}},
        )
        assert pool(s, "tasks", "text") == ["gpt-4o", "gpt-4.1"]

    def test_unknown_model_names_the_variable(self) -> None:
        err = env_error({"AI_TEXT_MODEL": "gpt-4o-mnii"})
        assert err.path == "tasks.text.models[0]"
        assert "AI_TEXT_MODEL" in str(err)
        assert "gpt-4o-mini" in str(err)  # close match

    def test_unknown_fallback_model_names_its_variable(self) -> None:
        err = env_error({"AI_TEXT_FALLBACK_MODEL": "nope-model"})
        assert err.path == "tasks.text.models[1]"
        assert "AI_TEXT_FALLBACK_MODEL" in str(err)

    def test_unknown_provider_is_an_error(self) -> None:
        err = env_error({"AI_TEXT_PROVIDER": "nope"})
        assert "nope" in str(err)
        assert "openai" in str(err)  # lists the known providers

    def test_unknown_provider_names_the_variable(self) -> None:
        err = env_error({"AI_TEXT_PROVIDER": "nope"})
        assert "AI_TEXT_PROVIDER" in str(err)

    def test_provider_without_an_image_model_is_an_error(self) -> None:
        with pytest.raises(ConfigError) as info:
            load({"AI_IMAGE_PROVIDER": "anthropic"})
        assert "AI_IMAGE_MODEL" in str(info.value)


# --------------------------------------------------------------------- tiers


class TestTierVariables:
    def test_model_goes_first_and_the_rest_stays(self) -> None:
        s = load({"AI_MODEL_FAST": "gpt-4o"})
        assert pool(s, "tiers", "fast") == [
            "gpt-4o",
            "simulator/claude-3-5-haiku-20241022",
            "simulator/gpt-4o-mini",
            "simulator/llama-3.1-8b-instant",
            "simulator/command-light",
        ]
        assert s.env_sources["tiers.fast.models"] == "AI_MODEL_FAST"

    def test_model_already_in_pool_moves_to_front(self) -> None:
        s = load(
            {"AI_MODEL_BALANCED": "gpt-4.1"},
            {"tiers": {"balanced": {"models": ["gpt-4o", "gpt-4.1", "claude-3-haiku-20240307"]}}},
        )
        assert pool(s, "tiers", "balanced") == ["gpt-4.1", "gpt-4o", "claude-3-haiku-20240307"]

    @pytest.mark.parametrize(
        ("tier", "model"),
        [("balanced", "gpt-4.1"), ("advanced", "claude-opus-4-5-20251101"), ("expert", "gpt-5.1")],
    )
    def test_each_tier(self, tier: str, model: str) -> None:
        s = load({f"AI_MODEL_{tier.upper()}": model})
        assert pool(s, "tiers", tier)[0] == model
        assert len(pool(s, "tiers", tier)) == 5

    def test_uncatalogued_model_with_ai_provider_gets_that_provider(self) -> None:
        s = load({"AI_PROVIDER": "anthropic", "AI_MODEL_FAST": "claude-next"})
        assert pool(s, "tiers", "fast")[0] == "anthropic/claude-next"

    def test_timeout(self) -> None:
        s = load({"AI_TIMEOUT_FAST": "7"})
        assert s.config.tiers["fast"].timeout == 7.0
        assert s.env_sources["tiers.fast.timeout"] == "AI_TIMEOUT_FAST"
        assert Resolver(s).resolve("tier:fast").timeout == 7.0

    def test_timeouts_of_other_tiers(self) -> None:
        s = load({"AI_TIMEOUT_EXPERT": "90.5", "AI_TIMEOUT_BALANCED": "12"})
        assert s.config.tiers["expert"].timeout == 90.5
        assert s.config.tiers["balanced"].timeout == 12.0
        assert s.config.tiers["fast"].timeout == 5.0

    @pytest.mark.parametrize("value", ["-1", "0", "abc"])
    def test_bad_timeout_names_the_variable(self, value: str) -> None:
        err = env_error({"AI_TIMEOUT_FAST": value})
        assert err.path == "tiers.fast.timeout"
        assert "AI_TIMEOUT_FAST" in str(err)

    def test_unknown_tier_model_names_the_variable(self) -> None:
        err = env_error({"AI_MODEL_FAST": "nope-model"})
        assert err.path == "tiers.fast.models[0]"
        assert "AI_MODEL_FAST" in str(err)


# ------------------------------------------------------------------- AI_PROVIDER


class TestPreferredProvider:
    def test_builtin_pools_prefer_anthropic_even_without_a_key(self) -> None:
        s = load({"AI_PROVIDER": "anthropic"})
        assert pool(s, "tiers", "fast") == ["claude-3-5-haiku-20241022"]
        assert pool(s, "tiers", "balanced") == ["claude-sonnet-4-20250514"]
        assert pool(s, "tiers", "expert") == ["claude-opus-4-5-20251101"]
        assert pool(s, "tasks", "text") == ["claude-3-5-sonnet-20241022"]
        assert pool(s, "tasks", "agent") == ["claude-sonnet-4-20250514"]
        # Anthropic has no image model: that pool stays on the simulator.
        assert pool(s, "tasks", "image") == ["simulator/dall-e-3", "simulator/dall-e-2"]

    def test_preferred_provider_goes_first_among_keyed_providers(self) -> None:
        s = load({"AI_PROVIDER": "anthropic", "OPENAI_API_KEY": "sk-test"})
        assert pool(s, "tiers", "fast") == ["claude-3-5-haiku-20241022", "gpt-4o-mini"]
        assert pool(s, "roles", "classifier") == ["claude-3-5-haiku-20241022", "gpt-4o-mini"]

    def test_value_is_case_insensitive(self) -> None:
        s = load({"AI_PROVIDER": "ANTHROPIC"})
        assert pool(s, "tiers", "fast") == ["claude-3-5-haiku-20241022"]

    def test_unknown_provider_names_the_variable(self) -> None:
        err = env_error({"AI_PROVIDER": "nope"})
        assert err.path == "AI_PROVIDER"
        assert "AI_PROVIDER" in str(err)


# ------------------------------------------------------------------- scalars


class TestScalarVariables:
    def test_default_tier(self) -> None:
        s = load({"AI_DEFAULT_TIER": "Fast"})
        assert s.config.defaults.tier == "fast"
        route = Resolver(s).resolve("default")
        assert [c.info.id for c in route.candidates] == pool(s, "tiers", "fast")

    def test_bad_default_tier_names_the_variable(self) -> None:
        err = env_error({"AI_DEFAULT_TIER": "ultra"})
        assert err.path == "defaults.tier"
        assert "AI_DEFAULT_TIER" in str(err)

    def test_max_tier_caps_a_higher_tier_with_a_warning(self) -> None:
        s = load({"AI_MAX_TIER": "advanced"})
        assert s.config.budget.max_tier == "advanced"
        route = Resolver(s).resolve("tier:expert")
        assert [c.info.id for c in route.candidates] == pool(s, "tiers", "advanced")
        assert route.params["max_tokens"] == 2048  # the advanced tier's limits
        assert route.timeout == 60.0
        assert len(route.warnings) == 1
        assert "expert" in route.warnings[0]
        assert "advanced" in route.warnings[0]
        assert Resolver(s).resolve("tier:fast").warnings == ()

    def test_max_tier_through_router(self) -> None:
        router = Router(load({"AI_MAX_TIER": "advanced"}))
        route = router.resolve("tier:expert")
        assert [c.info.id for c in route.candidates] == [
            "simulator/claude-sonnet-4-20250514",
            "simulator/gpt-4o",
            "simulator/llama-3.3-70b-versatile",
            "simulator/command-r-plus",
        ]
        assert route.warnings == ("tier expert capped to advanced by budget.max_tier",)

    async def test_max_tier_warning_reaches_the_envelope(self) -> None:
        router = Router(load({"AI_MAX_TIER": "balanced"}))
        try:
            env = await router.complete("tier:expert", "hi")
        finally:
            await router.aclose()
        assert env.simulated is True
        assert any("capped to balanced" in w for w in env.warnings)

    def test_budget(self) -> None:
        s = load({"AI_MAX_COST_PER_REQUEST": "0.05", "AI_MONTHLY_BUDGET": "100"})
        assert s.config.budget.max_cost_per_request == 0.05
        assert s.config.budget.monthly == 100.0
        assert s.env_sources["budget.monthly"] == "AI_MONTHLY_BUDGET"

    @pytest.mark.parametrize(
        ("var", "value", "path"),
        [
            ("AI_MAX_COST_PER_REQUEST", "abc", "budget.max_cost_per_request"),
            ("AI_MONTHLY_BUDGET", "-5", "budget.monthly"),
            ("AI_CACHE_TTL", "0", "cache.ttl"),
            ("AI_CACHE_ENABLED", "maybe", "cache.enabled"),
            ("AI_MAX_TIER", "ultra", "budget.max_tier"),
        ],
    )
    def test_bad_value_names_the_variable(self, var: str, value: str, path: str) -> None:
        err = env_error({var: value})
        assert err.path == path
        assert var in str(err)

    @pytest.mark.parametrize(
        ("value", "expected"), [("true", True), ("1", True), ("false", False), ("0", False)]
    )
    def test_cache_enabled(self, value: str, expected: bool) -> None:
        s = load({"AI_CACHE_ENABLED": value, "AI_CACHE_TTL": "120"})
        assert s.config.cache.enabled is expected
        assert s.config.cache.ttl == 120.0

    def test_blank_values_are_ignored(self) -> None:
        s = load({"AI_CACHE_ENABLED": "  ", "AI_MODEL_FAST": "", "AI_MAX_TIER": " "})
        assert s.config.cache.enabled is False
        assert s.config.budget.max_tier is None
        assert s.env_sources == {}


# ---------------------------------------------------------------------- roles


class TestRoleVariables:
    @pytest.mark.parametrize(
        ("var", "role", "model"),
        [
            ("MODEL_CLASSIFIER", "classifier", "gpt-3.5-turbo"),
            ("MODEL_WRITER", "writer", "gpt-4.1"),
            ("MODEL_EXPANDER", "expander", "gpt-4o"),
            ("MODEL_VALIDATOR", "validator", "claude-3-5-haiku-20241022"),
            ("MODEL_STYLE_REFINER", "style_refiner", "claude-3-5-sonnet-20241022"),
        ],
    )
    def test_role_primary(self, var: str, role: str, model: str) -> None:
        base = load({})
        s = load({var: model})
        assert pool(s, "roles", role) == [model, *pool(base, "roles", role)]
        assert s.env_sources[f"roles.{role}.models"] == var

    def test_role_primary_reaches_the_route(self) -> None:
        s = load({"MODEL_WRITER": "gpt-4.1"})
        assert Resolver(s).resolve("role:writer").candidates[0].info.id == "gpt-4.1"

    def test_unknown_role_model_names_the_variable(self) -> None:
        err = env_error({"MODEL_WRITER": "nope-model"})
        assert err.path == "roles.writer.models[0]"
        assert "MODEL_WRITER" in str(err)


# ------------------------------------------------------------ allowed providers


class TestAllowedProviders:
    def test_comma_separated(self) -> None:
        s = load({"ALLOWED_MODEL_PROVIDERS": "openai, anthropic"})
        assert s.config.server.allowed_providers == ["openai", "anthropic"]
        assert s.env_sources["server.allowed_providers"] == "ALLOWED_MODEL_PROVIDERS"

    def test_rejects_a_configured_pool_of_another_provider(self) -> None:
        err = env_error(
            {"ALLOWED_MODEL_PROVIDERS": "openai,anthropic"},
            {"tiers": {"fast": {"models": ["gemini-2.0-flash"]}}},
        )
        assert err.path == "tiers.fast.models[0]"
        assert "gemini" in str(err)

    def test_unknown_provider_names_the_variable(self) -> None:
        err = env_error({"ALLOWED_MODEL_PROVIDERS": "openai,bogus"})
        assert err.path == "server.allowed_providers"
        assert "bogus" in str(err)
        assert "ALLOWED_MODEL_PROVIDERS" in str(err)

    def test_builtin_pools_respect_allowed_providers(self) -> None:
        s = load(
            {
                "ALLOWED_MODEL_PROVIDERS": "openai,anthropic",
                "OPENAI_API_KEY": "sk-test",
                "GROQ_API_KEY": "gsk-test",
                "COHERE_API_KEY": "co-test",
            }
        )
        providers = {s.catalog.lookup(m).provider for m in pool(s, "tiers", "fast")}
        assert providers <= {"openai", "anthropic", "simulator"}


# ------------------------------------------------- keys, simulator, endpoints


class TestCredentialsAndSimulator:
    def test_no_key_builtin_pools_run_on_the_simulator(self) -> None:
        s = load({})
        assert s.config.defaults.model == "simulator/gpt-4o"
        for section in ("tiers", "tasks", "roles"):
            for name, p in getattr(s.config, section).items():
                ids = p.model_ids()
                assert ids, f"{section}.{name} is empty"
                assert all(m.startswith("simulator/") for m in ids), (section, name, ids)
        info = s.catalog.lookup("simulator/gpt-4o-mini")
        assert info.provider == "simulator"
        assert info.price_input == builtin_entries()["gpt-4o-mini"].price.input

    def test_openai_key_switches_builtin_pools_to_real_openai_models(self) -> None:
        s = load({"OPENAI_API_KEY": "sk-test"})
        assert s.config.defaults.model == "gpt-4o"
        assert pool(s, "tiers", "fast") == ["gpt-4o-mini"]
        assert pool(s, "tiers", "balanced") == ["gpt-4o"]
        assert pool(s, "tasks", "text") == ["gpt-4o-mini"]
        assert pool(s, "tasks", "image") == ["dall-e-3", "dall-e-2"]
        assert pool(s, "tasks", "agent") == ["gpt-4.1"]
        assert pool(s, "roles", "writer") == ["gpt-4o"]
        assert s.config.roles["writer"].by_product["landing"] == ["gpt-4o-mini", "gpt-4o"]

    def test_two_keys_keep_builtin_order(self) -> None:
        s = load({"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"})
        assert pool(s, "tiers", "fast") == ["claude-3-5-haiku-20241022", "gpt-4o-mini"]

    def test_user_configured_model_is_never_simulated(self) -> None:
        s = load(
            {},
            {
                "tiers": {"fast": {"models": ["gpt-4o-mini", "claude-3-5-haiku-20241022"]}},
                "defaults": {"model": "gpt-4.1"},
            },
        )
        assert pool(s, "tiers", "fast") == ["gpt-4o-mini", "claude-3-5-haiku-20241022"]
        assert s.config.defaults.model == "gpt-4.1"

    def test_env_configured_model_is_never_simulated(self) -> None:
        s = load({"AI_TEXT_PROVIDER": "openai", "AI_TEXT_MODEL": "gpt-4o"})
        assert pool(s, "tasks", "text") == ["gpt-4o"]

    async def test_user_configured_model_without_key_fails_naming_the_variable(self) -> None:
        router = Router(load({}, {"tiers": {"fast": {"models": ["gpt-4o-mini"]}}}))
        try:
            with pytest.raises(RouteExhaustedError) as info:
                await router.complete("tier:fast", "hi")
        finally:
            await router.aclose()
        cause = info.value.__cause__
        assert isinstance(cause, MissingCredentialsError)
        assert "OPENAI_API_KEY" in str(info.value)
        assert [a.trigger for a in info.value.attempts] == ["missing_credentials"]

    @pytest.mark.parametrize(
        ("provider", "var", "page"),
        [
            ("openai", "OPENAI_API_KEY", "https://platform.openai.com/api-keys"),
            ("anthropic", "ANTHROPIC_API_KEY", "https://console.anthropic.com/settings/keys"),
            ("gemini", "GEMINI_API_KEY", "https://aistudio.google.com/app/apikey"),
            ("groq", "GROQ_API_KEY", "https://console.groq.com/keys"),
            ("cohere", "COHERE_API_KEY", "https://dashboard.cohere.com/api-keys"),
        ],
    )
    def test_missing_key_names_variable_and_key_page(
        self, provider: str, var: str, page: str
    ) -> None:
        router = Router(load({}))
        with pytest.raises(MissingCredentialsError) as info:
            router.registry.client(provider)
        err = info.value
        assert var in str(err)
        assert page in str(err)
        assert err.env_var == var
        assert err.key_page == page
        assert err.status_code == 401

    def test_openai_compatible_from_environment(self) -> None:
        key = "sk-compat-secret-123456"
        router = Router(
            load(
                {
                    "OPENAI_COMPATIBLE_BASE_URL": "http://127.0.0.1:8999/v1",
                    "OPENAI_COMPATIBLE_API_KEY": key,
                }
            )
        )
        client = router.registry.client("openai-compatible")
        assert client.endpoint.base_url == "http://127.0.0.1:8999/v1"
        assert client.endpoint.wire == "openai"
        assert client.endpoint.api_key is not None
        assert client.endpoint.api_key.get() == key
        for text in (repr(client.endpoint), str(client.endpoint), f"{client.endpoint}"):
            assert key not in text
        assert key not in repr(client)

    def test_openai_compatible_without_base_url_names_the_variable(self) -> None:
        router = Router(load({"OPENAI_COMPATIBLE_API_KEY": "k"}))
        with pytest.raises(ConfigError) as info:
            router.registry.client("openai-compatible")
        assert "OPENAI_COMPATIBLE_BASE_URL" in str(info.value)

    def test_openai_compatible_without_key_names_the_variable(self) -> None:
        router = Router(load({"OPENAI_COMPATIBLE_BASE_URL": "http://127.0.0.1:8999/v1"}))
        with pytest.raises(MissingCredentialsError) as info:
            router.registry.client("openai-compatible")
        assert "OPENAI_COMPATIBLE_API_KEY" in str(info.value)

    @pytest.mark.parametrize(
        ("provider", "preset_url"),
        [
            ("openai", "https://api.openai.com/v1"),
            ("gemini", "https://generativelanguage.googleapis.com/v1beta/openai"),
            ("anthropic", "https://api.anthropic.com"),
        ],
    )
    def test_base_url_variable_overrides_the_preset(self, provider: str, preset_url: str) -> None:
        prefix = provider.upper()
        key = f"{provider}-secret-key-987"
        plain = Router(load({f"{prefix}_API_KEY": key})).registry.client(provider)
        assert plain.endpoint.base_url == preset_url
        over = Router(
            load({f"{prefix}_API_KEY": key, f"{prefix}_BASE_URL": "http://127.0.0.1:8123/x"})
        ).registry.client(provider)
        assert over.endpoint.base_url == "http://127.0.0.1:8123/x"
        assert key not in repr(over.endpoint)
        assert key not in str(over.endpoint)

    def test_keys_are_read_from_the_passed_environ(self) -> None:
        router = Router(load({"GROQ_API_KEY": "gsk-abc"}))
        assert router.registry.status("groq").present is True
        assert router.registry.status("openai").present is False
        assert router.registry.status("ollama").usable is True  # no key needed
