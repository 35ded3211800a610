"""One chat request through one route: budget gates, the response cache, the strategy.

``ChatCall.serve`` steps down a tier while a whole pool is over
``max_cost_per_request`` (when the budget allows it); each pass may be
answered from the cache; a call that reaches providers reserves its worst
case against the monthly budget and settles to the real cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyroute.cache.envelope import envelope_from_cache
from polyroute.cache.plan import plan_for
from polyroute.config.schema import TIERS
from polyroute.providers.base import ChatRequest
from polyroute.providers.registry import Client
from polyroute.routing.budget import estimate_cost
from polyroute.routing.call import CallContext
from polyroute.routing.capabilities import needs_for_chat
from polyroute.routing.contexts import merge_params
from polyroute.routing.resolve import Candidate, Route
from polyroute.routing.strategies import OverBudget, run_strategy
from polyroute.routing.validators import Validate
from polyroute.tokens import PromptTokens
from polyroute.types import Envelope, Message

if TYPE_CHECKING:
    from polyroute.router import Router


@dataclass(slots=True)
class ChatCall:
    router: Router
    route: Route
    messages: list[Message]
    params: Mapping[str, Any]
    timeout: float | None
    validate: Validate
    tags: Mapping[str, str]
    cache: bool | None = None
    cache_namespace: str | None = None
    # Shared by the capability check, every cost estimate and the rate-limit gate of
    # every pass (a step down keeps the prompt), so each tokenizer counts it once.
    prompt: PromptTokens = field(init=False)

    def __post_init__(self) -> None:
        self.prompt = PromptTokens(self.messages)

    async def serve(self) -> Envelope:
        notes: list[str] = []
        while True:
            try:
                env = await self._once()
            except OverBudget:
                cheapest = min(self.estimate(c) for c in self.route.candidates)
                lower = self._cheaper_tier()
                if lower is None:
                    raise self.router.budget.refuse_all(self.route.name, cheapest) from None
                notes.append(
                    f"{self.route.name}: every model over budget.max_cost_per_request "
                    f"(cheapest ${cheapest:.6f}); stepped down to {lower.name}"
                )
                self.route = lower
                continue
            env.warnings[:0] = notes
            return env

    def estimate(self, c: Candidate) -> float:
        return estimate_cost(
            c.info,
            self.messages,
            merge_params(self.route, c, self.params).get("max_tokens"),
            prompt_tokens=self.prompt.count(c.info.provider, c.info.name),
        )

    def _cheaper_tier(self) -> Route | None:
        cfg = self.router.config
        tier = self.route.labels.get("tier")
        if not cfg.budget.step_down or tier not in TIERS:
            return None
        for lower in reversed(TIERS[: TIERS.index(tier)]):
            if lower in cfg.tiers:
                return self.router.resolve(f"tier:{lower}")
        return None

    def _context(self, call_timeout: float) -> CallContext:
        r, router, msgs = self.route, self.router, self.messages
        session = router.sessions.get()

        async def invoke(client: Client, c: Candidate) -> Envelope:
            params = merge_params(r, c, self.params)
            req = ChatRequest(c.info.name, msgs, params, call_timeout, c.info.id)
            resp = await client.adapter.chat(session, client.endpoint, req)
            return Envelope(
                content=resp.content,
                model=c.info.id,
                provider=c.info.provider,
                route=r.name,
                usage=resp.usage,
                cost=c.info.cost(resp.usage),
                request_id=resp.request_id,
                finish_reason=resp.finish_reason,
                tool_calls=resp.tool_calls,
                simulated=resp.simulated,
                raw=resp.raw,
            )

        max_tokens = self.params.get("max_tokens") or r.params.get("max_tokens")
        ctx = router.contexts.build(
            r,
            needs_for_chat(msgs, max_tokens, self.prompt),
            msgs,
            self.validate,
            invoke,
            call_timeout,
        )
        if router.config.budget.max_cost_per_request is not None:
            ctx.budget_skip = lambda c: router.budget.per_request_skip(self.estimate(c))
        return ctx

    async def _once(self) -> Envelope:
        r, router = self.route, self.router
        call_timeout = self.timeout or r.timeout
        ctx = self._context(call_timeout)
        plan = None
        if router.cache is not None:
            effective = {**r.params, **{k: v for k, v in self.params.items() if v is not None}}
            plan = plan_for(
                r.name,
                r.cache,
                [c.info.id for c in r.candidates],
                self.messages,
                effective,
                None if callable(self.validate) else self.validate,
                callable(self.validate),
                self.cache,
                self.cache_namespace,
            )
        if plan is None or router.cache is None:
            return await self._spend(ctx, call_timeout)
        fresh: Envelope | None = None

        async def compute() -> dict[str, Any]:
            nonlocal fresh
            fresh = await self._spend(ctx, call_timeout)
            return fresh.to_dict(include_raw=True)

        stored, hit = await router.cache.get_or_compute(plan.namespace, plan.key, compute, plan.ttl)
        if not hit and fresh is not None:
            return fresh  # the caller whose call reached the provider keeps the real attempts
        env, saved = envelope_from_cache(stored)
        env.saved_cost = saved
        env.route = r.name
        env.warnings.extend(r.warnings)
        return env

    async def _spend(self, ctx: CallContext, call_timeout: float) -> Envelope:
        """Run the strategy inside the monthly budget: reserve the worst case, settle
        to the real cost."""
        budget, key = self.router.budget, self.tags.get("api_key")
        reservation = None
        if budget.limits_for(key):
            worst = max(self.estimate(c) for c in self.route.candidates)
            reservation, warning = budget.open(worst, key)
            if warning:
                ctx.warnings.append(warning)
        actual = 0.0
        try:
            env = await run_strategy(ctx, call_timeout)
            actual = env.cost
            return env
        finally:
            if reservation is not None:
                budget.ledger.settle(reservation, actual)
