"""Response cache in Redis, shared by every process that points at the same URL.

Layout under ``prefix`` (default ``polyroute:cache:``)::

    {prefix}v:{namespace}:{key}   the value (serialized envelope), with PX expiry
    {prefix}i:{namespace}         sorted set of the namespace's keys, score = expiry (µs)
    {prefix}l:{namespace}:{key}   the compute lock (SET NX PX), see ``try_lock``

TTL is Redis's own (``SET ... PX``): entries vanish on time in every process
without a sweep, and Redis owns the clock, so process clocks need not agree.

``max_size`` per namespace is enforced on write, approximately: one Lua script
(one round trip, atomic) sets the value, adds the key to the namespace's sorted
set with its expiry time as score, drops members that already expired, and if
the set is still over ``max_size`` deletes the values of the members that
expire soonest and removes them from the set.  With one TTL per namespace that
is "oldest written goes first" (FIFO; scores are Redis ``TIME`` in
microseconds, exact as doubles, and writes in the same microsecond tie-break
by key); unlike the memory backend, reads do not refresh recency (that would
cost a write per hit).  The count is exact at the moment of each write.
The script names value keys it did not declare, which is fine on a single
Redis or a replica set but not on Redis Cluster.

The ``redis`` package is imported only when a ``redis://`` URL is used, so the
in-memory default needs nothing extra; the client is typed through the small
protocol below so type checking does not need redis either.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

from polyroute import redis_client
from polyroute.cache.backend import Limits

_SET_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl * 1000, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local victims = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  for _, m in ipairs(victims) do redis.call('DEL', ARGV[4] .. m) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
end
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return over
"""

# Delete the lock only if it is still ours: after our PX ran out another
# process may hold it, and a plain DEL would free *its* lock.
_UNLOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class _Script(Protocol):
    async def __call__(
        self, keys: Sequence[str] | None = None, args: Iterable[Any] | None = None
    ) -> Any: ...


class _Client(Protocol):
    """The part of ``redis.asyncio.Redis`` used here."""

    async def get(self, name: str) -> bytes | None: ...

    async def set(
        self, name: str, value: bytes | str, *, px: int | None = None, nx: bool = False
    ) -> Any: ...

    async def exists(self, *names: str) -> int: ...

    async def delete(self, *names: str | bytes) -> int: ...

    def scan_iter(
        self, match: str | None = None, count: int | None = None
    ) -> AsyncIterator[bytes]: ...

    def register_script(self, script: str) -> _Script: ...

    async def ping(self) -> Any: ...

    async def aclose(self) -> None: ...


def _connect(url: str) -> _Client:
    return cast(_Client, redis_client.connect(url))


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _glob_escape(s: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in s)


class RedisCache:
    def __init__(
        self,
        url: str,
        prefix: str = "polyroute:cache:",
        *,
        default: Limits | None = None,
        namespaces: Mapping[str, Limits] | None = None,
        client: _Client | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._default = default or Limits(ttl=3600, max_size=1000)
        self._limits = dict(namespaces or {})
        self._redis: _Client = client if client is not None else _connect(url)
        self._set = self._redis.register_script(_SET_SCRIPT)
        self._unlock = self._redis.register_script(_UNLOCK_SCRIPT)

    def limits(self, namespace: str) -> Limits:
        return self._limits.get(namespace, self._default)

    def _value_prefix(self, namespace: str) -> str:
        return f"{self.prefix}v:{namespace}:"

    def _index(self, namespace: str) -> str:
        return f"{self.prefix}i:{namespace}"

    def _lock(self, namespace: str, key: str) -> str:
        return f"{self.prefix}l:{namespace}:{key}"

    async def ping(self) -> None:
        await self._redis.ping()

    # -- Backend ------------------------------------------------------------------------

    async def get(self, namespace: str, key: str) -> bytes | None:
        return await self._redis.get(self._value_prefix(namespace) + key)

    async def set(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        limits = self.limits(namespace)
        vp = self._value_prefix(namespace)
        await self._set(
            keys=[vp + key, self._index(namespace)],
            args=[value, _ms(ttl if ttl is not None else limits.ttl), limits.max_size, vp, key],
        )

    async def delete(self, namespace: str, key: str) -> None:
        # The index member stays until the next write sweeps or trims it; harmless.
        await self._redis.delete(self._value_prefix(namespace) + key)

    async def clear(self, namespace: str | None = None) -> None:
        """Delete everything under the prefix (or one namespace's values, index, locks)."""
        if namespace is None:
            patterns = [_glob_escape(self.prefix) + "*"]
        else:
            ns = _glob_escape(namespace)
            p = _glob_escape(self.prefix)
            patterns = [f"{p}v:{ns}:*", f"{p}l:{ns}:*", f"{p}i:{ns}"]
        for pattern in patterns:
            batch: list[bytes] = []
            async for k in self._redis.scan_iter(match=pattern, count=500):
                batch.append(k)
                if len(batch) >= 500:
                    await self._redis.delete(*batch)
                    batch.clear()
            if batch:
                await self._redis.delete(*batch)

    async def close(self) -> None:
        await self._redis.aclose()

    # -- LockingBackend: one computer per key across processes --------------------------

    async def try_lock(self, namespace: str, key: str, ttl: float) -> str | None:
        token = secrets.token_hex(8)
        ok = await self._redis.set(self._lock(namespace, key), token, px=_ms(ttl), nx=True)
        return token if ok else None

    async def unlock(self, namespace: str, key: str, token: str) -> None:
        await self._unlock(keys=[self._lock(namespace, key)], args=[token])

    async def locked(self, namespace: str, key: str) -> bool:
        return bool(await self._redis.exists(self._lock(namespace, key)))
