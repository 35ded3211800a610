"""Relaying a Responses API upstream's stream to the client as it came.

The events pass through untouched (built-in tool calls, reasoning items and
whatever OpenAI adds next reach the client), while the relay notes which
output items are open and what text they hold, so that it can:

- splice in text from another model continuing a broken answer (mid-stream
  recovery) as ``response.output_text.delta`` events of the open message item
  (or a new one), numbered after the upstream's last event, and
- close the response (``response.completed`` with the whole output) when the
  upstream's own end never came.
"""

from __future__ import annotations

from typing import Any

import orjson

from polyroute.server.responses_convert import message_item, new_id, usage_object
from polyroute.types import Usage


class ResponsesRelay:
    def __init__(self) -> None:
        self.seq = -1
        self.snapshot: dict[str, Any] = {}  # the response as response.created gave it
        self.items: dict[int, dict[str, Any]] = {}  # output index -> item (latest state)
        self.texts: dict[str, list[str]] = {}  # message item id -> its text so far
        self.open_text: tuple[str, int] | None = None  # (item id, output index)
        self.final: dict[str, Any] | None = None  # the finished response

    def _event(self, kind: str, **data: Any) -> bytes:
        self.seq += 1
        payload = {"type": kind, "sequence_number": self.seq, **data}
        return f"event: {kind}\ndata: ".encode() + orjson.dumps(payload) + b"\n\n"

    def relay(self, raw: bytes) -> bytes:
        data = _data_of(raw)
        self.seq = max(self.seq, int(data.get("sequence_number") or 0))
        kind = data.get("type")
        if kind == "response.created":
            self.snapshot = dict(data.get("response") or {})
        elif kind in ("response.output_item.added", "response.output_item.done"):
            index, item = int(data.get("output_index") or 0), dict(data.get("item") or {})
            self.items[index] = item
            if item.get("type") == "message":
                self.texts.setdefault(str(item.get("id")), [])
                open_now = kind.endswith("added")
                self.open_text = (str(item.get("id")), index) if open_now else None
        elif kind == "response.output_text.delta":
            self.texts.setdefault(str(data.get("item_id")), []).append(str(data.get("delta") or ""))
        elif kind in ("response.completed", "response.incomplete"):
            self.final = dict(data.get("response") or {})
        return raw

    def text(self, text: str) -> bytes:
        """Text from a continuing model, as deltas of a message item."""
        out = b""
        if self.open_text is None:
            index = max(self.items, default=-1) + 1
            item = message_item(new_id("msg"), "", "in_progress")
            self.items[index], self.texts[item["id"]] = item, []
            self.open_text = (item["id"], index)
            out += self._event("response.output_item.added", output_index=index, item=item)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            out += self._event("response.content_part.added", **ids, part=part)
        item_id, index = self.open_text
        self.texts[item_id].append(text)
        ids = {"item_id": item_id, "output_index": index, "content_index": 0}
        return out + self._event("response.output_text.delta", **ids, delta=text, logprobs=[])

    def finish(self, usage: Usage) -> bytes:
        """Whatever the upstream's own end did not send."""
        if self.final is not None:
            return b""
        out = b""
        if self.open_text is not None:
            item_id, index = self.open_text
            text = "".join(self.texts[item_id])
            item = message_item(item_id, text, "completed")
            ids = {"item_id": item_id, "output_index": index, "content_index": 0}
            out += self._event("response.output_text.done", **ids, text=text, logprobs=[])
            out += self._event("response.content_part.done", **ids, part=item["content"][0])
            out += self._event("response.output_item.done", output_index=index, item=item)
            self.items[index] = item
            self.open_text = None
        output = []
        for i in sorted(self.items):
            item = self.items[i]
            if item.get("type") == "message":
                item = message_item(
                    str(item.get("id")), "".join(self.texts[str(item["id"])]), "completed"
                )
            output.append(item)
        self.final = {
            **self.snapshot,
            "status": "completed",
            "output": output,
            "usage": usage_object(usage),
        }
        return out + self._event("response.completed", response=self.final)

    def error(self, status: int, message: str, code: str | None) -> bytes:
        err = {
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "code": code,
            "message": message,
        }
        return self._event("error", code=code, message=message, param=None, error=err)


def _data_of(raw: bytes) -> dict[str, Any]:
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                data = orjson.loads(line[5:].strip())
            except orjson.JSONDecodeError:
                return {}
            return data if isinstance(data, dict) else {}
    return {}
