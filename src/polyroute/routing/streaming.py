"""Streaming through a route: fallback until the first chunk, then committed.

Before the first chunk reaches the caller, a failing candidate is given up
(with retries) like any other call.  After it, the answer belongs to that
candidate: an upstream failure — a reset, a gap past the timeout, or a stream
that ends without its terminal event — is raised to the caller, never turned
into a clean end, because a truncated answer must not look complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from polyroute.clock import Clock
from polyroute.errors import ProviderError
from polyroute.providers.base import ChatRequest, StreamChunk
from polyroute.providers.http import SessionPool
from polyroute.providers.registry import Client
from polyroute.routing.call import CallContext, Invoke
from polyroute.routing.resolve import Candidate, Route
from polyroute.routing.strategies import run_strategy
from polyroute.tokens import count_messages, count_text
from polyroute.types import CallRecord, Envelope, Message, Usage

Merge = Callable[[Route, Candidate, Mapping[str, Any]], dict[str, Any]]


class RouterStream:
    """Async iterable of ``StreamChunk``.  After it ends: ``envelope`` (usage,
    cost, attempts) and ``time_to_first_chunk``; ``model``/``provider`` are
    known once the first chunk has arrived."""

    def __init__(
        self,
        *,
        route: Route,
        messages: list[Message],
        params: Mapping[str, Any],
        timeout: float,
        context: Callable[[Invoke], CallContext],
        merge: Merge,
        sessions: SessionPool,
        clock: Clock,
        emit: Callable[[CallRecord], None] | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.route = route
        self._messages = messages
        self._params = params
        self._timeout = timeout
        self._context = context
        self._merge = merge
        self._sessions = sessions
        self._clock = clock
        self._emit = emit or (lambda record: None)
        self._labels = labels or {}
        self.envelope: Envelope | None = None
        self.time_to_first_chunk: float | None = None
        self._iter: AsyncIterator[StreamChunk] | None = None

    @property
    def model(self) -> str | None:
        return self.envelope.model if self.envelope else None

    @property
    def provider(self) -> str | None:
        return self.envelope.provider if self.envelope else None

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        if self._iter is None:
            self._iter = self._run()
        return self._iter

    async def start(self) -> StreamChunk:
        """Wait for the first chunk (so fallback is over) and return it; the
        gateway calls this before it sends response headers."""
        return await self.__aiter__().__anext__()

    async def _run(self) -> AsyncIterator[StreamChunk]:
        session = self._sessions.get()
        t0 = self._clock.monotonic()
        route = self.route
        opened: dict[str, AsyncIterator[StreamChunk]] = {}
        first: dict[str, StreamChunk] = {}

        async def invoke(client: Client, c: Candidate) -> Envelope:
            # "Success" for a stream candidate means: its first chunk arrived.
            req = ChatRequest(
                c.info.name,
                self._messages,
                self._merge(route, c, self._params),
                self._timeout,
                c.info.id,
            )
            it = client.adapter.stream(session, client.endpoint, req).__aiter__()
            try:
                chunk = await it.__anext__()
            except StopAsyncIteration:
                raise ProviderError(
                    "stream ended before any chunk",
                    provider=c.info.provider,
                    model=c.info.id,
                    retryable=True,
                ) from None
            except BaseException:
                await _aclose(it)
                raise
            opened[c.info.id] = it
            first[c.info.id] = chunk
            return Envelope(
                content=None,
                model=c.info.id,
                provider=c.info.provider,
                route=route.name,
                request_id=chunk.request_id,
            )

        ctx = self._context(invoke)
        started = self._clock.time()
        try:
            env = await run_strategy(ctx, self._timeout)
        except Exception as exc:
            latency = self._clock.monotonic() - t0
            self._emit(
                CallRecord.from_error("stream", route.name, exc, started, latency, self._labels)
            )
            raise
        self.envelope = env
        self.time_to_first_chunk = self._clock.monotonic() - t0
        it = opened[env.model]
        chunk: StreamChunk | None = first[env.model]
        parts: list[str] = []
        usage: Usage | None = None
        failure: BaseException | None = None
        try:
            while chunk is not None:
                parts.append(chunk.delta)
                if chunk.finish_reason:
                    env.finish_reason = chunk.finish_reason
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
                chunk = await anext(it, None)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await _aclose(it)
            env.content = "".join(parts)
            info = ctx.route.candidates[0].info
            for c in ctx.route.candidates:
                if c.info.id == env.model:
                    info = c.info
            if usage is None:
                usage = Usage(
                    count_messages(self._messages, info.provider, info.name),
                    count_text(env.content, info.provider, info.name),
                )
                env.warnings.append("provider sent no usage; tokens estimated")
            env.usage = usage
            env.cost = info.cost(usage)
            env.latency = self._clock.monotonic() - t0
            record = CallRecord.from_envelope("stream", env, started, self._labels)
            record.ttft = self.time_to_first_chunk
            if failure is not None:
                record.status = type(failure).__name__
                record.error = str(failure)[:500]
            self._emit(record)


async def _aclose(it: AsyncIterator[StreamChunk]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()
