"""Anthropic Messages API in front of any model: the gateway's translations.

The mirror image of ``providers.anthropic_convert``: here an Anthropic client
(the official SDK, Claude Code) calls polyroute.  Its ``POST /v1/messages``
body becomes the OpenAI messages and parameters the router speaks, and the
OpenAI completion or chunks that come back leave as an Anthropic Message or
SSE events.  Pure functions plus one stream encoder, no I/O.

Lossy on purpose: ``top_k``, ``thinking``, ``service_tier``, ``cache_control``
and unknown keys are ignored (no OpenAI equivalent; they tune a request, not
its meaning, and newer SDKs keep working); thinking blocks in assistant
history are dropped (no other model can read Claude's signed reasoning);
``tool_result.is_error`` is dropped (OpenAI tool messages are text only).
Document blocks, server tools and file sources are rejected: the model
behind the router could not see what the caller meant it to.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

STOP_REASONS: dict[str | None, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",  # legacy OpenAI functions
    "content_filter": "refusal",
    None: "end_turn",
}

TOOL_CHOICES: dict[str, str] = {"auto": "auto", "any": "required", "none": "none"}

# https://docs.claude.com/en/api/errors.  Other 4xx are invalid_request_error
# (as Anthropic does), other 5xx api_error.  503 means "no capacity, retry
# later", which is what overloaded_error says; the SDK retries both alike.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class RequestError(ValueError):
    """The body is not a valid Messages request; ``param`` is the offending path."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


class UntranslatableError(RequestError):
    """Valid for Anthropic, but with no OpenAI form (documents, server tools, images in
    tool results): only an Anthropic-wire upstream can serve the request as sent."""


def _need(ok: object, param: str, message: str = "field required") -> None:
    if not ok:
        raise RequestError(param, message)


@dataclass(slots=True)
class MessagesCall:
    model: str  # the route (or model) name the caller asked for
    messages: list[dict[str, Any]]  # OpenAI format
    params: dict[str, Any] = field(default_factory=dict)  # OpenAI parameter names
    stream: bool = False
    product_type: str | None = None  # polyroute extension: metadata.product_type


# ---------------------------------------------------------------- request


def parse_messages_request(body: dict[str, Any], lenient: bool = False) -> MessagesCall:
    """Validate an Anthropic Messages request and convert it to OpenAI form.
    ``lenient``: what has no OpenAI form is left out instead of refused (the request
    then goes only to Anthropic-wire upstreams, which get it as sent)."""
    model, raw = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise RequestError("model", "field required")
    if not isinstance(raw, list) or not raw:
        raise RequestError("messages", "at least one message is required")
    messages = _system(body.get("system"))
    for i, m in enumerate(raw):
        messages.extend(_message(m, f"messages[{i}]", lenient))
    metadata = body.get("metadata") or {}
    _need(isinstance(metadata, dict), "metadata", "must be an object")
    product = metadata.get("product_type")
    params = _params(body, metadata, lenient)
    product_type = str(product) if product else None
    return MessagesCall(model, messages, params, body.get("stream") is True, product_type)


def _system(system: Any) -> list[dict[str, Any]]:
    if not system:
        return []
    if isinstance(system, list):  # text blocks; one block becomes a plain string, as in messages
        parts = [_text_part(b, f"system[{j}]") for j, b in enumerate(system)]
        system = parts[0]["text"] if len(parts) == 1 else parts
    _need(isinstance(system, str | list), "system", "must be a string or a list of text blocks")
    return [{"role": "system", "content": system}]


def _text_part(block: Any, path: str) -> dict[str, Any]:
    ok = isinstance(block, dict) and block.get("type") == "text"
    _need(ok, f"{path}.type", "expected a text block")
    _need(isinstance(block.get("text"), str), f"{path}.text", "must be a string")
    return {"type": "text", "text": block["text"]}


