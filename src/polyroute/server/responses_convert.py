"""OpenAI's Responses API in terms of chat completions, both ways.

``parse_request`` turns a ``POST /v1/responses`` body into chat messages and
parameters that any route can serve (every wire polyroute speaks takes chat
completions); ``response_object`` builds the ``response`` object from the
call's envelope; ``ResponseEvents`` turns chat chunks into the Responses
stream events (``response.created`` ... ``response.completed``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from polyroute.types import Envelope, Message, Usage


class ResponsesRequestError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        self.param = param
        super().__init__(message)


class Untranslatable(ResponsesRequestError):
    """Valid Responses input with no chat-completions form (built-in tools, their call
    items): only an upstream that serves the Responses API itself can take it."""


@dataclass(slots=True)
class ResponsesCall:
    model: str
    messages: list[Message]  # the conversation so far, this request's input included
    params: dict[str, Any]  # chat completion parameters
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    echo: dict[str, Any] = field(default_factory=dict)  # request fields the response repeats


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# -- request -------------------------------------------------------------------------------


def parse_request(
    body: Mapping[str, Any], history: list[Message] | None, lenient: bool = False
) -> ResponsesCall:
    """``lenient``: what has no chat form is left out instead of refused (the request then
    goes only to upstreams that serve the Responses API, which get it as sent)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ResponsesRequestError("'model' must be a non-empty string", "model")
    messages: list[Message] = list(history or [])
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise ResponsesRequestError("'instructions' must be a string", "instructions")
        # Instructions apply to this request only (they are not carried over).
        messages = [m for m in messages if m.get("role") != "system"]
        messages.insert(0, {"role": "system", "content": instructions})
    messages.extend(input_messages(body.get("input"), lenient))
    if not any(m.get("role") in ("user", "tool") for m in messages):
        raise ResponsesRequestError("'input' must contain at least one user message", "input")
    params: dict[str, Any] = {}
    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "seed"):
        if body.get(name) is not None:
            params[name] = body[name]
    if body.get("max_output_tokens") is not None:
        n = body["max_output_tokens"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ResponsesRequestError(
                "max_output_tokens must be a positive integer", "max_output_tokens"
            )
        params["max_tokens"] = n
    if body.get("tools"):
        params["tools"] = _tools(body["tools"], lenient)
    if body.get("tool_choice") is not None:
        params["tool_choice"] = _tool_choice(body["tool_choice"])
    reasoning = body.get("reasoning")
    if isinstance(reasoning, Mapping) and reasoning.get("effort"):
        params["reasoning_effort"] = reasoning["effort"]  # for the models that take it
    fmt = _response_format((body.get("text") or {}).get("format"))
    if fmt is not None:
        params["response_format"] = fmt
    echo = {
        k: body.get(k)
        for k in (
            "instructions",
            "metadata",
            "temperature",
            "top_p",
            "tools",
            "tool_choice",
            "text",
        )
    }
    return ResponsesCall(
        model=model,
        messages=messages,
        params=params,
        stream=bool(body.get("stream")),
        store=body.get("store", True) is not False,
        previous_response_id=body.get("previous_response_id"),
        echo=echo,
    )


def input_messages(raw: Any, lenient: bool = False) -> list[Message]:
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise ResponsesRequestError("'input' must be a string or an array of items", "input")
    out: list[Message] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ResponsesRequestError("each input item must be an object", f"input[{i}]")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            out.append(_message(item, i))
        elif kind == "function_call":
            call = {
                "id": item.get("call_id") or item.get("id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"},
            }
            last = out[-1] if out else None
            if last is not None and last.get("role") == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # parallel calls: one assistant turn
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id"),
                    "content": output if isinstance(output, str) else _text_of(output),
                }
            )
        elif kind == "reasoning" or lenient:
            continue  # another model's reasoning (or a built-in tool's item) is not chat input
        else:
            raise Untranslatable(
                f"input item type {kind!r} is not supported (message, function_call, "
                "function_call_output)",
                f"input[{i}].type",
            )
    return out


