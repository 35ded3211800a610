"""The sync facade: the router's async calls for synchronous code.

One private event loop on a daemon thread for the router's life, so its HTTP
session and connection pool are reused across calls.  The facade only wraps:
every call runs the same coroutine, through the same engine, as its async form.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from polyroute.providers.base import StreamChunk
from polyroute.routing.resolve import Target
from polyroute.types import Envelope, FanOutResult, Message

T = TypeVar("T")


class LoopThread:
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


class SyncFacade:
    """``*_sync`` twins of the router's calls (mixed into ``Router``)."""

    _portal: LoopThread | None = None
    # The async calls wrapped (the Router's own methods).
    complete: Callable[..., Coroutine[Any, Any, Envelope]]
    stream: Callable[..., Any]
    fan_out: Callable[..., Coroutine[Any, Any, list[FanOutResult]]]
    generate_image: Callable[..., Coroutine[Any, Any, Envelope]]
    embed: Callable[..., Coroutine[Any, Any, Envelope]]
    aclose: Callable[[], Coroutine[Any, Any, None]]

    def _run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._portal is None:
            self._portal = LoopThread()
        return self._portal.run(coro)

    def complete_sync(
        self, route: Target, messages: Sequence[Message] | str, **kw: Any
    ) -> Envelope:
        return self._run_sync(self.complete(route, messages, **kw))

    def stream_sync(
        self, route: Target, messages: Sequence[Message] | str, **kw: Any
    ) -> Iterator[StreamChunk]:
        """``stream`` for synchronous code: chunks as they arrive."""
        chunks = self.stream(route, messages, **kw).__aiter__()
        while True:
            try:
                yield self._run_sync(_next(chunks))
            except StopAsyncIteration:
                return

    def fan_out_sync(
        self, routes: str | Sequence[str], messages: Sequence[Message] | str, **kw: Any
    ) -> list[FanOutResult]:
        return self._run_sync(self.fan_out(routes, messages, **kw))

    def generate_image_sync(
        self, route: Target = "task:image", prompt: str = "", **kw: Any
    ) -> Envelope:
        return self._run_sync(self.generate_image(route, prompt, **kw))

    def embed_sync(
        self, route: Target = "task:embedding", input: str | Sequence[str] = "", **kw: Any
    ) -> Envelope:
        return self._run_sync(self.embed(route, input, **kw))

    def close(self) -> None:
        if self._portal is not None:
            self._portal.run(self.aclose())
            self._portal.stop()
            self._portal = None


async def _next(chunks: AsyncIterator[StreamChunk]) -> StreamChunk:
    return await chunks.__anext__()