def _message(m: Any, path: str, lenient: bool) -> list[dict[str, Any]]:
    _need(isinstance(m, dict), path, "must be an object")
    role, content = m.get("role"), m.get("content")
    _need(role in ("user", "assistant"), f"{path}.role", f"must be user or assistant, not {role!r}")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    _need(isinstance(content, list) and content, f"{path}.content", "must be a string or blocks")
    tool_msgs: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        bpath = f"{path}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append(_text_part(block, bpath))
        elif kind == "image" and role == "user":
            parts.append(_image_part(block.get("source"), f"{bpath}.source"))
        elif kind == "tool_use" and role == "assistant":
            calls.append(_tool_call(block, bpath))
        elif kind == "tool_result" and role == "user":
            tool_msgs.append(_tool_message(block, bpath, lenient))
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue  # signed Claude reasoning; meaningless to any other model
        elif kind == "document":
            if not lenient:
                raise UntranslatableError(f"{bpath}.type", "document blocks are not supported")
        else:
            raise RequestError(f"{bpath}.type", f"{kind!r} blocks are not allowed in {role} turns")
    text_only = len(parts) == 1 and parts[0]["type"] == "text"
    body: Any = parts[0]["text"] if text_only else (parts or None)
    if role == "assistant":
        if body is None and not calls:
            return []  # only thinking blocks: nothing another model could read
        msg: dict[str, Any] = {"role": "assistant", "content": body}
        if calls:
            msg["tool_calls"] = calls
        return [msg]
    # OpenAI wants each tool answer right after the assistant turn that asked,
    # so the results go first and the rest of the user's turn follows.
    return tool_msgs + ([{"role": "user", "content": body}] if parts or not tool_msgs else [])


def _image_part(source: Any, path: str) -> dict[str, Any]:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        _need(isinstance(media_type, str) and media_type, f"{path}.media_type")
        _need(isinstance(data, str) and data, f"{path}.data")
        url = f"data:{media_type};base64,{data}"
    else:
        # "file" sources point into Anthropic's Files API, which no other model can read.
        _need(kind == "url", path, "image source must be of type 'base64' or 'url'")
        url = source.get("url")
        _need(isinstance(url, str) and url, f"{path}.url")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_call(block: dict[str, Any], path: str) -> dict[str, Any]:
    for key in ("id", "name"):
        _need(isinstance(block.get(key), str) and block[key], f"{path}.{key}")
    _need(isinstance(block.get("input", {}), dict), f"{path}.input", "must be an object")
    fn = {"name": block["name"], "arguments": json.dumps(block.get("input") or {})}
    return {"id": block["id"], "type": "function", "function": fn}


def _tool_message(block: dict[str, Any], path: str, lenient: bool) -> dict[str, Any]:
    _need(isinstance(block.get("tool_use_id"), str) and block["tool_use_id"], f"{path}.tool_use_id")
    text = block.get("content") or ""
    if isinstance(text, list):
        # OpenAI tool messages hold text only, so an image result cannot travel.
        if lenient:
            text = [b for b in text if isinstance(b, dict) and b.get("type") == "text"]
        else:
            for k, b in enumerate(text):
                if isinstance(b, dict) and b.get("type") == "image":
                    raise UntranslatableError(
                        f"{path}.content[{k}].type", "images in tool results have no OpenAI form"
                    )
        text = "\n".join(_text_part(b, f"{path}.content[{k}]")["text"] for k, b in enumerate(text))
    _need(isinstance(text, str), f"{path}.content", "must be a string or a list of text blocks")
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}


def _params(body: dict[str, Any], metadata: dict[str, Any], lenient: bool) -> dict[str, Any]:
    # Anthropic has no default for max_tokens.  bool is an int subclass, and
    # max_tokens=True is a client bug, not "1".
    max_tokens = body.get("max_tokens")
    _need(max_tokens is not None, "max_tokens")
    ok = isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0
    _need(ok, "max_tokens", "must be a positive integer")
    params: dict[str, Any] = {"max_tokens": max_tokens}
    for name in ("temperature", "top_p"):  # both 0–1 at Anthropic (OpenAI's temperature: 0–2)
        if (value := body.get(name)) is not None:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
            _need(ok, name, "must be a number between 0 and 1")
            params[name] = value
    if stop := body.get("stop_sequences"):
        ok = isinstance(stop, list) and all(isinstance(s, str) for s in stop)
        _need(ok, "stop_sequences", "must be a list of strings")
        params["stop"] = stop
    if tools := body.get("tools"):
        _need(isinstance(tools, list), "tools", "must be a list")
        params["tools"] = [
            _tool(t, f"tools[{i}]")
            for i, t in enumerate(tools)
            if not (lenient and _is_server_tool(t))
        ]
        # OpenAI rejects tool_choice without tools, so it is only read here.
        if body.get("tool_choice") is not None:
            params.update(_tool_choice(body["tool_choice"]))
    if metadata.get("user_id"):
        params["user"] = str(metadata["user_id"])
    return params


