"""The seeds' public names, as thin façades over the router's parts.

Seed 001 (landing-page builder) wrote its routing against ``ModelRole``,
``ModelPoolManager``, ``ModelClientFactory``, ``FallbackTrigger``,
``should_fallback`` and ``ModelExhaustedError``.  These keep those names
working; the behaviour lives in resolve, cooldown and the provider registry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from polyroute.config.catalog import ModelInfo
from polyroute.errors import ModelExhaustedError
from polyroute.providers.registry import Client
from polyroute.routing.triggers import FallbackTrigger, trigger_for
from polyroute.types import Attempt, Envelope

if TYPE_CHECKING:
    from polyroute.router import Router

log = logging.getLogger("polyroute.pool")


class ModelRole(StrEnum):
    CLASSIFIER = "classifier"
    WRITER = "writer"
    EXPANDER = "expander"
    VALIDATOR = "validator"
    STYLE_REFINER = "style_refiner"


@dataclass(frozen=True, slots=True)
class PooledModel:
    """What ``ModelPoolManager.get_model`` hands out: a model bound to the router."""

    info: ModelInfo
    router: Router

    @property
    def model_id(self) -> str:
        return self.info.id

    async def generate(self, prompt: str, **params: Any) -> str:
        env = await self.complete(prompt, **params)
        return env.content or ""

    async def complete(self, prompt: str | list[dict[str, Any]], **params: Any) -> Envelope:
        return await self.router.complete(self.info.id, prompt, **params)


class ModelClientFactory:
    """One client per (provider, base URL, key), created on first use and reused."""

    def __init__(self, router: Router) -> None:
        self._router = router

    def create(self, model_id: str) -> Client:
        info = self._router.catalog.lookup(model_id)
        return self._router.registry.client(info.provider)


class ModelPoolManager:
    """Role pools with failure counts that expire (the router's cooldown)."""

    def __init__(self, router: Router, client_factory: ModelClientFactory | None = None) -> None:
        self.router = router
        self.factory = client_factory or ModelClientFactory(router)

    def pool(self, role: str | ModelRole, product_type: str | None = None) -> list[str]:
        route = self.router.resolve(f"role:{ModelRole(role).value}", product_type)
        return [c.info.id for c in route.candidates]

    def get_model(self, role: str | ModelRole, product_type: str | None = None) -> PooledModel:
        """The first model of the role's pool that is not cooling down and has a client."""
        route = self.router.resolve(f"role:{ModelRole(role).value}", product_type)
        attempts: list[Attempt] = []
        errors: list[BaseException] = []
        for c in route.candidates:
            mid = c.info.id
            if self.router.cooldown.cooling_until(mid) is not None:
                log.info("pool skips cooling model", extra={"role": str(role), "candidate": mid})
                attempts.append(Attempt(mid, c.info.provider, "skipped", trigger="cooldown"))
                continue
            try:
                self.factory.create(mid)
            except Exception as exc:  # a missing key or bad base URL: count it, try the next
                self.report_failure(mid)
                attempts.append(
                    Attempt(
                        mid,
                        c.info.provider,
                        "error",
                        trigger=str(trigger_for(exc) or type(exc).__name__),
                        error=str(exc),
                    )
                )
                errors.append(exc)
                continue
            log.info(
                "pool selected model",
                extra={"role": str(role), "candidate": mid, "product_type": product_type},
            )
            return PooledModel(c.info, self.router)
        raise ModelExhaustedError(
            route.name, attempts, errors, reason=f"no models available for role {role}"
        )

    def report_failure(self, model_id: str) -> None:
        self.router.cooldown.record_failure(model_id, error="reported by caller")

    def reset_failure_count(self, model_id: str) -> None:
        self.router.cooldown.reset(model_id)

    def failure_count(self, model_id: str) -> int:
        return self.router.cooldown.failure_count(model_id)


def should_fallback(
    error: BaseException | None,
    response: Any = None,
    role: str | None = None,
    required_fields: Iterable[str] = (),
) -> FallbackTrigger | None:
    """Seed 001's check: the trigger an error or a response fires, or None.

    ``response`` may carry ``validator_result.hard_fail`` (or ``hard_fail``)
    and, as a mapping or object, the ``required_fields`` a role needs.
    """
    if error is not None:
        return trigger_for(error)
    if response is None:
        return None
    vr = getattr(response, "validator_result", None)
    if vr is not None and getattr(vr, "hard_fail", False):
        return FallbackTrigger.VALIDATOR_HARD_FAIL
    for name in required_fields:
        value = response.get(name) if isinstance(response, dict) else getattr(response, name, None)
        if value in (None, "", [], {}):
            return FallbackTrigger.MISSING_FIELD
    return None
