"""Monthly budgets shared by every replica on one Redis (``state.url: redis://…``).

Each scope (the global budget, each API key) has, per month, a ``spent`` total,
a ``held`` total of the reservations in flight, and those reservations by start
time (a sorted set, amounts in a hash), so a reserve costs O(log n) in the calls
in flight.  One Lua script checks every scope and reserves in all of them
atomically, so a burst
spread over any number of replicas can never reserve past a limit; settling is
another script (reservation out, real cost in).  A reservation whose replica
died is dropped after ``STALE_AFTER`` seconds, so a crash cannot hold budget
hostage until the month ends.

Redis unreachable: the replica falls back to its own in-memory view (the
``SpendLedger`` it extends), logs it once, and uses Redis again when it answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from polyroute.routing.budget import Reservation, SpendLedger, month_of

log = logging.getLogger("polyroute.budget")

STALE_AFTER = 3600.0  # seconds: no call holds a reservation longer than this
KEY_TTL = 40 * 86400  # a month's keys outlive the month, then expire

# Per scope, four keys: spent (float), held (the total reserved in flight, float), the
# reservations by start time (sorted set: id -> time) and their amounts (hash: id -> amount).
# Keeping the held total as a number makes a reserve O(log n) in the calls in flight;
# only reservations gone stale are visited, and removed.
_PURGE = """
local function purge(spent_key, held_key, starts_key, amounts_key, cutoff)
  local stale = redis.call("ZRANGEBYSCORE", starts_key, "-inf", cutoff)
  for _, rid in ipairs(stale) do
    local amount = tonumber(redis.call("HGET", amounts_key, rid) or "0")
    redis.call("INCRBYFLOAT", held_key, -amount)
    redis.call("HDEL", amounts_key, rid)
  end
  if #stale > 0 then
    redis.call("ZREMRANGEBYSCORE", starts_key, "-inf", cutoff)
  end
end
"""

# ARGV: amount, now, stale_after, key_ttl, refuse (1/0), reservation id, then the limits.
# Returns the 1-based indexes of the scopes the amount would push over their limit.
_RESERVE = (
    _PURGE
    + """
local amount = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[4])
local refuse = ARGV[5] == "1"
local id = ARGV[6]
local over = {}
local n = #KEYS / 4
for i = 1, n do
  local k = 4 * (i - 1)
  purge(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], now - tonumber(ARGV[3]))
  local spent = tonumber(redis.call("GET", KEYS[k + 1]) or "0")
  local held = tonumber(redis.call("GET", KEYS[k + 2]) or "0")
  if spent + held + amount > tonumber(ARGV[6 + i]) + 1e-12 then
    table.insert(over, i)
  end
end
if #over > 0 and refuse then
  return over
end
for i = 1, n do
  local k = 4 * (i - 1)
  redis.call("INCRBYFLOAT", KEYS[k + 2], ARGV[1])
  redis.call("ZADD", KEYS[k + 3], now, id)
  redis.call("HSET", KEYS[k + 4], id, ARGV[1])
  for j = 2, 4 do
    redis.call("EXPIRE", KEYS[k + j], ttl)
  end
end
return over
"""
)

# ARGV: id, actual cost, key_ttl.
_SETTLE = """
for i = 1, #KEYS / 4 do
  local k = 4 * (i - 1)
  local amount = redis.call("HGET", KEYS[k + 4], ARGV[1])
  if amount then  -- (gone if it went stale: then it was already taken out of held)
    redis.call("INCRBYFLOAT", KEYS[k + 2], -tonumber(amount))
    redis.call("HDEL", KEYS[k + 4], ARGV[1])
    redis.call("ZREM", KEYS[k + 3], ARGV[1])
  end
  if tonumber(ARGV[2]) > 0 then
    redis.call("INCRBYFLOAT", KEYS[k + 1], ARGV[2])
  end
  redis.call("EXPIRE", KEYS[k + 1], ARGV[3])
end
return 1
"""


class SharedSpendLedger(SpendLedger):
    def __init__(self, url: str, prefix: str, now: Callable[[], float] = time.time) -> None:
        super().__init__(now)
        from polyroute.redis_client import connect

        self._redis: Any = connect(url)
        self._prefix = prefix
        self._reserve: Any = self._redis.register_script(_RESERVE)
        self._settle: Any = self._redis.register_script(_SETTLE)
        self._tasks: set[asyncio.Task[None]] = set()
        self._down = False

    def _keys(self, month: str, scopes: tuple[str, ...]) -> list[str]:
        keys: list[str] = []
        for scope in scopes:
            base = f"{self._prefix}budget:{month}:{scope or '_global'}"
            keys += [base + ":spent", base + ":held", base + ":starts", base + ":amounts"]
        return keys

    async def reserve_async(
        self, amount: float, limits: Mapping[str, float], refuse: bool
    ) -> tuple[Reservation | None, list[str]]:
        """Reserve in Redis (all scopes or none when ``refuse`` and any would go over).
        Returns the reservation (None when refused) and the scopes over their limit."""
        month = month_of(self._now())
        scopes = tuple(limits)
        rid = uuid.uuid4().hex
        try:
            args = [amount, self._now(), STALE_AFTER, KEY_TTL, 1 if refuse else 0, rid]
            over_idx = await self._reserve(
                keys=self._keys(month, scopes), args=[*args, *limits.values()]
            )
        except Exception as exc:  # Redis down: this replica's own view until it returns
            self._went_down(exc)
            return await super().reserve_async(amount, limits, refuse)
        self._came_back()
        over = [scopes[int(i) - 1] for i in over_idx]
        if over and refuse:
            return None, over
        return Reservation(month, scopes, amount, remote_id=rid), over

    def settle(self, r: Reservation, actual: float) -> None:
        if r.remote_id is None:  # reserved locally (Redis was down then)
            super().settle(r, actual)
            return
        if r.settled:
            return
        r.settled = True
        self._spawn(self._settle_remote(r, r.remote_id, actual))

    async def _settle_remote(self, r: Reservation, rid: str, actual: float) -> None:
        try:
            await self._settle(keys=self._keys(r.month, r.scopes), args=[rid, actual, KEY_TTL])
        except Exception as exc:
            # The spend still counts here; Redis drops the reservation when it goes stale.
            self._went_down(exc)
            super().seed(actual)

    async def seed_async(self, amount: float, scope: str = "") -> None:
        """Month-to-date spend from the usage store, written once for all replicas."""
        key = self._keys(month_of(self._now()), (scope,))[0]
        try:
            await self._redis.set(key, repr(amount), nx=True, ex=KEY_TTL)
        except Exception as exc:
            self._went_down(exc)
            super().seed(amount, scope)

    async def spent_shared(self, scope: str = "") -> float:
        key = self._keys(month_of(self._now()), (scope,))[0]
        return float(await self._redis.get(key) or 0.0)

    def _went_down(self, exc: BaseException) -> None:
        if not self._down:
            log.warning("shared budget unavailable, using this replica's own view: %s", exc)
        self._down = True

    def _came_back(self) -> None:
        if self._down:
            log.warning("shared budget available again")
        self._down = False

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (sync code)
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._redis.aclose()
