"""What differs between kinds of call — and nothing else.

The engine (``routing/engine.py``) runs every call through the same layers;
a ``Work`` tells it only what is particular to its kind: what a candidate
must be able to do (``needs``), what one candidate would cost at worst
(``estimate``), whether and under which key the answer may be cached
(``cache_plan``), and how one attempt is made and its answer assembled into
an ``Envelope`` (``attempt``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyroute.cache.key import cache_key
from polyroute.cache.plan import CachePlan, plan_for
from polyroute.errors import ConfigError, ProviderError, ProviderTimeoutError
from polyroute.providers.base import ChatRequest, EmbeddingRequest, ImageRequest, StreamChunk
from polyroute.providers.registry import Client
from polyroute.routing.budget import estimate_cost
from polyroute.routing.capabilities import Needs, needs_for_chat
from polyroute.routing.contexts import merge_params
from polyroute.routing.resolve import Candidate, Route
from polyroute.routing.validators import Validate
from polyroute.tokens import PromptTokens, count_text
from polyroute.types import Envelope, Kind, Message, Usage

if TYPE_CHECKING:
    import aiohttp


@dataclass(frozen=True, slots=True)
class Native:
    """A request in a provider's own format (the Anthropic ingress's Messages body and
    its anthropic-* headers, or a Responses API body): an upstream that speaks it gets
    it as sent, model replaced;
    others get the translation.  ``untranslatable`` says why it has no OpenAI form, if
    it has none (then only upstreams that take it as sent may serve it)."""

    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    untranslatable: str | None = None
    wire: str = "anthropic"  # or "responses": OpenAI's Responses API


@dataclass(slots=True)
class ChatWork:
    """A chat completion answered whole."""

    messages: list[Message]
    params: Mapping[str, Any]
    timeout: float | None = None
    validate: Validate = None
    cache: bool | None = None  # False: the caller opted out of the response cache
    cache_namespace: str | None = None
    # The call's own timeouts and recovery mode (None: the route's).
    first_chunk_timeout: float | None = None
    idle_timeout: float | None = None
    stream_recovery: str | None = None
    native: Native | None = None  # the Anthropic ingress's body, for Anthropic-wire candidates
    kind: Kind = "chat"
    # Shared by the capability check, every cost estimate and the rate-limit gate of
    # every pass (a step down keeps the prompt), so each tokenizer counts it once.
    prompt: PromptTokens = field(init=False)

    def __post_init__(self) -> None:
        self.prompt = PromptTokens(self.messages)

    def needs(self, route: Route) -> Needs:
        max_tokens = self.params.get("max_tokens") or route.params.get("max_tokens")
        needs = needs_for_chat(self.messages, max_tokens, self.prompt)
        if self.native is not None:
            needs.untranslatable = self.native.untranslatable
            needs.native_wire = self.native.wire
        return needs

    def estimate(self, route: Route, c: Candidate) -> float:
        return estimate_cost(
            c.info,
            self.messages,
            merge_params(route, c, self.params).get("max_tokens"),
            prompt_tokens=self.prompt.count(c.info.provider, c.info.name),
        )

    def cache_plan(self, route: Route, declared: Collection[str] = ()) -> CachePlan | None:
        effective = {**route.params, **_given(self.params)}
        namespace = self.cache_namespace or (route.cache.namespace if route.cache else None)
        if self.cache_namespace is not None and self.cache_namespace not in declared:
            raise ConfigError(
                f"cache namespace {self.cache_namespace!r} is not declared in "
                f"cache.namespaces (declared: {', '.join(sorted(declared)) or 'none'})",
                path="cache_namespace",
            )
        return plan_for(
            route.name,
            route.cache,
            [c.info.id for c in route.candidates],
            self.messages,
            effective,
            None if callable(self.validate) else self.validate,
            callable(self.validate),
            self.cache,
            self.cache_namespace,
            extra={"native": _without_model(self.native.body)} if self.native else None,
            # A declared namespace is the user saying these answers may be reused,
            # whatever the temperature (seed 003's CACHE_CONFIG).
            allow_sampled=namespace is not None and namespace in declared,
        )

    def first_chunk_limit(self, route: Route) -> float | None:
        return self.first_chunk_timeout or route.first_chunk_timeout

    def request(self, route: Route, c: Candidate, timeout: float | None) -> ChatRequest:
        params = merge_params(route, c, self.params)
        # Only models that reason take reasoning_effort; the others would refuse the whole
        # call.  (A model the catalog knows nothing about gets it as the caller sent it.)
        known = c.info.capabilities and c.info.price_known
        if "reasoning_effort" in params and known and not c.info.has("reasoning"):
            del params["reasoning_effort"]
        return ChatRequest(
            c.info.name,
            self.messages,
            params,
            timeout,
            c.info.id,
            first_chunk_timeout=self.first_chunk_limit(route),
            native=self.native.body if self.native else None,
            native_headers=self.native.headers if self.native else (),
            native_wire=self.native.wire if self.native else None,
        )

    async def attempt(
        self,
        session: aiohttp.ClientSession,
        client: Client,
        route: Route,
        c: Candidate,
        timeout: float | None,
    ) -> Envelope:
        resp = await client.adapter.chat(session, client.endpoint, self.request(route, c, timeout))
        return _envelope(
            route,
            c,
            content=resp.content,
            usage=resp.usage,
            cost=c.info.cost(resp.usage),
            request_id=resp.request_id,
            finish_reason=resp.finish_reason,
            tool_calls=resp.tool_calls,
            simulated=resp.simulated,
            raw=resp.raw,
            native=resp.native,
        )


@dataclass(slots=True)
class Opened:
    """A candidate's stream once its first chunk arrived."""

    candidate: Candidate
    chunks: AsyncIterator[StreamChunk]
    first: StreamChunk


