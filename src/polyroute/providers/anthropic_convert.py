"""Translate between OpenAI chat-completions shapes and Anthropic's Messages API.

Pure functions (plus one small stateful stream converter), no I/O, so every
mapping is unit-testable.  Callers speak OpenAI: requests come in as OpenAI
``messages`` and parameters, answers go back as ``chat.completion`` and
``chat.completion.chunk`` dicts.

Where the two APIs differ in substance:

- Anthropic takes the system prompt as a top-level ``system`` field, so system
  and developer messages are pulled out (wherever they appear) and joined.
- Anthropic requires user/assistant alternation, so consecutive same-role
  messages (including several ``tool`` results in a row) are merged.
- ``max_tokens`` is required by Anthropic; it has no "until the model stops".
- Anthropic's ``input_tokens`` excludes cached prompt tokens while OpenAI's
  ``prompt_tokens`` includes them, so cache reads and writes are added back.

Anything a request asks for that the Messages API cannot express without
changing its meaning (``n`` > 1, audio parts, malformed tool arguments) raises
``ConversionError``; the adapter reports it as a non-retryable bad request so
the router can fall back to a model that can serve it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson

from polyroute.providers.base import ChatRequest

DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    # Server tools paused a long turn; the text so far is a complete answer to relay.
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

TOOL_CHOICES: dict[str, dict[str, Any]] = {
    "auto": {"type": "auto"},
    "required": {"type": "any"},
    "none": {"type": "none"},
}


class ConversionError(ValueError):
    """The request cannot be expressed in the Messages API without changing its meaning."""


# ---------------------------------------------------------------- request


def to_messages_body(request: ChatRequest, stream: bool) -> dict[str, Any]:
    """OpenAI-style ``request`` as an Anthropic ``POST /v1/messages`` body."""
    system, messages = _convert_messages(request.messages)
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if system:
        body["system"] = system
    _apply_params(body, {k: v for k, v in request.params.items() if v is not None})
    if stream:
        body["stream"] = True
    return body


def _convert_messages(messages: Iterable[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            text = _system_text(m.get("content"))
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _content_blocks(m.get("content"))
        elif role == "assistant":
            blocks = _assistant_blocks(m)
        elif role == "tool":
            role, blocks = "user", [_tool_result(m)]
        else:
            raise ConversionError(f"message role {role!r} has no Anthropic equivalent")
        if not blocks:  # Anthropic rejects empty messages; dropping one loses nothing
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for msg in out:
        if msg["role"] == "user":
            # Anthropic wants tool_result blocks before any other block of the
            # same user turn; sort() is stable, so each group keeps its order.
            msg["content"].sort(key=lambda b: b["type"] != "tool_result")
    _trim_prefill(out)
    return "\n\n".join(system), out


def _system_text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.get("type") != "text":
            raise ConversionError("Anthropic system prompts take text only")
        texts.append(part.get("text") or "")
    return "\n".join(t for t in texts if t)


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        # Empty or whitespace-only text blocks are a 400 at Anthropic.
        return [{"type": "text", "text": content}] if content.strip() else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind in ("text", "refusal"):  # a refusal part in history is just text to Claude
            text = part.get("text") or part.get("refusal") or ""
            if text.strip():
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url")))
        else:
            raise ConversionError(f"content part type {kind!r} is not supported by Anthropic")
    return blocks


def _image_block(image_url: Any) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise ConversionError("image_url part has no url")
    if url.startswith("data:"):
        # data:<media type>;base64,<data>; the OpenAI "detail" hint has no Anthropic equivalent.
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64" or not media_type or not data:
            raise ConversionError("image data URLs must be data:<media type>;base64,<data>")
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise ConversionError("image_url must be an http(s) URL or a base64 data URL")


def _assistant_blocks(m: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = _content_blocks(m.get("content"))
    for call in m.get("tool_calls") or ():
        fn = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": fn.get("name"),
                "input": _parse_arguments(fn.get("arguments")),
            }
        )
    return blocks


def _parse_arguments(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):  # some clients send the object, not its JSON
        return arguments
    if arguments is None or not str(arguments).strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        # Guessing an input would put words in the model's mouth; refuse instead.
        raise ConversionError("tool call arguments are not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise ConversionError("tool call arguments must be a JSON object")
    return parsed


def _tool_result(m: dict[str, Any]) -> dict[str, Any]:
    if not m.get("tool_call_id"):
        raise ConversionError("tool message has no tool_call_id")
    content = m.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m["tool_call_id"]}
    if isinstance(content, list):
        block["content"] = _content_blocks(content)
    elif content:
        block["content"] = str(content)
    return block


def _trim_prefill(out: list[dict[str, Any]]) -> None:
    # A final assistant message is a prefill, and Anthropic rejects a prefill
    # that ends in whitespace ("final assistant content cannot end with
    # trailing whitespace").
    if not out or out[-1]["role"] != "assistant":
        return
    last = out[-1]["content"][-1]
    if last["type"] == "text":
        last["text"] = last["text"].rstrip()
        if not last["text"]:
            out[-1]["content"].pop()
            if not out[-1]["content"]:
                out.pop()


def _apply_params(body: dict[str, Any], p: dict[str, Any]) -> None:
    if p.get("n", 1) != 1:
        raise ConversionError("Anthropic returns one choice per call; n must be 1")
    body["max_tokens"] = int(
        p.get("max_tokens") or p.get("max_completion_tokens") or DEFAULT_MAX_TOKENS
    )
    if "temperature" in p:
        # OpenAI accepts 0–2, Anthropic 0–1 and answers 400 above that.  A route
        # tuned for OpenAI (temperature 1.2, say) must not break every Claude
        # fallback, so clamp to Anthropic's most random setting.  Rescaling
        # (t / 2) would pretend the two scales are comparable; they are not.
        body["temperature"] = min(float(p["temperature"]), 1.0)
    if "top_p" in p:
        body["top_p"] = p["top_p"]
    stop = p.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    json_tool = structured_output_tool(p)
    if json_tool is not None and not p.get("tools"):
        # Structured output as a forced tool: the answer is the tool's input, which
        # Anthropic validates against the schema; to_chat_completion turns it back
        # into message content.
        body["tools"] = [json_tool]
        body["tool_choice"] = {"type": "tool", "name": json_tool["name"]}
    elif p.get("tools"):
        body["tools"] = [_tool(t) for t in p["tools"]]
        choice = _tool_choice(p.get("tool_choice", "auto"))
        if p.get("parallel_tool_calls") is False and choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
        body["tool_choice"] = choice
    # else: Anthropic refuses tool_choice without tools, and OpenAI's default is the same.
    if "user" in p:
        body["metadata"] = {"user_id": str(p["user"])}
    # Dropped on purpose: presence/frequency_penalty, seed, logprobs, top_logprobs,
    # logit_bias have no Anthropic equivalent.  (response_format together with tools
    # cannot be a forced tool: the prompt must ask for JSON then.)  Any other key is
    # unknown to the Messages API and would be a 400, so nothing else is copied.


def structured_output_tool(p: dict[str, Any]) -> dict[str, Any] | None:
    """The tool that carries ``response_format`` (json_schema or json_object), if any."""
    fmt = p.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") or {"type": "object"}
        name = spec.get("name") or "response"
    elif fmt.get("type") == "json_object":
        schema, name = {"type": "object"}, "json_response"
    else:
        return None
    return {
        "name": name,
        "description": "Give your answer as this tool's input (the response format).",
        "input_schema": schema,
    }


def json_tool_name(p: dict[str, Any]) -> str | None:
    """The forced tool's name when the request asked for structured output."""
    tool = structured_output_tool(p) if not p.get("tools") else None
    return tool["name"] if tool is not None else None


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise ConversionError(f"tool type {tool.get('type')!r} is not supported by Anthropic")
    fn = tool.get("function") or {}
    out: dict[str, Any] = {
        "name": fn.get("name"),
        # input_schema is required by Anthropic; OpenAI lets "parameters" be omitted.
        "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
    }
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return dict(TOOL_CHOICES[choice])
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    raise ConversionError(f"tool_choice {choice!r} is not supported by Anthropic")


