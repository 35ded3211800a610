"""The seeds' public names, as thin façades over the router's parts.

Seed 001 (landing-page builder) wrote its routing against ``ModelRole``,
``ModelPoolManager``, ``ModelClientFactory``, ``FallbackTrigger``,
``should_fallback`` and ``ModelExhaustedError``.  These keep those names
working; the behaviour lives in resolve, cooldown and the provider registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson

from polyroute.config.catalog import ModelInfo
from polyroute.errors import ModelExhaustedError
from polyroute.providers.registry import Client
from polyroute.routing.triggers import FallbackTrigger, trigger_for
from polyroute.routing.validators import PASS, Validation, Verdict, parse_json_content
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


def _role_name(role: str | ModelRole | None) -> str:
    return role.value if isinstance(role, ModelRole) else str(role)


ANY_PRODUCT = "default"  # a rule for every product type without its own
_EMPTY: tuple[Any, ...] = (None, "", [], {})
_MISSING = object()


class FallbackRules:
    """The fields a role's response must carry, per product type: seed 001's
    "missing critical fields" check, as data.

    ``required[role][product_type]`` lists the fields; the product type
    ``"default"`` covers every product type without an entry of its own (an
    entry replaces it, like ``roles.*.by_product``)::

        FallbackRules({"writer": {"ecommerce": ["state_contract"], "booking": ["state_contract"]}})
        FallbackRules({"writer": ["headline"]})          # every product type
    """

    __slots__ = ("required",)
    required: Mapping[str, Mapping[str, tuple[str, ...]]]

    def __init__(
        self, required: Mapping[str, Mapping[str, Iterable[str]] | Iterable[str]] | None = None
    ) -> None:
        table: dict[str, dict[str, tuple[str, ...]]] = {}
        for role, rule in (required or {}).items():
            by = rule if isinstance(rule, Mapping) else {ANY_PRODUCT: rule}
            for product, fields in by.items():
                if isinstance(fields, str):
                    raise TypeError(f"{role}.{product}: list the fields, e.g. [{fields!r}]")
                table.setdefault(_role_name(role), {})[product] = tuple(fields)
        self.required = table

    def __repr__(self) -> str:
        return f"FallbackRules({self.required!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FallbackRules) and self.required == other.required

    def fields_for(self, role: str | ModelRole | None, product_type: str | None) -> tuple[str, ...]:
        by = self.required.get(_role_name(role)) if role is not None else None
        if not by:
            return ()
        if product_type is not None and product_type in by:
            return by[product_type]
        return by.get(ANY_PRODUCT, ())

    def with_rule(
        self, role: str | ModelRole, product_type: str | None, fields: Iterable[str]
    ) -> FallbackRules:
        """A copy with one more (or a replaced) rule."""
        table: dict[str, dict[str, Iterable[str]]] = {
            r: dict(by) for r, by in self.required.items()
        }
        table.setdefault(_role_name(role), {})[product_type or ANY_PRODUCT] = tuple(fields)
        return FallbackRules(table)

    def validator(
        self, role: str | ModelRole, product_type: str | None
    ) -> Callable[[str | None], Validation] | None:
        """A ``validate=`` for ``router.complete``: a JSON answer lacking a required
        field is a hard fail with trigger ``missing_field`` (the router falls back);
        None when this role and product type require nothing."""
        fields = self.fields_for(role, product_type)
        if not fields:
            return None

        def check(content: str | None) -> Validation:
            trig = (
                should_fallback(None, content, role, product_type=product_type, rules=self)
                if content is not None
                else FallbackTrigger.MISSING_FIELD
            )
            if trig is None:
                return PASS
            return Validation(Verdict.HARD_FAIL, trig, _why(trig, fields, product_type))

        return check


# Seed 001's rule: a writer's answer for an ecommerce or booking product needs its
# state_contract.  should_fallback applies it unless given other rules.
SEED_001_FALLBACK_RULES = FallbackRules(
    {"writer": {"ecommerce": ["state_contract"], "booking": ["state_contract"]}}
)


def should_fallback(
    error: BaseException | None,
    response: Any = None,
    role: str | ModelRole | None = None,
    required_fields: Iterable[str] = (),
    *,
    product_type: str | None = None,
    rules: FallbackRules | None = None,
) -> FallbackTrigger | None:
    """Seed 001's check, with its call signature: the trigger an error or a
    response fires, or None.

    * an error: its trigger (``TimeoutError`` → timeout, ``ConnectionError`` →
      connection_error, polyroute's provider errors by kind);
    * ``response.validator_result.hard_fail`` → validator_hard_fail;
    * a field the role needs for the product type is missing or empty →
      missing_field.  The fields are ``required_fields`` plus ``rules``' for
      ``role`` and the product type (``product_type=``, else the response's own
      ``product_type``); ``rules`` defaults to the seed's: writer for ecommerce /
      booking needs ``state_contract``.  ``FallbackRules({})`` checks none.

    ``response`` may be an object, a mapping, an ``Envelope`` or a JSON answer
    (text that is not JSON cannot carry a field: invalid_structure).
    """
    if error is not None:
        trig = trigger_for(error)
        if trig is not None:
            return trig
    if response is None:
        return None
    data = response
    if isinstance(response, Envelope):
        data = response.content
    if isinstance(data, str):
        try:
            data = parse_json_content(data)
        except (ValueError, orjson.JSONDecodeError):
            data = _MISSING
    vr = _field(data, "validator_result")
    if getattr(vr, "hard_fail", False) or (isinstance(vr, Mapping) and vr.get("hard_fail")):
        return FallbackTrigger.VALIDATOR_HARD_FAIL
    if _field(data, "hard_fail") is True:
        return FallbackTrigger.VALIDATOR_HARD_FAIL
    product = product_type if product_type is not None else _field(data, "product_type")
    active = SEED_001_FALLBACK_RULES if rules is None else rules
    needed = [
        *required_fields,
        *active.fields_for(role, product if isinstance(product, str) else None),
    ]
    if needed and data is _MISSING:
        return FallbackTrigger.INVALID_STRUCTURE
    for name in needed:
        if _field(data, name) in _EMPTY:
            return FallbackTrigger.MISSING_FIELD
    return None


def _field(data: Any, name: str) -> Any:
    if data is _MISSING or data is None:
        return None
    if isinstance(data, Mapping):
        return data.get(name)
    return getattr(data, name, None)


def _why(trig: FallbackTrigger, fields: tuple[str, ...], product_type: str | None) -> str:
    what = f"for product type {product_type!r}" if product_type else "for this role"
    if trig is FallbackTrigger.INVALID_STRUCTURE:
        return f"answer is not JSON, so it cannot carry {', '.join(fields)} ({what})"
    return f"answer lacks a field required {what}: {', '.join(fields)}"
