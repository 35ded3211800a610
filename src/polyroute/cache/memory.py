"""In-process response cache: one LRU per namespace, with a TTL, on an injected clock.

Values are opaque bytes (the façade stores serialized envelopes), so a caller
that mutates the envelope it got cannot change what the next hit returns, and
the memory backend behaves exactly like the Redis one.

Each namespace is an ``OrderedDict`` in least-recently-used order: ``get``
moves a hit to the end, ``set`` appends and pops from the front while the
namespace is over its ``max_size``.  Both are O(1) (amortized for the front
sweep of expired entries).  An expired entry is dropped when it is read or
when it reaches the front; until then it only occupies one of the bounded
slots, so memory stays capped by ``max_size`` per namespace without a scan.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from polyroute.cache.backend import Limits
from polyroute.clock import Clock


class _Space:
    __slots__ = ("entries", "limits")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires, v)


class MemoryCache:
    """Per-namespace LRU + TTL.  Not thread safe: use it from one event loop
    (the router and its sync façade both run on a single loop)."""

    def __init__(
        self,
        clock: Clock,
        default: Limits,
        namespaces: Mapping[str, Limits] | None = None,
    ) -> None:
        self._clock = clock
        self._default = default
        self._limits = dict(namespaces or {})
        self._spaces: dict[str, _Space] = {}

    def limits(self, namespace: str) -> Limits:
        return self._limits.get(namespace, self._default)

    def _space(self, namespace: str) -> _Space:
        space = self._spaces.get(namespace)
        if space is None:
            space = self._spaces[namespace] = _Space(self.limits(namespace))
        return space

    # -- synchronous core (what the async methods run) ----------------------------------

    def get_now(self, namespace: str, key: str) -> bytes | None:
        space = self._spaces.get(namespace)
        if space is None:
            return None
        item = space.entries.get(key)
        if item is None:
            return None
        if item[0] <= self._clock.monotonic():
            del space.entries[key]
            return None
        space.entries.move_to_end(key)
        return item[1]

    def set_now(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        space = self._space(namespace)
        now = self._clock.monotonic()
        entries = space.entries
        entries[key] = (now + (ttl if ttl is not None else space.limits.ttl), value)
        entries.move_to_end(key)
        # Expired entries at the LRU end go first, then the least recently used.
        while entries:
            first_key, (expires, _) = next(iter(entries.items()))
            if expires > now and len(entries) <= space.limits.max_size:
                break
            del entries[first_key]

    def size(self, namespace: str) -> int:
        space = self._spaces.get(namespace)
        return len(space.entries) if space else 0

    # -- the backend interface (see ``polyroute.cache.backend``) ------------------------

    async def get(self, namespace: str, key: str) -> bytes | None:
        return self.get_now(namespace, key)

    async def set(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        self.set_now(namespace, key, value, ttl)

    async def delete(self, namespace: str, key: str) -> None:
        space = self._spaces.get(namespace)
        if space is not None:
            space.entries.pop(key, None)

    async def clear(self, namespace: str | None = None) -> None:
        if namespace is None:
            self._spaces.clear()
        else:
            self._spaces.pop(namespace, None)

    async def close(self) -> None:
        return None
