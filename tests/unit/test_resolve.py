"""Route resolution: every kind of name a caller may give, resolved to a pool,
a strategy and parameters (the README's routes table)."""

from __future__ import annotations

from typing import Any

import pytest

from polyroute import RouteExhaustedError, Router, UnknownRouteError, load_settings
from polyroute.config.defaults import BUILTIN_TIERS
from polyroute.routing.resolve import Resolver, Route

CONFIG: dict[str, Any] = {
    "defaults": {"model": "gpt-4o", "temperature": 0.5, "max_tokens": 500, "timeout": 42},
    "tiers": {
        "fast": {
            "models": ["gpt-4o-mini", "claude-3-5-haiku-20241022"],
            "max_tokens": 256,
            "temperature": 0.3,
            "timeout": 5,
        },
        "advanced": {"models": ["gpt-4.1"], "max_tokens": 2048, "top_p": 0.9},
    },
    "tasks": {"text": {"models": ["claude-3-5-sonnet-20241022", "gpt-4o-mini"]}},
    "roles": {
        "writer": {
            "models": ["gpt-4o", "claude-sonnet-4-20250514"],
            "by_product": {"landing": ["gpt-4o-mini", "gpt-4o"], "card": ["gpt-4.1"]},
        }
    },
    "pipelines": {
        "marketing": {
            "default_model": "gpt-4.1",
            "default_temperature": 0.7,
            "default_max_retries": 2,
            "steps": {
                "seo_keywords": {"model": "gpt-4o-mini"},
                "article_generation": {
                    "model": "gpt-5.1",
                    "temperature": 0.8,
                    "max_retries": 0,
                    "max_tokens": 900,
                },
                "variants": {
                    "models": ["gpt-4o", "claude-sonnet-4-20250514"],
                    "routing": "parallel",
                },
                "review": {"models": ["gpt-4o", "gpt-4.1"]},
                "bare": {},
            },
        },
        "plain": {"steps": {"x": {}, "y": {"model": "gpt-3.5-turbo", "max_retries": 4}}},
    },
    "routes": {
        "compare-all": {
            "strategy": "parallel",
            "models": ["gpt-4o", "claude-sonnet-4-20250514", "gemini-2.0-flash"],
        },
        "spread": {
            "strategy": "loadbalance",
            "models": [
                {"model": "gpt-4o", "weight": 3},
                {"model": "gpt-4.1", "weight": 1, "params": {"temperature": 0.1}},
            ],
        },
        "cheap-first": {
            "strategy": "cascade",
            "models": ["gpt-4o-mini", "gpt-4o"],
            "accept": {"required_fields": ["title"], "min_length": 10},
            "max_fallbacks": 1,
        },
        "combo": {"models": ["tier:fast", "gpt-4o", "gpt-4o-mini", "spread"]},
        "nested": {"models": ["combo", "task:text", "role:writer@card"]},
        "one": {"strategy": "single", "models": "gpt-4o", "timeout": 9},
    },
}


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return Resolver(load_settings(data=CONFIG, environ={}))


def ids(route: Route) -> list[str]:
    return [c.info.id for c in route.candidates]


# ------------------------------------------------------------------- models


class TestModelNames:
    def test_catalog_id(self, resolver: Resolver) -> None:
        r = resolver.resolve("gpt-4o-mini")
        assert r.name == "gpt-4o-mini"
        assert r.strategy == "single"
        assert ids(r) == ["gpt-4o-mini"]
        assert r.candidates[0].info.provider == "openai"
        assert r.max_fallbacks == 0
        # A one-model route carries defaults' parameters and timeout.
        assert dict(r.params) == {"max_tokens": 500, "temperature": 0.5}
        assert r.timeout == 42.0

    def test_provider_slash_model(self, resolver: Resolver) -> None:
        r = resolver.resolve("openai/gpt-4o-mini")
        assert r.strategy == "single"
        assert ids(r) == ["openai/gpt-4o-mini"]
        info = r.candidates[0].info
        assert (info.provider, info.name) == ("openai", "gpt-4o-mini")

    def test_provider_slash_uncatalogued_model(self, resolver: Resolver) -> None:
        info = resolver.resolve("groq/brand-new-model").candidates[0].info
        assert (info.provider, info.name, info.price_known) == ("groq", "brand-new-model", False)

    def test_simulator_model(self, resolver: Resolver) -> None:
        info = resolver.resolve("simulator/gpt-4o").candidates[0].info
        assert info.provider == "simulator"
        assert info.name == "gpt-4o"


# -------------------------------------------------------------------- tiers


