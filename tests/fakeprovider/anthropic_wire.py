"""Anthropic wire format: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .common import (
    Reply,
    ReplyError,
    build_reply,
    content_text,
    count_tokens,
    default_reply_text,
    dumps,
    split_even,
    tool_names,
)
from .dialect import REQUEST_ID, Endpoint, abort_connection, json_response, send_event, start_sse
from .faults import AFTER_CHUNKS_KINDS, Fault

CONTEXT_LENGTH = "prompt is too long: 210000 tokens > 200000 maximum"
CONTENT_FILTER = "Output blocked by content filtering policy"
PREFILL_NOT_SUPPORTED = (
    "This model does not support assistant message prefill. The conversation must end with a "
    "user message."
)
#: The event a ``stream_malformed_event`` fault inserts: its ``data:`` is not valid JSON.
MALFORMED_EVENT = "content_block_delta"
MALFORMED_EVENT_DATA = '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_'
RATE_LIMITED = (
    "Number of request tokens has exceeded your per-minute rate limit "
    "(https://docs.claude.com/en/api/rate-limits); see the response headers for current usage. "
    "Please reduce the prompt length or the maximum tokens requested, or try again later."
)

_STATUS_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", RATE_LIMITED),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


class Messages(Endpoint):
    """``POST /v1/messages``."""

    request_id_header = "request-id"
    invalid_json_message = "There was an issue with your request body: invalid JSON."

    def check_auth(self, request: web.Request) -> web.Response | None:
        # Classic clients send ``x-api-key``; anthropic SDK 2.x sends the API key as
        # ``Authorization: Bearer <key>``.  The real API accepts both.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        bearer = scheme.lower() == "bearer" and bool(token.strip())
        if not bearer and not request.headers.get("x-api-key", "").strip():
            return self.error(
                401, error_type="authentication_error", message="x-api-key header is required"
            )
        if not request.headers.get("anthropic-version", "").strip():
            return self.error(
                400,
                error_type="invalid_request_error",
                message="anthropic-version: header is required",
            )
        return None

    def validate(self, body: Mapping[str, Any]) -> web.Response | None:
        for name, kind in (("model", str), ("max_tokens", int), ("messages", list)):
            if not isinstance(body.get(name), kind):
                return self.error(
                    400, error_type="invalid_request_error", message=f"{name}: Field required"
                )
        return None

    def model_of(self, body: Mapping[str, Any]) -> str:
        return str(body["model"])

    def error_body(
        self, status: int, error_type: str, message: str, code: str | None, param: str | None
    ) -> dict[str, Any]:
        return {"type": "error", "error": {"type": error_type, "message": message}}

    def status_defaults(self, status: int) -> tuple[str, str, str | None]:
        error_type, message = _STATUS_DEFAULTS.get(
            status,
            ("api_error", "Internal server error")
            if status >= 500
            else ("invalid_request_error", f"Request failed with status {status}."),
        )
        return error_type, message, None

    def context_length_error(self, fault: Fault) -> web.Response:
        return self.error(
            400, error_type="invalid_request_error", message=CONTEXT_LENGTH, fault=fault
        )

    def content_filter_error(self, fault: Fault) -> web.Response:
        return self.error(
            400, error_type="invalid_request_error", message=CONTENT_FILTER, fault=fault
        )

    def prefill_error(self) -> web.Response:
        return self.error(400, error_type="invalid_request_error", message=PREFILL_NOT_SUPPORTED)

    async def malformed(self, request: web.Request, body: Mapping[str, Any]) -> web.StreamResponse:
        broken = (
            '{"id": "msg_broken", "type": "message", "role": "assistant", '
            f'"model": {dumps(body["model"])}, "content": [{{"type": "text", "text": "fake repl'
        )
        if body.get("stream") is True:
            resp = await start_sse(request)
            await send_event(
                resp, '{"type": "message_start", "message": ' + broken, "message_start"
            )
            return resp
        return web.Response(text=broken, content_type="application/json")

    def _reply(self, request: web.Request, body: Mapping[str, Any], fault: Fault | None) -> Reply:
        messages = [m for m in body["messages"] if isinstance(m, Mapping)]
        texts = [content_text(body.get("system"))]
        texts += [content_text(m.get("content")) for m in messages]
        return build_reply(
            fault,
            default_text=default_reply_text(str(body["model"]), messages),
            prompt_tokens=sum(count_tokens(t) for t in texts),
            declared_tools=tool_names(body.get("tools")),
            tool_id_prefix="toolu_fake",
            request_id=request[REQUEST_ID],
        )

    async def success(
        self, request: web.Request, body: Mapping[str, Any], fault: Fault | None
    ) -> web.StreamResponse:
        stream = body.get("stream") is True
        if fault is not None and not stream:
            if fault.kind == "stream_cut":
                abort_connection(request)
            if fault.kind == "stream_error_event":
                return self.status_error(Fault(kind="status", status=529))
        try:
            reply = self._reply(request, body, fault)
        except ReplyError as exc:
            return self.error(400, error_type="invalid_request_error", message=f"fake: {exc}")
        stop_reason = (fault.stop_reason if fault else None) or _stop_reason(reply)
        message: dict[str, Any] = {
            "id": f"msg_fake{request[REQUEST_ID]:06d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(reply.input_tokens, 1),
        }
        if stream:
            return await self._stream(request, fault, reply, stop_reason, message)
        if reply.text is not None:
            message["content"].append({"type": "text", "text": reply.text})
        message["content"] += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.input}
            for c in reply.tool_calls
        ]
        message["stop_reason"] = stop_reason
        message["usage"] = _usage(reply.input_tokens, reply.output_tokens)
        return json_response(message)

    async def _stream(
        self,
        request: web.Request,
        fault: Fault | None,
        reply: Reply,
        stop_reason: str,
        message: dict[str, Any],
    ) -> web.StreamResponse:
        after = fault.after_chunks if fault and fault.kind in AFTER_CHUNKS_KINDS else None
        resp = await start_sse(request, fault)

        async def event(name: str, data: dict[str, Any]) -> None:
            await send_event(resp, {"type": name, **data}, name)

        async def interrupt() -> bool:
            """The fault's action after ``after`` content chunks; True: the body ends here."""
            assert fault is not None
            match fault.kind:
                case "stream_cut":
                    abort_connection(request)
                case "stream_error_event":
                    overloaded = self.error_body(529, "overloaded_error", "Overloaded", None, None)
                    await send_event(resp, overloaded, "error")
                    return True
                case "stream_stall":
                    await asyncio.sleep(fault.seconds)  # cancelled when the client disconnects
                    return True
                case "stream_truncated":
                    return True
                case "stream_malformed_event":
                    await send_event(resp, MALFORMED_EVENT_DATA, MALFORMED_EVENT)
            return False

        await event("message_start", {"message": message})
        index = 0
        if reply.text is not None:
            text_block = {"type": "text", "text": ""}
            await event("content_block_start", {"index": index, "content_block": text_block})
        await event("ping", {})
        pieces = reply.chunks if reply.text is not None else []
        if reply.text is not None:
            for sent, piece in enumerate(pieces):
                if sent == after and await interrupt():
                    return resp
                delta = {"type": "text_delta", "text": piece}
                await event("content_block_delta", {"index": index, "delta": delta})
            await event("content_block_stop", {"index": index})
            index += 1
        if after is not None and after >= len(pieces) and await interrupt():
            return resp
        for call in reply.tool_calls:
            block: dict[str, Any] = {"type": "tool_use", "id": call.id, "name": call.name}
            block["input"] = {}
            await event("content_block_start", {"index": index, "content_block": block})
            for piece in split_even(dumps(call.input)):
                delta = {"type": "input_json_delta", "partial_json": piece}
                await event("content_block_delta", {"index": index, "delta": delta})
            await event("content_block_stop", {"index": index})
            index += 1
        await event(
            "message_delta",
            {
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": reply.output_tokens},
            },
        )
        if not (fault and fault.kind == "stream_no_done"):
            await event("message_stop", {})
        return resp


