"""The client factory: one configured client per (provider, base URL, key), reused.

Credentials are read from the environment by variable name when a provider is
first used; a missing key raises ``MissingCredentialsError`` naming the
variable and the key page.  Nothing here ever formats a key into text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from polyroute.errors import ConfigError, MissingCredentialsError
from polyroute.providers.anthropic import AnthropicAdapter
from polyroute.providers.base import Adapter, Endpoint, Secret
from polyroute.providers.openai import OpenAIAdapter
from polyroute.providers.presets import ProviderSpec
from polyroute.providers.simulator import SimulatorAdapter


@dataclass(frozen=True, slots=True)
class Client:
    """An endpoint bound to the adapter that speaks its wire format."""

    endpoint: Endpoint
    adapter: Adapter
    spec: ProviderSpec


@dataclass(frozen=True, slots=True)
class CredentialStatus:
    provider: str
    wire: str
    env_var: str | None
    present: bool
    required: bool
    base_url: str | None
    key_page: str | None

    @property
    def usable(self) -> bool:
        return self.present or not self.required


class ProviderRegistry:
    def __init__(self, specs: Mapping[str, ProviderSpec], environ: Mapping[str, str]) -> None:
        self.specs = dict(specs)
        self._environ = environ
        self._adapters: dict[str, Adapter] = {
            "openai": OpenAIAdapter(),
            "anthropic": AnthropicAdapter(),
            "simulator": SimulatorAdapter(),
        }
        self._clients: dict[tuple[str, str, int], Client] = {}

    def spec(self, provider: str) -> ProviderSpec:
        try:
            return self.specs[provider]
        except KeyError:
            raise ConfigError(
                f"unknown provider {provider!r}; known: {', '.join(sorted(self.specs))}",
                path="providers",
            ) from None

    def base_url(self, spec: ProviderSpec) -> str | None:
        return self._environ.get(spec.base_url_env) or spec.base_url

    def key(self, spec: ProviderSpec) -> str | None:
        return self._environ.get(spec.api_key_env) if spec.api_key_env else None

    def status(self, provider: str) -> CredentialStatus:
        spec = self.spec(provider)
        return CredentialStatus(
            provider=provider,
            wire=spec.wire,
            env_var=spec.api_key_env,
            present=bool(self.key(spec)),
            required=spec.api_key_required,
            base_url=self.base_url(spec),
            key_page=spec.key_page,
        )

    def has_credentials(self, provider: str) -> bool:
        return provider in self.specs and self.status(provider).usable

    def client(self, provider: str) -> Client:
        spec = self.spec(provider)
        key = self.key(spec)
        base_url = self.base_url(spec)
        cache_key = (provider, base_url or "", hash(key))
        found = self._clients.get(cache_key)
        if found is not None:
            return found
        if not key and spec.api_key_required:
            raise MissingCredentialsError(
                provider, spec.api_key_env or f"{provider.upper()}_API_KEY", spec.key_page
            )
        if not base_url:
            raise ConfigError(
                f"provider {provider!r} has no base URL: set {spec.base_url_env} "
                f"or providers.{provider}.base_url",
                path=f"providers.{provider}.base_url",
            )
        sim = spec.simulator
        endpoint = Endpoint(
            provider=provider,
            wire=spec.wire,  # type: ignore[arg-type]
            base_url=base_url,
            api_key=Secret(key) if key else None,
            headers=tuple(spec.headers.items()),
            simulator=tuple(sim.model_dump().items()) if sim else (),
            responses_api=spec.responses_api,
        )
        client = Client(endpoint, self._adapters[spec.wire], spec)
        self._clients[cache_key] = client
        return client
