"""Streaming through a route: the engine until the first chunk, then read on.

The engine serves a stream like any call — budgets, reservation, strategy,
retries, fallback — where a candidate succeeds when its first chunk arrives.
After that the answer belongs to that candidate: an upstream failure (a
reset, a gap past the timeout, a stream that ends without its terminal event)
is raised to the caller, never turned into a clean end, because a truncated
answer must not look complete.  When the stream ends, its ticket is closed
with the whole answer's usage and cost: the reservation settles and the call
leaves its one record.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping

from polyroute.providers.base import StreamChunk
from polyroute.routing.engine import Engine
from polyroute.routing.resolve import Route
from polyroute.routing.work import StreamWork, aclose_quietly
from polyroute.tokens import count_messages, count_text
from polyroute.types import Envelope, Usage


class RouterStream:
    """Async iterable of ``StreamChunk``.  After it ends: ``envelope`` (usage,
    cost, attempts) and ``time_to_first_chunk``; ``model``/``provider`` are
    known once the first chunk has arrived."""

    def __init__(
        self, engine: Engine, work: StreamWork, route: Route, labels: Mapping[str, str]
    ) -> None:
        self.route = route
        self._engine = engine
        self._work = work
        self._labels = labels
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

    async def aclose(self) -> None:
        """Stop reading (the caller went away); the call is recorded as it stands."""
        if isinstance(self._iter, AsyncGenerator):
            await self._iter.aclose()

    async def _run(self) -> AsyncIterator[StreamChunk]:
        # The call is admitted (and counted in flight) when reading starts, not before:
        # a stream made and never read leaves nothing open.
        work = self._work
        ticket = self._engine.ticket("stream", self.route, self._labels)
        env = await self._engine.start(work, self.route, ticket)
        self.envelope = env
        self.time_to_first_chunk = ticket.elapsed()
        opened = work.opened.pop(env.model)
        for other in work.opened.values():  # a parallel race may have opened more than one
            await aclose_quietly(other.chunks)
        work.opened.clear()
        it = opened.chunks
        chunk: StreamChunk | None = opened.first
        info = opened.candidate.info
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
            await aclose_quietly(it)
            env.content = "".join(parts)
            if usage is None:
                usage = Usage(
                    count_messages(work.messages, info.provider, info.name),
                    count_text(env.content, info.provider, info.name),
                )
                env.warnings.append("provider sent no usage; tokens estimated")
            env.usage = usage
            env.cost = info.cost(usage)
            ticket.finish(env, ttft=self.time_to_first_chunk, failure=failure)
