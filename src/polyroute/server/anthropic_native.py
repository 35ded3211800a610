"""Relaying an Anthropic upstream's stream to an Anthropic client as it came.

The events are passed on byte for byte, so thinking blocks and their
signatures, citations, server tools and whatever Anthropic adds next reach the
client untouched.  The relay only watches the events go by (which block is
open, whether ``message_delta`` / ``message_stop`` came) so that it can:

- splice in text from another model continuing a broken answer (mid-stream
  recovery) as deltas of the open text block (or a new one), and
- close the message properly when the upstream's own end never came.
"""

from __future__ import annotations

from typing import Any

import orjson

from polyroute.server.anthropic_compat import STOP_REASONS


def event(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


class NativeRelay:
    def __init__(self) -> None:
        self.open_block: int | None = None
        self.open_text: int | None = None  # the open block, when it is a text block
        self.last_index = -1
        self.delta_sent = False
        self.stopped = False

    def relay(self, raw: bytes) -> bytes:
        """Pass one upstream event on, noting what it opens or closes."""
        data = _data_of(raw)
        kind = data.get("type")
        if kind == "content_block_start":
            index = int(data.get("index") or 0)
            self.open_block, self.last_index = index, max(self.last_index, index)
            block = data.get("content_block") or {}
            self.open_text = index if block.get("type") == "text" else None
        elif kind == "content_block_stop":
            self.open_block = self.open_text = None
        elif kind == "message_delta":
            self.delta_sent = True
        elif kind == "message_stop":
            self.stopped = True
        return raw

    def text(self, text: str) -> bytes:
        """Text from a continuing model, as deltas of a text block."""
        out = b""
        if self.open_text is None:
            if self.open_block is not None:
                out += event({"type": "content_block_stop", "index": self.open_block})
            self.last_index += 1
            self.open_block = self.open_text = self.last_index
            out += event(
                {
                    "type": "content_block_start",
                    "index": self.open_text,
                    "content_block": {"type": "text", "text": ""},
                }
            )
        delta = {"type": "text_delta", "text": text}
        return out + event({"type": "content_block_delta", "index": self.open_text, "delta": delta})

    def finish(self, finish_reason: str | None, output_tokens: int) -> bytes:
        """Whatever the upstream's own end did not send."""
        if self.stopped:
            return b""
        out = b""
        if self.open_block is not None:
            out += event({"type": "content_block_stop", "index": self.open_block})
            self.open_block = self.open_text = None
        if not self.delta_sent:
            stop = STOP_REASONS.get(finish_reason, "end_turn")
            out += event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": output_tokens},
                }
            )
        self.stopped = True
        return out + event({"type": "message_stop"})

    def error(self, error_type: str, message: str) -> bytes:
        self.stopped = True
        return event({"type": "error", "error": {"type": error_type, "message": message}})


def _data_of(raw: bytes) -> dict[str, Any]:
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                data = orjson.loads(line[5:].strip())
            except orjson.JSONDecodeError:
                return {}
            return data if isinstance(data, dict) else {}
    return {}
