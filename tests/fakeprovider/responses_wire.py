"""OpenAI Responses API: ``POST /v1/responses`` (JSON or SSE).

Request fields read: ``model`` (required), ``input`` (a string or a list of items:
messages ``{"role", "content": str | [{"type": "input_text" | "output_text", "text"}]}``,
``function_call`` and ``function_call_output`` items, anything else is accepted and
ignored), ``instructions``, ``tools`` (any tool type; ``function`` tools need a ``name``),
``text.format`` (``json_object`` / ``json_schema`` wrap the reply as chat does:
``{"reply": ...}``) and ``stream``.  ``previous_response_id``, ``store``,
``max_output_tokens``, ``reasoning``, ``metadata``, ``temperature``, ``top_p``,
``tool_choice``, ``parallel_tool_calls`` and ``truncation`` are echoed in the response
object; nothing is stored and ``previous_response_id`` is not looked up.

The reply text follows the chat rule (:func:`~tests.fakeprovider.common.default_reply_text`):
``fake reply from <model>: <text[:60]>`` where the text is the string ``input``, or that of
the last user message / ``function_call_output`` item of the list, whichever comes last.

Ids (``<n>`` is the request's sequence number, 6 digits): response ``resp_fake<n>``,
message ``msg_fake<n>``, function call items ``fc_fake<n>_<i>`` with ``call_id``
``call_fake<n>_<i>`` (or the scripted tool call's ``id``).

A stream (``"stream": true``) is ``event: <type>`` + ``data: {"type": <type>,
"sequence_number": <0, 1, ...>, ...}`` events, without ``data: [DONE]``::

    response.created, response.in_progress       (snapshot: status in_progress, output [])
    for the text (if any), output_index 0:
        response.output_item.added               (message, status in_progress, content [])
        response.content_part.added              (output_text, text "")
        response.output_text.delta               one per chunk (``Reply.chunks``)
        response.output_text.done, response.content_part.done, response.output_item.done
    for each function call:
        response.output_item.added               (function_call, arguments "")
        response.function_call_arguments.delta   ``split_even(arguments)`` (2 pieces)
        response.function_call_arguments.done, response.output_item.done
    response.completed                           (the whole response, usage included)

Stream faults count the text deltas, then the argument deltas, as content chunks:
``after_chunks: N`` acts just before the (N+1)-th delta, or just before the terminal event
when N >= their number.  ``stream_cut`` closes the connection there, ``stream_truncated``
ends the body cleanly, ``stream_stall`` sleeps ``seconds`` and then ends it,
``stream_error_event`` sends ``event: error`` ``{"type": "error", "code": "server_error",
"message", "param": null, "sequence_number"}`` and ends it, ``stream_malformed_event``
inserts an ``event: response.output_text.delta`` whose data is cut-short JSON and goes on.
``stream_no_done`` streams normally (this wire has no ``[DONE]``).  A ``content_filter``
fault in ``finish_reason`` mode, or ``finish_reason: "length"``, gives ``status:
"incomplete"`` with ``incomplete_details.reason`` ``content_filter`` /
``max_output_tokens`` (and ``response.incomplete`` as the terminal event).

A model switched with ``reject_prefill`` answers 400 (``param: "input"``) to an ``input``
list whose last item is an ``assistant`` message.
"""

from __future__ import annotations

import asyncio
import time
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
)
from .dialect import REQUEST_ID, abort_connection, json_response, send_event, start_sse
from .faults import AFTER_CHUNKS_KINDS, Fault
from .openai_wire import PREFILL_NOT_SUPPORTED, SERVER_ERROR, OpenAIEndpoint

CONTEXT_LENGTH = (
    "Your input exceeds the context window of this model. Please adjust your input and try again."
)
#: The ``data:`` of the ``response.output_text.delta`` a ``stream_malformed_event`` inserts.
MALFORMED_EVENT = "response.output_text.delta"
MALFORMED_EVENT_DATA = '{"type": "response.output_text.delta", "item_id": "msg_'


