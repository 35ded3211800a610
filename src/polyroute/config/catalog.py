"""The model catalog: built-in data file plus the user's ``models`` section.

Facts about models (provider, price, context window, capabilities) are data;
no code branches on model names.  A ``provider/model`` reference needs no
entry: it borrows the facts of a catalog entry with the same model name when
there is one (so ``simulator/gpt-4o`` is priced like ``gpt-4o``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from polyroute.config.schema import ModelEntry
from polyroute.errors import ConfigError, UnknownRouteError
from polyroute.types import Usage

PER_MILLION = 1_000_000.0


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str  # catalog id, or "provider/model" for an uncatalogued reference
    provider: str
    name: str  # the provider's model name, sent on the wire
    price_input: float = 0.0  # USD per 1M tokens
    price_output: float = 0.0
    price_per_image: float | None = None
    price_cache_read: float | None = None  # None: like other input tokens
    price_cache_write: float | None = None
    price_as_of: str | None = None
    price_known: bool = True
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: frozenset[str] = field(default_factory=lambda: frozenset({"text"}))
    tier: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    # False for a provider/model reference nothing in the catalog describes: its
    # capabilities above are a placeholder, so load-time checks must not judge it.
    facts_known: bool = True

    def cost(self, usage: Usage, images: int = 0) -> float:
        read, written = usage.cached_tokens, usage.cache_write_tokens
        plain = max(0, usage.prompt_tokens - read - written)
        read_price = self.price_input if self.price_cache_read is None else self.price_cache_read
        write_price = self.price_input if self.price_cache_write is None else self.price_cache_write
        c = (
            plain * self.price_input
            + read * read_price
            + written * write_price
            + usage.completion_tokens * self.price_output
        ) / PER_MILLION
        if images and self.price_per_image:
            c += images * self.price_per_image
        return round(c, 10)

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "model": self.name,
            "price": {
                "input": self.price_input,
                "output": self.price_output,
                "per_image": self.price_per_image,
                "cache_read": self.price_cache_read,
                "cache_write": self.price_cache_write,
                "as_of": self.price_as_of,
            },
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "capabilities": sorted(self.capabilities),
            "tier": self.tier,
        }


def _info(model_id: str, e: ModelEntry) -> ModelInfo:
    if e.provider is None:  # the loader gives every entry a provider (config.endpoints)
        raise ConfigError(f"models.{model_id}: no provider", path=f"models.{model_id}.provider")
    return ModelInfo(
        id=model_id,
        provider=e.provider,
        name=e.model or model_id,
        price_input=e.price.input,
        price_output=e.price.output,
        price_per_image=e.price.per_image,
        price_cache_read=e.price.cache_read,
        price_cache_write=e.price.cache_write,
        price_as_of=e.price.as_of,
        context_window=e.context_window or None,
        max_output_tokens=e.max_output_tokens or None,
        capabilities=frozenset(e.capabilities),
        tier=e.tier,
        rpm=e.rpm,
        tpm=e.tpm,
    )


@cache
def builtin_catalog_data() -> dict[str, Any]:
    text = resources.files("polyroute.config").joinpath("catalog.yaml").read_text("utf-8")
    data = yaml.safe_load(text) or {}
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise ConfigError("built-in catalog.yaml: 'models' must be a mapping")
    return models


@cache
def builtin_entries() -> dict[str, ModelEntry]:
    out: dict[str, ModelEntry] = {}
    for mid, raw in builtin_catalog_data().items():
        try:
            out[mid] = ModelEntry.model_validate(raw)
        except Exception as exc:  # a broken shipped file is a packaging bug: say where
            raise ConfigError(f"built-in catalog entry models.{mid}: {exc}") from exc
    return out


class Catalog:
    """Lookup of model facts by catalog id or ``provider/model``."""

    def __init__(self, entries: Mapping[str, ModelEntry], providers: frozenset[str]) -> None:
        self._infos = {mid: _info(mid, e) for mid, e in entries.items()}
        self._by_name: dict[str, ModelInfo] = {}
        for info in self._infos.values():
            self._by_name.setdefault(info.name, info)
        self.providers = providers

    @classmethod
    def build(cls, user_models: Mapping[str, ModelEntry], providers: frozenset[str]) -> Catalog:
        merged = dict(builtin_entries())
        merged.update(user_models)
        return cls(merged, providers)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._infos

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._infos.values())

    def __len__(self) -> int:
        return len(self._infos)

    def get(self, model_id: str) -> ModelInfo | None:
        return self._infos.get(model_id)

    def split_provider_ref(self, ref: str) -> tuple[str, str] | None:
        """``("openai", "gpt-4o-mini")`` for ``openai/gpt-4o-mini`` when the
        prefix is a known provider; None otherwise."""
        provider, sep, name = ref.partition("/")
        if sep and name and provider in self.providers:
            return provider, name
        return None

    def models_of(self, provider: str) -> list[ModelInfo]:
        """The catalog entries served by ``provider``, in catalog order."""
        return [m for m in self._infos.values() if m.provider == provider]

    def is_model_ref(self, ref: str) -> bool:
        return ref in self._infos or self.split_provider_ref(ref) is not None

    def lookup(self, ref: str) -> ModelInfo:
        info = self._infos.get(ref)
        if info is not None:
            return info
        split = self.split_provider_ref(ref)
        if split is None:
            raise UnknownRouteError(
                ref,
                "use a catalog id (polyroute models), provider/model (e.g. openai/gpt-4o-mini), "
                "tier:NAME, task:NAME, role:NAME, step:PIPELINE/STEP or a named route",
            )
        provider, name = split
        twin = self._infos.get(name) or self._by_name.get(name)
        if twin is None:
            return ModelInfo(
                id=ref, provider=provider, name=name, price_known=False, facts_known=False
            )
        return ModelInfo(
            id=ref,
            provider=provider,
            name=name,
            price_input=twin.price_input,
            price_output=twin.price_output,
            price_per_image=twin.price_per_image,
            price_cache_read=twin.price_cache_read,
            price_cache_write=twin.price_cache_write,
            price_as_of=twin.price_as_of,
            context_window=twin.context_window,
            max_output_tokens=twin.max_output_tokens,
            capabilities=twin.capabilities,
            tier=twin.tier,
            rpm=twin.rpm,
            tpm=twin.tpm,
        )
