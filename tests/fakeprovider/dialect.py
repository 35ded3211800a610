"""The request flow shared by every fake endpoint: auth, validation, faults, rendering.

A concrete endpoint (see ``openai_wire`` / ``anthropic_wire``) supplies the provider's
error shapes and renders successes; :meth:`Endpoint.handle` decides which to send.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

from aiohttp import web

from .common import dumps, ends_with_assistant
from .faults import Fault
from .state import ProviderState

#: Decoded JSON body of the request, or INVALID_JSON (set by the server's middleware).
BODY: web.RequestKey[Any] = web.RequestKey("fake_body", object)
#: Headers added to whatever response the request gets (applied on response prepare).
RESPONSE_HEADERS: web.RequestKey[dict[str, str]] = web.RequestKey("fake_headers", dict)
#: The request's sequence number (``req_<n>`` in the request-id header, ids in bodies).
REQUEST_ID: web.RequestKey[int] = web.RequestKey("fake_request_id", int)
INVALID_JSON = object()

SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


def json_response(obj: object, status: int = 200) -> web.Response:
    return web.Response(text=dumps(obj), status=status, content_type="application/json")


def is_stream(body: Mapping[str, Any]) -> bool:
    return body.get("stream") is True


async def start_sse(request: web.Request, fault: Fault | None = None) -> web.StreamResponse:
    """Send the 200 and SSE headers (they go out at once, before any event).

    A ``first_chunk_delay`` fault then keeps the stream silent for ``fault.seconds``.
    """
    resp = web.StreamResponse(status=200, headers=SSE_HEADERS)
    await resp.prepare(request)
    if fault is not None and fault.kind == "first_chunk_delay":
        await asyncio.sleep(fault.seconds)  # cancelled when the client disconnects
    return resp


async def send_event(resp: web.StreamResponse, data: object, event: str | None = None) -> None:
    """Write one server-sent event; ``data`` is JSON-encoded unless it is already a str."""
    payload = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event else ""
    await resp.write(f"{head}data: {payload}\n\n".encode())


def abort_connection(request: web.Request, *, rst: bool = False) -> NoReturn:
    """Drop the connection without (the rest of) a response.

    ``rst=False`` closes cleanly after flushing what was written: a client waiting for a
    response sees "server disconnected" (aiohttp ``ServerDisconnectedError``, httpx
    ``RemoteProtocolError``); mid-stream it sees an incomplete chunked body.  ``rst=True``
    resets the TCP connection (``ConnectionResetError``).
    """
    transport = request.transport
    if transport is not None:
        if rst:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
    # aiohttp treats a cancelled handler as "client went away" and logs nothing.
    raise asyncio.CancelledError


class Endpoint(ABC):
    """One provider endpoint; :meth:`handle` is its aiohttp handler."""

    #: response header carrying ``req_<n>``
    request_id_header: ClassVar[str]
    invalid_json_message: ClassVar[str] = "Invalid JSON in request body."

    def __init__(self, state: ProviderState) -> None:
        self.state = state

    # --- provider specifics -------------------------------------------------------------
    @abstractmethod
    def check_auth(self, request: web.Request) -> web.Response | None:
        """An error response if the request lacks the provider's credentials headers."""

    @abstractmethod
    def validate(self, body: Mapping[str, Any]) -> web.Response | None:
        """An error response if required body fields are missing."""

    @abstractmethod
    def model_of(self, body: Mapping[str, Any]) -> str:
        """The model name faults are looked up under."""

    @abstractmethod
    def error_body(
        self, status: int, error_type: str, message: str, code: str | None, param: str | None
    ) -> dict[str, Any]:
        """The provider's JSON error envelope."""

    @abstractmethod
    def status_defaults(self, status: int) -> tuple[str, str, str | None]:
        """(error type, message, code) the provider uses for an HTTP status."""

    @abstractmethod
    def context_length_error(self, fault: Fault) -> web.Response: ...

    @abstractmethod
    def content_filter_error(self, fault: Fault) -> web.Response: ...

    def ends_with_assistant(self, body: Mapping[str, Any]) -> bool:
        """Whether the request is an assistant prefill (its last message is ``assistant``)."""
        return ends_with_assistant(body)

    @abstractmethod
    def prefill_error(self) -> web.Response:
        """The 400 of a model that rejects a conversation ending with an assistant message."""

    @abstractmethod
    async def malformed(self, request: web.Request, body: Mapping[str, Any]) -> web.StreamResponse:
        """A 200 whose body (or stream event) is not valid JSON."""

    @abstractmethod
    async def success(
        self, request: web.Request, body: Mapping[str, Any], fault: Fault | None
    ) -> web.StreamResponse:
        """A normal answer; ``fault`` may shape it (content, content_filter, stream_*)."""

    # --- shared flow ---------------------------------------------------------------------
    def error(
        self,
        status: int,
        *,
        error_type: str,
        message: str,
        code: str | None = None,
        param: str | None = None,
        fault: Fault | None = None,
    ) -> web.Response:
        if fault is not None:
            error_type = fault.error_type or error_type
            message = fault.message or message
            code = fault.code or code
        return json_response(self.error_body(status, error_type, message, code, param), status)

    def status_error(self, fault: Fault) -> web.Response:
        assert fault.status is not None
        error_type, message, code = self.status_defaults(fault.status)
        return self.error(
            fault.status, error_type=error_type, message=message, code=code, fault=fault
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler."""
        request_id = request[REQUEST_ID] = self.state.next_request_id()
        headers = request.setdefault(RESPONSE_HEADERS, {})
        headers[self.request_id_header] = f"req_{request_id}"

        if (denied := self.check_auth(request)) is not None:
            return denied
        body = request.get(BODY)
        if body is INVALID_JSON or not isinstance(body, dict):
            return self.error(
                400, error_type="invalid_request_error", message=self.invalid_json_message
            )
        if (invalid := self.validate(body)) is not None:
            return invalid

        # Persistent switches come before (and do not consume) the queued faults.
        model = self.model_of(body)
        if (down := self.state.down_status(model)) is not None:
            await self._sleep(self.state.latency)
            return self.status_error(Fault(kind="status", status=down))
        if self.ends_with_assistant(body) and self.state.rejects_prefill(model):
            await self._sleep(self.state.latency)
            return self.prefill_error()

        fault = self.state.faults.pop(model)
        if fault is not None:
            headers.update(fault.response_headers())
        await self._sleep(self.state.latency + (fault.delay if fault else 0.0))
        if fault is None:
            return await self.success(request, body, None)

        match fault.kind:
            case "status":
                return self.status_error(fault)
            case "context_length":
                return self.context_length_error(fault)
            case "content_filter" if fault.mode == "error":
                return self.content_filter_error(fault)
            case "hang":
                await asyncio.sleep(fault.seconds)  # cancelled when the client disconnects
                return await self.success(request, body, fault)
            case "reset":
                abort_connection(request, rst=fault.rst)
            case "malformed":
                return await self.malformed(request, body)
            # Stream faults on a request that does not stream (see the faults docstring).
            case "stream_stall" | "stream_truncated" if not is_stream(body):
                if fault.kind == "stream_stall":
                    await asyncio.sleep(fault.seconds)  # cancelled when the client disconnects
                return await self.malformed(request, body)
            case "first_chunk_delay" if not is_stream(body):
                await asyncio.sleep(fault.seconds)
                return await self.success(request, body, fault)
            case _:  # content, content_filter (finish_reason), the other stream_* kinds
                return await self.success(request, body, fault)

    @staticmethod
    async def _sleep(seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)  # cancelled when the client disconnects
