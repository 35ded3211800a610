"""Many calls at once, each an ordinary engine call: fan-out and batches.

``fan_out`` keeps every model's answer (a comparison); ``batch`` runs a list of
requests within a concurrency limit (and the rate limits every call obeys).
Each item is its own call with its own record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from polyroute.types import Envelope, FanOutResult

Complete = Callable[..., Awaitable[Envelope]]


async def fan_out(
    complete: Complete, names: Sequence[str], messages: Any, **kw: Any
) -> list[FanOutResult]:
    async def one(name: str) -> FanOutResult:
        try:
            return FanOutResult(name, envelope=await complete(name, messages, **kw))
        except Exception as exc:  # each model's failure is its own card, not the call's
            return FanOutResult(name, error=exc)

    return list(await asyncio.gather(*(one(n) for n in names)))


async def batch(
    complete: Complete,
    requests: Sequence[Mapping[str, Any]],
    concurrency: int,
    on_progress: Callable[[int, int], None] | None,
) -> list[Envelope | Exception]:
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
                return await complete(route, messages, **body)
            except Exception as exc:  # one bad item must not sink the batch
                return exc
            finally:
                done += 1
                if on_progress is not None:
                    on_progress(done, len(requests))

    return list(await asyncio.gather(*(one(r) for r in requests)))