def input_items(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``input`` as a list of items (a string is one user message)."""
    inp = body.get("input")
    if isinstance(inp, str):
        return [{"role": "user", "content": inp}]
    if isinstance(inp, list):
        return [item for item in inp if isinstance(item, Mapping)]
    return []


def _is_message(item: Mapping[str, Any]) -> bool:
    return item.get("type", "message") == "message" and isinstance(item.get("role"), str)


def last_input_text(items: list[Mapping[str, Any]]) -> str:
    """The last user message's text or ``function_call_output``'s output, whichever is last."""
    text = ""
    for item in items:
        if item.get("type") == "function_call_output":
            text = content_text(item.get("output"))
        elif _is_message(item) and item.get("role") == "user":
            text = content_text(item.get("content"))
    return text


def _item_text(item: Mapping[str, Any]) -> str:
    if item.get("type") == "function_call_output":
        return content_text(item.get("output"))
    if item.get("type") == "function_call":
        return str(item.get("arguments") or "")
    return content_text(item.get("content")) if _is_message(item) else ""


def _function_names(tools: object) -> list[str]:
    if not isinstance(tools, list):
        return []
    return [
        t["name"]
        for t in tools
        if isinstance(t, Mapping) and t.get("type") == "function" and isinstance(t.get("name"), str)
    ]


def _type_name(value: object) -> str:
    return {str: "string", list: "array", dict: "object", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


class Responses(OpenAIEndpoint):
    """``POST /v1/responses``."""

    def invalid_type(self, param: str, expected: str, value: object) -> web.Response:
        return self.error(
            400,
            error_type="invalid_request_error",
            message=f"Invalid type for '{param}': expected {expected}, but got "
            f"{_type_name(value)} instead.",
            code="invalid_type",
            param=param,
        )

    def validate(self, body: Mapping[str, Any]) -> web.Response | None:
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self.missing("model")
        inp = body.get("input")
        if inp is not None and not isinstance(inp, str | list):
            return self.invalid_type("input", "one of a string or array of input items", inp)
        if isinstance(inp, list):
            for i, item in enumerate(inp):
                if not isinstance(item, Mapping):
                    return self.invalid_type(f"input[{i}]", "an object", item)
        tools = body.get("tools")
        if tools is not None:
            if not isinstance(tools, list):
                return self.invalid_type("tools", "an array", tools)
            for i, tool in enumerate(tools):
                if not isinstance(tool, Mapping):
                    return self.invalid_type(f"tools[{i}]", "an object", tool)
                if not isinstance(tool.get("type"), str):
                    return self.missing(f"tools[{i}].type")
                if tool["type"] == "function" and not isinstance(tool.get("name"), str):
                    return self.missing(f"tools[{i}].name")
        return None

    def model_of(self, body: Mapping[str, Any]) -> str:
        return str(body["model"])

    def ends_with_assistant(self, body: Mapping[str, Any]) -> bool:
        items = body.get("input")
        if not isinstance(items, list) or not items or not isinstance(items[-1], Mapping):
            return False
        return _is_message(items[-1]) and items[-1].get("role") == "assistant"

    def prefill_error(self) -> web.Response:
        return self.error(
            400,
            error_type="invalid_request_error",
            message=PREFILL_NOT_SUPPORTED,
            code="prefill_not_supported",
            param="input",
        )

    def context_length_error(self, fault: Fault) -> web.Response:
        return self.error(
            400,
            error_type="invalid_request_error",
            message=CONTEXT_LENGTH,
            code="context_length_exceeded",
            param="input",
            fault=fault,
        )

    async def malformed(self, request: web.Request, body: Mapping[str, Any]) -> web.StreamResponse:
        broken = (
            f'{{"id": "resp_broken", "object": "response", "created_at": 1700000000, '
            f'"status": "completed", "model": {dumps(body["model"])}, "output": [{{"type": '
            '"message", "role": "assistant", "content": [{"type": "output_text", "text": "fake repl'
        )
        if body.get("stream") is True:
            resp = await start_sse(request)
            await send_event(
                resp, '{"type": "response.created", "response": ' + broken, "response.created"
            )
            return resp
        return web.Response(text=broken, content_type="application/json")

    def _reply(self, request: web.Request, body: Mapping[str, Any], fault: Fault | None) -> Reply:
        items = input_items(body)
        model = str(body["model"])
        default_text = default_reply_text(
            model, [{"role": "user", "content": last_input_text(items)}]
        )
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, Mapping) else None
        if isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema"):
            default_text = dumps({"reply": default_text})
        texts = [content_text(body.get("instructions"))] + [_item_text(i) for i in items]
        return build_reply(
            fault,
            default_text=default_text,
            prompt_tokens=sum(count_tokens(t) for t in texts),
            declared_tools=_function_names(body.get("tools")),
            tool_id_prefix="call_fake",
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
                return self.status_error(Fault(kind="status", status=500))
        try:
            reply = self._reply(request, body, fault)
        except ReplyError as exc:
            return self.error(400, error_type="invalid_request_error", message=f"fake: {exc}")
        rendered = _Rendered(request[REQUEST_ID], body, reply, fault)
        if stream:
            return await self._stream(request, fault, rendered)
        return json_response(rendered.response())

    async def _stream(
        self, request: web.Request, fault: Fault | None, r: _Rendered
    ) -> web.StreamResponse:
        after = fault.after_chunks if fault and fault.kind in AFTER_CHUNKS_KINDS else None
        sequence = 0
        deltas = 0  # content chunks sent so far (text deltas, then argument deltas)

        async def event(kind: str, /, **data: Any) -> None:
            nonlocal sequence
            await send_event(resp, {"type": kind, "sequence_number": sequence, **data}, kind)
            sequence += 1

        async def interrupt() -> bool:
            """The fault's action at this point; True: the body ends here."""
            assert fault is not None
            match fault.kind:
                case "stream_cut":
                    abort_connection(request)
                case "stream_error_event":
                    await event("error", code="server_error", message=SERVER_ERROR, param=None)
                    return True
                case "stream_stall":
                    await asyncio.sleep(fault.seconds)  # cancelled when the client disconnects
                    return True
                case "stream_truncated":
                    return True
                case "stream_malformed_event":
                    await send_event(resp, MALFORMED_EVENT_DATA, MALFORMED_EVENT)
            return False

        async def delta(kind: str, /, **data: Any) -> bool:
            """Send one content chunk, the fault acting first if its turn; True: ended."""
            nonlocal deltas
            if deltas == after and await interrupt():
                return True
            await event(kind, **data)
            deltas += 1
            return False

        resp = await start_sse(request, fault)
        snapshot = r.response(in_progress=True)
        await event("response.created", response=snapshot)
        await event("response.in_progress", response=snapshot)
        index = 0
        if r.reply.text is not None:
            message = r.message()
            item_id = message["id"]
            where = {"item_id": item_id, "output_index": index, "content_index": 0}
            opened = {**message, "status": "in_progress", "content": []}
            await event("response.output_item.added", output_index=index, item=opened)
            await event("response.content_part.added", **where, part=_text_part(""))
            for piece in r.reply.chunks:
                if await delta("response.output_text.delta", **where, delta=piece, logprobs=[]):
                    return resp
            await event("response.output_text.done", **where, text=r.reply.text, logprobs=[])
            await event("response.content_part.done", **where, part=_text_part(r.reply.text))
            await event("response.output_item.done", output_index=index, item=message)
            index += 1
        for i in range(len(r.reply.tool_calls)):
            item = r.function_call(i)
            where = {"item_id": item["id"], "output_index": index}
            opened = {**item, "arguments": "", "status": "in_progress"}
            await event("response.output_item.added", output_index=index, item=opened)
            for piece in split_even(item["arguments"]):
                if await delta("response.function_call_arguments.delta", **where, delta=piece):
                    return resp
            await event(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            )
            await event("response.output_item.done", output_index=index, item=item)
            index += 1
        if after is not None and after >= deltas and await interrupt():
            return resp
        final = r.response()
        terminal = "response.completed" if final["status"] == "completed" else "response.incomplete"
        await event(terminal, response=final)
        return resp


class _Rendered:
    """One reply in the Responses wire shapes."""

    def __init__(
        self, request_id: int, body: Mapping[str, Any], reply: Reply, fault: Fault | None
    ) -> None:
        self.request_id = request_id
        self.body = body
        self.reply = reply
        self.created_at = int(time.time())
        reason = None
        if reply.filtered or (fault and fault.finish_reason == "content_filter"):
            reason = "content_filter"
        elif fault and fault.finish_reason == "length":
            reason = "max_output_tokens"
        self.incomplete_reason = reason

    def message(self) -> dict[str, Any]:
        return {
            "type": "message",
            "id": f"msg_fake{self.request_id:06d}",
            "status": "completed" if self.incomplete_reason is None else "incomplete",
            "role": "assistant",
            "content": [_text_part(self.reply.text or "")],
        }

    def function_call(self, index: int) -> dict[str, Any]:
        call = self.reply.tool_calls[index]
        return {
            "type": "function_call",
            "id": f"fc_fake{self.request_id:06d}_{index}",
            "call_id": call.id,
            "name": call.name,
            "arguments": call.arguments,
            "status": "completed",
        }

    def output(self) -> list[dict[str, Any]]:
        out = [self.message()] if self.reply.text is not None else []
        return out + [self.function_call(i) for i in range(len(self.reply.tool_calls))]

    def response(self, *, in_progress: bool = False) -> dict[str, Any]:
        body = self.body
        if in_progress:
            status = "in_progress"
        else:
            status = "completed" if self.incomplete_reason is None else "incomplete"
        out: dict[str, Any] = {
            "id": f"resp_fake{self.request_id:06d}",
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "background": False,
            "error": None,
            "incomplete_details": (
                {"reason": self.incomplete_reason} if status == "incomplete" else None
            ),
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": body["model"],
            "output": [] if in_progress else self.output(),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_logprobs": body.get("top_logprobs", 0),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "metadata": body.get("metadata") or {},
        }
        if not in_progress:  # the spec's usage is not nullable: a snapshot has none
            out["usage"] = self.usage()
        if isinstance(body.get("user"), str):
            out["user"] = body["user"]
        return out

    def usage(self) -> dict[str, Any]:
        reply = self.reply
        return {
            "input_tokens": reply.input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": reply.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": reply.input_tokens + reply.output_tokens,
        }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
