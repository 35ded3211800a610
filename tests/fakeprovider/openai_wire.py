"""OpenAI wire format: ``POST /v1/chat/completions`` and ``POST /v1/images/generations``."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .common import (
    TINY_PNG,
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
from .dialect import (
    REQUEST_ID,
    Endpoint,
    abort_connection,
    json_response,
    send_event,
    start_sse,
)
from .faults import AFTER_CHUNKS_KINDS, Fault

SYSTEM_FINGERPRINT = "fp_fake0001"

NO_API_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
    "(with blank username) if you're accessing the API from your browser and are prompted for "
    "a username. You can obtain an API key from https://platform.openai.com/account/api-keys."
)
CONTEXT_LENGTH = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted in "
    "130000 tokens. Please reduce the length of the messages."
)
CONTENT_POLICY = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text "
    "that is not allowed by our safety system."
)
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
PREFILL_NOT_SUPPORTED = (
    "This model does not support assistant message prefill; the conversation must end with a "
    "user message."
)
#: The ``data:`` of the event a ``stream_malformed_event`` fault inserts (not valid JSON).
MALFORMED_EVENT_DATA = '{"choices": ['

# (type, message, code) per status, as the real API words them.
_STATUS_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Invalid request.", None),
    401: (
        "invalid_request_error",
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_api_key",
    ),
    403: (
        "invalid_request_error",
        "Country, region, or territory not supported",
        "unsupported_country_region_territory",
    ),
    404: (
        "invalid_request_error",
        "The model does not exist or you do not have access to it.",
        "model_not_found",
    ),
    429: (
        "tokens",
        "Rate limit reached for requests. Please try again in 2s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "rate_limit_exceeded",
    ),
    500: ("server_error", SERVER_ERROR, None),
    502: ("server_error", "Bad gateway.", None),
    503: ("server_error", "The server is overloaded or not ready yet.", None),
    504: ("server_error", "Gateway timeout.", None),
}


class OpenAIEndpoint(Endpoint):
    """Auth and error shapes common to the OpenAI endpoints."""

    request_id_header = "x-request-id"
    invalid_json_message = (
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON.)"
    )

    def check_auth(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return None
        return self.error(401, error_type="invalid_request_error", message=NO_API_KEY)

    def error_body(
        self, status: int, error_type: str, message: str, code: str | None, param: str | None
    ) -> dict[str, Any]:
        return {"error": {"message": message, "type": error_type, "param": param, "code": code}}

    def status_defaults(self, status: int) -> tuple[str, str, str | None]:
        if status in _STATUS_DEFAULTS:
            return _STATUS_DEFAULTS[status]
        if status >= 500:
            return ("server_error", SERVER_ERROR, None)
        return ("invalid_request_error", f"Request failed with status {status}.", None)

    def missing(self, name: str) -> web.Response:
        return self.error(
            400,
            error_type="invalid_request_error",
            message=f"Missing required parameter: '{name}'.",
            code="missing_required_parameter",
            param=name,
        )

    def context_length_error(self, fault: Fault) -> web.Response:
        return self.error(
            400,
            error_type="invalid_request_error",
            message=CONTEXT_LENGTH,
            code="context_length_exceeded",
            param="messages",
            fault=fault,
        )

    def content_filter_error(self, fault: Fault) -> web.Response:
        return self.error(
            400,
            error_type="invalid_request_error",
            message=CONTENT_POLICY,
            code="content_policy_violation",
            fault=fault,
        )

    def prefill_error(self) -> web.Response:
        return self.error(
            400,
            error_type="invalid_request_error",
            message=PREFILL_NOT_SUPPORTED,
            code="prefill_not_supported",
            param="messages",
        )


class ChatCompletions(OpenAIEndpoint):
    """``POST /v1/chat/completions``."""

    def validate(self, body: Mapping[str, Any]) -> web.Response | None:
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self.error(
                400,
                error_type="invalid_request_error",
                message="you must provide a model parameter",
            )
        if not isinstance(body.get("messages"), list):
            return self.missing("messages")
        return None

    def model_of(self, body: Mapping[str, Any]) -> str:
        return str(body["model"])

    async def malformed(self, request: web.Request, body: Mapping[str, Any]) -> web.StreamResponse:
        model = dumps(body["model"])
        if body.get("stream") is True:
            resp = await start_sse(request)
            broken = '{"id":"chatcmpl-broken","object":"chat.completion.chunk","model":' + model
            await send_event(resp, broken + ',"choices":[{"index":0,"delta":{"content":"fa')
            await send_event(resp, "[DONE]")
            return resp
        text = (
            '{"id": "chatcmpl-broken", "object": "chat.completion", "created": 1700000000, '
            f'"model": {model}, "choices": [{{"index": 0, "message": {{"role": "assistant", '
            '"content": "fake repl'
        )
        return web.Response(text=text, content_type="application/json")

    def _reply(self, request: web.Request, body: Mapping[str, Any], fault: Fault | None) -> Reply:
        messages = [m for m in body["messages"] if isinstance(m, Mapping)]
        default_text = default_reply_text(str(body["model"]), messages)
        response_format = body.get("response_format")
        if isinstance(response_format, Mapping) and response_format.get("type") in (
            "json_object",
            "json_schema",
        ):
            default_text = dumps({"reply": default_text})
        return build_reply(
            fault,
            default_text=default_text,
            prompt_tokens=sum(count_tokens(content_text(m.get("content"))) for m in messages),
            declared_tools=tool_names(body.get("tools")),
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
        finish = (fault.finish_reason if fault else None) or _finish_reason(reply)
        base = {
            "id": f"chatcmpl-fake{request[REQUEST_ID]:06d}",
            "created": int(time.time()),
            "model": body["model"],
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
        if stream:
            return await self._stream(request, body, fault, reply, finish, base)
        n = _count(body.get("n"))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in reply.tool_calls
            ]
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
            for i in range(n)
        ]
        return json_response(
            {"object": "chat.completion", **base, "choices": choices, "usage": _usage(reply)}
        )

    async def _stream(
        self,
        request: web.Request,
        body: Mapping[str, Any],
        fault: Fault | None,
        reply: Reply,
        finish: str,
        base: dict[str, Any],
    ) -> web.StreamResponse:
        options = body.get("stream_options")
        include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        after = fault.after_chunks if fault and fault.kind in AFTER_CHUNKS_KINDS else None

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {"object": "chat.completion.chunk", **base}
            out["choices"] = [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ]
            if include_usage:
                out["usage"] = None
            return out

        async def interrupt() -> bool:
            """The fault's action after ``after`` content chunks; True: the body ends here."""
            assert fault is not None
            match fault.kind:
                case "stream_cut":
                    abort_connection(request)
                case "stream_error_event":
                    error = self.error_body(500, "server_error", SERVER_ERROR, None, None)
                    await send_event(resp, error)
                    return True
                case "stream_stall":
                    await asyncio.sleep(fault.seconds)  # cancelled when the client disconnects
                    return True
                case "stream_truncated":
                    return True
                case "stream_malformed_event":
                    await send_event(resp, MALFORMED_EVENT_DATA)
            return False

        resp = await start_sse(request, fault)
        await send_event(resp, chunk({"role": "assistant", "content": "", "refusal": None}))
        pieces = reply.chunks
        for sent, piece in enumerate(pieces):
            if sent == after and await interrupt():
                return resp
            await send_event(resp, chunk({"content": piece}))
        # Tool-call chunks continue the count, so a fault can land inside a call's arguments.
        tool_chunks: list[dict[str, Any]] = []
        for index, call in enumerate(reply.tool_calls):
            head = {"index": index, "id": call.id, "type": "function"}
            head["function"] = {"name": call.name, "arguments": ""}
            tool_chunks.append({"tool_calls": [head]})
            for piece in split_even(call.arguments):
                tool_chunks.append(
                    {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                )
        for sent, delta in enumerate(tool_chunks, start=len(pieces)):
            if sent == after and await interrupt():
                return resp
            await send_event(resp, chunk(delta))
        if after is not None and after >= len(pieces) + len(tool_chunks) and await interrupt():
            return resp
        await send_event(resp, chunk({}, finish))
        if include_usage:
            final = {
                "object": "chat.completion.chunk",
                **base,
                "choices": [],
                "usage": _usage(reply),
            }
            await send_event(resp, final)
        if not (fault and fault.kind == "stream_no_done"):
            await send_event(resp, "[DONE]")
        return resp


class ImageGenerations(OpenAIEndpoint):
    """``POST /v1/images/generations``."""

    def validate(self, body: Mapping[str, Any]) -> web.Response | None:
        if not isinstance(body.get("prompt"), str):
            return self.missing("prompt")
        return None

    def model_of(self, body: Mapping[str, Any]) -> str:
        return str(body.get("model") or "dall-e-2")

    async def malformed(self, request: web.Request, body: Mapping[str, Any]) -> web.StreamResponse:
        text = '{"created": 1700000000, "data": [{"url": "http://'
        return web.Response(text=text, content_type="application/json")

    async def success(
        self, request: web.Request, body: Mapping[str, Any], fault: Fault | None
    ) -> web.StreamResponse:
        n = _count(body.get("n"))
        prompt = body["prompt"]
        b64 = body.get("response_format") == "b64_json"
        root = f"{request.scheme}://{request.host}"
        data: list[dict[str, str]] = []
        for _ in range(n):
            if b64:
                data.append(
                    {"b64_json": base64.b64encode(TINY_PNG).decode(), "revised_prompt": prompt}
                )
            else:
                url = f"{root}/img/{self.state.next_image_id()}.png"
                data.append({"url": url, "revised_prompt": prompt})
        return json_response({"created": int(time.time()), "data": data})


class Embeddings(OpenAIEndpoint):
    """``POST /v1/embeddings``: a deterministic vector per input (``dimensions``, default 8)."""

    def validate(self, body: Mapping[str, Any]) -> web.Response | None:
        inp = body.get("input")
        if not (isinstance(inp, str) or (isinstance(inp, list) and inp)):
            return self.missing("input")
        return None

    def model_of(self, body: Mapping[str, Any]) -> str:
        return str(body.get("model") or "text-embedding-3-small")

    async def malformed(self, request: web.Request, body: Mapping[str, Any]) -> web.StreamResponse:
        return web.Response(
            text='{"object": "list", "data": [{"embedding": [0.1,', content_type="application/json"
        )

    async def success(
        self, request: web.Request, body: Mapping[str, Any], fault: Fault | None
    ) -> web.StreamResponse:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dims = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 8
        data = []
        for i, text in enumerate(inputs):
            seed = sum(map(ord, str(text))) + len(self.model_of(body))
            vec = [((seed * (k + 7)) % 97) / 97.0 for k in range(dims)]
            data.append({"object": "embedding", "index": i, "embedding": vec})
        tokens = sum(max(1, len(str(t)) // 4) for t in inputs)
        return json_response(
            {
                "object": "list",
                "data": data,
                "model": self.model_of(body),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def _count(n: object) -> int:
    """The ``n`` parameter: how many choices / images (default 1)."""
    return max(1, n) if isinstance(n, int) else 1


def _finish_reason(reply: Reply) -> str:
    if reply.filtered:
        return "content_filter"
    return "tool_calls" if reply.tool_calls else "stop"


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
