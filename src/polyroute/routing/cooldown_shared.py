"""Cooldowns shared by every gateway process on one Redis (``state.url: redis://…``).

Failures are counted in each process and, in the background, in Redis too
(``<prefix>-fails:<model>``, expiring with the policy's window), so failures
spread over replicas add up: the one that reaches ``after_failures`` starts the
cooldown.  A process that starts a cooldown writes ``model = until``
(wall-clock seconds) into one hash, ``<prefix>-all``, and every process mirrors
that hash (one HGETALL, not a scan of the database), refreshing the mirror at
most once a second in the background.  So a model that trips in one replica is
skipped by the others within about a second, and the request path never waits
on Redis: ``cooling_until`` reads only memory.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from polyroute.clock import Clock
from polyroute.config.schema import CooldownPolicy
from polyroute.routing.cooldown import CooldownTracker

log = logging.getLogger("polyroute.cooldown")
REFRESH_EVERY = 1.0  # seconds between mirror refreshes


class SharedCooldownTracker(CooldownTracker):
    def __init__(
        self, policy: CooldownPolicy, clock: Clock, url: str, prefix: str = "polyroute:cooldown:"
    ) -> None:
        super().__init__(policy, clock)
        from polyroute.redis_client import connect

        self._redis: Any = connect(url)
        self._prefix = prefix
        self._fails = prefix.rstrip(":") + "-fails:"  # failure counts, one key per model
        # Every cooldown in one hash (model -> until): the mirror reads one key, not a
        # SCAN of the whole database; entries past their time are pruned by the mirror.
        self._hash = prefix.rstrip(":") + "-all"
        self._remote: dict[str, float] = {}  # model -> cooling until (wall clock)
        self._refreshed = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()

    # -- writes: local first, then Redis in the background ------------------------------

    def record_failure(
        self, model: str, retry_after: float | None = None, error: str | None = None
    ) -> bool:
        started = super().record_failure(model, retry_after, error)
        if started:
            until = self._health[model].cooling_until - self.clock.monotonic()
            self._spawn(self._publish(model, until))
        else:
            self._spawn(self._count_shared(model, retry_after, error))
        return started

    async def _count_shared(self, model: str, retry_after: float | None, error: str | None) -> None:
        """Add this failure to every replica's count; the one that completes it cools the
        model down for all of them."""
        key = self._fails + model
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, max(1, math.ceil(self.policy.window)), nx=True)
        count, _ = await pipe.execute()
        if int(count) < self.policy.after_failures or self.cooling_until(model) is not None:
            return
        seconds = max(self.policy.seconds, retry_after or 0.0)
        h = self._h(model)
        h.cooling_until, h.last_error = self.clock.monotonic() + seconds, error
        h.half_open, h.probe_started = False, None
        await self._redis.delete(key)
        await self._publish(model, seconds)

    def record_success(self, model: str) -> None:
        # Only a model that was (or may be) cooling costs a Redis call: a success of a
        # healthy model, the common case, stays in memory.
        h = self._health.get(model)
        was_cooling = model in self._remote or (h is not None and h.cooling_until > 0)
        counted = h is not None and bool(h.failures)
        super().record_success(model)
        self._remote.pop(model, None)
        if was_cooling or counted:
            self._spawn(self._forget(model))

    def reset(self, model: str) -> None:
        super().reset(model)
        self._remote.pop(model, None)
        self._spawn(self._forget(model))

    async def _forget(self, model: str) -> None:
        pipe = self._redis.pipeline()
        pipe.hdel(self._hash, model)
        pipe.delete(self._fails + model)
        await pipe.execute()

    async def _publish(self, model: str, seconds: float) -> None:
        until = self.clock.time() + seconds
        self._remote[model] = until
        await self._redis.hset(self._hash, model, repr(until))

    # -- reads: memory only; the mirror refreshes itself ---------------------------------

    def cooling_until(self, model: str) -> float | None:
        local = super().cooling_until(model)
        if self.clock.monotonic() - self._refreshed > REFRESH_EVERY:
            self._refreshed = self.clock.monotonic()
            self._spawn(self.sync())
        remote = self._remote.get(model)
        if remote is None:
            return local
        left = remote - self.clock.time()
        if left <= 0:
            self._remote.pop(model, None)
            return local
        mono = self.clock.monotonic() + left
        return mono if local is None else max(local, mono)

    async def sync(self) -> None:
        """Mirror every cooldown in Redis (tests await it; calls schedule it)."""
        entries = await self._redis.hgetall(self._hash)
        now = self.clock.time()
        mirror: dict[str, float] = {}
        ended: list[Any] = []
        for k, v in entries.items():
            try:
                until = float(v)
            except ValueError:
                until = 0.0
            if until > now:
                mirror[k.decode() if isinstance(k, bytes) else k] = until
            else:
                ended.append(k)
        if ended:  # cooldowns over: pruned here (a hash field has no expiry of its own)
            await self._redis.hdel(self._hash, *ended)
        self._remote = mirror

    def snapshot(self) -> dict[str, dict[str, object]]:
        out = super().snapshot()
        now = self.clock.time()
        for model, until in self._remote.items():
            row = out.setdefault(model, {"failures": 0, "cooling_for": 0.0, "last_error": None})
            row["cooling_for"] = max(float(row["cooling_for"]), until - now)  # type: ignore[arg-type]
        return out

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._guard(coro))
        except RuntimeError:  # no loop (sync code): the local state still holds
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(coro: Any) -> None:
        try:
            await coro
        except Exception as exc:  # Redis down: each process keeps its own cooldowns
            log.warning("shared cooldown state unavailable: %s", exc)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._redis.aclose()
