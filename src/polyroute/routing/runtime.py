"""The long-lived parts of one router, owned in one place, closed in one place.

A ``Runtime`` holds what outlives a single call: the HTTP session pool, the
provider registry, cooldown state, the rate limiter, the spend ledger, the
response cache, and the observers that receive every finished call record.

A config reload builds a new runtime *from* the old one: the parts whose
configuration did not change (and state that must survive, like month-to-date
spend) are handed over, and the old runtime stops owning them.  The old one is
then retired: it waits for its calls in flight, then closes only what it still
owns.  So a reload never leaks a Redis client or an HTTP connection pool, and
nothing outside this class reassigns its attributes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from polyroute.cache import ResponseCache
from polyroute.clock import Clock, SystemClock
from polyroute.config.load import Settings
from polyroute.config.schema import Config
from polyroute.providers.http import SessionPool
from polyroute.providers.registry import ProviderRegistry
from polyroute.routing.budget import BudgetGuard, SpendLedger
from polyroute.routing.budget_shared import SharedSpendLedger
from polyroute.routing.contexts import ContextBuilder
from polyroute.routing.cooldown import CooldownTracker
from polyroute.routing.cooldown_shared import SharedCooldownTracker
from polyroute.routing.ratelimit import RateLimiter, buckets_for
from polyroute.routing.resolve import Resolver
from polyroute.types import CallRecord

log = logging.getLogger("polyroute.router")

Observer = Callable[[CallRecord], None]


def ledger_for(config: Config, clock: Clock) -> SpendLedger:
    """In memory, or one ledger for every replica on the same Redis (``state.url``)."""
    state = config.state
    if state.url.startswith(("redis://", "rediss://")):
        return SharedSpendLedger(state.url, state.prefix, clock.time)
    return SpendLedger(clock.time)


def cooldown_for(config: Config, clock: Clock) -> CooldownTracker:
    """In memory, or shared by every process on the same Redis (``state.url``)."""
    state = config.state
    if state.url.startswith(("redis://", "rediss://")):
        return SharedCooldownTracker(
            config.policies.cooldown, clock, state.url, state.prefix + "cooldown:"
        )
    return CooldownTracker(config.policies.cooldown, clock)


class Runtime:
    clock: Clock
    rng: random.Random
    sessions: SessionPool
    cooldown: CooldownTracker
    limiter: RateLimiter
    ledger: SpendLedger
    cache: ResponseCache | None

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        sessions: SessionPool | None = None,
        observers: list[Observer] | None = None,
        previous: Runtime | None = None,
    ) -> None:
        cfg = settings.config
        self.settings = settings
        self.config = cfg
        self.catalog = settings.catalog
        prev = previous
        self.clock = clock or (prev.clock if prev else SystemClock())
        self.rng = rng or (prev.rng if prev else random.Random())
        # What this runtime must close itself; a successor takes names out of it.
        self._owned: set[str] = set()
        self.inflight = 0
        self._closed = False
        # Earlier runtimes whose calls in flight may still use parts handed to us: we
        # close those parts only once they are idle too.
        self._lineage: list[Runtime] = []
        if previous is not None:
            self._lineage = [
                r for r in (previous, *previous._lineage) if not r._closed or r.inflight > 0
            ]
        self.observers: list[Observer] = (
            observers if observers is not None else (prev.observers if prev else [])
        )

        if sessions is not None:
            self.sessions = sessions  # the caller's: the caller closes it
        elif prev is not None:
            self.sessions = self._take(prev, "sessions")
        else:
            self.sessions = self._own("sessions", SessionPool())

        self.registry = ProviderRegistry(settings.providers, settings.environ)
        self.resolver = Resolver(settings, self.clock.time)

        state, old_cfg = cfg.state, prev.config if prev else None
        same_state = old_cfg is not None and old_cfg.state == state
        if prev is not None and same_state:
            self.cooldown = self._take(prev, "cooldown")
            self.cooldown.reconfigure(cfg.policies.cooldown)
        else:
            self.cooldown = self._own("cooldown", cooldown_for(cfg, self.clock))

        if prev is not None and same_state:
            self.limiter = self._take(prev, "limiter")
        else:
            buckets = buckets_for(state.url, state.prefix)
            self.limiter = self._own("limiter", RateLimiter(buckets, self.clock))

        # Month-to-date spend survives a reload; shared by every replica on Redis.
        if prev is not None and same_state:
            self.ledger = self._take(prev, "ledger")
        else:
            self.ledger = self._own("ledger", ledger_for(cfg, self.clock))
            if prev is not None and not isinstance(self.ledger, SharedSpendLedger):
                self.ledger.absorb(prev.ledger)  # the spend this process saw so far
        self.budget = BudgetGuard(cfg.budget, self.ledger)

        cc = cfg.cache
        if prev is not None and same_state and old_cfg is not None and old_cfg.cache == cc:
            # Keep the stored answers: the keys include each route's pool.
            self.cache = self._take(prev, "cache")
        else:
            self.cache = self._own(
                "cache",
                ResponseCache.from_config(
                    cc, state.url, self.clock, prefix=cc.prefix, lock_ttl=cc.lock_ttl
                ),
            )

        has_limits = any(m.rpm or m.tpm for m in self.catalog) or any(
            s.rpm or s.tpm for s in settings.providers.values()
        )
        self.contexts = ContextBuilder(
            cfg, self.registry, self.cooldown, self.clock, self.rng, self.limiter, has_limits
        )

    # -- ownership ------------------------------------------------------------------------

    def _own(self, name: str, part: Any) -> Any:
        if part is not None:
            self._owned.add(name)
        return part

    def _take(self, previous: Runtime, name: str) -> Any:
        """Take ``name`` over from ``previous``: ours to close from now on (unless it was
        never the previous runtime's either, like a caller's session pool)."""
        part = getattr(previous, name)
        if name in previous._owned:
            previous._owned.discard(name)
            self._owned.add(name)
        return part

    def owns(self, name: str) -> bool:
        return name in self._owned

    # -- calls in flight ------------------------------------------------------------------

    def emit(self, record: CallRecord) -> None:
        for observe in self.observers:
            try:
                observe(record)
            except Exception:  # an observer's bug must not fail the call it observes
                log.exception("call observer failed", extra={"observer": repr(observe)})

    async def retire(self, drain_timeout: float = 30.0) -> None:
        """Wait (up to ``drain_timeout``) for calls in flight, then close what is ours.
        Real time, not the injected clock: this waits for real requests."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        while self.busy() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self.busy():
            log.warning("retiring router with calls in flight", extra={"calls": self.inflight})
        await self.aclose()

    def busy(self) -> bool:
        """Calls in flight here, or in an earlier runtime that shares our parts."""
        return self.inflight > 0 or any(r.inflight > 0 for r in self._lineage)

    async def aclose(self) -> None:
        """Close every part this runtime still owns (once)."""
        owned, self._owned = self._owned, set()
        self._closed = True
        if "cache" in owned and self.cache is not None:
            await self.cache.close()
        if "limiter" in owned:
            await self.limiter.close()
        if "ledger" in owned:
            await self.ledger.close()
        if "cooldown" in owned and isinstance(self.cooldown, SharedCooldownTracker):
            await self.cooldown.close()
        if "sessions" in owned:
            await self.sessions.close()
