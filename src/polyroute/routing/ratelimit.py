"""Client-side rate limits: requests and tokens per minute, per model and provider.

Token buckets (capacity = the per-minute figure, refilled continuously).  A
call takes one request and its estimated tokens from every bucket that applies
(its model's ``rpm``/``tpm`` from the catalog, its provider's from
``providers.X``).  If the buckets are short, the call waits on the injected
clock — unless the wait would outlast the request's timeout, in which case the
candidate is given up as rate limited and the route falls back.

In memory by default; with ``state.url: redis://…`` the buckets live in Redis
(one Lua script checks and takes from all of a call's buckets atomically), so
several gateway processes share one limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from polyroute.clock import Clock
from polyroute.errors import RateLimitError

log = logging.getLogger("polyroute.router")


@dataclass(frozen=True, slots=True)
class Limit:
    key: str  # e.g. "model:gpt-4o:rpm"
    capacity: float  # per minute
    cost: float  # what this call takes (1 request, or N tokens)

    @property
    def rate(self) -> float:  # refill per second
        return self.capacity / 60.0


class BucketStore(Protocol):
    async def take(self, limits: Sequence[Limit], now: float) -> float:
        """Take from every bucket and return 0, or take nothing and return the
        seconds until all of them could serve this call."""
        ...

    async def close(self) -> None: ...


class MemoryBuckets:
    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)

    async def take(self, limits: Sequence[Limit], now: float) -> float:
        wait = 0.0
        levels: list[float] = []
        for lim in limits:
            tokens, updated = self._state.get(lim.key, (lim.capacity, now))
            tokens = min(lim.capacity, tokens + (now - updated) * lim.rate)
            levels.append(tokens)
            need = min(lim.cost, lim.capacity)  # a call bigger than the bucket waits for a full one
            if tokens < need:
                wait = max(wait, (need - tokens) / lim.rate)
        if wait > 0:
            return wait
        for lim, tokens in zip(limits, levels, strict=True):
            self._state[lim.key] = (tokens - min(lim.cost, lim.capacity), now)
        return 0.0

    async def close(self) -> None:
        return None


# KEYS: bucket keys; ARGV: now, then (capacity, rate, cost) per key.
_LUA = """
local now = tonumber(ARGV[1])
local wait = 0
local levels = {}
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[2 + (i - 1) * 3])
  local rate = tonumber(ARGV[3 + (i - 1) * 3])
  local cost = math.min(tonumber(ARGV[4 + (i - 1) * 3]), cap)
  local v = redis.call('HMGET', key, 't', 'ts')
  local t = tonumber(v[1]) or cap
  local ts = tonumber(v[2]) or now
  t = math.min(cap, t + math.max(0, now - ts) * rate)
  levels[i] = t
  if t < cost then wait = math.max(wait, (cost - t) / rate) end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[2 + (i - 1) * 3])
  local rate = tonumber(ARGV[3 + (i - 1) * 3])
  local cost = math.min(tonumber(ARGV[4 + (i - 1) * 3]), cap)
  redis.call('HSET', key, 't', levels[i] - cost, 'ts', now)
  redis.call('EXPIRE', key, math.ceil(cap / rate) + 60)
end
return '0'
"""


class RedisBuckets:
    """Buckets shared by every process that uses the same Redis and prefix."""

    def __init__(self, url: str, prefix: str = "polyroute:rl:") -> None:
        from polyroute.redis_client import connect

        self._redis: Any = connect(url)
        self._prefix = prefix
        self._script: Any = self._redis.register_script(_LUA)

    async def take(self, limits: Sequence[Limit], now: float) -> float:
        keys = [self._prefix + lim.key for lim in limits]
        args: list[float] = [now]
        for lim in limits:
            args += [lim.capacity, lim.rate, lim.cost]
        return float(await self._script(keys=keys, args=args))

    async def close(self) -> None:
        await self._redis.aclose()


def limits_for(
    model_id: str,
    model_rpm: int | None,
    model_tpm: int | None,
    provider: str,
    provider_rpm: int | None,
    provider_tpm: int | None,
    tokens: Callable[[], int],
) -> list[Limit]:
    """The buckets one call draws from; ``tokens`` is only counted when a tpm applies."""
    out: list[Limit] = []
    if model_rpm:
        out.append(Limit(f"model:{model_id}:rpm", model_rpm, 1))
    if provider_rpm:
        out.append(Limit(f"provider:{provider}:rpm", provider_rpm, 1))
    if model_tpm or provider_tpm:
        n = tokens()
        if model_tpm:
            out.append(Limit(f"model:{model_id}:tpm", model_tpm, n))
        if provider_tpm:
            out.append(Limit(f"provider:{provider}:tpm", provider_tpm, n))
    return out


def buckets_for(state_url: str, prefix: str = "polyroute:") -> BucketStore:
    if state_url.startswith(("redis://", "rediss://")):
        return RedisBuckets(state_url, prefix + "rl:")
    return MemoryBuckets()


class LocalRateLimitError(RateLimitError):
    """polyroute's own limit, not the provider's: says nothing about the model's health."""


class RateLimiter:
    def __init__(self, buckets: BucketStore, clock: Clock) -> None:
        self.buckets = buckets
        self.clock = clock
        self._down = False  # the shared buckets failed last time (logged once)

    async def acquire(self, limits: Sequence[Limit], max_wait: float, label: str) -> float:
        """Wait until every bucket can serve the call; returns the seconds waited.
        Raises RateLimitError (no status: local) when that would exceed ``max_wait``."""
        if not limits:
            return 0.0
        waited = 0.0
        while True:
            try:
                wait = await self.buckets.take(limits, self.clock.time())
            except Exception as exc:  # shared buckets unreachable (Redis down)
                # Serve rather than fail: the provider's own limits still answer 429s,
                # which are retried and fall back like any others.
                if not self._down:
                    log.warning("shared rate limits unavailable; not limiting: %s", exc)
                    self._down = True
                return waited
            self._down = False
            if wait <= 0:
                return waited
            if waited + wait > max_wait:
                raise LocalRateLimitError(
                    f"local rate limit: {label} needs {wait:.1f}s more capacity, over the "
                    f"request's remaining {max(0.0, max_wait - waited):.1f}s",
                    retryable=False,
                    retry_after=wait,
                )
            await self.clock.sleep(wait)
            waited += wait

    async def close(self) -> None:
        await self.buckets.close()
