"""The call engine: every kind of call through the same layers, in one order.

::

    route (resolved by the caller: name, Route or list of models)
      │ Ticket opened: the call is in flight; it will leave exactly one record
      ▼
    per-request budget          candidates over max_cost_per_request are skipped;
      │                         all over: step down a tier, else BudgetExceededError
      ▼
    response cache              a hit returns at once (costs nothing, reserves nothing)
      ▼
    monthly / per-key budget    the worst case reserved; settled to the real cost
      ▼
    strategy                    single | fallback | loadbalance | cascade | parallel
      │  attempt per candidate:  capability / context filter, cooldown, rate limit,
      │                          retries with backoff, timeout, validator
      ▼
    envelope                    latency, warnings, price note
      ▼
    Ticket closed               reservation settled, one CallRecord to the observers

Only the ``Work`` (``routing/work.py``) differs per kind.  A stream's ticket
stays open after the engine returns (its first chunk is in): ``RouterStream``
closes it when the stream ends, with the whole answer's cost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from polyroute.config.schema import TIERS
from polyroute.errors import UnknownRouteError
from polyroute.routing.budget import Reservation
from polyroute.routing.call import CallContext
from polyroute.routing.resolve import Route
from polyroute.routing.runtime import Runtime
from polyroute.routing.strategies import OverBudget, run_strategy
from polyroute.routing.work import Work
from polyroute.types import CallRecord, Envelope, Kind

Resolve = Callable[[str], Route]


@dataclass(slots=True)
class Ticket:
    """One call from admission to its record.  ``finish`` / ``fail`` run once."""

    rt: Runtime
    kind: Kind
    route: str
    labels: dict[str, str]
    started: float  # wall clock
    t0: float  # monotonic
    reservation: Reservation | None = None
    closed: bool = False
    malformed_events: int = 0  # stream events skipped as malformed

    def elapsed(self) -> float:
        return self.rt.clock.monotonic() - self.t0

    def _settle(self, actual: float) -> None:
        if self.reservation is not None:
            self.rt.ledger.settle(self.reservation, actual)
            self.reservation = None

    def finish(
        self, env: Envelope, *, ttft: float | None = None, failure: BaseException | None = None
    ) -> CallRecord | None:
        if self.closed:
            return None
        self.closed = True
        env.latency = self.elapsed()
        if self.kind != "image" and not env.cache_hit and not _price_known(self.rt, env.model):
            env.warnings.append(f"no catalog price for {env.model}; cost recorded as 0")
        self._settle(env.cost)
        record = CallRecord.from_envelope(self.kind, env, self.started, self.labels)
        record.ttft = ttft
        record.malformed_events = self.malformed_events
        if failure is not None:  # a stream that broke after its first chunk
            record.status = type(failure).__name__
            record.error = str(failure)[:500]
        self.rt.inflight -= 1
        self.rt.emit(record)
        return record

    def fail(self, exc: BaseException) -> None:
        if self.closed:
            return
        self.closed = True
        self._settle(0.0)
        self.rt.inflight -= 1
        self.rt.emit(
            CallRecord.from_error(
                self.kind, self.route, exc, self.started, self.elapsed(), self.labels
            )
        )


@dataclass(slots=True)
class Engine:
    rt: Runtime
    resolve: Resolve  # for a tier step-down (checks allowed providers like any resolve)

    def refused(
        self, kind: Kind, route: str, exc: BaseException, labels: Mapping[str, str]
    ) -> None:
        """A call that never reached the engine (unknown route, provider not allowed)
        still leaves its record."""
        now = self.rt.clock.time()
        self.rt.emit(CallRecord.from_error(kind, route, exc, now, 0.0, dict(labels)))

    def ticket(self, kind: Kind, route: Route, labels: Mapping[str, str]) -> Ticket:
        self.rt.inflight += 1
        tags = {**route.labels, **labels}
        return Ticket(
            self.rt, kind, route.name, tags, self.rt.clock.time(), self.rt.clock.monotonic()
        )

    async def run(self, work: Work, route: Route, labels: Mapping[str, str]) -> Envelope:
        """Serve a plain call (everything but a stream) and leave its record."""
        ticket = self.ticket(work.kind, route, labels)
        env = await self.start(work, route, ticket)
        ticket.finish(env)
        return env

    async def start(self, work: Work, route: Route, ticket: Ticket) -> Envelope:
        """Every layer up to the envelope; a failure closes the ticket, success leaves
        it to the caller (``run``, or the stream reading on)."""
        try:
            return await self._step_down(work, route, ticket)
        except BaseException as exc:
            ticket.fail(exc)
            raise

    async def resume(self, work: Work, route: Route) -> Envelope:
        """Strategy and attempts only, for a call already admitted (a stream being
        recovered mid-answer): its budget reservation and its record are its ticket's."""
        ctx = self._context(work, route)
        return await run_strategy(ctx, work.timeout or route.timeout)

    # -- the layers ---------------------------------------------------------------------

    async def _step_down(self, work: Work, route: Route, ticket: Ticket) -> Envelope:
        notes: list[str] = []
        while True:
            try:
                env = await self._cached(work, route, ticket)
            except OverBudget:
                cheapest = min(work.estimate(route, c) for c in route.candidates)
                lower = self._cheaper_tier(route)
                if lower is None:
                    raise self.rt.budget.refuse_all(route.name, cheapest) from None
                notes.append(
                    f"{route.name}: every model over budget.max_cost_per_request "
                    f"(cheapest ${cheapest:.6f}); stepped down to {lower.name}"
                )
                route = lower
                continue
            env.warnings[:0] = notes
            return env

    def _cheaper_tier(self, route: Route) -> Route | None:
        cfg = self.rt.config
        tier = route.labels.get("tier")
        if not cfg.budget.step_down or tier not in TIERS:
            return None
        for lower in reversed(TIERS[: TIERS.index(tier)]):
            if lower in cfg.tiers:
                return self.resolve(f"tier:{lower}")
        return None

    async def _cached(self, work: Work, route: Route, ticket: Ticket) -> Envelope:
        cache = self.rt.cache
        plan = work.cache_plan(route, cache.declared) if cache is not None else None
        ctx = self._context(work, route)
        if plan is None or cache is None:
            return await self._spend(work, route, ctx, ticket)
        fresh: Envelope | None = None

        async def compute() -> dict[str, Any]:
            nonlocal fresh
            fresh = await self._spend(work, route, ctx, ticket)
            return fresh.to_dict(include_raw=True)

        stored, hit = await cache.get_or_compute(plan.namespace, plan.key, compute, plan.ttl)
        if not hit and fresh is not None:
            return fresh  # the caller whose call reached the provider keeps the real attempts
        from polyroute.cache.envelope import envelope_from_cache

        env, saved = envelope_from_cache(stored)
        env.saved_cost = saved
        env.route = route.name
        env.warnings.extend(route.warnings)
        return env

    async def _spend(self, work: Work, route: Route, ctx: CallContext, ticket: Ticket) -> Envelope:
        """Run the strategy inside the monthly budget: reserve the worst case now; the
        ticket settles it to the real cost when the call ends."""
        budget, key = self.rt.budget, ticket.labels.get("api_key")
        if budget.limits_for(key):
            worst = max(work.estimate(route, c) for c in route.candidates)
            reservation, warning = await budget.open(worst, key)
            if warning:
                ctx.warnings.append(warning)
            ticket.reservation = reservation
        try:
            env = await run_strategy(ctx, work.timeout or route.timeout)
        except BaseException:
            ticket._settle(0.0)  # nothing was spent on this pass (a step down may follow)
            raise
        failed = env.fallbacks
        if failed:
            env.warnings.append(
                f"{route.name}: fell back to {env.model} after {failed} model(s) failed"
            )
        return env

    def _context(self, work: Work, route: Route) -> CallContext:
        rt = self.rt
        timeout = work.timeout or route.timeout
        session = rt.sessions.get()

        async def invoke(client: Any, c: Any) -> Envelope:
            return await work.attempt(session, client, route, c, timeout)

        ctx = rt.contexts.build(
            route, work.needs(route), work.messages, work.validate, invoke, timeout
        )
        cap, asked = route.max_tokens_cap, getattr(work, "params", {}).get("max_tokens")
        if cap is not None and isinstance(asked, int) and asked > cap:
            ctx.warnings.append(f"{route.name}: max_tokens {asked} lowered to the tier's {cap}")
        if rt.config.budget.max_cost_per_request is not None:
            ctx.budget_skip = lambda c: rt.budget.per_request_skip(work.estimate(route, c))
        return ctx


def _price_known(rt: Runtime, model: str) -> bool:
    info = rt.catalog.get(model)  # the common case: a catalog id, one dict lookup
    if info is not None:
        return info.price_known
    try:
        return rt.catalog.lookup(model).price_known
    except UnknownRouteError:  # a name the catalog cannot parse has no price either
        return False