def _is_server_tool(tool: Any) -> bool:
    return isinstance(tool, dict) and tool.get("type") not in (None, "custom")


def _tool(tool: Any, path: str) -> dict[str, Any]:
    _need(isinstance(tool, dict), path, "must be an object")
    # Server tools (web_search_..., bash_...) run inside Anthropic's API.
    if _is_server_tool(tool):
        raise UntranslatableError(
            f"{path}.type", f"server tool {tool.get('type')!r} is not supported"
        )
    _need(isinstance(tool.get("name"), str) and tool["name"], f"{path}.name")
    _need(isinstance(tool.get("input_schema"), dict), f"{path}.input_schema")
    fn: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        fn["description"] = tool["description"]
    return {"type": "function", "function": fn}


def _tool_choice(choice: Any) -> dict[str, Any]:
    kind: Any = choice.get("type") if isinstance(choice, dict) else None
    named = kind == "tool" and isinstance(choice.get("name"), str)
    _need(kind in TOOL_CHOICES or named, "tool_choice", "type must be auto, any, tool or none")
    fn = {"type": "function", "function": {"name": choice.get("name")}}
    out: dict[str, Any] = {"tool_choice": fn if named else TOOL_CHOICES[kind]}
    if choice.get("disable_parallel_tool_use") and kind != "none":
        out["parallel_tool_calls"] = False  # the inverse of anthropic_convert's mapping
    return out


# ---------------------------------------------------------------- response


def _message_id(openai_id: Any) -> str:
    # An Anthropic upstream's id already is a msg_ id; keep it recognisable.
    if isinstance(openai_id, str) and openai_id:
        return openai_id if openai_id.startswith("msg_") else f"msg_{openai_id}"
    return f"msg_{uuid.uuid4().hex}"


def _usage(usage: Any) -> dict[str, int]:
    """Anthropic usage from OpenAI's; the inverse of anthropic_convert.usage_dict:
    Anthropic's input_tokens exclude cache reads, OpenAI's prompt_tokens include them."""
    u = usage if isinstance(usage, dict) else {}
    prompt = int(u.get("prompt_tokens") or 0)
    cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    out = {"input_tokens": prompt - cached, "output_tokens": int(u.get("completion_tokens") or 0)}
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


def _parse_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    if not arguments or not str(arguments).strip():
        return {}
    parsed = orjson.loads(arguments)  # JSONDecodeError is a ValueError: the caller's 502
    if not isinstance(parsed, dict):
        raise ValueError("tool call arguments must be a JSON object")
    return parsed