def _message(item: Mapping[str, Any], i: int) -> Message:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise ResponsesRequestError(
            "role must be user, assistant, system or developer", f"input[{i}].role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise ResponsesRequestError("content must be a string or an array", f"input[{i}].content")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.get("text") or ""})
        elif kind == "refusal":
            parts.append({"type": "text", "text": part.get("refusal") or ""})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise ResponsesRequestError(
                    "input_image needs an image_url (file ids are not supported)",
                    f"input[{i}].content[{j}]",
                )
            image: dict[str, Any] = {"url": url}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise ResponsesRequestError(
                f"content part type {kind!r} is not supported", f"input[{i}].content[{j}]"
            )
    if role == "assistant" and all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _text_of(value: Any) -> str:
    if isinstance(value, list):
        return "".join(p.get("text", "") for p in value if isinstance(p, Mapping))
    return "" if value is None else orjson.dumps(value).decode()


def _tools(raw: Any, lenient: bool = False) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ResponsesRequestError("'tools' must be an array", "tools")
    out = []
    for i, tool in enumerate(raw):
        if isinstance(tool, Mapping) and tool.get("type") != "function" and lenient:
            continue  # a built-in tool (web search...): the upstream's own, when it serves
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, Mapping) else None
            raise Untranslatable(
                f"tool type {kind!r} is not supported through this route (function tools are)",
                f"tools[{i}].type",
            )
        fn: dict[str, Any] = {"name": tool.get("name")}
        for k in ("description", "parameters", "strict"):
            if tool.get(k) is not None:
                fn[k] = tool[k]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(raw: Any) -> Any:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping) and raw.get("type") == "function":
        return {"type": "function", "function": {"name": raw.get("name")}}
    raise ResponsesRequestError(
        "tool_choice must be auto, none, required or a function", "tool_choice"
    )


def _response_format(fmt: Any) -> dict[str, Any] | None:
    if not isinstance(fmt, Mapping) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
        if fmt.get("strict") is not None:
            schema["strict"] = fmt["strict"]
        return {"type": "json_schema", "json_schema": schema}
    raise ResponsesRequestError(
        f"text.format type {fmt.get('type')!r} is not supported", "text.format"
    )


# -- response ------------------------------------------------------------------------------


def output_items(env: Envelope) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if env.content:
        items.append(message_item(new_id("msg"), env.content, "completed"))
    for call in env.tool_calls or ():
        fn = call.get("function") or {}
        items.append(
            function_item(
                new_id("fc"),
                call.get("id") or new_id("call"),
                fn.get("name"),
                fn.get("arguments") or "",
                "completed",
            )
        )
    return items


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content if text or status == "completed" else [],
    }