class TestTiers:
    def test_tier_pool_and_params(self, resolver: Resolver) -> None:
        r = resolver.resolve("tier:fast")
        assert r.name == "tier:fast"
        assert r.strategy == "fallback"
        assert ids(r) == ["gpt-4o-mini", "claude-3-5-haiku-20241022"]
        # Tier values sit over defaults.
        assert dict(r.params) == {"max_tokens": 256, "temperature": 0.3}
        assert r.timeout == 5.0
        assert r.max_fallbacks == 3  # policies.fallback default
        assert dict(r.labels) == {"tier": "fast"}
        assert r.warnings == ()

    def test_tier_values_merge_over_builtin_tier_values(self, resolver: Resolver) -> None:
        # tiers.advanced sets max_tokens and top_p; temperature and timeout come from the
        # built-in advanced tier underneath, not from defaults.
        r = resolver.resolve("tier:advanced")
        assert dict(r.params) == {
            "max_tokens": 2048,
            "temperature": BUILTIN_TIERS["advanced"]["temperature"],
            "top_p": 0.9,
        }
        assert r.timeout == BUILTIN_TIERS["advanced"]["timeout"] == 60.0

    def test_named_route_without_values_inherits_defaults(self, resolver: Resolver) -> None:
        r = resolver.resolve("compare-all")
        assert dict(r.params) == {"max_tokens": 500, "temperature": 0.5}
        assert r.timeout == 42.0

    def test_builtin_tier_values(self) -> None:
        r = Resolver(load_settings(data={}, environ={})).resolve("tier:expert")
        expert = BUILTIN_TIERS["expert"]
        assert r.params["max_tokens"] == expert["max_tokens"] == 4096
        assert r.params["temperature"] == expert["temperature"]
        assert r.timeout == expert["timeout"] == 120.0
        assert ids(r) == [f"simulator/{m}" for m in expert["models"]]

    def test_max_tier_caps(self) -> None:
        s = load_settings(data={"budget": {"max_tier": "balanced"}}, environ={})
        r = Resolver(s).resolve("tier:expert")
        assert r.name == "tier:expert"
        assert ids(r) == s.config.tiers["balanced"].model_ids()
        assert r.params["max_tokens"] == 1024
        assert r.timeout == 30.0
        assert r.labels["tier"] == "balanced"
        assert r.warnings == ("tier expert capped to balanced by budget.max_tier",)
        assert Resolver(s).resolve("tier:balanced").warnings == ()
        assert Resolver(s).resolve("tier:fast").warnings == ()


# -------------------------------------------------------------- tasks, roles


class TestTasksAndRoles:
    def test_task(self, resolver: Resolver) -> None:
        r = resolver.resolve("task:text")
        assert ids(r) == ["claude-3-5-sonnet-20241022", "gpt-4o-mini"]
        assert r.labels == {"task": "text"}
        assert dict(r.params) == {"max_tokens": 500, "temperature": 0.5}
        assert r.timeout == 42.0

    def test_builtin_task_kept(self, resolver: Resolver) -> None:
        assert ids(resolver.resolve("task:image")) == ["simulator/dall-e-3", "simulator/dall-e-2"]

    def test_role_without_product(self, resolver: Resolver) -> None:
        r = resolver.resolve("role:writer")
        assert ids(r) == ["gpt-4o", "claude-sonnet-4-20250514"]
        assert r.labels == {"role": "writer"}

    def test_role_with_product_type(self, resolver: Resolver) -> None:
        r = resolver.resolve("role:writer", product_type="landing")
        assert ids(r) == ["gpt-4o-mini", "gpt-4o"]
        assert r.labels == {"role": "writer", "product_type": "landing"}

    def test_role_at_product_form(self, resolver: Resolver) -> None:
        assert ids(resolver.resolve("role:writer@landing")) == ["gpt-4o-mini", "gpt-4o"]
        assert ids(resolver.resolve("role:writer@card")) == ["gpt-4.1"]

    def test_product_type_argument_wins_over_inline(self, resolver: Resolver) -> None:
        assert ids(resolver.resolve("role:writer@card", product_type="landing")) == [
            "gpt-4o-mini",
            "gpt-4o",
        ]

    def test_product_without_override_uses_role_pool(self, resolver: Resolver) -> None:
        r = resolver.resolve("role:writer", product_type="brochure")
        assert ids(r) == ["gpt-4o", "claude-sonnet-4-20250514"]
        assert r.labels["product_type"] == "brochure"

    def test_builtin_role_with_product(self) -> None:
        r = Resolver(load_settings(data={}, environ={})).resolve("role:style_refiner", "card")
        assert ids(r) == ["simulator/claude-sonnet-4-20250514", "simulator/gpt-4o"]

    def test_results_are_cached_per_product(self, resolver: Resolver) -> None:
        assert resolver.resolve("role:writer", "landing") is resolver.resolve(
            "role:writer", "landing"
        )
        assert resolver.resolve("role:writer") is not resolver.resolve("role:writer", "landing")


