"""Server-sent events read from an aiohttp response, one event at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only; aiohttp loads with the first session
    import aiohttp


@dataclass(slots=True)
class SSEEvent:
    event: str
    data: str


async def iter_sse(response: aiohttp.ClientResponse) -> AsyncIterator[SSEEvent]:
    """Yield events as they arrive.  Comment lines (``:``) are skipped; a
    final event without its blank line is still yielded."""
    event = ""
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data or event:
                yield SSEEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data or event:
        yield SSEEvent(event or "message", "\n".join(data))
