"""The Router: a thin facade over the call engine.

It resolves what the caller names — a route name, a ``Route``, or a list of
models — and hands the call's ``Work`` to the engine (``routing/engine.py``),
which runs every kind of call through the same layers.  The long-lived parts
live in its ``Runtime``.  Async first; the ``*_sync`` methods run the same
coroutines on a private event loop thread.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from polyroute import reconfigure
from polyroute.cache import ResponseCache
from polyroute.clock import Clock
from polyroute.config.catalog import Catalog
from polyroute.config.load import Settings, deep_merge, load_settings
from polyroute.config.schema import Config
from polyroute.config.validate import ALWAYS_ALLOWED
from polyroute.errors import ProviderNotAllowedError
from polyroute.providers.http import SessionPool
from polyroute.providers.registry import ProviderRegistry
from polyroute.routing import multi
from polyroute.routing.budget import BudgetGuard, SpendLedger
from polyroute.routing.cooldown import CooldownTracker
from polyroute.routing.engine import Engine
from polyroute.routing.ratelimit import RateLimiter
from polyroute.routing.resolve import Resolver, Route, Target
from polyroute.routing.runtime import Observer, Runtime
from polyroute.routing.streaming import RouterStream
from polyroute.routing.validators import Validate
from polyroute.routing.views import Part
from polyroute.routing.work import (
    ChatWork,
    EmbeddingWork,
    ImageWork,
    Native,
    StreamWork,
    Work,
)
from polyroute.sync import SyncFacade
from polyroute.types import CallRecord, Envelope, FanOutResult, Kind, Message


class Router(SyncFacade):
    runtime: Runtime
    engine: Engine

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        sessions: SessionPool | None = None,
        observers: list[Observer] | None = None,
        previous: Router | None = None,
    ) -> None:
        """``previous``: the router this one replaces (a reload); its cooldowns, spend,
        sessions and unchanged shared clients are handed over, not rebuilt."""
        self.runtime = Runtime(
            settings,
            clock=clock,
            rng=rng,
            sessions=sessions,
            observers=observers,
            previous=previous.runtime if previous is not None else None,
        )
        self.engine = Engine(self.runtime, self.resolve)
        # What reconfigure() rebuilds from: the source data (None: the file) and the
        # runtime changes so far.
        self._data: dict[str, Any] | None = None
        self._overrides: dict[str, Any] = {}
        self._retiring: set[asyncio.Task[None]] = set()

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
            router = cls(load_settings(data=config, environ=environ), **kw)
            router._data = dict(config)
            return router
        return cls(load_settings(Path(config) if config else None, environ=environ), **kw)

    @classmethod
    def from_env(cls, **kw: Any) -> Router:
        """Built-in defaults, ``POLYROUTE_CONFIG`` or ./polyroute.yaml, then the environment."""
        return cls(load_settings(), **kw)

    # Read-only views of the runtime's parts.
    settings = Part[Settings]()
    config = Part[Config]()
    catalog = Part[Catalog]()
    clock = Part[Clock]()
    rng = Part[random.Random]()
    sessions = Part[SessionPool]()
    registry = Part[ProviderRegistry]()
    resolver = Part[Resolver]()
    cooldown = Part[CooldownTracker]()
    limiter = Part[RateLimiter]()
    ledger = Part[SpendLedger]()
    budget = Part[BudgetGuard]()
    cache = Part[ResponseCache | None]()
    observers = Part[list[Observer]]()

    def emit(self, record: CallRecord) -> None:
        self.runtime.emit(record)

    # -- routes -------------------------------------------------------------------------

    def resolve(self, route: Target, product_type: str | None = None) -> Route:
        """A route name, a ``Route`` as it is, or a list of models as a fallback pool."""
        rt = self.runtime
        if isinstance(route, Route):
            r = route
        elif route is None or isinstance(route, str):
            r = rt.resolver.resolve(route, product_type)
        else:
            r = rt.resolver.pool(list(route))
        allowed = rt.config.server.allowed_providers
        if allowed is not None:
            banned = sorted({c.info.provider for c in r.candidates} - set(allowed) - ALWAYS_ALLOWED)
            if banned:
                raise ProviderNotAllowedError(
                    f"route {r.name!r} uses provider(s) {', '.join(banned)}, not in "
                    f"server.allowed_providers / ALLOWED_MODEL_PROVIDERS ({', '.join(allowed)})"
                )
        return r

    def _admit(
        self, kind: Kind, route: Target, product_type: str | None, labels: Mapping[str, str]
    ) -> Route:
        """Resolve, recording a refused call too: every call leaves a usage record."""
        try:
            return self.resolve(route, product_type)
        except Exception as exc:
            self.engine.refused(kind, _name_of(route), exc, labels)
            raise

    async def _run(
        self, work: Work, route: Target, product_type: str | None, labels: Mapping[str, str] | None
    ) -> Envelope:
        tags = dict(labels or {})
        return await self.engine.run(work, self._admit(work.kind, route, product_type, tags), tags)

    # -- calls --------------------------------------------------------------------------

    async def complete(
        self,
        route: Target,
        messages: Sequence[Message] | str,
        *,
        product_type: str | None = None,
        timeout: float | None = None,
        validate: Validate = None,
        labels: Mapping[str, str] | None = None,
        cache: bool | None = None,
        cache_namespace: str | None = None,
        first_chunk_timeout: float | None = None,
        native: Native | None = None,
        **params: Any,
    ) -> Envelope:
        """Serve ``messages`` through ``route``; params are OpenAI parameter names.
        ``labels`` (pipeline, step, api key id, ...) go to the call's record;
        ``cache=False`` opts out of the response cache, ``cache_namespace`` picks one;
        ``first_chunk_timeout`` bounds the wait for the answer's headers; ``native`` is
        an Anthropic Messages body forwarded as is to Anthropic-wire candidates."""
        work = ChatWork(
            _as_messages(messages),
            params,
            timeout,
            validate,
            cache,
            cache_namespace,
            first_chunk_timeout=first_chunk_timeout,
            native=native,
        )
        return await self._run(work, route, product_type, labels)

    def stream(
        self,
        route: Target,
        messages: Sequence[Message] | str,
        *,
        product_type: str | None = None,
        timeout: float | None = None,
        labels: Mapping[str, str] | None = None,
        first_chunk_timeout: float | None = None,
        idle_timeout: float | None = None,
        stream_recovery: str | None = None,
        native: Native | None = None,
        **params: Any,
    ) -> RouterStream:
        """Stream an answer.  Iterate the result for chunks; ``.envelope`` is set once it
        ends.  Falls back until the first chunk; a failure after it is recovered per
        ``stream_recovery`` (``continue``, ``buffer`` or ``off``; the route's by default)."""
        tags = dict(labels or {})
        r = self._admit("stream", route, product_type, tags)
        work = StreamWork(
            _as_messages(messages),
            params,
            timeout,
            first_chunk_timeout=first_chunk_timeout,
            idle_timeout=idle_timeout,
            stream_recovery=stream_recovery,
            native=native,
        )
        return RouterStream(self.engine, work, r, tags)

    async def generate_image(
        self,
        route: Target = "task:image",
        prompt: str = "",
        *,
        timeout: float | None = None,
        labels: Mapping[str, str] | None = None,
        **params: Any,
    ) -> Envelope:
        return await self._run(ImageWork(prompt, params, timeout), route, None, labels)

    async def embed(
        self,
        route: Target = "task:embedding",
        input: str | Sequence[str] = "",
        *,
        timeout: float | None = None,
        labels: Mapping[str, str] | None = None,
        cache: bool | None = None,
        **params: Any,
    ) -> Envelope:
        """Embeddings of ``input`` (one text or several); vectors in ``envelope.embeddings``."""
        inputs = [input] if isinstance(input, str) else list(input)
        return await self._run(EmbeddingWork(inputs, params, timeout, cache), route, None, labels)

    async def fan_out(
        self, routes: str | Sequence[str], messages: Sequence[Message] | str, **kw: Any
    ) -> list[FanOutResult]:
        """Every model (or route) at once; each result an envelope or an error.
        A single route name fans out over its candidates."""
        names = (
            [c.info.id for c in self.resolve(routes).candidates]
            if isinstance(routes, str)
            else list(routes)
        )
        return await multi.fan_out(self.complete, names, messages, **kw)

    async def batch(
        self,
        requests: Sequence[Mapping[str, Any]],
        *,
        concurrency: int = 8,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[Envelope | Exception]:
        """Run many requests, at most ``concurrency`` at once, within the rate limits.
        Each is ``{"route": ..., "messages": [...] or "prompt": "...", **params}``;
        results come back in order, each an envelope or the exception it raised."""
        return await multi.batch(self.complete, requests, concurrency, on_progress)

    async def provider_batch(
        self,
        route: str,
        requests: Sequence[Mapping[str, Any]],
        *,
        poll_interval: float = 10.0,
        max_wait: float = 24 * 3600.0,
    ) -> list[Envelope | Exception]:
        """Many requests as one provider batch (OpenAI Batch, Anthropic Message Batches:
        half price, answered within hours); other providers: ``batch``."""
        from polyroute.provider_batch import run_provider_batch

        return await run_provider_batch(
            self, route, requests, poll_interval=poll_interval, max_wait=max_wait
        )

    # -- runtime reassignment (seed 004's updateTaskConfig) ------------------------------

    def update_task(
        self,
        task: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        fallback_provider: str | None = None,
        fallback_model: str | None = None,
    ) -> None:
        """Serve ``task`` with this model (a provider alone: its default for the task)."""
        self.reconfigure(
            reconfigure.task_override(
                self.settings, task, provider, model, fallback_provider, fallback_model
            )
        )

    def update_tier(self, tier: str, models: list[str]) -> None:
        self.reconfigure(reconfigure.pool_override("tiers", tier, models))

    def update_role(self, role: str, models: list[str], product_type: str | None = None) -> None:
        self.reconfigure(reconfigure.role_override(role, models, product_type))

    def update_step(self, pipeline: str, step: str, models: list[str]) -> None:
        self.reconfigure(reconfigure.step_override(pipeline, step, models))

    def reconfigure(self, overrides: Mapping[str, Any]) -> None:
        """Apply a config change now, validated like the file (ConfigError otherwise,
        and nothing changes).  Calls in flight finish on the configuration they started
        with; later calls, and later changes, build on this one."""
        merged = deep_merge(self._overrides, overrides)
        data = self._data
        if data is None and self.settings.path is None:  # built from Settings in code
            data = self.config.model_dump(exclude_unset=True)
        settings = load_settings(
            self.settings.path, data=data, environ=self.settings.environ, overrides=merged
        )
        old = self.runtime
        self.runtime = Runtime(settings, previous=old)
        self.engine = Engine(self.runtime, self.resolve)
        self._overrides = merged
        self._retire(old)

    def _retire(self, old: Runtime) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop here: nothing the old runtime owns is open on one
            return
        task = loop.create_task(old.retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # -- sync facade and lifecycle ------------------------------------------------------

    async def aclose(self) -> None:
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        await self.runtime.aclose()

    async def retire(self, drain_timeout: float = 30.0) -> None:
        """After a reload: let calls in flight finish, then close what is still ours."""
        await self.runtime.retire(drain_timeout)

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _name_of(route: Target) -> str:
    if isinstance(route, Route):
        return route.name
    if route is None or isinstance(route, str):
        return route or "default"
    return "pool:" + ",".join(route)


def _as_messages(messages: Sequence[Message] | str) -> list[Message]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return list(messages)
