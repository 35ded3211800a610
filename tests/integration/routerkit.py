"""A router wired to the fake provider, with an injected clock and random source."""

from __future__ import annotations

import random
from typing import Any

from polyroute import ManualClock, Router
from tests.fakeprovider import FakeProviderThread

OPENAI_KEY = "sk-fake-openai-SECRET-0123456789"
ANTHROPIC_KEY = "sk-ant-fake-SECRET-9876543210"
ENV = {"FAKE_OPENAI_KEY": OPENAI_KEY, "FAKE_ANTHROPIC_KEY": ANTHROPIC_KEY}


def fake_config(fake: FakeProviderThread, **sections: Any) -> dict[str, Any]:
    """Providers pointing at the fake, models a..e (OpenAI wire) and c1 (Anthropic)."""
    models: dict[str, Any] = {
        name: {
            "provider": "fake-openai",
            "model": f"model-{name}",
            "price": {"input": 1.0, "output": 2.0},
            "context_window": 8000,
            "max_output_tokens": 1000,
            "capabilities": ["text", "json", "tools"],
        }
        for name in "abcde"
    }
    models["c1"] = {
        "provider": "fake-anthropic",
        "model": "claude-c1",
        "price": {"input": 3.0, "output": 15.0},
        "context_window": 200000,
        "capabilities": ["text", "vision"],
    }
    models["v"] = {**models["a"], "model": "model-v", "capabilities": ["text", "vision"]}
    cfg: dict[str, Any] = {
        "providers": {
            "fake-openai": {
                "type": "openai-compatible",
                "base_url": fake.openai_base_url,
                "api_key_env": "FAKE_OPENAI_KEY",
            },
            "fake-anthropic": {
                "type": "anthropic",
                "base_url": fake.anthropic_base_url,
                "api_key_env": "FAKE_ANTHROPIC_KEY",
            },
        },
        "models": models,
        "routes": {"ab": {"models": ["a", "b"]}},
        "policies": {
            "retry": {"max_attempts": 3, "base_delay": 0.5, "max_delay": 4, "max_retry_after": 30},
            "cooldown": {"after_failures": 3, "seconds": 60, "window": 60},
        },
    }
    for k, v in sections.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


def make_router(
    fake: FakeProviderThread, seed: int = 0, env: dict[str, str] | None = None, **sections: Any
) -> tuple[Router, ManualClock]:
    clock = ManualClock()
    router = Router.from_config(
        fake_config(fake, **sections),
        environ=ENV if env is None else env,
        clock=clock,
        rng=random.Random(seed),
    )
    return router, clock
