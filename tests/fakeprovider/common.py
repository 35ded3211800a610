"""Wire-independent pieces shared by the OpenAI and Anthropic dialects of the fake."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .faults import Fault

# A valid 1x1 transparent PNG, served for generated images.
TINY_PNG: bytes = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

STREAM_CHUNKS = 3
_PIECE = re.compile(r"\s*\S+|\s+$")


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def count_tokens(text: str | None) -> int:
    """The fake's "tokenizer": whitespace-separated words."""
    return len(text.split()) if text else 0


def split_chunks(text: str, n: int = STREAM_CHUNKS) -> list[str]:
    """Split ``text`` at word boundaries into at most ``n`` pieces that join back to it."""
    pieces = _PIECE.findall(text)
    if not pieces:
        return []
    n = max(1, min(n, len(pieces)))
    size, extra = divmod(len(pieces), n)
    out: list[str] = []
    start = 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append("".join(pieces[start:end]))
        start = end
    return out


def split_even(text: str, n: int = 2) -> list[str]:
    """Split any string (e.g. JSON arguments) into ``n`` non-empty character slices."""
    if not text:
        return []
    step = max(1, -(-len(text) // n))
    return [text[i : i + step] for i in range(0, len(text), step)]


def content_text(content: object) -> str:
    """Text of a message ``content``: a string or a list of typed parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif "content" in part:  # e.g. Anthropic tool_result
                    texts.append(content_text(part["content"]))
        return " ".join(t for t in texts if t)
    return ""


def last_user_text(messages: Iterable[Mapping[str, Any]]) -> str:
    text = ""
    for message in messages:
        if message.get("role") == "user":
            text = content_text(message.get("content"))
    return text


def ends_with_assistant(body: Mapping[str, Any]) -> bool:
    """Whether the request's last message is an ``assistant`` one (a prefill)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return False
    last = messages[-1]
    return isinstance(last, Mapping) and last.get("role") == "assistant"


def default_reply_text(model: str, messages: Iterable[Mapping[str, Any]]) -> str:
    # Built from the last *user* message only: after an assistant prefill the reply is a
    # continuation and never repeats the prefilled text.
    return f"fake reply from {model}: {last_user_text(messages)[:60]}"


def tool_names(tools: object) -> list[str]:
    """Names of declared tools, in either wire format."""
    names: list[str] = []
    if isinstance(tools, list):
        for tool in tools:
            if not isinstance(tool, Mapping):
                continue
            function = tool.get("function")
            name = function.get("name") if isinstance(function, Mapping) else tool.get("name")
            if isinstance(name, str):
                names.append(name)
    return names


@dataclass(frozen=True, slots=True)
class ResolvedToolCall:
    id: str
    name: str
    arguments: str  # JSON text (OpenAI)
    input: dict[str, Any]  # decoded object (Anthropic)


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer, before it is rendered in a provider's wire format."""

    text: str | None
    tool_calls: tuple[ResolvedToolCall, ...]
    filtered: bool  # content_filter fault in finish_reason mode
    input_tokens: int
    output_tokens: int

    @property
    def chunks(self) -> list[str]:
        return split_chunks(self.text or "")


class ReplyError(ValueError):
    """The scripted reply cannot be produced for this request (answered with a 400)."""


def build_reply(
    fault: Fault | None,
    *,
    default_text: str,
    prompt_tokens: int,
    declared_tools: Sequence[str],
    tool_id_prefix: str,
    request_id: int,
) -> Reply:
    """Combine the request's default answer with a (success-kind) scripted fault."""
    filtered = fault is not None and fault.kind == "content_filter"
    if fault is not None and fault.content is not None:
        text: str | None = fault.content
    elif filtered or (fault is not None and fault.tool_calls):
        text = None
    else:
        text = default_text
    calls = tuple(
        _resolve_call(i, c.name, c.arguments, c.id, declared_tools, tool_id_prefix, request_id)
        for i, c in enumerate(fault.tool_calls if fault else ())
    )
    output_tokens = count_tokens(text) + sum(count_tokens(c.arguments) for c in calls)
    return Reply(
        text=text,
        tool_calls=calls,
        filtered=filtered,
        input_tokens=fault.input_tokens
        if fault and fault.input_tokens is not None
        else prompt_tokens,
        output_tokens=(
            fault.output_tokens if fault and fault.output_tokens is not None else output_tokens
        ),
    )


def _resolve_call(
    index: int,
    name: str | None,
    arguments: Mapping[str, Any] | str,
    call_id: str | None,
    declared_tools: Sequence[str],
    prefix: str,
    request_id: int,
) -> ResolvedToolCall:
    if name is None:
        if not declared_tools:
            raise ReplyError("scripted tool call has no 'name' and the request declares no tools")
        name = declared_tools[0]
    if isinstance(arguments, str):
        text = arguments
        try:
            decoded = json.loads(arguments)
        except ValueError:
            decoded = {}
        obj = decoded if isinstance(decoded, dict) else {}
    else:
        obj = dict(arguments)
        text = json.dumps(obj)
    return ResolvedToolCall(
        id=call_id or f"{prefix}{request_id:06d}_{index}",
        name=name,
        arguments=text,
        input=obj,
    )
