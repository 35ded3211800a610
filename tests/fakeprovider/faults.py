"""Scripted faults: what the fake provider does instead of (or on top of) a plain success.

A test scripts faults per model name; each request for that model consumes the next one
(FIFO).  Once the queue is empty the model answers normally again.  Faults scripted for the
model name ``"*"`` apply to any model whose own queue is empty.

Faults are written as plain dicts so they can travel over HTTP (``POST /__script``)::

    {"kind": "status", "status": 429, "retry_after": "2"}
    {"kind": "context_length"}
    {"kind": "content_filter", "mode": "finish_reason"}
    {"kind": "hang", "seconds": 30}
    {"kind": "reset"}
    {"kind": "malformed"}
    {"kind": "content", "content": "hello", "tool_calls": [{"name": "f", "arguments": {}}]}
    {"kind": "stream_cut", "after_chunks": 1}
    {"kind": "stream_error_event", "after_chunks": 1}
    {"kind": "stream_stall", "after_chunks": 1, "seconds": 5}
    {"kind": "stream_malformed_event", "after_chunks": 1}
    {"kind": "stream_no_done"}
    {"kind": "stream_truncated", "after_chunks": 1}
    {"kind": "first_chunk_delay", "seconds": 2}

Every fault accepts ``delay`` (seconds to wait before answering) and ``headers`` (extra
response headers).  See :class:`Fault` for all parameters.

How a stream (``"stream": true``) ends under each stream fault.  "Content chunks" are the
text deltas (OpenAI ``delta.content``, Anthropic ``content_block_delta``), not the opening
role chunk / ``message_start`` events; ``after_chunks: 0`` acts before the first of them and
``after_chunks`` >= the number of chunks (3 for the default reply) after the last one::

    stream_cut             N chunks, then the TCP connection is closed mid-body (no final
                           0-length chunk): the client sees an incomplete chunked body /
                           "peer closed connection" (a transport error, not an RST).
    stream_error_event     N chunks, then an error event (OpenAI ``{"error": ...}`` data,
                           Anthropic ``event: error`` overloaded_error); the body ends cleanly.
    stream_truncated       N chunks, then the body ends cleanly (complete HTTP response) with
                           no terminal signal: no finish_reason / ``[DONE]``, Anthropic no
                           message_delta / message_stop.
    stream_stall           like stream_truncated, but the connection stays open with nothing
                           sent for ``seconds`` before the body ends (the sleep is cancelled
                           when the client disconnects).
    stream_malformed_event a complete stream with one extra event after N chunks whose
                           ``data:`` is not JSON (OpenAI ``data: {"choices": [``, Anthropic an
                           ``event: content_block_delta`` whose data is cut short).
    stream_no_done         a complete stream without its final marker: OpenAI sends the
                           finish_reason chunk (and usage chunk) but no ``data: [DONE]``,
                           Anthropic sends message_delta but no message_stop.
    first_chunk_delay      the response headers go out at once, then ``seconds`` pass before
                           the first event; then a normal stream.

The same faults on a request without ``"stream": true``: stream_cut drops the connection,
stream_error_event answers 500 (OpenAI) / 529 (Anthropic), stream_truncated answers like
``malformed`` (a 200 whose JSON is cut short), stream_stall waits ``seconds`` and then does
the same, first_chunk_delay waits ``seconds`` and answers normally (like ``delay``), and
stream_malformed_event / stream_no_done answer normally.

Besides the queued faults, a model can be switched persistently (until switched back or
``reset()``), see :class:`~tests.fakeprovider.state.ProviderState`: ``set_down(model,
status)`` answers every request with that status, ``reject_prefill(model)`` answers 400 to
requests whose last message is an ``assistant`` message.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, cast, get_args

FaultKind = Literal[
    "status",
    "context_length",
    "content_filter",
    "hang",
    "reset",
    "malformed",
    "content",
    "stream_cut",
    "stream_error_event",
    "stream_stall",
    "stream_malformed_event",
    "stream_no_done",
    "stream_truncated",
    "first_chunk_delay",
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
#: Stream faults that act once ``after_chunks`` content chunks have been sent.
AFTER_CHUNKS_KINDS: frozenset[str] = frozenset(
    {
        "stream_cut",
        "stream_error_event",
        "stream_stall",
        "stream_malformed_event",
        "stream_truncated",
    }
)

ANY_MODEL = "*"


class FaultError(ValueError):
    """A fault description is invalid."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the fake model makes (OpenAI ``tool_calls`` / Anthropic ``tool_use``).

    ``name`` may be omitted when the request declares tools: the first declared tool is used.
    ``arguments`` is a dict or an already-encoded JSON string.
    """

    name: str | None = None
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ToolCall:
        unknown = set(raw) - {"name", "arguments", "input", "id"}
        if unknown:
            raise FaultError(f"unknown tool call keys: {sorted(unknown)}")
        arguments = raw.get("arguments", raw.get("input", {}))
        if not isinstance(arguments, Mapping | str):
            raise FaultError("tool call 'arguments' must be an object or a JSON string")
        return cls(name=raw.get("name"), arguments=arguments, id=raw.get("id"))


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted behaviour.  Parameters not used by ``kind`` are ignored."""

    kind: FaultKind
    #: ``status``: the HTTP status to answer with.
    status: int | None = None
    #: ``status``: values for the ``retry-after`` / ``retry-after-ms`` response headers.
    retry_after: str | None = None
    retry_after_ms: str | None = None
    #: error faults: override the provider's error ``message`` / ``type`` / OpenAI ``code``.
    message: str | None = None
    error_type: str | None = None
    code: str | None = None
    #: ``hang``: how long to sleep before answering normally; ``stream_stall``: how long the
    #: stream stays silent before its body ends; ``first_chunk_delay``: how long after the
    #: headers the first event comes (all cancelled on disconnect).
    seconds: float = 30.0
    #: ``content_filter``: ``"error"`` (HTTP 400) or ``"finish_reason"`` (200, filtered).
    mode: Literal["error", "finish_reason"] = "error"
    #: ``reset``: send a TCP RST instead of a plain close (client sees ECONNRESET).
    rst: bool = False
    #: success faults (``content``, ``stream_cut``, ...): the reply text and tool calls.
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    #: success faults: override finish_reason (OpenAI) / stop_reason (Anthropic).
    finish_reason: str | None = None
    stop_reason: str | None = None
    #: success faults: override the reported token usage.
    input_tokens: int | None = None
    output_tokens: int | None = None
    #: ``stream_cut`` / ``stream_error_event`` / ``stream_stall`` / ``stream_truncated``:
    #: content chunks sent before the failure; ``stream_malformed_event``: content chunks
    #: sent before the extra non-JSON event.
    after_chunks: int = 1
    #: any fault: seconds to wait before answering, extra response headers.
    delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | Fault) -> Fault:
        """Parse and validate a fault dict (as sent to ``POST /__script``)."""
        if isinstance(raw, Fault):
            return raw
        if not isinstance(raw, Mapping):
            raise FaultError(f"a fault must be an object, got {type(raw).__name__}")
        data = dict(raw)
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise FaultError(f"unknown keys for fault {kind!r}: {sorted(unknown)}")
        if kind == "status" and not isinstance(data.get("status"), int):
            raise FaultError("a 'status' fault needs an integer 'status'")
        if data.get("mode", "error") not in ("error", "finish_reason"):
            raise FaultError("'mode' must be 'error' or 'finish_reason'")
        for key in ("retry_after", "retry_after_ms"):
            if data.get(key) is not None:
                data[key] = str(data[key])
        for key in ("seconds", "delay"):
            if key in data:
                try:
                    data[key] = float(data[key])
                except (TypeError, ValueError):
                    raise FaultError(f"{key!r} must be a number of seconds") from None
                if data[key] < 0:
                    raise FaultError(f"{key!r} must not be negative")
        if "after_chunks" in data:
            after = data["after_chunks"]
            if isinstance(after, bool) or not isinstance(after, int) or after < 0:
                raise FaultError("'after_chunks' must be a non-negative integer")
        if "tool_calls" in data:
            calls = data["tool_calls"] or []
            if not isinstance(calls, list | tuple):
                raise FaultError("'tool_calls' must be a list")
            data["tool_calls"] = tuple(
                c if isinstance(c, ToolCall) else ToolCall.from_dict(c) for c in calls
            )
        data["headers"] = {str(k): str(v) for k, v in (data.get("headers") or {}).items()}
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form without defaulted keys (round-trips through :meth:`from_dict`)."""
        defaults = Fault(kind=self.kind)
        out = {k: v for k, v in asdict(self).items() if k == "kind" or v != getattr(defaults, k)}
        if self.tool_calls:
            out["tool_calls"] = [asdict(c) for c in self.tool_calls]
        return out

    def response_headers(self) -> dict[str, str]:
        """Headers this fault adds to the response (retry hints and ``headers``)."""
        out = dict(self.headers)
        if self.retry_after is not None:
            out["retry-after"] = self.retry_after
        if self.retry_after_ms is not None:
            out["retry-after-ms"] = self.retry_after_ms
        return out


FaultLike = Fault | Mapping[str, Any]


class FaultQueue:
    """Per-model FIFO queues of faults.  Thread-safe: tests script from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Fault]] = {}

    def push(self, model: str, faults: Iterable[FaultLike]) -> int:
        """Append faults for ``model``; returns how many are now queued for it."""
        parsed = [Fault.from_dict(f) for f in faults]  # validate all before queueing any
        with self._lock:
            queue = self._queues.setdefault(model, deque())
            queue.extend(parsed)
            return len(queue)

    def pop(self, model: str) -> Fault | None:
        """The next fault for ``model`` (falling back to ``"*"``), or None for success."""
        with self._lock:
            for key in (model, ANY_MODEL):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
            return None

    def pending(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {m: [f.to_dict() for f in q] for m, q in self._queues.items() if q}

    def clear(self, model: str | None = None) -> None:
        with self._lock:
            if model is None:
                self._queues.clear()
            else:
                self._queues.pop(model, None)


def parse_faults(raw: object) -> list[Fault]:
    """Validate a JSON list of faults (raises :class:`FaultError`)."""
    if not isinstance(raw, list):
        raise FaultError("'faults' must be a list")
    return [Fault.from_dict(cast(Mapping[str, Any], f)) for f in raw]
