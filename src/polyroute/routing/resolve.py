"""Route resolution: a name the caller gives → an ordered pool, a strategy, parameters.

==============================  =============================================
caller says                     resolves through
==============================  =============================================
``gpt-4o-mini``                 the catalog entry (a one-model route)
``openai/gpt-4o-mini``          provider + provider model name
``tier:fast``                   ``tiers.fast`` (capped by ``budget.max_tier``)
``task:text``                   ``tasks.text``
``role:writer`` + product       ``roles.writer.by_product[product]``, else
                                ``roles.writer.models``
``step:marketing/seo_keywords``  the step, else the pipeline default, else
                                ``defaults.model``
``compare-all``                 ``routes.compare-all``
``default`` (or no name)        ``tier:<defaults.tier>`` else ``defaults.model``
==============================  =============================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from polyroute.config.catalog import ModelInfo
from polyroute.config.load import Settings
from polyroute.config.schema import (
    TIERS,
    Acceptance,
    CallParams,
    PoolConfig,
    PoolItem,
    RouteCache,
)
from polyroute.config.validate import is_route_ref
from polyroute.errors import UnknownRouteError
from polyroute.routing.schedule import active_schedule

CALL_PARAM_NAMES = ("max_tokens", "temperature", "top_p")


@dataclass(frozen=True, slots=True)
class Candidate:
    info: ModelInfo
    weight: float = 1.0
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    strategy: str
    candidates: tuple[Candidate, ...]
    params: Mapping[str, Any]  # pool defaults; call parameters override
    timeout: float
    max_fallbacks: int
    accept: Acceptance | None = None
    max_attempts: int | None = None  # a pipeline step's max_retries + 1
    max_tokens_cap: int | None = None  # a tier's token budget
    cache: RouteCache | None = None
    warnings: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    first_chunk_timeout: float | None = None
    idle_timeout: float | None = None
    stream_recovery: str = "continue"


# What a caller may name: a route name (None: the default), a Route, or models in order.
Target = str | Route | Sequence[str] | None


def _params(*layers: CallParams | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        for k in CALL_PARAM_NAMES:
            v = getattr(layer, k)
            if v is not None:
                out[k] = v
    return out


class Resolver:
    def __init__(self, settings: Settings, now: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.cfg = settings.config
        self.catalog = settings.catalog
        self._now = now
        # Routes are cached per name, product type and active schedule window.
        self._cache: dict[tuple[str, str | None, int | None], Route] = {}
        self._scheduled = self._names_with_schedules()

    def _names_with_schedules(self) -> frozenset[str]:
        names = {f"tier:{n}" for n, p in self.cfg.tiers.items() if p.schedules}
        names |= {f"task:{n}" for n, p in self.cfg.tasks.items() if p.schedules}
        names |= {n for n, p in self.cfg.routes.items() if p.schedules}
        return frozenset(names)

    def resolve(self, name: str | None, product_type: str | None = None) -> Route:
        name = name or "default"
        window = self._window(name) if name in self._scheduled else None
        key = (name, product_type, window)
        route = self._cache.get(key)
        if route is None:
            route = self._resolve(name, product_type)
            self._cache[key] = route
        return route

    def pool(
        self,
        models: list[PoolItem],
        *,
        name: str | None = None,
        strategy: str = "fallback",
        labels: Mapping[str, str] | None = None,
        params: CallParams | None = None,
        max_attempts: int | None = None,
        max_fallbacks: int | None = None,
    ) -> Route:
        """An ad-hoc pool — models (or route names) in order — as a route that behaves
        like a configured one: the same cooldowns, retries, fallbacks and records.
        Items may carry their own parameters (``{"model": m, "params": {...}}``)."""
        if not models:
            raise UnknownRouteError(name or "pool:", "an ad-hoc pool needs at least one model")
        refs = [m if isinstance(m, str) else m.model for m in models]
        pool = PoolConfig.model_validate(
            {
                "models": models,
                "strategy": strategy,
                "max_fallbacks": max_fallbacks,
                **(params.model_dump() if params else {}),
            }
        )
        route = self._from_pool(name or "pool:" + ",".join(refs), pool, dict(labels or {}))
        if len(route.candidates) == 1 and strategy == "fallback":
            route = _with(route, strategy="single")
        if max_attempts is not None:
            route = _with(route, max_attempts=max_attempts)
        return route

    def _window(self, name: str) -> int | None:
        pool = self._pool_of(name)
        return active_schedule(pool.schedules, self._now()) if pool else None

    def _pool_of(self, name: str) -> PoolConfig | None:
        kind, sep, rest = name.partition(":")
        if sep and kind == "tier":
            return self.cfg.tiers.get(rest)
        if sep and kind == "task":
            return self.cfg.tasks.get(rest)
        return self.cfg.routes.get(name)

    # -- one function per kind of name ------------------------------------------------

    def _resolve(self, name: str, product_type: str | None) -> Route:
        cfg = self.cfg
        if name == "default":
            return self._resolve(
                f"tier:{cfg.defaults.tier}" if cfg.defaults.tier else cfg.defaults.model,
                product_type,
            )
        kind, sep, rest = name.partition(":")
        if sep and kind == "tier":
            return self._tier(name, rest)
        if sep and kind == "task":
            pool = cfg.tasks.get(rest)
            if pool is None:
                raise UnknownRouteError(name, f"known tasks: {', '.join(cfg.tasks)}")
            return self._from_pool(name, pool, {"task": rest})
        if sep and kind == "role":
            return self._role(name, rest, product_type)
        if sep and kind == "step":
            return self._step(name, rest)
        if name in cfg.routes:
            return self._from_pool(name, cfg.routes[name], {"route": name})
        info = self.catalog.lookup(name)  # raises UnknownRouteError with a hint
        # One model, unless its provider has a fallback chain (seed 003).
        chain = self._with_provider_fallbacks([Candidate(info)])
        return Route(
            name=name,
            strategy="single" if len(chain) == 1 else "fallback",
            candidates=tuple(chain),
            params=_params(self._defaults_params()),
            timeout=cfg.defaults.timeout,
            max_fallbacks=len(chain) - 1,
            first_chunk_timeout=cfg.defaults.first_chunk_timeout,
            idle_timeout=cfg.defaults.idle_timeout,
            stream_recovery=cfg.defaults.stream_recovery,
        )

    def _defaults_params(self) -> CallParams:
        d = self.cfg.defaults
        return CallParams(max_tokens=d.max_tokens, temperature=d.temperature)

    def _tier(self, name: str, tier: str) -> Route:
        cfg = self.cfg
        if tier not in cfg.tiers:
            raise UnknownRouteError(name, f"known tiers: {', '.join(cfg.tiers)}")
        warnings: tuple[str, ...] = ()
        cap = cfg.budget.max_tier
        if cap and tier in TIERS and TIERS.index(tier) > TIERS.index(cap) and cap in cfg.tiers:
            warnings = (f"tier {tier} capped to {cap} by budget.max_tier",)
            tier = cap
        pool = cfg.tiers[tier]
        route = self._from_pool(name, pool, {"tier": tier})
        return _with(route, warnings=(*warnings, *route.warnings), max_tokens_cap=pool.max_tokens)

    def _role(self, name: str, spec: str, product_type: str | None) -> Route:
        role_name, _, inline_product = spec.partition("@")
        product = product_type or inline_product or None
        role = self.cfg.roles.get(role_name)
        if role is None:
            raise UnknownRouteError(name, f"known roles: {', '.join(self.cfg.roles)}")
        labels = {"role": role_name}
        if product:
            labels["product_type"] = product
        items = role.by_product.get(product, role.models) if product else role.models
        return self._from_pool(name, role, labels, items=items)

    def _step(self, name: str, spec: str) -> Route:
        cfg = self.cfg
        pipe_name, _, step_name = spec.partition("/")
        pipe = cfg.pipelines.get(pipe_name)
        if pipe is None:
            raise UnknownRouteError(name, f"known pipelines: {', '.join(cfg.pipelines) or 'none'}")
        step = pipe.steps.get(step_name)
        labels = {"pipeline": pipe_name, "step": step_name}
        items: list[PoolItem]
        if step is not None and step.models:
            items = list(step.models)
        elif step is not None and step.model:
            items = [step.model]
        else:
            items = [pipe.default_model or cfg.defaults.model]
        temperature = (
            step.temperature if step and step.temperature is not None else pipe.default_temperature
        )
        retries = (
            step.max_retries if step and step.max_retries is not None else pipe.default_max_retries
        )
        strategy = "parallel" if step and step.routing == "parallel" else "fallback"
        pool = PoolConfig(
            models=items,
            strategy=strategy,
            temperature=temperature,
            max_tokens=step.max_tokens if step else None,
        )
        route = self._from_pool(name, pool, labels)
        if len(route.candidates) == 1 and strategy == "fallback":
            route = _with(route, strategy="single")
        if retries is not None:
            route = _with(route, max_attempts=retries + 1)
        return route

    def _from_pool(
        self,
        name: str,
        pool: PoolConfig,
        labels: dict[str, str],
        items: list[PoolItem] | None = None,
    ) -> Route:
        cfg = self.cfg
        warnings: tuple[str, ...] = ()
        if items is None and pool.schedules:
            active = active_schedule(pool.schedules, self._now())
            if active is not None:
                items = pool.schedules[active].models
                warnings = (f"{name}: schedule {pool.schedules[active].hours} in effect",)
        candidates = self._expand(items if items is not None else pool.models, {name})
        if pool.strategy == "cascade" and pool.order == "price":
            # A cascade escalates from the cheapest; a stable sort keeps listed order on ties.
            candidates.sort(key=lambda c: c.info.price_input + c.info.price_output)
        return Route(
            name=name,
            strategy=pool.strategy,
            candidates=tuple(candidates),
            params=_params(self._defaults_params(), pool),
            timeout=pool.timeout or cfg.defaults.timeout,
            max_fallbacks=(
                pool.max_fallbacks
                if pool.max_fallbacks is not None
                else cfg.policies.fallback.max_fallbacks
            ),
            accept=pool.accept,
            labels=labels,
            warnings=warnings,
            cache=pool.cache,
            first_chunk_timeout=pool.first_chunk_timeout or cfg.defaults.first_chunk_timeout,
            idle_timeout=pool.idle_timeout or cfg.defaults.idle_timeout,
            stream_recovery=pool.stream_recovery or cfg.defaults.stream_recovery,
        )

    def _expand(self, items: list[PoolItem], seen: set[str]) -> list[Candidate]:
        """Pool members may name other routes: their candidates join in order."""
        out: list[Candidate] = []
        for item in items:
            ref = item if isinstance(item, str) else item.model
            if is_route_ref(self.cfg, ref):
                if ref in seen:
                    raise UnknownRouteError(ref, "route cycle")
                out.extend(self.resolve(ref).candidates if ref not in seen else ())
                continue
            info = self.catalog.lookup(ref)
            if isinstance(item, str):
                out.append(Candidate(info))
            else:
                out.append(Candidate(info, item.weight, dict(item.params)))
        out = self._with_provider_fallbacks(out)
        # The same model twice in one pool would only repeat a failure.
        unique: dict[str, Candidate] = {}
        for c in out:
            unique.setdefault(c.info.id, c)
        return list(unique.values())

    def _with_provider_fallbacks(self, candidates: list[Candidate]) -> list[Candidate]:
        """Seed 003's fallback chains (``providers.<name>.fallback``): after each candidate,
        the model of the same tier from each provider of its chain, in order."""
        specs = self.settings.providers
        if not any(specs[c.info.provider].fallback for c in candidates if c.info.provider in specs):
            return candidates
        out: list[Candidate] = []
        for c in candidates:
            out.append(c)
            spec = specs.get(c.info.provider)
            for provider in spec.fallback if spec is not None and c.info.tier else ():
                twin = self._same_tier(provider, c.info.tier)
                if twin is not None:
                    out.append(Candidate(twin, c.weight, c.params))
        return out

    def _same_tier(self, provider: str, tier: str | None) -> ModelInfo | None:
        # (Whether it can serve a given request — vision, context — is the call's check.)
        for info in self.catalog:
            if info.provider == provider and info.tier == tier and info.has("text"):
                return info
        return None


def _with(route: Route, **changes: Any) -> Route:
    from dataclasses import replace

    return replace(route, **changes)
