"""Response cache: exact-match answers by normalized request, per namespace.

``ResponseCache`` puts the parts together:

* ``key.cache_key`` / ``key.cacheable``: what identifies a request, and which
  requests may be cached (greedy ones unless the route allows sampling);
* a backend: ``MemoryCache`` (per-namespace LRU + TTL, the default) or
  ``RedisCache`` (``state.url: redis://...``, shared by processes);
* ``SingleFlight``: concurrent identical requests in a process call the
  provider once; with Redis, ``lock.fill_once`` extends that across processes.

Values are envelope dicts (``Envelope.to_dict(include_raw=True)``) stored as
orjson bytes; ``envelope_from_cache`` turns one back into a hit (cost 0, plus
the cost it saved).  The cache never fails a call: a backend error is logged
and the request is served as a miss.  Namespaces not declared in the config
share the ``default`` namespace's limits (``cache.ttl`` / ``cache.max_entries``),
so request-supplied names cannot create unbounded spaces.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from polyroute.cache.backend import Backend, Limits, LockingBackend
from polyroute.cache.envelope import envelope_from_cache
from polyroute.cache.key import cache_key, cacheable
from polyroute.cache.lock import fill_once
from polyroute.cache.memory import MemoryCache
from polyroute.cache.singleflight import SingleFlight
from polyroute.clock import Clock
from polyroute.config.schema import Cache

__all__ = [
    "Backend",
    "CacheStats",
    "Limits",
    "MemoryCache",
    "ResponseCache",
    "SingleFlight",
    "cache_key",
    "cacheable",
    "envelope_from_cache",
]

log = logging.getLogger("polyroute.cache")
DEFAULT_NAMESPACE = "default"
EnvelopeDict = dict[str, Any]


@dataclass(slots=True)
class CacheStats:
    hits: int = 0  # answered from the store
    shared: int = 0  # answered by another caller's in-flight computation
    misses: int = 0  # computed (provider called)
    errors: int = 0  # backend failures, served as misses


@dataclass(slots=True)
class _Filled:
    value: EnvelopeDict
    data: bytes | None  # serialized value; None if it had no JSON form (not stored)
    from_store: bool


class ResponseCache:
    def __init__(
        self,
        backend: Backend,
        *,
        clock: Clock,
        namespaces: Iterable[str] = (),
        lock_ttl: float = 120.0,
        poll: float = 0.05,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.declared = frozenset(namespaces)  # the user's own (seed 003's CACHE_CONFIG)
        self.namespaces = self.declared | {DEFAULT_NAMESPACE}
        # Cross-process election only where the store is shared (Redis).
        self._locks = backend if isinstance(backend, LockingBackend) else None
        self.lock_ttl = lock_ttl
        self.poll = poll
        self._flight: SingleFlight[_Filled] = SingleFlight()
        self.stats = CacheStats()

    @classmethod
    def from_config(
        cls,
        cache_cfg: Cache,
        state_url: str,
        clock: Clock,
        *,
        prefix: str = "polyroute:cache:",
        lock_ttl: float = 120.0,
    ) -> ResponseCache | None:
        """The cache ``config.cache`` asks for, on ``config.state.url``; None if disabled.
        Declaring namespaces turns the cache on unless ``enabled: false`` says otherwise."""
        implied = "enabled" not in cache_cfg.model_fields_set and bool(cache_cfg.namespaces)
        if not (cache_cfg.enabled or implied):
            return None
        default = Limits(ttl=cache_cfg.ttl, max_size=cache_cfg.max_entries)
        spaces = {
            n: Limits(ttl=s.ttl, max_size=s.max_size) for n, s in cache_cfg.namespaces.items()
        }
        backend: Backend
        if state_url.startswith(("redis://", "rediss://")):
            from polyroute.cache.redis import RedisCache

            backend = RedisCache(state_url, prefix, default=default, namespaces=spaces)
        else:
            backend = MemoryCache(clock, default, spaces)
        return cls(backend, clock=clock, namespaces=spaces, lock_ttl=lock_ttl)

    def namespace(self, name: str | None) -> str:
        """The namespace a request lands in: its own if declared, else ``default``."""
        return name if name is not None and name in self.namespaces else DEFAULT_NAMESPACE

    # -- plain get / put ----------------------------------------------------------------

    async def lookup(self, namespace: str | None, key: str) -> EnvelopeDict | None:
        """The stored envelope dict (a fresh copy), or None."""
        ns = self.namespace(namespace)
        data = await self._get(ns, key)
        if data is None:
            return None
        value = self._decode(ns, key, data)
        if value is not None:
            self.stats.hits += 1
        return value

    async def store(
        self,
        namespace: str | None,
        key: str,
        envelope_dict: EnvelopeDict,
        ttl: float | None = None,
    ) -> None:
        """Store an envelope dict; ``ttl`` overrides the namespace's."""
        ns = self.namespace(namespace)
        data = self._encode(envelope_dict)
        if data is not None:
            await self._set(ns, key, data, ttl)

    async def get_or_compute(
        self,
        namespace: str | None,
        key: str,
        compute: Callable[[], Awaitable[EnvelopeDict]],
        ttl: float | None = None,
    ) -> tuple[EnvelopeDict, bool]:
        """The stored value (hit), else ``compute()`` once for all concurrent callers,
        stored.  Returns ``(value, hit)``; ``hit`` is False only for the caller whose
        call reached the provider, so only that one is charged the cost.  An error
        from ``compute`` reaches every concurrent caller and is not stored."""
        ns = self.namespace(namespace)
        found = await self.lookup(ns, key)
        if found is not None:
            return found, True
        filled, shared = await self._flight.do((ns, key), lambda: self._fill(ns, key, compute, ttl))
        if not shared and not filled.from_store:
            self.stats.misses += 1
            return filled.value, False
        if shared:
            self.stats.shared += 1
        else:
            self.stats.hits += 1
        # Every sharer gets its own copy: one caller mutating its envelope must
        # not change another's.
        if filled.data is not None:
            return orjson.loads(filled.data), True
        return copy.deepcopy(filled.value), True

    async def clear(self, namespace: str | None = None) -> None:
        await self.backend.clear(None if namespace is None else self.namespace(namespace))

    async def close(self) -> None:
        await self.backend.close()

    # -- internals ----------------------------------------------------------------------

    async def _fill(
        self,
        ns: str,
        key: str,
        compute: Callable[[], Awaitable[EnvelopeDict]],
        ttl: float | None,
    ) -> _Filled:
        async def fetch() -> _Filled | None:
            data = await self._get(ns, key)
            value = None if data is None else self._decode(ns, key, data)
            return None if value is None else _Filled(value, data, from_store=True)

        async def produce() -> _Filled:
            value = await compute()
            data = self._encode(value)
            if data is not None:
                await self._set(ns, key, data, ttl)
            return _Filled(value, data, from_store=False)

        # A flight that ended between our lookup and now has stored the answer.
        found = await fetch()
        if found is not None:
            return found
        if self._locks is None:
            return await produce()
        return await fill_once(
            self._locks,
            ns,
            key,
            fetch=fetch,
            produce=produce,
            clock=self.clock,
            lock_ttl=self.lock_ttl,
            poll=self.poll,
        )

    async def _get(self, ns: str, key: str) -> bytes | None:
        try:
            return await self.backend.get(ns, key)
        except Exception:
            self.stats.errors += 1
            log.warning("response cache read failed; serving as a miss", exc_info=True)
            return None

    async def _set(self, ns: str, key: str, data: bytes, ttl: float | None) -> None:
        try:
            await self.backend.set(ns, key, data, ttl)
        except Exception:
            self.stats.errors += 1
            log.warning("response cache write failed; answer not cached", exc_info=True)

    def _encode(self, value: EnvelopeDict) -> bytes | None:
        if value.get("cache_hit"):
            return None  # a hit carries cost 0: storing it would lose the saved cost
        try:
            return orjson.dumps(value)
        except TypeError:
            log.warning("envelope has no JSON form; not cached", exc_info=True)
            return None

    def _decode(self, ns: str, key: str, data: bytes) -> EnvelopeDict | None:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
        self.stats.errors += 1
        log.warning("corrupt response cache entry %s/%s ignored", ns, key)
        return None
