"""Provider presets (data in presets.yaml) merged with the user's ``providers``.

A preset is a base URL, a key variable and a key page: every OpenAI-compatible
provider is one of these, not a module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from polyroute.config.schema import ProviderConfig, RetryOverride, SimulatorSettings
from polyroute.errors import ConfigError

WIRE_OF_TYPE = {
    "openai": "openai",
    "openai-compatible": "openai",
    "anthropic": "anthropic",
    "simulator": "simulator",
}


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    wire: str  # openai | anthropic | simulator
    base_url: str | None
    api_key_env: str | None
    api_key_required: bool = True
    key_page: str | None = None
    docs: str | None = None
    default_models: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    retry: RetryOverride | None = None
    timeout: float | None = None
    simulator: SimulatorSettings | None = None
    rpm: int | None = None
    tpm: int | None = None
    builtin: bool = True
    # True where the catalog knows the provider's model line-up (its own API, its own
    # names): a provider/model naming something the catalog does not list there is
    # flagged at load.  False for gateways and local servers, whose names are open-ended.
    closed_catalog: bool = False
    fallback: tuple[str, ...] = ()  # providers whose same-tier model is tried next
    responses_api: bool = False  # serves OpenAI's Responses API (/responses) itself
    batch_discount: float = 1.0  # price factor of its batch API (where it has one)

    @property
    def base_url_env(self) -> str:
        return env_prefix(self.name) + "_BASE_URL"


def env_prefix(provider: str) -> str:
    return provider.upper().replace("-", "_")


@cache
def builtin_presets_data() -> dict[str, Any]:
    text = resources.files("polyroute.providers").joinpath("presets.yaml").read_text("utf-8")
    data = yaml.safe_load(text) or {}
    providers = data.get("providers") or {}
    if not isinstance(providers, dict):
        raise ConfigError("built-in presets.yaml: 'providers' must be a mapping")
    return providers


def _from_preset(name: str, raw: Mapping[str, Any]) -> ProviderSpec:
    return ProviderSpec(
        name=name,
        wire=str(raw.get("wire", "openai")),
        base_url=raw.get("base_url"),
        api_key_env=raw.get("api_key_env"),
        api_key_required=bool(raw.get("api_key_required", True)),
        key_page=raw.get("key_page"),
        docs=raw.get("docs"),
        default_models=dict(raw.get("default_models") or {}),
        headers=dict(raw.get("headers") or {}),
        closed_catalog=bool(raw.get("closed_catalog", False)),
        responses_api=bool(raw.get("responses_api", False)),
        batch_discount=float(raw.get("batch_discount", 1.0)),
    )


def build_provider_specs(user: Mapping[str, ProviderConfig]) -> dict[str, ProviderSpec]:
    """Built-in presets, adjusted or extended by the user's ``providers`` section."""
    specs = {n: _from_preset(n, r) for n, r in builtin_presets_data().items()}
    for name, pc in user.items():
        base = specs.get(name)
        if base is None:
            wire = WIRE_OF_TYPE[pc.type or "openai-compatible"]
            base = ProviderSpec(
                name=name,
                wire=wire,
                base_url="simulator://local" if wire == "simulator" else None,
                api_key_env=f"{env_prefix(name)}_API_KEY",
                api_key_required=wire not in ("simulator",),
                builtin=False,
            )
        elif pc.type is not None:
            base = _replace(base, wire=WIRE_OF_TYPE[pc.type])
        specs[name] = _replace(
            base,
            base_url=pc.base_url or base.base_url,
            api_key_env=pc.api_key_env or base.api_key_env,
            api_key_required=(
                base.api_key_required if pc.api_key_required is None else pc.api_key_required
            ),
            key_page=pc.key_page or base.key_page,
            headers={**base.headers, **pc.headers},
            retry=pc.retry,
            timeout=pc.timeout,
            simulator=pc.simulator or base.simulator,
            rpm=pc.rpm,
            tpm=pc.tpm,
            closed_catalog=(
                base.closed_catalog if pc.closed_catalog is None else pc.closed_catalog
            ),
            fallback=tuple(pc.fallback) or base.fallback,
            responses_api=base.responses_api if pc.responses_api is None else pc.responses_api,
            batch_discount=pc.batch_discount or base.batch_discount,
        )
    return specs


def _replace(spec: ProviderSpec, **changes: Any) -> ProviderSpec:
    from dataclasses import replace

    return replace(spec, **changes)