# -------------------------------------------------------------------- steps


class TestSteps:
    def test_step_model(self, resolver: Resolver) -> None:
        r = resolver.resolve("step:marketing/seo_keywords")
        assert ids(r) == ["gpt-4o-mini"]
        assert r.strategy == "single"
        # The pipeline's default temperature and retries apply to the step.
        assert r.params["temperature"] == 0.7
        assert r.max_attempts == 3
        assert r.labels == {"pipeline": "marketing", "step": "seo_keywords"}

    def test_step_own_temperature_retries_and_max_tokens(self, resolver: Resolver) -> None:
        r = resolver.resolve("step:marketing/article_generation")
        assert ids(r) == ["gpt-5.1"]
        assert dict(r.params) == {"max_tokens": 900, "temperature": 0.8}
        assert r.max_attempts == 1  # max_retries 0: one attempt

    def test_step_without_model_uses_pipeline_default(self, resolver: Resolver) -> None:
        r = resolver.resolve("step:marketing/bare")
        assert ids(r) == ["gpt-4.1"]
        assert r.params["temperature"] == 0.7
        assert r.max_attempts == 3

    def test_pipeline_without_default_uses_defaults_model(self, resolver: Resolver) -> None:
        r = resolver.resolve("step:plain/x")
        assert ids(r) == ["gpt-4o"]
        assert r.params["temperature"] == 0.5  # defaults.temperature
        assert r.max_attempts is None  # no retries configured anywhere

    def test_step_retries_without_pipeline_default(self, resolver: Resolver) -> None:
        r = resolver.resolve("step:plain/y")
        assert ids(r) == ["gpt-3.5-turbo"]
        assert r.max_attempts == 5

    def test_step_parallel_models(self, resolver: Resolver) -> None:
        r = resolver.resolve("step:marketing/variants")
        assert r.strategy == "parallel"
        assert ids(r) == ["gpt-4o", "claude-sonnet-4-20250514"]

    def test_step_models_fall_back(self, resolver: Resolver) -> None:
        r = resolver.resolve("step:marketing/review")
        assert r.strategy == "fallback"
        assert ids(r) == ["gpt-4o", "gpt-4.1"]

    def test_builtin_defaults_model_for_a_bare_pipeline(self) -> None:
        s = load_settings(data={"pipelines": {"p": {"steps": {"s": {}}}}}, environ={})
        assert ids(Resolver(s).resolve("step:p/s")) == ["simulator/gpt-4o"]

    async def test_max_attempts_reach_the_call(self) -> None:
        # A step with max_retries 0 is tried once even when the failure is retryable.
        data = {
            "providers": {
                "always-down": {
                    "type": "simulator",
                    "base_url": "simulator://local",
                    "simulator": {"failure_rate": 1.0, "error_kinds": ["server_error"]},
                }
            },
            "policies": {"retry": {"max_attempts": 5, "base_delay": 0, "max_delay": 0}},
            "pipelines": {
                "p": {
                    "steps": {
                        "once": {"model": "always-down/gpt-4o", "max_retries": 0},
                        "thrice": {"model": "always-down/gpt-4o", "max_retries": 2},
                    }
                }
            },
        }
        router = Router(load_settings(data=data, environ={}))
        try:
            with pytest.raises(RouteExhaustedError) as once:
                await router.complete("step:p/once", "hi")
            with pytest.raises(RouteExhaustedError) as thrice:
                await router.complete("step:p/thrice", "hi")
        finally:
            await router.aclose()
        assert [(a.model, a.retries) for a in once.value.attempts] == [("always-down/gpt-4o", 0)]
        assert [(a.model, a.retries) for a in thrice.value.attempts] == [("always-down/gpt-4o", 2)]

    async def test_user_simulator_provider_needs_no_base_url(self) -> None:
        data = {
            "providers": {"flaky-sim": {"type": "simulator", "simulator": {"seed": 7}}},
            "routes": {"sim": {"models": ["flaky-sim/gpt-4o-mini"]}},
        }
        router = Router(load_settings(data=data, environ={}))
        try:
            env = await router.complete("sim", "hi")
        finally:
            await router.aclose()
        assert env.simulated is True
        assert env.provider == "flaky-sim"