def function_item(
    item_id: str, call_id: str, name: Any, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def usage_object(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.total_tokens,
    }


def response_object(
    response_id: str,
    call: ResponsesCall,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    finish_reason: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    incomplete = None
    if finish_reason == "length":
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
    elif finish_reason == "content_filter":
        status, incomplete = "incomplete", {"reason": "content_filter"}
    echo = call.echo
    return {
        "id": response_id,
        "object": "response",
        "created_at": created or int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": echo.get("instructions"),
        "max_output_tokens": call.params.get("max_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": call.params.get("parallel_tool_calls", True),
        "previous_response_id": call.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "store": call.store,
        "temperature": echo.get("temperature"),
        "text": echo.get("text") or {"format": {"type": "text"}},
        "tool_choice": echo.get("tool_choice") or "auto",
        "tools": echo.get("tools") or [],
        "top_p": echo.get("top_p"),
        "truncation": "disabled",
        "usage": usage_object(usage) if usage is not None else None,
        "metadata": echo.get("metadata") or {},
    }


def assistant_message(output: list[dict[str, Any]]) -> Message:
    """The response's output as the chat turn a follow-up request continues from."""
    text = "".join(
        p.get("text", "")
        for item in output
        if item.get("type") == "message"
        for p in item.get("content") or ()
    )
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in output
        if item.get("type") == "function_call"
    ]
    msg: Message = {"role": "assistant", "content": text or None}
    if calls:
        msg["tool_calls"] = calls
    return msg


# -- stream --------------------------------------------------------------------------------


class ResponseEvents:
    """Chat completion chunks in, Responses stream events out (bytes to send).

    ``start`` → ``response.created`` and ``response.in_progress``; ``feed`` per
    chunk → text and function-call items as they open and grow; ``finish`` closes
    every item and sends ``response.completed`` (the whole response); ``error``
    ends the stream with an ``error`` event the SDKs raise on."""

    def __init__(self, response_id: str, call: ResponsesCall, model: str) -> None:
        self.id = response_id
        self.call = call
        self.model = model
        self.created = int(time.time())
        self._seq = 0
        self._items: list[dict[str, Any]] = []  # output items in order (open ones too)
        self._text: dict[str, Any] | None = None  # the open message item
        self._tools: dict[int, dict[str, Any]] = {}  # chat tool index -> function_call item
        self.output: list[dict[str, Any]] = []

    def _event(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return f"event: {kind}\ndata: ".encode() + orjson.dumps(payload) + b"\n\n"

    def _response(
        self, status: str, usage: Usage | None, finish: str | None = None
    ) -> dict[str, Any]:
        return response_object(
            self.id, self.call, self.model, status, list(self.output), usage, finish, self.created
        )

    def start(self) -> bytes:
        snapshot = self._response("in_progress", None)
        return self._event("response.created", response=snapshot) + self._event(
            "response.in_progress", response=snapshot
        )

    def feed(self, chunk: Mapping[str, Any]) -> bytes:
        out = b""
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                out += self._text_delta(text)
            for call in delta.get("tool_calls") or ():
                out += self._tool_delta(call)
        return out

    def _text_delta(self, text: str) -> bytes:
        out = b""
        if self._text is None:
            item = message_item(new_id("msg"), "", "in_progress")
            self._text = {"item": item, "index": len(self._items), "parts": []}
            self._items.append(item)
            out += self._event(
                "response.output_item.added", output_index=self._text["index"], item=item
            )
            out += self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=self._text["index"],
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
        self._text["parts"].append(text)
        return out + self._event(
            "response.output_text.delta",
            item_id=self._text["item"]["id"],
            output_index=self._text["index"],
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _tool_delta(self, call: Mapping[str, Any]) -> bytes:
        out = b""
        index = int(call.get("index") or 0)
        fn = call.get("function") or {}
        tool = self._tools.get(index)
        if tool is None:
            item = function_item(
                new_id("fc"), call.get("id") or new_id("call"), fn.get("name"), "", "in_progress"
            )
            tool = {"item": item, "index": len(self._items), "args": []}
            self._tools[index] = tool
            self._items.append(item)
            out += self._event("response.output_item.added", output_index=tool["index"], item=item)
        if fn.get("arguments"):
            tool["args"].append(fn["arguments"])
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=tool["item"]["id"],
                output_index=tool["index"],
                delta=fn["arguments"],
            )
        return out

    def finish(self, usage: Usage, finish_reason: str | None) -> bytes:
        out = b""
        done: dict[int, dict[str, Any]] = {}
        if self._text is not None:
            t = self._text
            text = "".join(t["parts"])
            item = message_item(t["item"]["id"], text, "completed")
            part = item["content"][0]
            ids = {"item_id": item["id"], "output_index": t["index"], "content_index": 0}
            out += self._event("response.output_text.done", **ids, text=text, logprobs=[])
            out += self._event("response.content_part.done", **ids, part=part)
            out += self._event("response.output_item.done", output_index=t["index"], item=item)
            done[t["index"]] = item
        for tool in self._tools.values():
            args = "".join(tool["args"])
            item = {**tool["item"], "arguments": args, "status": "completed"}
            out += self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=tool["index"],
                arguments=args,
            )
            out += self._event("response.output_item.done", output_index=tool["index"], item=item)
            done[tool["index"]] = item
        self.output = [done[i] for i in sorted(done)]
        final = self._response("completed", usage, finish_reason)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        self.final = final
        return out + self._event(kind, response=final)

    def error(self, status: int, message: str, code: str | None) -> bytes:
        err = {
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "code": code,
            "message": message,
        }
        return self._event("error", code=code, message=message, param=None, error=err)
