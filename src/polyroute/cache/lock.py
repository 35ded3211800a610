"""One computation per key across processes sharing a Redis (``--workers N``, replicas).

``SingleFlight`` already reduces each process to one caller per key; that one
caller runs ``fill_once``:

1. ``SET lock NX PX lock_ttl``.  The winner re-reads the value (the previous
   holder may have stored it just before unlocking), else computes and stores
   it, then deletes the lock (only if still its own).
2. A loser polls every ``poll`` seconds: the value appears → a hit; the lock
   disappears without a value (the holder failed, or crashed and its PX ran
   out) → it goes back to 1 and computes itself.

So a waiter waits at most about ``lock_ttl`` for a crashed holder; a holder
whose call outlives ``lock_ttl`` may see a second process call the provider
too (a duplicate call, never a wrong answer): set ``lock_ttl`` above the
longest call a route allows.  An error in one process is not shipped to the
others; each retries the call itself.  If Redis itself fails, the caller
computes without a lock: the cache must never be why a call fails.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from polyroute.cache.backend import LockingBackend
from polyroute.clock import Clock

T = TypeVar("T")
log = logging.getLogger("polyroute.cache")


async def fill_once(
    locks: LockingBackend,
    namespace: str,
    key: str,
    *,
    fetch: Callable[[], Awaitable[T | None]],
    produce: Callable[[], Awaitable[T]],
    clock: Clock,
    lock_ttl: float,
    poll: float = 0.05,
) -> T:
    """``fetch()`` once another process stored the value, else ``produce()`` (which
    must store it) while holding the key's lock."""
    while True:
        try:
            token = await locks.try_lock(namespace, key, lock_ttl)
        except Exception:
            log.warning("cache lock unavailable; computing without it", exc_info=True)
            return await produce()
        if token is not None:
            try:
                found = await fetch()
                return found if found is not None else await produce()
            finally:
                try:
                    await locks.unlock(namespace, key, token)
                except Exception:  # it expires on its own after lock_ttl
                    log.warning("cache unlock failed", exc_info=True)
        while True:
            await clock.sleep(poll)
            found = await fetch()
            if found is not None:
                return found
            try:
                held = await locks.locked(namespace, key)
            except Exception:
                log.warning("cache lock check failed", exc_info=True)
                held = False
            if not held:
                break  # the holder is gone without storing: take over