def count_input_tokens(body: Mapping[str, Any]) -> int:
    """The fake's token count: characters of all text, divided by 4 and rounded up.

    "All text" is the system prompt, every message's text (``content_text``) and the
    tools as compact JSON (``dumps(tools)``); at least 1.
    """
    messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
    chars = len(content_text(body.get("system")))
    chars += sum(len(content_text(m.get("content"))) for m in messages)
    if body.get("tools"):
        chars += len(dumps(body["tools"]))
    return max(1, -(-chars // 4))


class CountTokens(Messages):
    """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}`` (see
    :func:`count_input_tokens`).  Auth, switches and faults as on ``/v1/messages``
    (faults are looked up under the body's ``model``)."""

    def validate(self, body: Mapping[str, Any]) -> web.Response | None:
        for name, kind in (("model", str), ("messages", list)):
            if not isinstance(body.get(name), kind):
                return self.error(
                    400, error_type="invalid_request_error", message=f"{name}: Field required"
                )
        return None

    async def success(
        self, request: web.Request, body: Mapping[str, Any], fault: Fault | None
    ) -> web.StreamResponse:
        return json_response({"input_tokens": count_input_tokens(body)})


def _stop_reason(reply: Reply) -> str:
    if reply.filtered:
        return "refusal"
    return "tool_use" if reply.tool_calls else "end_turn"


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