# ---------------------------------------------------------------- response


def finish_reason(stop_reason: Any) -> str:
    """OpenAI finish_reason for an Anthropic stop_reason ("stop" when unknown:
    OpenAI's schema has no null or "other" value)."""
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def prompt_tokens(usage: dict[str, Any]) -> int:
    return sum(
        int(usage.get(k) or 0)
        for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    )


def usage_dict(usage: Any) -> dict[str, Any]:
    """OpenAI ``usage`` from Anthropic's (cached prompt tokens included in prompt_tokens)."""
    u = usage if isinstance(usage, dict) else {}
    prompt, completion = prompt_tokens(u), int(u.get("output_tokens") or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if u.get("cache_read_input_tokens") is not None or u.get("cache_creation_input_tokens"):
        out["prompt_tokens_details"] = {
            "cached_tokens": int(u.get("cache_read_input_tokens") or 0),
            # Not an OpenAI field: how polyroute carries cache writes, which Anthropic
            # bills above the input price (OpenAI clients ignore the key).
            "cache_write_tokens": int(u.get("cache_creation_input_tokens") or 0),
        }
    return out


def to_chat_completion(
    msg: dict[str, Any], model: str, created: int | None = None, json_tool: str | None = None
) -> dict[str, Any]:
    """An Anthropic message as an OpenAI ``chat.completion`` dict.  ``json_tool``: the
    forced tool that carries structured output; its input becomes the content."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    structured = False
    for block in msg.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use" and json_tool is not None and block.get("name") == json_tool:
            texts = [orjson.dumps(block.get("input") or {}).decode()]
            structured = True
        elif kind == "tool_use":
            args = orjson.dumps(block.get("input") or {}).decode()
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": args},
                }
            )
        # thinking, redacted_thinking and server-tool blocks have no OpenAI slot.
    message: dict[str, Any] = {
        "role": "assistant",
        # Citations split one answer into several text blocks: join without separators.
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": msg.get("id") or "",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": msg.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "stop" if structured else finish_reason(msg.get("stop_reason")),
            }
        ],
        "usage": usage_dict(msg.get("usage")),
    }


class StreamConverter:
    """Turns Anthropic stream events, in order, into OpenAI chunk dicts.

    ``feed`` returns one ``chat.completion.chunk`` or None (ping, block stops,
    thinking).  State it keeps: the message id and model, usage so far, and the
    OpenAI ``tool_calls`` index of each Anthropic tool_use block (Anthropic
    numbers all content blocks, OpenAI numbers only tool calls).  ``done`` turns
    true at ``message_stop``; ``error`` events are the caller's to raise.
    """

    def __init__(
        self, model: str, created: int | None = None, json_tool: str | None = None
    ) -> None:
        self.json_tool = json_tool  # the forced structured-output tool, streamed as text
        self._json_block: int | None = None
        self.id = ""
        self.model = model
        self.created = int(time.time()) if created is None else created
        self.usage: dict[str, Any] = {}
        self.done = False
        # message_delta carried a stop_reason: the answer is complete even if the body
        # ends before message_stop.
        self.stopped = False
        self._tool_index: dict[int, int] = {}

    def feed(self, event: dict[str, Any]) -> dict[str, Any] | None:
        kind = event.get("type")
        if kind == "message_start":
            msg = event.get("message") or {}
            self.id = msg.get("id") or self.id
            self.model = msg.get("model") or self.model
            self.usage = dict(msg.get("usage") or {})
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            return self._block_start(int(event.get("index") or 0), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(int(event.get("index") or 0), event.get("delta") or {})
        if kind == "message_delta":
            # message_delta usage is cumulative; input counts appear only on newer API versions.
            self.usage.update(
                {k: v for k, v in (event.get("usage") or {}).items() if v is not None}
            )
            stop = (event.get("delta") or {}).get("stop_reason")
            self.stopped = self.stopped or bool(stop)
            finish = finish_reason(stop) if stop else None
            if finish == "tool_calls" and self._json_block is not None:
                finish = "stop"  # the forced structured-output tool was the answer
            chunk = self._chunk({}, finish)
            chunk["usage"] = usage_dict(self.usage)
            return chunk
        if kind == "message_stop":
            self.done = True
        return None  # ping, content_block_stop, message_stop, and event types added later

    def _block_start(self, index: int, block: dict[str, Any]) -> dict[str, Any] | None:
        if (
            block.get("type") == "tool_use"
            and self.json_tool
            and block.get("name") == self.json_tool
        ):
            self._json_block = index
            return None
        if block.get("type") == "tool_use":
            self._tool_index[index] = len(self._tool_index)
            call = {
                "index": self._tool_index[index],
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if block.get("type") == "text" and block.get("text"):
            return self._chunk({"content": block["text"]})
        return None

    def _block_delta(self, index: int, delta: dict[str, Any]) -> dict[str, Any] | None:
        if delta.get("type") == "text_delta":
            return self._chunk({"content": delta.get("text") or ""})
        if delta.get("type") == "input_json_delta" and index == self._json_block:
            return self._chunk({"content": delta.get("partial_json") or ""})
        if delta.get("type") == "input_json_delta" and index in self._tool_index:
            call = {
                "index": self._tool_index[index],
                "function": {"arguments": delta.get("partial_json") or ""},
            }
            return self._chunk({"tool_calls": [call]})
        return None  # thinking_delta, signature_delta, citations_delta

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
