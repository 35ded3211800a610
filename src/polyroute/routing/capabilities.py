"""Skip, before calling, candidates that cannot serve the request.

Image input needs ``vision``; an image task needs ``image_generation``; a
prompt plus max_tokens over the context window is never sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from polyroute.config.catalog import ModelInfo
from polyroute.tokens import PromptTokens, count_messages, has_audio_input, has_image_input
from polyroute.types import Message


@dataclass(slots=True)  # not frozen: built on every call, and frozen init costs more
class Needs:
    vision: bool = False
    audio: bool = False  # input_audio parts
    image_generation: bool = False
    embedding: bool = False
    # Why the request has no OpenAI form (an Anthropic body with documents, server
    # tools...): only candidates that get it as sent (not the OpenAI wire) can serve it.
    untranslatable: str | None = None
    native_wire: str | None = None  # the format it is in: "anthropic" or "responses"
    prompt: PromptTokens | None = None  # the prompt's size, counted lazily per tokenizer
    max_tokens: int = 0


def needs_for_chat(
    messages: list[Message], max_tokens: int | None, prompt: PromptTokens | None = None
) -> Needs:
    return Needs(
        vision=has_image_input(messages),
        audio=has_audio_input(messages),
        prompt=prompt if prompt is not None else PromptTokens(messages),
        max_tokens=int(max_tokens or 0),
    )


def skip_reason(info: ModelInfo, needs: Needs, messages: list[Message] | None) -> str | None:
    """Why ``info`` cannot serve the request, or None if it can."""
    if needs.image_generation:
        return None if info.has("image_generation") else "capability:image_generation"
    if needs.embedding:
        # A model the catalog knows nothing about (``provider/name``) is given its chance.
        ok = info.has("embedding") or not info.capabilities
        return None if ok else "capability:embedding"
    if info.capabilities and not info.has("text"):
        return "capability:text"
    if needs.vision and not info.has("vision"):
        return "capability:vision"
    if needs.audio and not info.has("audio"):
        return "capability:audio"
    if info.context_window and messages is not None:
        prompt = (
            needs.prompt.count(info.provider, info.name)
            if needs.prompt is not None
            else count_messages(messages, info.provider, info.name)
        )
        if prompt + needs.max_tokens > info.context_window:
            return "context_window"
    return None