# ------------------------------------------------------------- named routes


class TestNamedRoutes:
    def test_parallel(self, resolver: Resolver) -> None:
        r = resolver.resolve("compare-all")
        assert r.strategy == "parallel"
        assert ids(r) == ["gpt-4o", "claude-sonnet-4-20250514", "gemini-2.0-flash"]
        assert r.labels == {"route": "compare-all"}

    def test_loadbalance_weights_and_member_params(self, resolver: Resolver) -> None:
        r = resolver.resolve("spread")
        assert r.strategy == "loadbalance"
        assert [(c.info.id, c.weight) for c in r.candidates] == [("gpt-4o", 3.0), ("gpt-4.1", 1.0)]
        assert dict(r.candidates[0].params) == {}
        assert dict(r.candidates[1].params) == {"temperature": 0.1}

    def test_cascade_with_accept_and_max_fallbacks(self, resolver: Resolver) -> None:
        r = resolver.resolve("cheap-first")
        assert r.strategy == "cascade"
        assert ids(r) == ["gpt-4o-mini", "gpt-4o"]
        assert r.accept is not None
        assert r.accept.required_fields == ["title"]
        assert r.accept.min_length == 10
        assert r.max_fallbacks == 1

    def test_single_model_string_and_timeout(self, resolver: Resolver) -> None:
        r = resolver.resolve("one")
        assert r.strategy == "single"
        assert ids(r) == ["gpt-4o"]
        assert r.timeout == 9.0

    def test_members_naming_routes_are_flattened_in_order(self, resolver: Resolver) -> None:
        r = resolver.resolve("combo")
        # tier:fast's two models, then gpt-4o, gpt-4o-mini once, then spread's members.
        assert ids(r) == ["gpt-4o-mini", "claude-3-5-haiku-20241022", "gpt-4o", "gpt-4.1"]
        assert r.strategy == "fallback"
        # gpt-4.1 joined through `spread` and keeps its member params.
        assert dict(r.candidates[3].params) == {"temperature": 0.1}

    def test_flattening_is_recursive(self, resolver: Resolver) -> None:
        r = resolver.resolve("nested")
        assert ids(r) == [
            "gpt-4o-mini",
            "claude-3-5-haiku-20241022",
            "gpt-4o",
            "gpt-4.1",
            "claude-3-5-sonnet-20241022",
        ]


# ------------------------------------------------------------------ default


class TestDefault:
    def test_default_is_defaults_model(self, resolver: Resolver) -> None:
        r = resolver.resolve("default")
        assert ids(r) == ["gpt-4o"]
        assert r.strategy == "single"
        assert ids(resolver.resolve(None)) == ["gpt-4o"]

    def test_default_with_defaults_tier(self) -> None:
        s = load_settings(data={**CONFIG, "defaults": {"tier": "fast"}}, environ={})
        r = Resolver(s).resolve("default")
        assert ids(r) == ["gpt-4o-mini", "claude-3-5-haiku-20241022"]
        assert r.params["max_tokens"] == 256
        assert r.timeout == 5.0
        assert ids(Resolver(s).resolve(None)) == ids(r)

    def test_builtin_default(self) -> None:
        r = Resolver(load_settings(data={}, environ={})).resolve("default")
        assert ids(r) == ["simulator/gpt-4o"]
        r = Resolver(load_settings(data={}, environ={"OPENAI_API_KEY": "sk-x"})).resolve(None)
        assert ids(r) == ["gpt-4o"]


# ------------------------------------------------------------------ unknown


class TestUnknown:
    @pytest.mark.parametrize(
        ("name", "hint"),
        [
            ("nope", "tier:NAME"),
            ("gpt-4o-nope", "provider/model"),
            ("nope/gpt-4o", "provider/model"),
            ("tier:ultra", "fast"),
            ("task:nope", "text"),
            ("role:nobody", "writer"),
            ("step:nopipe/x", "marketing"),
        ],
    )
    def test_unknown_names(self, resolver: Resolver, name: str, hint: str) -> None:
        with pytest.raises(UnknownRouteError) as info:
            resolver.resolve(name)
        err = info.value
        assert err.status_code == 404
        assert err.name == name
        assert name in str(err)
        assert hint in str(err)
        assert isinstance(err, LookupError)

    def test_router_resolve_raises_too(self) -> None:
        router = Router(load_settings(data=CONFIG, environ={}))
        with pytest.raises(UnknownRouteError):
            router.resolve("tier:ultra")
        assert ids(router.resolve("tier:fast")) == ["gpt-4o-mini", "claude-3-5-haiku-20241022"]
