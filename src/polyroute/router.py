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
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from polyroute.cache import ResponseCache
from polyroute.clock import Clock, SystemClock
from polyroute.config.load import Settings, load_settings
from polyroute.config.schema import Config
from polyroute.config.validate import ALWAYS_ALLOWED
from polyroute.errors import ProviderNotAllowedError
from polyroute.providers.base import ImageRequest
from polyroute.providers.http import SessionPool
from polyroute.providers.registry import Client, ProviderRegistry
from polyroute.routing.budget import BudgetGuard, SpendLedger
from polyroute.routing.capabilities import Needs, needs_for_chat
from polyroute.routing.chat import ChatCall
from polyroute.routing.contexts import ContextBuilder, merge_params
from polyroute.routing.cooldown import CooldownTracker
from polyroute.routing.cooldown_shared import SharedCooldownTracker
from polyroute.routing.ratelimit import RateLimiter, buckets_for
from polyroute.routing.resolve import Candidate, Resolver, Route
from polyroute.routing.strategies import run_strategy
from polyroute.routing.streaming import RouterStream
from polyroute.routing.validators import Validate
from polyroute.sync import LoopThread
from polyroute.types import CallRecord, Envelope, FanOutResult, Message, Usage

T = TypeVar("T")
log = logging.getLogger("polyroute.router")


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
        self.cooldown = cooldown_for(self.config, self.clock)
        self.ledger = SpendLedger(self.clock.time)
        cc = self.config.cache
        self.cache = ResponseCache.from_config(
            cc, self.config.state.url, self.clock, prefix=cc.prefix, lock_ttl=cc.lock_ttl
        )
        self.budget = BudgetGuard(self.config.budget, self.ledger)
        state = self.config.state
        self.limiter = RateLimiter(buckets_for(state.url, state.prefix), self.clock)
        has_limits = any(m.rpm or m.tpm for m in self.catalog) or any(
            s.rpm or s.tpm for s in settings.providers.values()
        )
        self.contexts = ContextBuilder(
            self.config,
            self.registry,
            lambda: self.cooldown,
            self.clock,
            self.rng,
            self.limiter,
            has_limits,
        )
        # Observers see every finished call (metrics, the usage store); they must be quick.
        self.observers: list[Callable[[CallRecord], None]] = []
        self._portal: LoopThread | None = None

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

    def _resolve_recorded(
        self,
        kind: Literal["chat", "stream", "image"],
        route: str | None,
        product_type: str | None,
        labels: Mapping[str, str] | None,
    ) -> Route:
        """Resolve, recording a refused call (unknown route, provider not allowed) too:
        every call leaves a usage record, even one that never reached a model."""
        try:
            return self.resolve(route, product_type)
        except Exception as exc:
            now = self.clock.time()
            self.emit(
                CallRecord.from_error(kind, route or "default", exc, now, 0.0, dict(labels or {}))
            )
            raise

    def emit(self, record: CallRecord) -> None:
        for observe in self.observers:
            try:
                observe(record)
            except Exception:  # an observer's bug must not fail the call it observes
                log.exception("call observer failed", extra={"observer": repr(observe)})

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
        r = self._resolve_recorded("chat", route, product_type, labels)
        tags = {**r.labels, **(labels or {})}
        call = ChatCall(self, r, msgs, params, timeout, validate, tags, cache, cache_namespace)
        return await self._observed("chat", r.name, tags, call.serve)

    async def _observed(
        self,
        kind: Literal["chat", "image"],
        route_name: str,
        tags: dict[str, str],
        run: Callable[[], Awaitable[Envelope]],
    ) -> Envelope:
        """Run one call, timing it and leaving its record, success or failure, with the
        observers.  (A stream records itself: it ends after this would have returned.)"""
        t0 = self.clock.monotonic()
        started = self.clock.time()
        try:
            env = await run()
        except Exception as exc:
            latency = self.clock.monotonic() - t0
            self.emit(CallRecord.from_error(kind, route_name, exc, started, latency, tags))
            raise
        env.latency = self.clock.monotonic() - t0
        if kind == "chat":
            self._price_warning(env)
        self.emit(CallRecord.from_envelope(kind, env, started, tags))
        return env

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
        r = self._resolve_recorded("stream", route, product_type, labels)
        max_tokens = params.get("max_tokens") or r.params.get("max_tokens")
        return RouterStream(
            route=r,
            messages=msgs,
            params=params,
            timeout=timeout or r.timeout,
            context=lambda invoke: self.contexts.build(
                r, needs_for_chat(msgs, max_tokens), msgs, None, invoke, timeout or r.timeout
            ),
            merge=merge_params,
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
        r = self._resolve_recorded("image", route, None, labels)
        call_timeout = timeout or r.timeout
        session = self.sessions.get()
        merged = {k: v for k, v in params.items() if v is not None}

        async def invoke(client: Client, c: Candidate) -> Envelope:
            req = ImageRequest(c.info.name, prompt, dict(merged), call_timeout, c.info.id)
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

        ctx = self.contexts.build(r, Needs(image_generation=True), None, None, invoke, call_timeout)
        tags = {**r.labels, **(labels or {})}
        return await self._observed("image", r.name, tags, lambda: run_strategy(ctx, call_timeout))

    # -- sync facade and lifecycle ------------------------------------------------------

    def _run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._portal is None:
            self._portal = LoopThread()
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
        if isinstance(self.cooldown, SharedCooldownTracker):
            await self.cooldown.close()
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


def cooldown_for(config: Config, clock: Clock) -> CooldownTracker:
    """In memory, or shared by every process on the same Redis (``state.url``)."""
    state = config.state
    if state.url.startswith(("redis://", "rediss://")):
        return SharedCooldownTracker(
            config.policies.cooldown, clock, state.url, state.prefix + "cooldown:"
        )
    return CooldownTracker(config.policies.cooldown, clock)
