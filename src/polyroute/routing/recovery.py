"""Mid-stream recovery: how the next candidate is asked to continue a broken answer.

When a stream fails after text reached the caller (``stream_recovery:
continue``), the next candidate gets the original messages plus the text
already sent:

- as a trailing assistant message (*prefill*) where the catalog says the model
  accepts one (capability ``prefill``): it continues the text itself;
- otherwise, or when it rejects the prefill, the text as an assistant message
  followed by a user instruction to continue exactly where it stopped.

Either way the model may repeat a little of what was sent; ``Overlap`` trims
the repeated start of the continuation so nothing reaches the caller twice.
"""

from __future__ import annotations

from polyroute.config.catalog import ModelInfo
from polyroute.errors import BadRequestError
from polyroute.types import Message

CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off. Continue it exactly from where it stopped: "
    "do not repeat any of it, do not add a preamble, do not restart."
)
# Words providers use when they refuse an assistant prefill.
_PREFILL_REFUSALS = ("prefill", "final assistant", "must end with a user", "assistant message")
_MAX_OVERLAP = 400  # characters of the sent text compared with the continuation
_MIN_OVERLAP = 4


def accepts_prefill(info: ModelInfo) -> bool:
    return info.has("prefill")


def continuation_messages(messages: list[Message], sent: str, prefill: bool) -> list[Message]:
    """The request that continues ``sent``."""
    out = list(messages)
    if prefill:
        # Anthropic rejects a final assistant turn that ends in whitespace.
        out.append({"role": "assistant", "content": sent.rstrip()})
        return out
    out.append({"role": "assistant", "content": sent})
    out.append({"role": "user", "content": CONTINUE_INSTRUCTION})
    return out


def rejects_prefill(error: BaseException) -> bool:
    """A 400 that refuses the trailing assistant message, not the request as such."""
    if not isinstance(error, BadRequestError):
        return False
    text = str(error).lower()
    return any(marker in text for marker in _PREFILL_REFUSALS)


class Overlap:
    """Trims the start of a continuation that repeats the end of ``sent``.

    The first chunks are held until enough text has come to decide (or the
    stream ends), then released trimmed; after that text passes through."""

    def __init__(self, sent: str) -> None:
        self._tail = sent[-_MAX_OVERLAP:]
        self._held = ""
        self.decided = not self._tail

    def feed(self, text: str, final: bool = False) -> str:
        """The part of ``text`` the caller should get now."""
        if self.decided:
            return text
        self._held += text
        if len(self._held) < len(self._tail) and not final:
            return ""
        self.decided = True
        held, self._held = self._held, ""
        return held[_overlap(self._tail, held) :]


def _overlap(tail: str, head: str) -> int:
    """Length of the longest suffix of ``tail`` that ``head`` starts with (whole
    overlaps of a few characters; a shared letter or two is no repeat)."""
    for n in range(min(len(tail), len(head)), _MIN_OVERLAP - 1, -1):
        if tail.endswith(head[:n]):
            return n
    return 0
