"""Prompt-cache tokens are read from both wires and priced from the catalog."""

from __future__ import annotations

import pytest

from polyroute.config.load import load_settings
from polyroute.providers.anthropic_convert import usage_dict
from polyroute.types import Usage


def test_anthropic_cache_tokens_become_openai_usage_details() -> None:
    u = usage_dict(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 200,
            "output_tokens": 5,
        }
    )
    assert u["prompt_tokens"] == 1210 and u["completion_tokens"] == 5
    usage = Usage.from_openai(u)
    assert (usage.cached_tokens, usage.cache_write_tokens) == (1000, 200)


def test_openai_cached_tokens_are_read() -> None:
    usage = Usage.from_openai(
        {
            "prompt_tokens": 2000,
            "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 1536},
        }
    )
    assert usage.cached_tokens == 1536 and usage.cache_write_tokens == 0


def test_cached_prompts_are_priced_with_the_cache_prices() -> None:
    catalog = load_settings(environ={}).catalog
    sonnet = catalog.lookup("claude-sonnet-4-20250514")  # input 3, cache read 0.3, write 3.75
    usage = Usage(
        prompt_tokens=1_210_000,
        completion_tokens=0,
        cached_tokens=1_000_000,
        cache_write_tokens=200_000,
    )
    assert sonnet.cost(usage) == pytest.approx(0.01 * 3 + 1 * 0.3 + 0.2 * 3.75)
    gpt = catalog.lookup("gpt-4o")  # input 2.50, cached 1.25
    cached = Usage(prompt_tokens=1_000_000, cached_tokens=1_000_000)
    assert gpt.cost(cached) == pytest.approx(1.25)
    # The simulator twin is priced like the real model, cache prices included.
    assert catalog.lookup("simulator/gpt-4o").cost(cached) == pytest.approx(1.25)
    # A model with no cache prices bills cached tokens as plain input.
    plain = catalog.lookup("openai/some-new-model")
    assert plain.cost(cached) == 0.0 and not plain.price_known
