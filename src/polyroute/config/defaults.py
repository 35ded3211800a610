"""Built-in pools for every tier, task and role, so polyroute runs with no config.

With no key set, each built-in pool is served by the ``simulator`` provider
under the real models' names and prices (``simulator/gpt-4o-mini`` costs what
gpt-4o-mini costs).  Once a provider's key is set, the built-in pools use that
provider's real models.  Only built-in pools are ever given simulator stand-ins:
a model the user configured is never silently replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Seed 003's tiers (models and limits), first entry primary.
BUILTIN_TIERS: dict[str, dict[str, Any]] = {
    "fast": {
        "models": [
            "claude-3-5-haiku-20241022",
            "gpt-4o-mini",
            "llama-3.1-8b-instant",
            "command-light",
        ],
        "max_tokens": 256,
        "temperature": 0.3,
        "timeout": 5.0,
    },
    "balanced": {
        "models": ["claude-sonnet-4-20250514", "gpt-4o", "llama-3.3-70b-versatile", "command-r"],
        "max_tokens": 1024,
        "temperature": 0.7,
        "timeout": 30.0,
    },
    "advanced": {
        "models": [
            "claude-sonnet-4-20250514",
            "gpt-4o",
            "llama-3.3-70b-versatile",
            "command-r-plus",
        ],
        "max_tokens": 2048,
        "temperature": 0.8,
        "timeout": 60.0,
    },
    "expert": {
        "models": [
            "claude-opus-4-5-20251101",
            "gpt-4o",
            "llama-3.3-70b-versatile",
            "command-r-plus",
        ],
        "max_tokens": 4096,
        "temperature": 0.7,
        "timeout": 120.0,
    },
}

# Seed 004's task types.
BUILTIN_TASKS: dict[str, dict[str, Any]] = {
    "text": {"models": ["gpt-4o-mini", "claude-3-5-sonnet-20241022"]},
    "image": {"models": ["dall-e-3", "dall-e-2"]},
    "agent": {"models": ["gpt-4.1", "claude-sonnet-4-20250514"]},
    "video-slides": {"models": ["gpt-4o-mini", "claude-3-5-haiku-20241022"]},
    # Not a seed's task: the default route of /v1/embeddings and Router.embed.
    "embedding": {"models": ["text-embedding-3-small", "text-embedding-3-large"]},
}

# Seed 001's roles: light classifier, stable writer/validator, vision-capable refiner.
BUILTIN_ROLES: dict[str, dict[str, Any]] = {
    "classifier": {"models": ["gpt-4o-mini", "claude-3-5-haiku-20241022"]},
    "writer": {
        "models": ["gpt-4o", "claude-sonnet-4-20250514"],
        "by_product": {
            "landing": ["gpt-4o-mini", "gpt-4o"],
            "card": ["gpt-4o-mini", "gpt-4o"],
        },
    },
    "expander": {"models": ["gpt-4o-mini", "gpt-4o"]},
    "validator": {"models": ["gpt-4o", "claude-sonnet-4-20250514"]},
    "style_refiner": {
        "models": ["gpt-4o", "claude-sonnet-4-20250514"],
        "by_product": {
            "landing": ["claude-sonnet-4-20250514", "gpt-4o"],
            "card": ["claude-sonnet-4-20250514", "gpt-4o"],
        },
    },
}

BUILTIN_DEFAULT_MODEL = "gpt-4o"
SIMULATOR = "simulator"
# Providers whose models may appear in built-in pools (ollama needs a local server).
_CLOUD = frozenset(
    {
        "openai",
        "anthropic",
        "gemini",
        "groq",
        "cohere",
        "together",
        "mistral",
        "deepseek",
        "openrouter",
    }
)


class PoolLocalizer:
    """Fits a built-in pool to the credentials present.

    ``provider_of`` maps a catalog id to its provider; ``has_key`` says whether
    a provider has credentials.  ``prefer`` (``AI_PROVIDER``) puts that
    provider's models first and keeps them even without a key, so a missing key
    is reported rather than hidden.
    """

    def __init__(
        self,
        provider_of: Callable[[str], str | None],
        has_key: Callable[[str], bool],
        prefer: str | None = None,
        allowed: frozenset[str] | None = None,
    ) -> None:
        self._provider_of = provider_of
        self._has_key = has_key
        self._prefer = prefer
        self._allowed = allowed

    def _usable(self, model: str) -> bool:
        p = self._provider_of(model)
        if p is None or (self._allowed is not None and p not in self._allowed):
            return False
        return p == self._prefer or (p in _CLOUD and self._has_key(p))

    def pool(self, models: list[str]) -> list[str]:
        if self._prefer:
            models = sorted(models, key=lambda m: self._provider_of(m) != self._prefer)
        real = [m for m in models if self._usable(m)]
        if real:
            return real
        return [f"{SIMULATOR}/{m}" for m in models]

    def model(self, model: str) -> str:
        return self.pool([model])[0]


def builtin_sections(loc: PoolLocalizer) -> dict[str, Any]:
    """The built-in tiers, tasks, roles and default model, fitted by ``loc``."""

    def fit(section: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, body in section.items():
            b = dict(body)
            b["models"] = loc.pool(list(body["models"]))
            if "by_product" in body:
                b["by_product"] = {k: loc.pool(list(v)) for k, v in body["by_product"].items()}
            out[name] = b
        return out

    return {
        "tiers": fit(BUILTIN_TIERS),
        "tasks": fit(BUILTIN_TASKS),
        "roles": fit(BUILTIN_ROLES),
        "default_model": loc.model(BUILTIN_DEFAULT_MODEL),
    }
