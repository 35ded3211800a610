"""Counting prompt tokens before a call.

tiktoken gives exact counts for OpenAI models when its encoding files are on
disk (``TIKTOKEN_CACHE_DIR``); polyroute never lets it download them on the
request path.  Otherwise, and for other providers, the documented
approximation is used: about four characters per token plus a few tokens of
framing per message, which errs high for English text, so a context-window
check skips a model slightly early rather than sending a payload it cannot fit.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import cache
from typing import Any

from polyroute.types import Message

_PER_MESSAGE = 4  # role and separators, as OpenAI's cookbook counts them
_PER_IMAGE = 765  # a 1024x1024 image at high detail in OpenAI's accounting
_ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}


def _cached_on_disk(encoding: str) -> bool:
    url = _ENCODING_URLS.get(encoding)
    if url is None:
        return False
    cache_dir = (
        os.environ.get("TIKTOKEN_CACHE_DIR")
        or os.environ.get("DATA_GYM_CACHE_DIR")
        or (os.path.join(tempfile.gettempdir(), "data-gym-cache"))
    )
    return os.path.exists(os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest()))


@cache
def _encoder(encoding: str) -> Any:
    if not _cached_on_disk(encoding):
        return None
    try:
        import tiktoken

        return tiktoken.get_encoding(encoding)
    except Exception:  # a broken cache file must not break routing; fall back to the estimate
        return None


def _encoding_for(provider: str, model: str) -> str | None:
    if provider not in ("openai", "simulator", "azure"):
        return None
    if model.startswith(("gpt-3.5", "gpt-4-")) or model == "gpt-4":
        return "cl100k_base"
    return "o200k_base"


def count_text(text: str, provider: str = "", model: str = "") -> int:
    enc_name = _encoding_for(provider, model)
    enc = _encoder(enc_name) if enc_name else None
    if enc is not None:
        return len(enc.encode(text, disallowed_special=()))
    return (len(text) + 3) // 4


def count_messages(messages: list[Message], provider: str = "", model: str = "") -> int:
    total = 3  # every reply is primed with a few tokens
    for m in messages:
        total += _PER_MESSAGE
        content = m.get("content")
        if isinstance(content, str):
            total += count_text(content, provider, model)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "text":
                    total += count_text(str(part.get("text", "")), provider, model)
                elif part.get("type") in ("image_url", "image", "input_image"):
                    total += _PER_IMAGE
        for call in m.get("tool_calls") or ():
            fn = call.get("function") or {}
            total += count_text(
                str(fn.get("name", "")) + str(fn.get("arguments", "")), provider, model
            )
    return total


class PromptTokens:
    """One call's prompt, counted at most once per tokenizer.

    The capability check, the budget estimate and the rate-limit gate all need
    the prompt's size for each candidate; the count depends only on which
    encoding the candidate's provider/model uses, so candidates sharing one
    share the count."""

    __slots__ = ("_by_encoding", "messages")

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self._by_encoding: dict[str | None, int] = {}

    def count(self, provider: str = "", model: str = "") -> int:
        key = _encoding_for(provider, model)
        n = self._by_encoding.get(key)
        if n is None:
            n = self._by_encoding[key] = count_messages(self.messages, provider, model)
        return n


def has_audio_input(messages: list[Message]) -> bool:
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "input_audio":
                    return True
    return False


def has_image_input(messages: list[Message]) -> bool:
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") in (
                    "image_url",
                    "image",
                    "input_image",
                ):
                    return True
    return False
