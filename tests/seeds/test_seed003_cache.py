"""Seed 003 "Response Caching": CACHE_CONFIG namespaces and AI_CACHE_ENABLED.

The seed's block, as polyroute config::

    cache:
      namespaces:
        pattern_analysis:   {ttl: 3600,  max_size: 1000}
        template_selection: {ttl: 86400, max_size: 500}
        modification_map:   {ttl: 86400, max_size: 100}

Declaring namespaces turns the cache on; a call in a declared namespace is cached
whatever its temperature (the user said those analyses may be reused); a call
naming an undeclared namespace is an error.
"""

from __future__ import annotations

import pytest

from polyroute import ConfigError, Router

CACHE_CONFIG = {
    "namespaces": {
        "pattern_analysis": {"ttl": 3600, "max_size": 1000},
        "template_selection": {"ttl": 86400, "max_size": 500},
        "modification_map": {"ttl": 86400, "max_size": 100},
    }
}


async def test_declared_namespace_caches_sampled_analyses() -> None:
    router = Router.from_config({"cache": CACHE_CONFIG}, environ={})
    first = await router.complete(
        "tier:fast", "Analyse: 4/4 rock", temperature=0.7, cache_namespace="pattern_analysis"
    )
    again = await router.complete(
        "tier:fast", "Analyse: 4/4 rock", temperature=0.7, cache_namespace="pattern_analysis"
    )
    assert not first.cache_hit and again.cache_hit and again.content == first.content
    plain = await router.complete("tier:fast", "Analyse: 4/4 rock", temperature=0.7)
    assert not plain.cache_hit  # outside a namespace, sampled answers are not reused
    await router.aclose()


async def test_unknown_namespace_is_an_error() -> None:
    router = Router.from_config({"cache": CACHE_CONFIG}, environ={})
    with pytest.raises(ConfigError, match="cache namespace 'drum_fills' is not declared"):
        await router.complete("tier:fast", "x", cache_namespace="drum_fills")
    await router.aclose()


async def test_ai_cache_enabled_caches_greedy_calls() -> None:
    router = Router.from_config({}, environ={"AI_CACHE_ENABLED": "true", "AI_CACHE_TTL": "60"})
    await router.complete("tier:fast", "classify: funk", temperature=0)
    hit = await router.complete("tier:fast", "classify: funk", temperature=0)
    assert hit.cache_hit and hit.cost == 0
    await router.aclose()
