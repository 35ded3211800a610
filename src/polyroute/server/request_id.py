"""``x-request-id`` on every gateway answer: a pure ASGI middleware.

The id is polyroute's own (``req_`` + 24 hex characters) unless the client sent
an ``x-request-id`` of its own (1-128 visible ASCII characters), which is kept so
a caller's trace id survives the hop.  Where the answer came from a provider, the
provider's id is in ``x-polyroute-upstream-request-id`` (``http.envelope_headers``).

Not a ``BaseHTTPMiddleware``: that one runs the app in a task and pipes the body
through a memory stream.  This only appends one header to ``http.response.start``
and passes every other message (stream bodies included) straight through.
:func:`install` puts it outside Starlette's ``ServerErrorMiddleware``, so the 500
answered for an unexpected exception carries the id too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
SCOPE_KEY = "polyroute.request_id"  # the id as str, for handlers and logs
MAX_CLIENT_ID = 128


def new_id() -> bytes:
    return b"req_" + os.urandom(12).hex().encode()


def _usable(value: bytes) -> bool:
    """A client id we may echo: short, visible ASCII only (no spaces, no control bytes)."""
    return 0 < len(value) <= MAX_CLIENT_ID and all(0x21 <= b <= 0x7E for b in value)


def client_id(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:  # ASGI header names are lower-case
        if name == HEADER:
            return value if _usable(value) else None
    return None


class RequestIdMiddleware:
    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = client_id(scope["headers"]) or new_id()
        scope[SCOPE_KEY] = rid.decode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A new list: the response object's own header list is left alone.
                message["headers"] = [*message.get("headers", ()), (HEADER, rid)]
            await send(message)

        await self.app(scope, receive, send_with_id)


def request_id_of(request: Request) -> str | None:
    rid = request.scope.get(SCOPE_KEY)
    return rid if isinstance(rid, str) else None


def install(app: Starlette) -> None:
    """Wrap ``app``'s whole middleware stack, outside ``ServerErrorMiddleware``
    (``add_middleware`` would put it inside, and unexpected-error 500s would go
    out without the id).  Call before the app serves its first request."""
    build = app.build_middleware_stack

    def build_with_request_id() -> ASGIApp:
        return RequestIdMiddleware(build())

    setattr(app, "build_middleware_stack", build_with_request_id)  # noqa: B010