def to_anthropic_message(openai_completion: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` as an Anthropic Message.  Raises ValueError
    when a tool call's arguments are not a JSON object (Anthropic's input must be)."""
    choices = openai_completion.get("choices") or [{}]
    msg = choices[0].get("message") or {}
    text = msg.get("content")
    if isinstance(text, list):  # some providers answer with text parts
        text = "".join(p.get("text") or "" for p in text if isinstance(p, dict))
    text = text or msg.get("refusal")
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        tool_id = call.get("id") or f"toolu_{uuid.uuid4().hex}"
        args = _parse_input(fn.get("arguments"))
        content.append({"type": "tool_use", "id": tool_id, "name": fn.get("name"), "input": args})
    msg_id = _message_id(openai_completion.get("id"))
    stop = STOP_REASONS.get(choices[0].get("finish_reason"), "end_turn")
    return _message_body(msg_id, model, content, stop, _usage(openai_completion.get("usage")))


def _message_body(
    msg_id: str, model: str, content: list[Any], stop: str | None, usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    """The JSON body Anthropic sends with an error of HTTP ``status``."""
    kind = ERROR_TYPES.get(status) or (
        "invalid_request_error" if 400 <= status < 500 else "api_error"
    )
    return {"type": "error", "error": {"type": kind, "message": message}}


def _event(data: dict[str, Any]) -> bytes:
    # Every Anthropic SSE event is named after the type of its data.
    return f"event: {data['type']}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return _event({"type": "content_block_delta", "index": index, "delta": delta})


class MessagesStreamEncoder:
    """Turns OpenAI chunks into Anthropic SSE events: ``start``, ``feed`` per
    chunk, then ``finish`` (or ``error``).  Each returns the bytes to send.

    Anthropic numbers every content block and streams one at a time; OpenAI
    numbers only tool calls.  So a text run or a new tool call closes the open
    block and opens the next index.  Arguments for an already closed tool call
    (providers that interleave parallel calls) still go to its own index: the
    SDK accumulates by index, so the final message comes out right.
    """

    def __init__(self, model: str, message_id: str, input_tokens: int = 0) -> None:
        self.model = model
        self.message_id = message_id
        self.usage: dict[str, int] = {"input_tokens": input_tokens, "output_tokens": 0}
        self.finish_reason: str | None = None
        self.done = False
        self._blocks = 0  # content blocks opened so far
        self._open: int | None = None  # index of the open block
        self._text: int | None = None  # index of the open text block, if that is the one
        self._tools: dict[int, int] = {}  # OpenAI tool_calls index -> block index

    def start(self) -> bytes:
        # stop_reason is not known yet; message_delta brings it.
        message = _message_body(self.message_id, self.model, [], None, dict(self.usage))
        return _event({"type": "message_start", "message": message}) + _event({"type": "ping"})

    def feed(self, chunk_raw: dict[str, Any]) -> bytes:
        if self.done:
            return b""
        if chunk_raw.get("usage"):
            self.usage.update(_usage(chunk_raw["usage"]))
        out = b""
        for choice in chunk_raw.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1 has no Anthropic form; the router asks for one
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                out += self._text_delta(text)
            for pos, call in enumerate(delta.get("tool_calls") or ()):
                out += self._tool_delta(call, pos)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        return out

    def _text_delta(self, text: str) -> bytes:
        out = b""
        if self._text is None:
            out, self._text = self._open_block({"type": "text", "text": ""}), self._blocks - 1
        return out + _delta(self._text, {"type": "text_delta", "text": text})

    def _tool_delta(self, call: dict[str, Any], pos: int) -> bytes:
        out = b""
        tool = call.get("index", pos)
        fn = call.get("function") or {}
        if tool not in self._tools:
            # Some OpenAI-compatible providers send no id; the client needs one to answer.
            tool_id = call.get("id") or f"toolu_{uuid.uuid4().hex}"
            block: dict[str, Any] = {"type": "tool_use", "id": tool_id, "input": {}}
            block["name"] = fn.get("name") or ""
            out = self._open_block(block)
            self._tools[tool] = self._blocks - 1
        if fn.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": fn["arguments"]}
            out += _delta(self._tools[tool], delta)
        return out

    def _open_block(self, block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self._open, self._blocks = self._blocks, self._blocks + 1
        start = {"type": "content_block_start", "index": self._open, "content_block": block}
        return out + _event(start)

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open, self._text = self._open, None, None
        return _event({"type": "content_block_stop", "index": index})

    def finish(self, usage: tuple[int, int] | None = None) -> bytes:
        """Close the stream; ``usage`` (input, output tokens) overrides what chunks said."""
        if self.done:
            return b""
        self.done = True
        if usage is not None:
            self.usage.update(input_tokens=usage[0], output_tokens=usage[1])
        stop = STOP_REASONS.get(self.finish_reason, "end_turn")
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            # Cumulative, as Anthropic sends it; input counts learned late land here too.
            "usage": dict(self.usage),
        }
        return self._close_block() + _event(delta) + _event({"type": "message_stop"})

    def error(self, error_type: str, message: str) -> bytes:
        """An ``error`` event; it ends the stream, so no block is closed first."""
        if self.done:
            return b""
        self.done = True
        return _event({"type": "error", "error": {"type": error_type, "message": message}})
