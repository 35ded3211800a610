"""Whether (and under which key) one routed call may use the response cache."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from polyroute.cache.key import cache_key, cacheable
from polyroute.config.schema import Acceptance, RouteCache


@dataclass(frozen=True, slots=True)
class CachePlan:
    namespace: str | None
    key: str
    ttl: float | None


def plan_for(
    route_name: str,
    route_cache: RouteCache | None,
    models: Sequence[str],
    messages: Sequence[Mapping[str, Any]],
    effective_params: Mapping[str, Any],
    accept: Acceptance | Mapping[str, Any] | None,
    callable_validator: bool,
    opt_in: bool | None,
    namespace: str | None,
    extra: Mapping[str, Any] | None = None,
    allow_sampled: bool = False,
) -> CachePlan | None:
    """None when the call must not touch the cache: opted out (per call or per
    route), sampling without the route's leave, a caller's validator function
    (it cannot be part of a key), or a request with no JSON form."""
    if callable_validator:
        return None
    opt_out = opt_in is False or (route_cache is not None and not route_cache.enabled)
    allow = allow_sampled or bool(route_cache and route_cache.allow_nonzero_temperature)
    if not cacheable(effective_params, allow_nonzero_temperature=allow, opt_out=opt_out):
        return None
    accept_dict = accept.model_dump(exclude_none=True) if isinstance(accept, Acceptance) else accept
    keyed = dict(extra or {})  # e.g. a forwarded native body: fields the messages lack
    if accept_dict:
        keyed["accept"] = accept_dict
    try:
        key = cache_key(
            route_name,
            messages,
            effective_params,
            models=models,
            extra=keyed or None,
        )
    except TypeError:
        return None
    ns = namespace or (route_cache.namespace if route_cache else None)
    return CachePlan(ns, key, route_cache.ttl if route_cache else None)