@dataclass(slots=True)
class StreamWork(ChatWork):
    """A chat completion streamed: an attempt succeeds when its first chunk arrives,
    and the stream (``opened``) is read on by ``RouterStream``.  Budgets and records
    are the engine's like any other call; the record is left when the stream ends."""

    kind: Kind = "stream"
    opened: dict[str, Opened] = field(default_factory=dict)

    def cache_plan(self, route: Route, declared: Collection[str] = ()) -> CachePlan | None:
        return None  # a stream's answer is assembled by its reader, after the engine returns

    async def attempt(
        self,
        session: aiohttp.ClientSession,
        client: Client,
        route: Route,
        c: Candidate,
        timeout: float | None,
    ) -> Envelope:
        req = self.request(route, c, timeout)
        req.first_chunk_timeout = None  # bounded here, around the first chunk itself
        it = client.adapter.stream(session, client.endpoint, req).__aiter__()
        limit = self.first_chunk_limit(route)
        try:
            if limit is None:
                chunk = await it.__anext__()
            else:
                async with asyncio.timeout(limit):
                    chunk = await it.__anext__()
        except TimeoutError:
            await aclose_quietly(it)
            raise ProviderTimeoutError(
                f"no first chunk within first_chunk_timeout {limit}s",
                provider=c.info.provider,
                model=c.info.id,
            ) from None
        except StopAsyncIteration:
            raise ProviderError(
                "stream ended before any chunk",
                provider=c.info.provider,
                model=c.info.id,
                retryable=True,
            ) from None
        except BaseException:
            await aclose_quietly(it)
            raise
        self.opened[c.info.id] = Opened(c, it, chunk)
        return _envelope(route, c, request_id=chunk.request_id)


@dataclass(slots=True)
class ImageWork:
    prompt: str
    params: Mapping[str, Any]
    timeout: float | None = None
    kind: Kind = "image"
    messages: list[Message] | None = None
    validate: Validate = None

    def needs(self, route: Route) -> Needs:
        return Needs(image_generation=True)

    def estimate(self, route: Route, c: Candidate) -> float:
        n = self.params.get("n")
        return estimate_cost(c.info, None, None, images=n if isinstance(n, int) else 1)

    def cache_plan(self, route: Route, declared: Collection[str] = ()) -> CachePlan | None:
        return None  # an image is a new draw each time; nobody asks twice for the same one

    async def attempt(
        self,
        session: aiohttp.ClientSession,
        client: Client,
        route: Route,
        c: Candidate,
        timeout: float | None,
    ) -> Envelope:
        req = ImageRequest(c.info.name, self.prompt, _given(self.params), timeout, c.info.id)
        resp = await client.adapter.image(session, client.endpoint, req)
        return _envelope(
            route,
            c,
            cost=c.info.cost(Usage(), images=len(resp.images)),
            request_id=resp.request_id,
            images=resp.images,
            simulated=resp.simulated,
            raw=resp.raw,
        )


@dataclass(slots=True)
class EmbeddingWork:
    inputs: list[str]
    params: Mapping[str, Any]
    timeout: float | None = None
    cache: bool | None = None
    kind: Kind = "embedding"
    messages: list[Message] | None = None
    validate: Validate = None

    def needs(self, route: Route) -> Needs:
        return Needs(embedding=True)

    def estimate(self, route: Route, c: Candidate) -> float:
        tokens = sum(count_text(t, c.info.provider, c.info.name) for t in self.inputs)
        return tokens * c.info.price_input / 1_000_000

    def cache_plan(self, route: Route, declared: Collection[str] = ()) -> CachePlan | None:
        # Embeddings are deterministic: the same input and model give the same vector.
        if self.cache is False or (route.cache is not None and not route.cache.enabled):
            return None
        try:
            key = cache_key(
                route.name,
                [{"role": "user", "content": t} for t in self.inputs],
                {**_given(self.params), "kind": "embedding"},
                models=[c.info.id for c in route.candidates],
            )
        except TypeError:
            return None
        rc = route.cache
        return CachePlan(rc.namespace if rc else None, key, rc.ttl if rc else None)

    async def attempt(
        self,
        session: aiohttp.ClientSession,
        client: Client,
        route: Route,
        c: Candidate,
        timeout: float | None,
    ) -> Envelope:
        req = EmbeddingRequest(c.info.name, self.inputs, _given(self.params), timeout, c.info.id)
        resp = await client.adapter.embed(session, client.endpoint, req)
        return _envelope(
            route,
            c,
            usage=resp.usage,
            cost=c.info.cost(resp.usage),
            request_id=resp.request_id,
            embeddings=resp.embeddings,
            simulated=resp.simulated,
            raw=resp.raw,
        )


Work = ChatWork | StreamWork | ImageWork | EmbeddingWork


def _given(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters the caller set (None means "not given")."""
    return {k: v for k, v in params.items() if v is not None}


def _envelope(route: Route, c: Candidate, content: str | None = None, **fields: Any) -> Envelope:
    """An attempt's envelope: who answered, through which route, and the kind's fields."""
    return Envelope(
        content=content, model=c.info.id, provider=c.info.provider, route=route.name, **fields
    )


def _without_model(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("model", "stream")}


async def aclose_quietly(it: AsyncIterator[StreamChunk]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()
