"""Seed 003's FALLBACK_CHAINS, as config.

The seed::

    FALLBACK_CHAINS = {
        "anthropic": ["groq", "openai"],  # Groq is cheaper fallback
        "openai": ["anthropic", "groq"],
        "groq": ["openai", "anthropic"],  # Fallback to paid if Groq fails
        "cohere": ["openai", "anthropic"],
    }

is ``providers.<name>.fallback: [...]``: when a model of that provider fails, the
same-tier model of the next provider is tried, in order.
"""

from __future__ import annotations

import pytest

from polyroute import ConfigError, Router
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import ENV, fake_config

SEED_CHAINS = {
    "anthropic": ["groq", "openai"],
    "openai": ["anthropic", "groq"],
    "groq": ["openai", "anthropic"],
    "cohere": ["openai", "anthropic"],
}


def test_the_seeds_chains_load_and_extend_a_pool() -> None:
    providers = {name: {"fallback": chain} for name, chain in SEED_CHAINS.items()}
    router = Router.from_config({"providers": providers}, environ={})
    route = router.resolve("claude-3-5-haiku-20241022")  # anthropic, tier fast
    ids = [(c.info.provider, c.info.tier) for c in route.candidates]
    assert ids[0] == ("anthropic", "fast")
    assert [p for p, _ in ids[1:]] == ["groq", "openai"]  # the chain, in order
    assert all(t == "fast" for _, t in ids)


async def test_a_failing_provider_falls_back_along_its_chain(fake: FakeProviderThread) -> None:
    cfg = fake_config(fake)
    cfg["providers"]["fake-anthropic"]["fallback"] = ["fake-openai"]
    cfg["models"]["c1"]["tier"] = "balanced"
    cfg["models"]["b"]["tier"] = "balanced"
    router = Router.from_config(cfg, environ=ENV)
    fake.script("claude-c1", [{"kind": "status", "status": 529}] * 3)
    env = await router.complete("c1", "hi")
    assert env.model == "b"  # fake-openai's balanced model
    assert [(a.model, a.outcome) for a in env.attempts] == [("c1", "error"), ("b", "success")]
    await router.aclose()


def test_an_unknown_provider_in_a_chain_is_an_error() -> None:
    with pytest.raises(
        ConfigError, match=r"providers\.anthropic\.fallback: unknown provider 'grok'"
    ):
        Router.from_config({"providers": {"anthropic": {"fallback": ["grok"]}}}, environ={})
