"""Seed 001 (landing-page builder): its ``MODEL_CATALOG`` loads as written, and an
invalid config is refused with a clear error ("Raises clear error on invalid config").

The seed's block, as the seed writes it (Python), is used unchanged as the
``models`` section: entries carry ``model``, ``base_url``, ``capabilities`` and
``max_tokens`` (the model's token limit, 128000 for gpt-4o-mini: its context
window) and no ``provider``.  A model whose base URL is a preset's belongs to that
preset; one with an endpoint or key variable of its own is served by a provider of
its own, made at load time, so routing needs no special case.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from polyroute import ConfigError, Router, load_settings
from tests.fakeprovider import FakeProviderThread

# Copied from the seed's "Configuration Structure" (the "# ... more models" line dropped).
MODEL_CATALOG: dict[str, dict[str, Any]] = {
    "light-1": {
        "model": "gpt-4o-mini",
        "base_url": "https://api.openai.com/v1",
        "capabilities": ["text"],
        "max_tokens": 128000,
    },
    "stable-1": {
        "model": "gpt-4o",
        "base_url": "https://api.openai.com/v1",
        "capabilities": ["text", "vision"],
        "max_tokens": 128000,
    },
}

SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "001_3dd1cfe1d6ea2561.txt"


def test_the_block_here_is_the_seeds() -> None:
    if not SEED.is_file():
        pytest.skip(f"seed text not beside this checkout ({SEED})")
    text = SEED.read_text("utf-8")
    block = re.search(r"MODEL_CATALOG = (\{.*?\n\})", text, re.S)
    assert block is not None
    without_comments = re.sub(r"#[^\n]*", "", block.group(1))
    assert ast.literal_eval(without_comments) == MODEL_CATALOG


def seed_config() -> dict[str, Any]:
    return {
        "models": MODEL_CATALOG,
        "roles": {
            "classifier": {"models": ["light-1"]},
            "style_refiner": {"models": ["stable-1", "light-1"]},
        },
    }


def test_model_catalog_loads_as_written() -> None:
    s = load_settings(data=seed_config(), environ={})
    light, stable = s.catalog.lookup("light-1"), s.catalog.lookup("stable-1")
    # The OpenAI base URL is the openai preset's: same provider, key and key page.
    assert (light.provider, light.name) == ("openai", "gpt-4o-mini")
    assert (stable.provider, stable.name) == ("openai", "gpt-4o")
    # max_tokens is the context window, as the seed means it.
    assert light.context_window == stable.context_window == 128000
    assert light.capabilities == frozenset({"text"})
    assert stable.has("vision") and not light.has("vision")
    assert s.config.models["light-1"].provider == "openai"
    assert set(s.providers) == set(load_settings(data={}, environ={}).providers)


def test_its_models_need_the_openai_key() -> None:
    router = Router.from_config(seed_config(), environ={})
    status = router.registry.status("openai")
    assert status.env_var == "OPENAI_API_KEY" and not status.present


async def test_a_model_with_its_own_endpoint_and_key_is_called_there(
    fake: FakeProviderThread,
) -> None:
    """Seed 001's "Supports custom base_url": a per-model endpoint and key variable."""
    catalog = {
        **MODEL_CATALOG,
        "local-1": {
            "model": "model-a",
            "base_url": fake.openai_base_url,
            "api_key_env": "LOCAL_ONE_KEY",
            "capabilities": ["text"],
            "max_tokens": 32768,
        },
    }
    cfg = {"models": catalog, "roles": {"writer": {"models": ["local-1", "stable-1"]}}}
    router = Router.from_config(cfg, environ={"LOCAL_ONE_KEY": "sk-local-one"})
    spec = router.settings.providers["local-1"]
    assert (spec.base_url, spec.api_key_env, spec.wire) == (
        fake.openai_base_url,
        "LOCAL_ONE_KEY",
        "openai",
    )
    assert router.catalog.lookup("local-1").context_window == 32768
    async with router:
        env = await router.complete("role:writer", "hi")
    assert env.provider == "local-1" and env.model == "local-1"
    sent = fake.requests_to("/v1/chat/completions")
    assert sent[-1].body["model"] == "model-a"
    assert sent[-1].headers["authorization"] == "Bearer sk-local-one"


def test_same_url_other_key_is_its_own_provider() -> None:
    catalog = {"team-b": {**MODEL_CATALOG["stable-1"], "api_key_env": "TEAM_B_OPENAI_KEY"}}
    s = load_settings(data={"models": catalog}, environ={})
    spec = s.providers["team-b"]
    assert spec.api_key_env == "TEAM_B_OPENAI_KEY"
    assert spec.key_page == s.providers["openai"].key_page  # still OpenAI's key page
    assert s.catalog.lookup("team-b").provider == "team-b"


def test_max_tokens_and_a_different_context_window_are_refused() -> None:
    entry = {**MODEL_CATALOG["light-1"], "context_window": 64000}
    with pytest.raises(ConfigError) as info:
        load_settings(data={"models": {"light-1": entry}}, environ={})
    assert info.value.path == "models.light-1"
    assert "max_tokens (128000) and context_window (64000)" in str(info.value)


def test_an_entry_with_neither_provider_nor_base_url_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(data={"models": {"light-1": {"model": "gpt-4o-mini"}}}, environ={})
    assert info.value.path == "models.light-1"
    assert "needs a provider" in str(info.value) and "base_url" in str(info.value)


@pytest.mark.parametrize("url", ["not a url", "api.openai.com/v1", "ftp://x.example/v1", ""])
def test_invalid_base_url_raises_a_clear_error(url: str) -> None:
    entry = {**MODEL_CATALOG["light-1"], "base_url": url}
    with pytest.raises(ConfigError) as info:
        load_settings(data={"models": {"light-1": entry}}, environ={})
    assert info.value.path == "models.light-1.base_url"
    assert "not an http(s) URL" in str(info.value)
    assert "https://api.openai.com/v1" in str(info.value)
