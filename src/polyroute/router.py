"""The Router: composes resolve, strategy, retry, cooldown and the provider clients.

It picks an ordered chain of candidates and nothing more; each concern lives
in its own module under ``polyroute.routing``.  Async first; the ``*_sync``
methods run the same coroutines on a private event loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from polyroute.cache import ResponseCache
from polyroute.cache.envelope import envelope_from_cache
from polyroute.cache.plan import plan_for
from polyroute.clock import Clock, SystemClock
from polyroute.config.load import Settings, load_settings
from polyroute.config.schema import TIERS, Acceptance, Config
from polyroute.config.validate import ALWAYS_ALLOWED
from polyroute.errors import ProviderNotAllowedError
from polyroute.providers.base import ChatRequest, ImageRequest
from polyroute.providers.http import SessionPool
from polyroute.providers.registry import Client, ProviderRegistry
from polyroute.routing.budget import BudgetGuard, SpendLedger, estimate_cost
from polyroute.routing.call import CallContext
from polyroute.routing.capabilities import Needs, needs_for_chat
from polyroute.routing.cooldown import CooldownTracker
from polyroute.routing.ratelimit import RateLimiter, buckets_for, limits_for
from polyroute.routing.resolve import Candidate, Resolver, Route
from polyroute.routing.retry import Backoff
from polyroute.routing.strategies import OverBudget, run_strategy
from polyroute.routing.streaming import RouterStream
from polyroute.routing.validators import (
    Validation,
    ValidatorFn,
    acceptance_validator,
    normalize,
)
from polyroute.tokens import count_messages
from polyroute.types import CallRecord, Envelope, FanOutResult, Message, Usage

T = TypeVar("T")
log = logging.getLogger("polyroute.router")
Validate = ValidatorFn | Acceptance | Mapping[str, Any] | None


class Router:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        sessions: SessionPool | None = None,
    ) -> None:
        self.settings = settings
        self.config = settings.config
        self.catalog = settings.catalog
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.sessions = sessions or SessionPool()
        self.registry = ProviderRegistry(settings.providers, settings.environ)
        self.resolver = Resolver(settings, self.clock.time)
        self.cooldown = CooldownTracker(self.config.policies.cooldown, self.clock)
        self.ledger = SpendLedger(self.clock.time)
        cc = self.config.cache
        self.cache = ResponseCache.from_config(
            cc, self.config.state.url, self.clock, prefix=cc.prefix, lock_ttl=cc.lock_ttl
        )
        self.budget = BudgetGuard(self.config.budget, self.ledger)
        self.limiter = RateLimiter(buckets_for(self.config.state.url), self.clock)
        self._has_limits = any(m.rpm or m.tpm for m in self.catalog) or any(
            s.rpm or s.tpm for s in settings.providers.values()
        )
        # Observers see every finished call (metrics, the usage store); they must be quick.
        self.observers: list[Callable[[CallRecord], None]] = []
        self._portal: _LoopThread | None = None

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        config: str | os.PathLike[str] | Mapping[str, Any] | Config | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> Router:
        """From a YAML path, a dict, a ``Config``, or (None) the usual search."""
        if isinstance(config, Config):
            config = config.model_dump(exclude_unset=True)
        if isinstance(config, Mapping):
            return cls(load_settings(data=config, environ=environ), **kw)
        return cls(load_settings(Path(config) if config else None, environ=environ), **kw)

    @classmethod
    def from_env(cls, **kw: Any) -> Router:
        """Built-in defaults, ``POLYROUTE_CONFIG`` or ./polyroute.yaml, then the environment."""
        return cls(load_settings(), **kw)

    # -- chat ---------------------------------------------------------------------------

    def resolve(self, route: str | None, product_type: str | None = None) -> Route:
        r = self.resolver.resolve(route, product_type)
        allowed = self.config.server.allowed_providers
        if allowed is not None:
            used = {c.info.provider for c in r.candidates}
            banned = sorted(used - set(allowed) - ALWAYS_ALLOWED)
            if banned:
                raise ProviderNotAllowedError(
                    f"route {r.name!r} uses provider(s) {', '.join(banned)}, not in "
                    f"server.allowed_providers / ALLOWED_MODEL_PROVIDERS ({', '.join(allowed)})"
                )
        return r

    def emit(self, record: CallRecord) -> None:
        for observe in self.observers:
            try:
                observe(record)
            except Exception:  # an observer's bug must not fail the call it observes
                log.exception("call observer failed", extra={"observer": repr(observe)})

    def _backoff(self, route: Route) -> Callable[[Client], Backoff]:
        retry = self.config.policies.retry
        attempts = route.max_attempts
        if attempts is None and self.config.defaults.max_retries is not None:
            attempts = self.config.defaults.max_retries + 1
        return lambda client: Backoff.from_policy(retry, client.spec.retry, attempts)

    def _validator(
        self, route: Route, validate: Validate
    ) -> Callable[[str | None], Validation] | None:
        if validate is None:
            return acceptance_validator(route.accept) if route.accept else None
        if isinstance(validate, Acceptance):
            return acceptance_validator(validate)
        if isinstance(validate, Mapping):
            return acceptance_validator(Acceptance.model_validate(validate))
        fn = validate
        return lambda content: normalize(fn(content))

    @staticmethod
    def _merge(route: Route, candidate: Candidate, params: Mapping[str, Any]) -> dict[str, Any]:
        merged = {**route.params, **candidate.params}
        merged.update((k, v) for k, v in params.items() if v is not None)
        cap = route.max_tokens_cap
        if cap is not None and merged.get("max_tokens", cap) > cap:
            merged["max_tokens"] = cap  # a tier's token budget is a ceiling, not a default
        return merged

    def _context(
        self,
        route: Route,
        needs: Needs,
        messages: list[Message] | None,
        validate: Validate,
        invoke: Any,
        timeout: float | None = None,
    ) -> CallContext:
        ctx = CallContext(
            route=route,
            invoke=invoke,
            registry=self.registry,
            cooldown=self.cooldown,
            backoff_for=self._backoff(route),
            clock=self.clock,
            rng=self.rng,
            needs=needs,
            messages=messages,
            validator=self._validator(route, validate),
        )
        ctx.warnings.extend(route.warnings)
        if self._has_limits:
            wait_budget = timeout or route.timeout
            max_tokens = needs.max_tokens

            async def acquire(client: Client, c: Candidate) -> float:
                limits = limits_for(
                    c.info.id,
                    c.info.rpm,
                    c.info.tpm,
                    client.spec.name,
                    client.spec.rpm,
                    client.spec.tpm,
                    lambda: (
                        count_messages(messages or [], c.info.provider, c.info.name) + max_tokens
                    ),
                )
                return await self.limiter.acquire(limits, wait_budget, c.info.id)

            ctx.rate_limit = acquire
        return ctx

    async def complete(
        self,
        route: str | None,
        messages: Sequence[Message] | str,
        *,
        product_type: str | None = None,
        timeout: float | None = None,
        validate: Validate = None,
        labels: Mapping[str, str] | None = None,
        cache: bool | None = None,
        cache_namespace: str | None = None,
        **params: Any,
    ) -> Envelope:
        """Serve ``messages`` through ``route``; params are OpenAI parameter names.
        ``labels`` (pipeline, step, api key id, ...) go to the call's record;
        ``cache=False`` opts out of the response cache, ``cache_namespace`` picks one."""
        msgs = _as_messages(messages)
        r = self.resolve(route, product_type)
        tags = {**r.labels, **(labels or {})}
        t0 = self.clock.monotonic()
        started = self.clock.time()
        try:
            env = await self._serve_chat(
                r, msgs, params, timeout, validate, tags, cache, cache_namespace
            )
        except Exception as exc:
            latency = self.clock.monotonic() - t0
            self.emit(CallRecord.from_error("chat", r.name, exc, started, latency, tags))
            raise
        env.latency = self.clock.monotonic() - t0
        self._price_warning(env)
        self.emit(CallRecord.from_envelope("chat", env, started, tags))
        return env

    async def _serve_chat(
        self,
        r: Route,
        msgs: list[Message],
        params: Mapping[str, Any],
        timeout: float | None,
        validate: Validate,
        tags: Mapping[str, str],
        cache: bool | None = None,
        cache_namespace: str | None = None,
    ) -> Envelope:
        """Serve one route, stepping down a tier (when the budget allows it) while the
        whole pool is over ``max_cost_per_request``."""
        notes: list[str] = []
        while True:
            try:
                env = await self._chat_once(
                    r, msgs, params, timeout, validate, tags, cache, cache_namespace
                )
            except OverBudget:
                cheapest = min(self._estimate(r, c, msgs, params) for c in r.candidates)
                lower = self._cheaper_tier(r)
                if lower is None:
                    raise self.budget.refuse_all(r.name, cheapest) from None
                notes.append(
                    f"{r.name}: every model over budget.max_cost_per_request "
                    f"(cheapest ${cheapest:.6f}); stepped down to {lower.name}"
                )
                r = lower
                continue
            env.warnings[:0] = notes
            return env

    def _cheaper_tier(self, r: Route) -> Route | None:
        tier = r.labels.get("tier")
        if not self.config.budget.step_down or tier not in TIERS:
            return None
        for lower in reversed(TIERS[: TIERS.index(tier)]):
            if lower in self.config.tiers:
                return self.resolve(f"tier:{lower}")
        return None

    def _estimate(
        self, r: Route, c: Candidate, msgs: list[Message], params: Mapping[str, Any]
    ) -> float:
        return estimate_cost(c.info, msgs, self._merge(r, c, params).get("max_tokens"))

    async def _chat_once(
        self,
        r: Route,
        msgs: list[Message],
        params: Mapping[str, Any],
        timeout: float | None,
        validate: Validate,
        tags: Mapping[str, str],
        cache: bool | None = None,
        cache_namespace: str | None = None,
    ) -> Envelope:
        call_timeout = timeout or r.timeout
        session = self.sessions.get()

        async def invoke(client: Client, c: Candidate) -> Envelope:
            req = ChatRequest(c.info.name, msgs, self._merge(r, c, params), call_timeout, c.info.id)
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

        max_tokens = params.get("max_tokens") or r.params.get("max_tokens")
        ctx = self._context(
            r, needs_for_chat(msgs, max_tokens), msgs, validate, invoke, call_timeout
        )
        if self.config.budget.max_cost_per_request is not None:
            ctx.budget_skip = lambda c: self.budget.per_request_skip(
                self._estimate(r, c, msgs, params)
            )
        plan = None
        if self.cache is not None:
            effective = {**r.params, **{k: v for k, v in params.items() if v is not None}}
            plan = plan_for(
                r.name,
                r.cache,
                [c.info.id for c in r.candidates],
                msgs,
                effective,
                validate if not callable(validate) else None,
                callable(validate),
                cache,
                cache_namespace,
            )
        if plan is None or self.cache is None:
            return await self._spend(ctx, r, msgs, params, tags, call_timeout)
        fresh: Envelope | None = None

        async def compute() -> dict[str, Any]:
            nonlocal fresh
            fresh = await self._spend(ctx, r, msgs, params, tags, call_timeout)
            return fresh.to_dict(include_raw=True)

        stored, hit = await self.cache.get_or_compute(plan.namespace, plan.key, compute, plan.ttl)
        if not hit and fresh is not None:
            return fresh  # the caller whose call reached the provider keeps the real attempts
        env, saved = envelope_from_cache(stored)
        env.saved_cost = saved
        env.route = r.name
        env.warnings.extend(r.warnings)
        return env

    async def _spend(
        self,
        ctx: CallContext,
        r: Route,
        msgs: list[Message],
        params: Mapping[str, Any],
        tags: Mapping[str, str],
        call_timeout: float,
    ) -> Envelope:
        """Run the strategy inside the monthly budget: reserve the worst case, settle
        to the real cost."""
        reservation = None
        if self.budget.limits_for(tags.get("api_key")):
            worst = max(self._estimate(r, c, msgs, params) for c in r.candidates)
            reservation, warning = self.budget.open(worst, tags.get("api_key"))
            if warning:
                ctx.warnings.append(warning)
        actual = 0.0
        try:
            env = await run_strategy(ctx, call_timeout)
            actual = env.cost
            return env
        finally:
            if reservation is not None:
                self.ledger.settle(reservation, actual)

    def stream(
        self,
        route: str | None,
        messages: Sequence[Message] | str,
        *,
        product_type: str | None = None,
        timeout: float | None = None,
        labels: Mapping[str, str] | None = None,
        **params: Any,
    ) -> RouterStream:
        """Stream an answer; fallback is possible until the first chunk arrives.
        Iterate the result for chunks; ``.envelope`` is set once it ends."""
        msgs = _as_messages(messages)
        r = self.resolve(route, product_type)
        max_tokens = params.get("max_tokens") or r.params.get("max_tokens")
        return RouterStream(
            route=r,
            messages=msgs,
            params=params,
            timeout=timeout or r.timeout,
            context=lambda invoke: self._context(
                r, needs_for_chat(msgs, max_tokens), msgs, None, invoke, timeout or r.timeout
            ),
            merge=self._merge,
            sessions=self.sessions,
            clock=self.clock,
            emit=self.emit,
            labels={**r.labels, **(labels or {})},
        )

    async def fan_out(
        self,
        routes: str | Sequence[str],
        messages: Sequence[Message] | str,
        **kw: Any,
    ) -> list[FanOutResult]:
        """Every model (or route) at once; each result an envelope or an error.
        A single route name fans out over its candidates."""
        names = (
            [c.info.id for c in self.resolve(routes).candidates]
            if isinstance(routes, str)
            else list(routes)
        )

        async def one(name: str) -> FanOutResult:
            try:
                return FanOutResult(name, envelope=await self.complete(name, messages, **kw))
            except Exception as exc:  # each model's failure is its own card, not the call's
                return FanOutResult(name, error=exc)

        return list(await asyncio.gather(*(one(n) for n in names)))

    async def batch(
        self,
        requests: Sequence[Mapping[str, Any]],
        *,
        concurrency: int = 8,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[Envelope | Exception]:
        """Run many requests, at most ``concurrency`` at once, within the rate limits.

        Each request is ``{"route": ..., "messages": [...] or "prompt": "...", **params}``;
        results come back in order, each an envelope or the exception it raised."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(req: Mapping[str, Any]) -> Envelope | Exception:
            nonlocal done
            body = dict(req)
            route = body.pop("route", None) or body.pop("model", None)
            messages = body.pop("messages", None) or body.pop("prompt", "")
            async with gate:
                try:
                    return await self.complete(route, messages, **body)
                except Exception as exc:  # one bad item must not sink the batch
                    return exc
                finally:
                    done += 1
                    if on_progress is not None:
                        on_progress(done, len(requests))

        return list(await asyncio.gather(*(one(r) for r in requests)))

    # -- images -------------------------------------------------------------------------

    async def generate_image(
        self,
        route: str | None = "task:image",
        prompt: str = "",
        *,
        timeout: float | None = None,
        labels: Mapping[str, str] | None = None,
        **params: Any,
    ) -> Envelope:
        r = self.resolve(route)
        call_timeout = timeout or r.timeout
        t0 = self.clock.monotonic()
        session = self.sessions.get()

        async def invoke(client: Client, c: Candidate) -> Envelope:
            merged = {k: v for k, v in params.items() if v is not None}
            req = ImageRequest(c.info.name, prompt, merged, call_timeout, c.info.id)
            resp = await client.adapter.image(session, client.endpoint, req)
            return Envelope(
                content=None,
                model=c.info.id,
                provider=c.info.provider,
                route=r.name,
                usage=Usage(),
                cost=c.info.cost(Usage(), images=len(resp.images)),
                request_id=resp.request_id,
                images=resp.images,
                simulated=resp.simulated,
                raw=resp.raw,
            )

        ctx = self._context(r, Needs(image_generation=True), None, None, invoke, call_timeout)
        tags = {**r.labels, **(labels or {})}
        started = self.clock.time()
        try:
            env = await run_strategy(ctx, call_timeout)
        except Exception as exc:
            latency = self.clock.monotonic() - t0
            self.emit(CallRecord.from_error("image", r.name, exc, started, latency, tags))
            raise
        env.latency = self.clock.monotonic() - t0
        self.emit(CallRecord.from_envelope("image", env, started, tags))
        return env

    # -- sync facade and lifecycle ------------------------------------------------------

    def _run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._portal is None:
            self._portal = _LoopThread()
        return self._portal.run(coro)

    def complete_sync(
        self, route: str | None, messages: Sequence[Message] | str, **kw: Any
    ) -> Envelope:
        return self._run_sync(self.complete(route, messages, **kw))

    def fan_out_sync(
        self, routes: str | Sequence[str], messages: Sequence[Message] | str, **kw: Any
    ) -> list[FanOutResult]:
        return self._run_sync(self.fan_out(routes, messages, **kw))

    def generate_image_sync(
        self, route: str | None = "task:image", prompt: str = "", **kw: Any
    ) -> Envelope:
        return self._run_sync(self.generate_image(route, prompt, **kw))

    async def aclose(self) -> None:
        await self.sessions.close()
        if self.cache is not None:
            await self.cache.close()

    def close(self) -> None:
        if self._portal is not None:
            self._portal.run(self.sessions.close())
            self._portal.stop()
            self._portal = None

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _price_warning(self, env: Envelope) -> None:
        info = self.catalog.lookup(env.model)
        if not info.price_known:
            env.warnings.append(f"no catalog price for {env.model}; cost recorded as 0")


def _as_messages(messages: Sequence[Message] | str) -> list[Message]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return list(messages)


class _LoopThread:
    """A private event loop on a daemon thread, for the sync facade: one loop
    for the router's life, so its HTTP session and pool are reused."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, daemon=True, name="polyroute-sync"
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()
