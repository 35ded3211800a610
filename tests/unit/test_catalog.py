"""Catalog facts (catalog.yaml), user additions, provider references, cost arithmetic,
and the provider presets (presets.yaml)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from polyroute import Settings, Usage, load_settings
from polyroute.config.catalog import Catalog, ModelInfo, builtin_entries
from polyroute.config.schema import CAPABILITIES, TASKS, TIERS
from polyroute.providers.presets import (
    ProviderSpec,
    build_provider_specs,
    builtin_presets_data,
)


def settings(data: dict[str, Any] | None = None) -> Settings:
    return load_settings(data=data or {}, environ={})


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return settings().catalog


# Every model id the seed documents name.
SEED_MODELS = [
    ("gpt-5.1", "openai"),
    ("gpt-4.1", "openai"),
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("gpt-3.5-turbo", "openai"),
    ("dall-e-3", "openai"),
    ("dall-e-2", "openai"),
    ("claude-3-5-haiku-20241022", "anthropic"),
    ("claude-3-5-sonnet-20241022", "anthropic"),
    ("claude-sonnet-4-20250514", "anthropic"),
    ("claude-opus-4-5-20251101", "anthropic"),
    ("claude-3-haiku-20240307", "anthropic"),
    ("gemini-2.0-flash", "gemini"),
    ("gemini-1.5-pro", "gemini"),
    ("gemini-1.5-flash", "gemini"),
    ("llama-3.1-8b-instant", "groq"),
    ("llama-3.3-70b-versatile", "groq"),
    ("command-r", "cohere"),
    ("command-r-plus", "cohere"),
    ("command-light", "cohere"),
]
IMAGE_MODELS = ["dall-e-3", "dall-e-2"]


class TestBuiltinEntries:
    @pytest.mark.parametrize(("model_id", "provider"), SEED_MODELS)
    def test_seed_model_is_catalogued_with_its_facts(
        self, catalog: Catalog, model_id: str, provider: str
    ) -> None:
        info = catalog.get(model_id)
        assert info is not None, model_id
        assert info.id == model_id
        assert info.provider == provider
        assert info.name == model_id  # these are sent to the provider under their own id
        assert info.price_known is True
        if model_id in IMAGE_MODELS:
            assert info.price_per_image is not None and info.price_per_image > 0
        else:
            assert info.price_input > 0
            assert info.price_output > 0
            assert info.price_output >= info.price_input
        assert info.price_as_of is not None
        dt.date.fromisoformat(info.price_as_of)  # a real ISO date
        assert info.context_window is not None and info.context_window > 0
        assert info.capabilities
        assert info.capabilities <= set(CAPABILITIES)
        assert info.tier in TIERS

    @pytest.mark.parametrize("model_id", [m for m, _ in SEED_MODELS if m not in IMAGE_MODELS])
    def test_seed_text_models_have_text_and_an_output_cap(
        self, catalog: Catalog, model_id: str
    ) -> None:
        info = catalog.lookup(model_id)
        assert info.has("text")
        assert not info.has("image_generation")
        assert info.max_output_tokens is not None
        assert 0 < info.max_output_tokens <= (info.context_window or 0)

    @pytest.mark.parametrize("model_id", IMAGE_MODELS)
    def test_dall_e_generates_images_and_is_priced_per_image(
        self, catalog: Catalog, model_id: str
    ) -> None:
        info = catalog.lookup(model_id)
        assert info.has("image_generation")
        assert not info.has("text")
        assert info.price_input == 0.0
        assert info.price_output == 0.0
        assert info.price_per_image == builtin_entries()[model_id].price.per_image

    def test_known_prices(self, catalog: Catalog) -> None:
        mini = catalog.lookup("gpt-4o-mini")
        assert (mini.price_input, mini.price_output, mini.price_as_of) == (
            0.15,
            0.60,
            "2024-07-18",
        )
        gpt4o = catalog.lookup("gpt-4o")
        assert (gpt4o.price_input, gpt4o.price_output) == (2.50, 10.00)
        assert catalog.lookup("dall-e-3").price_per_image == 0.04
        assert catalog.lookup("dall-e-2").price_per_image == 0.02
        assert catalog.lookup("claude-3-haiku-20240307").price_input == 0.25

    def test_vision_facts(self, catalog: Catalog) -> None:
        assert catalog.lookup("gpt-4o").has("vision")
        assert catalog.lookup("claude-sonnet-4-20250514").has("vision")
        assert not catalog.lookup("gpt-3.5-turbo").has("vision")
        assert not catalog.lookup("claude-3-5-haiku-20241022").has("vision")

    def test_ids_never_contain_a_slash(self, catalog: Catalog) -> None:
        assert [m.id for m in catalog if "/" in m.id] == []

    def test_every_entry_is_dated_and_tiered(self, catalog: Catalog) -> None:
        for info in catalog:
            assert info.price_as_of, info.id
            dt.date.fromisoformat(info.price_as_of)
            assert info.tier in TIERS, info.id
            assert info.provider in catalog.providers, info.id

    def test_to_dict(self, catalog: Catalog) -> None:
        d = catalog.lookup("gpt-4o-mini").to_dict()
        assert d == {
            "id": "gpt-4o-mini",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "price": {
                "input": 0.15,
                "output": 0.60,
                "per_image": None,
                "cache_read": 0.075,
                "cache_write": None,
                "as_of": "2024-07-18",
            },
            "context_window": 128000,
            "max_output_tokens": 16384,
            "capabilities": ["json", "text", "tools", "vision"],
            "tier": "fast",
        }


class TestUserModels:
    def test_addition(self) -> None:
        s = settings(
            {
                "models": {
                    "light-1": {
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "price": {"input": 0.11, "output": 0.22, "as_of": "2025-01-01"},
                        "context_window": 64000,
                        "max_output_tokens": 2000,
                        "capabilities": ["text", "json"],
                        "tier": "fast",
                    }
                },
                "tiers": {"fast": {"models": ["light-1"]}},
            }
        )
        info = s.catalog.lookup("light-1")
        assert info.provider == "openai"
        assert info.name == "gpt-4o-mini"
        assert (info.price_input, info.price_output, info.price_as_of) == (0.11, 0.22, "2025-01-01")
        assert info.context_window == 64000
        assert info.max_output_tokens == 2000
        assert info.capabilities == frozenset({"text", "json"})
        # The built-in entry under the provider's name is untouched.
        assert s.catalog.lookup("gpt-4o-mini").price_input == 0.15

    def test_addition_defaults_name_to_id(self) -> None:
        s = settings({"models": {"my-model": {"provider": "ollama"}}})
        info = s.catalog.lookup("my-model")
        assert info.name == "my-model"
        assert info.provider == "ollama"
        assert info.capabilities == frozenset({"text"})

    def test_override(self) -> None:
        s = settings(
            {
                "models": {
                    "gpt-4o": {
                        "provider": "openai",
                        "price": {"input": 1.0, "output": 4.0, "as_of": "2026-01-01"},
                        "capabilities": ["text"],
                        "tier": "fast",
                    }
                }
            }
        )
        info = s.catalog.lookup("gpt-4o")
        assert (info.price_input, info.price_output, info.price_as_of) == (1.0, 4.0, "2026-01-01")
        assert info.tier == "fast"
        assert not info.has("vision")
        # A provider reference to the same name borrows the overridden facts.
        assert s.catalog.lookup("simulator/gpt-4o").price_input == 1.0

    def test_user_entries_are_counted_once(self) -> None:
        base = len(settings().catalog)
        s = settings(
            {
                "models": {
                    "gpt-4o": {"provider": "openai"},
                    "brand-new": {"provider": "openai"},
                }
            }
        )
        assert len(s.catalog) == base + 1

    def test_unknown_capability_is_rejected(self) -> None:
        from polyroute import ConfigError

        with pytest.raises(ConfigError) as info:
            settings({"models": {"m": {"provider": "openai", "capabilities": ["telepathy"]}}})
        assert "models.m.capabilities" in str(info.value)
        assert "telepathy" in str(info.value)


class TestProviderReferences:
    def test_simulator_borrows_the_real_models_facts(self, catalog: Catalog) -> None:
        real = catalog.lookup("gpt-4o")
        sim = catalog.lookup("simulator/gpt-4o")
        assert sim.id == "simulator/gpt-4o"
        assert sim.provider == "simulator"
        assert sim.name == "gpt-4o"
        assert sim.price_known is True
        assert (sim.price_input, sim.price_output, sim.price_as_of) == (
            real.price_input,
            real.price_output,
            real.price_as_of,
        )
        assert sim.capabilities == real.capabilities
        assert sim.context_window == real.context_window
        assert sim.tier == real.tier

    def test_simulator_image_model_keeps_per_image_price(self, catalog: Catalog) -> None:
        sim = catalog.lookup("simulator/dall-e-3")
        assert sim.has("image_generation")
        assert sim.price_per_image == catalog.lookup("dall-e-3").price_per_image

    def test_unknown_model_of_known_provider(self, catalog: Catalog) -> None:
        info = catalog.lookup("openai/gpt-99-turbo")
        assert info.provider == "openai"
        assert info.name == "gpt-99-turbo"
        assert info.price_known is False
        assert info.price_input == 0.0
        assert info.price_output == 0.0
        assert info.cost(Usage(1000, 1000)) == 0.0

    def test_provider_name_with_slashes_matches_by_provider_model_name(
        self, catalog: Catalog
    ) -> None:
        info = catalog.lookup("openrouter/openai/gpt-4o-mini")
        assert info.provider == "openrouter"
        assert info.name == "openai/gpt-4o-mini"
        assert info.price_known is True
        assert info.price_input == catalog.lookup("gpt-4o-mini-openrouter").price_input

    def test_is_model_ref(self, catalog: Catalog) -> None:
        assert catalog.is_model_ref("gpt-4o")
        assert catalog.is_model_ref("ollama/anything")
        assert not catalog.is_model_ref("nope/gpt-4o")
        assert not catalog.is_model_ref("gpt-4o-nope")
        assert catalog.split_provider_ref("groq/x") == ("groq", "x")
        assert catalog.split_provider_ref("gpt-4o") is None

    def test_lookup_of_unknown_raises_unknown_route(self, catalog: Catalog) -> None:
        from polyroute import UnknownRouteError

        with pytest.raises(UnknownRouteError) as info:
            catalog.lookup("nope/gpt-4o")
        assert info.value.status_code == 404
        assert "nope/gpt-4o" in str(info.value)


class TestCost:
    def test_gpt_4o_mini(self, catalog: Catalog) -> None:
        info = catalog.lookup("gpt-4o-mini")
        expected = (1000 * info.price_input + 500 * info.price_output) / 1_000_000
        assert expected == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)
        assert info.cost(Usage(1000, 500)) == pytest.approx(expected, rel=1e-9, abs=0)
        assert info.cost(Usage(1000, 500)) == pytest.approx(0.00045, rel=1e-9, abs=0)

    @pytest.mark.parametrize(
        ("model_id", "prompt", "completion"),
        [
            ("gpt-4o", 12345, 678),
            ("claude-opus-4-5-20251101", 1_000_000, 0),
            ("claude-sonnet-4-20250514", 0, 1_000_000),
            ("gemini-1.5-flash", 3, 7),
        ],
    )
    def test_token_cost(
        self, catalog: Catalog, model_id: str, prompt: int, completion: int
    ) -> None:
        e = builtin_entries()[model_id]
        expected = (prompt * e.price.input + completion * e.price.output) / 1_000_000
        got = catalog.lookup(model_id).cost(Usage(prompt, completion))
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)

    def test_million_tokens_cost_the_listed_price(self, catalog: Catalog) -> None:
        info = catalog.lookup("gpt-4o")
        assert info.cost(Usage(1_000_000, 0)) == pytest.approx(2.50)
        assert info.cost(Usage(0, 1_000_000)) == pytest.approx(10.00)

    @pytest.mark.parametrize("n", [1, 2, 5])
    @pytest.mark.parametrize("model_id", IMAGE_MODELS)
    def test_image_cost(self, catalog: Catalog, model_id: str, n: int) -> None:
        info = catalog.lookup(model_id)
        assert info.price_per_image is not None
        assert info.cost(Usage(0, 0), images=n) == pytest.approx(n * info.price_per_image)

    def test_simulator_costs_what_the_real_model_costs(self, catalog: Catalog) -> None:
        u = Usage(2000, 300)
        assert catalog.lookup("simulator/gpt-4o-mini").cost(u) == catalog.lookup(
            "gpt-4o-mini"
        ).cost(u)

    def test_zero_usage_is_free(self) -> None:
        info = ModelInfo(id="x", provider="openai", name="x", price_input=5.0, price_output=5.0)
        assert info.cost(Usage()) == 0.0


@pytest.fixture(scope="module")
def specs() -> dict[str, ProviderSpec]:
    return build_provider_specs({})


class TestPresets:
    def test_builtin_providers(self, specs: dict[str, ProviderSpec]) -> None:
        assert set(specs) == {
            "openai",
            "anthropic",
            "gemini",
            "groq",
            "together",
            "ollama",
            "cohere",
            "mistral",
            "deepseek",
            "openrouter",
            "openai-compatible",
            "simulator",
        }
        assert set(specs) == set(builtin_presets_data())

    def test_every_preset_parses(self, specs: dict[str, ProviderSpec]) -> None:
        for name, spec in specs.items():
            assert spec.name == name
            assert spec.wire in ("openai", "anthropic", "simulator"), name
            assert spec.builtin is True
            if spec.api_key_required:
                assert spec.api_key_env, name
                if name != "openai-compatible":  # a generic gateway has no key page
                    assert spec.key_page and spec.key_page.startswith("https://"), name
            if name != "openai-compatible":
                assert spec.base_url, name
            assert "text" in spec.default_models, name

    def test_wires(self, specs: dict[str, ProviderSpec]) -> None:
        assert specs["anthropic"].wire == "anthropic"
        assert specs["simulator"].wire == "simulator"
        assert specs["gemini"].wire == "openai"
        assert specs["openai-compatible"].base_url is None
        assert specs["openai-compatible"].base_url_env == "OPENAI_COMPATIBLE_BASE_URL"
        assert specs["simulator"].api_key_required is False
        assert specs["ollama"].api_key_required is False
        assert specs["openai"].api_key_env == "OPENAI_API_KEY"
        assert specs["openai"].key_page == "https://platform.openai.com/api-keys"

    def test_default_models_are_catalog_ids(
        self, specs: dict[str, ProviderSpec], catalog: Catalog
    ) -> None:
        for name, spec in specs.items():
            for task, model in spec.default_models.items():
                assert task in (*TASKS, "image"), (name, task)
                info = catalog.get(model)
                assert info is not None, (name, task, model)
                if task == "image":
                    assert info.has("image_generation"), (name, model)
                else:
                    assert info.has("text"), (name, task, model)
                # Gateways serve other providers' names; every other preset its own.
                if name not in ("openai-compatible", "simulator"):
                    assert info.provider == name, (name, task, model)

    def test_user_provider_extends_and_adjusts(self) -> None:
        s = settings(
            {
                "providers": {
                    "my-vllm": {
                        "type": "openai-compatible",
                        "base_url": "http://127.0.0.1:8000/v1",
                        "api_key_env": "MY_VLLM_KEY",
                        "retry": {"max_attempts": 4},
                    },
                    "flaky-sim": {
                        "type": "simulator",
                        "simulator": {"failure_rate": 0.3, "seed": 7},
                    },
                    "openai": {"base_url": "http://127.0.0.1:9/v1"},
                }
            }
        )
        mine = s.providers["my-vllm"]
        assert (mine.wire, mine.base_url, mine.api_key_env, mine.builtin) == (
            "openai",
            "http://127.0.0.1:8000/v1",
            "MY_VLLM_KEY",
            False,
        )
        assert mine.retry is not None and mine.retry.max_attempts == 4
        sim = s.providers["flaky-sim"]
        assert sim.wire == "simulator"
        assert sim.api_key_required is False
        assert sim.simulator is not None and sim.simulator.failure_rate == 0.3
        openai = s.providers["openai"]
        assert openai.base_url == "http://127.0.0.1:9/v1"
        assert openai.api_key_env == "OPENAI_API_KEY"  # kept from the preset
        assert openai.key_page == "https://platform.openai.com/api-keys"
        assert "my-vllm" in s.catalog.providers
