"""The strategies: in which order candidates are tried, and when to stop.

- single / fallback: in pool order, up to ``max_fallbacks`` after the first;
- loadbalance: a weighted random order, then fallback through the rest;
- cascade: in pool order (cheapest first); escalate while the acceptance check
  fails, soft failures included, accepting the last candidate's soft failure;
- parallel: every candidate at once, the first good answer wins and the others
  are cancelled (``Router.fan_out`` is the call that keeps every answer).

When nothing was tried because every candidate is cooling down, wait for the
earliest to return if that is within ``policies.cooldown.max_wait`` (and the
timeout), else fail at once with the time to wait.
"""

from __future__ import annotations

import asyncio
import random

from polyroute.errors import AllCoolingDownError, RouteExhaustedError
from polyroute.routing.call import CallContext
from polyroute.routing.resolve import Candidate
from polyroute.types import Attempt, Envelope


class OverBudget(Exception):
    """Every candidate was skipped for max_cost_per_request (the router turns this into
    a step down a tier, or a BudgetExceededError with the figures)."""

    def __init__(self, route: str) -> None:
        self.route = route
        super().__init__(route)


def weighted_order(candidates: list[Candidate], rng: random.Random) -> list[Candidate]:
    """Weighted sampling without replacement (Efraimidis-Spirakis keys)."""
    keyed = [(rng.random() ** (1.0 / c.weight), c) for c in candidates]
    keyed.sort(key=lambda kc: kc[0], reverse=True)
    return [c for _, c in keyed]


async def _sequential(ctx: CallContext, order: list[Candidate], cascade: bool) -> Envelope | None:
    budget = 1 + ctx.route.max_fallbacks
    tried = 0
    for i, c in enumerate(order):
        if tried >= budget:
            ctx.attempts.append(
                Attempt(c.info.id, c.info.provider, "skipped", trigger="max_fallbacks")
            )
            continue
        if not ctx.usable(c):
            continue
        tried += 1
        last = i == len(order) - 1
        # Could the route move on after this one?  (A timed-out candidate is then not
        # retried: the next one is asked at once.)
        more = tried < budget and any(ctx.could_try(n) for n in order[i + 1 :])
        env = await ctx.try_candidate(c, soft_ok=not cascade or last, last=not more)
        if env is not None:
            return env
    return None


async def _race(ctx: CallContext, order: list[Candidate]) -> Envelope | None:
    usable = [c for c in order if ctx.usable(c)]
    if not usable:
        return None
    tasks = {asyncio.ensure_future(ctx.try_candidate(c)): c for c in usable}
    winner: Envelope | None = None
    try:
        for fut in asyncio.as_completed(list(tasks)):
            env = await fut
            if env is not None:
                winner = env
                break
    finally:
        for t, c in tasks.items():
            if not t.done():
                t.cancel()
                ctx.attempts.append(
                    Attempt(c.info.id, c.info.provider, "skipped", trigger="outrun")
                )
        await asyncio.gather(*tasks, return_exceptions=True)
    return winner


async def _one_pass(ctx: CallContext, rng: random.Random) -> Envelope | None:
    route = ctx.route
    candidates = list(route.candidates)
    if route.strategy == "parallel":
        return await _race(ctx, candidates)
    if route.strategy == "loadbalance":
        candidates = weighted_order(candidates, rng)
    if route.strategy == "single":
        candidates = candidates[:1]
    return await _sequential(ctx, candidates, cascade=route.strategy == "cascade")


async def run_strategy(ctx: CallContext, timeout: float) -> Envelope:
    env = await _one_pass(ctx, ctx.rng)
    if env is None and _only_cooling(ctx):
        now = ctx.clock.monotonic()
        until = [
            u
            for c in ctx.route.candidates
            if (u := ctx.cooldown.cooling_until(c.info.id)) is not None
        ]
        # Hold the request only briefly: a caller is better told at once, with
        # Retry-After, than kept waiting for most of its timeout.
        max_wait = min(timeout, ctx.cooldown.policy.max_wait)
        if until and min(until) - now <= max_wait:
            await ctx.clock.sleep(min(until) - now)
            env = await _one_pass(ctx, ctx.rng)
        else:
            wait = (min(until) - now) if until else 0.0
            raise AllCoolingDownError(
                ctx.route.name,
                ctx.attempts,
                ctx.errors,
                reason=f"every candidate is cooling down; the first returns in {wait:.1f}s "
                f"(waits at most policies.cooldown.max_wait {max_wait:.1f}s)",
                retry_after=max(1.0, wait),
            )
    if env is None and ctx.only_budget_skips():
        raise OverBudget(ctx.route.name)
    if env is None:
        last = ctx.errors[-1] if ctx.errors else None
        raise RouteExhaustedError(ctx.route.name, ctx.attempts, ctx.errors) from last
    return env


def _only_cooling(ctx: CallContext) -> bool:
    tried = [a for a in ctx.attempts if a.outcome != "skipped"]
    return not tried and any(a.trigger == "cooldown" for a in ctx.attempts)
