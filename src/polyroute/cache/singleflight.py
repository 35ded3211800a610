"""Concurrent identical requests share one in-flight computation (per process).

The first caller for a key starts ``fn()`` in its own task; every caller,
first or later, awaits that task through ``asyncio.shield``.  Running the work
in a separate task is what makes cancellation safe:

* a cancelled caller (the first one included) only stops waiting; the
  computation goes on for the others, so the provider is still called once;
* when every caller has been cancelled nobody wants the answer, so the task is
  cancelled too (no paid call finishes for nobody) and forgotten at once;
* an exception reaches every caller, and the key is forgotten as soon as the
  task ends, so the next call starts afresh.

One event loop only (futures belong to a loop); the router runs on one.
Across processes see ``polyroute.cache.lock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("callers", "task")

    def __init__(self, task: asyncio.Task[T]) -> None:
        self.task = task
        self.callers = 0


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._calls: dict[Hashable, _Call[T]] = {}

    def in_flight(self, key: Hashable) -> bool:
        call = self._calls.get(key)
        return call is not None and not call.task.done()

    def __len__(self) -> int:
        return len(self._calls)

    async def do(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``fn()``'s result and whether it was shared (another caller started it)."""
        call = self._calls.get(key)
        # A finished task may still be listed until its done-callback runs: never
        # join it, or a caller arriving just after a failure would get the old error.
        shared = call is not None and not call.task.done()
        if call is None or not shared:
            call = self._start(key, fn)
        call.callers += 1
        try:
            result = await asyncio.shield(call.task)
        finally:
            call.callers -= 1
            if call.callers == 0 and not call.task.done():
                # Every caller left: nobody wants the answer.  Forget it now, not
                # when the cancellation lands, or a caller arriving in between
                # would join a dying call and get its CancelledError.
                call.task.cancel()
                self._forget(key, call)
        return result, shared

    def _forget(self, key: Hashable, call: _Call[T]) -> None:
        if self._calls.get(key) is call:
            del self._calls[key]

    def _start(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> _Call[T]:
        async def run() -> T:
            return await fn()

        call = _Call(asyncio.get_running_loop().create_task(run()))
        self._calls[key] = call

        # (A failure after every caller left is not logged as "never retrieved":
        # asyncio.shield marks the inner task's exception as seen.)
        call.task.add_done_callback(lambda _: self._forget(key, call))
        return call
