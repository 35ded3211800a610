"""Builds the ``CallContext`` of one routed call from the router's parts.

Everything a call needs that depends on the route and the request — the retry
policy per provider, the validator, the rate-limit gate, the parameters as
each candidate sees them — is put together here, so the Router stays a façade.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from polyroute.clock import Clock
from polyroute.config.schema import Acceptance, Config
from polyroute.providers.registry import Client, ProviderRegistry
from polyroute.routing.call import CallContext, Invoke
from polyroute.routing.capabilities import Needs
from polyroute.routing.cooldown import CooldownTracker
from polyroute.routing.ratelimit import RateLimiter, limits_for
from polyroute.routing.resolve import Candidate, Route
from polyroute.routing.retry import Backoff
from polyroute.routing.validators import Validate, Validation, acceptance_validator, normalize
from polyroute.tokens import PromptTokens
from polyroute.types import Message


def merge_params(route: Route, candidate: Candidate, params: Mapping[str, Any]) -> dict[str, Any]:
    """Route defaults, then the candidate's own, then the call's (None means unset)."""
    merged = {**route.params, **candidate.params}
    merged.update((k, v) for k, v in params.items() if v is not None)
    cap = route.max_tokens_cap
    if cap is not None and merged.get("max_tokens", cap) > cap:
        merged["max_tokens"] = cap  # a tier's token budget is a ceiling, not a default
    return merged


def validator_for(route: Route, validate: Validate) -> Callable[[str | None], Validation] | None:
    if validate is None:
        return acceptance_validator(route.accept) if route.accept else None
    if isinstance(validate, Acceptance):
        return acceptance_validator(validate)
    if isinstance(validate, Mapping):
        return acceptance_validator(Acceptance.model_validate(validate))
    fn = validate
    return lambda content: normalize(fn(content))


class ContextBuilder:
    def __init__(
        self,
        config: Config,
        registry: ProviderRegistry,
        cooldown: CooldownTracker,
        clock: Clock,
        rng: random.Random,
        limiter: RateLimiter,
        has_limits: bool,
    ) -> None:
        self.config = config
        self.registry = registry
        self.cooldown = cooldown
        self.clock = clock
        self.rng = rng
        self.limiter = limiter
        self.has_limits = has_limits
        self._backoffs: dict[tuple[str, int | None], Backoff] = {}

    def backoff(self, route: Route) -> Callable[[Client], Backoff]:
        attempts = route.max_attempts
        if attempts is None and self.config.defaults.max_retries is not None:
            attempts = self.config.defaults.max_retries + 1
        return lambda client: self._backoff(client.spec.name, attempts)

    def _backoff(self, provider: str, attempts: int | None) -> Backoff:
        # Policies are fixed for the router's life: build each combination once.
        key = (provider, attempts)
        found = self._backoffs.get(key)
        if found is None:
            spec = self.registry.spec(provider)
            found = Backoff.from_policy(self.config.policies.retry, spec.retry, attempts)
            self._backoffs[key] = found
        return found

    def build(
        self,
        route: Route,
        needs: Needs,
        messages: list[Message] | None,
        validate: Validate,
        invoke: Invoke,
        timeout: float | None = None,
    ) -> CallContext:
        ctx = CallContext(
            route=route,
            invoke=invoke,
            registry=self.registry,
            cooldown=self.cooldown,
            backoff_for=self.backoff(route),
            clock=self.clock,
            rng=self.rng,
            needs=needs,
            messages=messages,
            validator=validator_for(route, validate),
            fallback_on_content_filter=self.config.policies.fallback.on_content_filter,
        )
        ctx.warnings.extend(route.warnings)
        if self.has_limits:
            prompt = needs.prompt or PromptTokens(messages or [])
            ctx.rate_limit = self._gate(prompt, needs.max_tokens, timeout or route.timeout)
        return ctx

    def _gate(
        self, prompt: PromptTokens, max_tokens: int, wait_budget: float
    ) -> Callable[[Client, Candidate], Any]:
        async def acquire(client: Client, c: Candidate) -> float:
            limits = limits_for(
                c.info.id,
                c.info.rpm,
                c.info.tpm,
                client.spec.name,
                client.spec.rpm,
                client.spec.tpm,
                lambda: prompt.count(c.info.provider, c.info.name) + max_tokens,
            )
            return await self.limiter.acquire(limits, wait_budget, c.info.id)

        return acquire
