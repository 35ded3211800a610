"""The ``simulator`` provider: a model that runs in-process, labelled simulated.

It lets a new user run every feature with no API key and lets load tests run
with no network.  Settings come from the provider's ``simulator`` block:
``latency`` (seconds), ``failure_rate`` (0..1), ``error_kinds`` (which errors a
failure raises), ``seed``.  Content is deterministic for a given seed, model
and prompt; every answer says it is simulated.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from polyroute import errors as E
from polyroute.providers.base import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Endpoint,
    ImageRequest,
    ImageResponse,
    StreamChunk,
)
from polyroute.types import Usage

if TYPE_CHECKING:  # aiohttp loads when the first call is made, not at import
    import aiohttp

SIM_FINGERPRINT = "polyroute-simulator"
_WORDS = [
    "route",
    "model",
    "answer",
    "fast",
    "cost",
    "token",
    "latency",
    "fallback",
    "retry",
    "pool",
    "tier",
    "budget",
    "cache",
    "stream",
    "prompt",
    "quality",
    "output",
    "draft",
    "section",
    "pattern",
    "brief",
    "keyword",
    "plan",
    "combine",
]

_ERRORS: dict[str, tuple[type[E.ProviderError], int | None, str]] = {
    "rate_limit": (E.RateLimitError, 429, "simulated rate limit"),
    "server_error": (E.ServerError, 500, "simulated server error"),
    "overloaded": (E.OverloadedError, 529, "simulated overload"),
    "timeout": (E.ProviderTimeoutError, None, "simulated timeout"),
    "connection_error": (E.ProviderConnectionError, None, "simulated connection reset"),
}


def approx_tokens(text: str) -> int:
    """About four characters per token: the documented rule of thumb for English."""
    return max(1, (len(text) + 3) // 4)


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    out: list[str] = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, list):
            out.extend(p.get("text", "") for p in c if isinstance(p, dict))
    return "\n".join(out)


class SimulatorAdapter:
    def __init__(self) -> None:
        self._calls = 0  # drives the failure sequence deterministically per process

    def _rng(self, endpoint: Endpoint, *parts: str) -> random.Random:
        seed = str(endpoint.sim_setting("seed", 0))
        digest = hashlib.blake2b("\x1f".join((seed, *parts)).encode(), digest_size=8).digest()
        return random.Random(int.from_bytes(digest, "big"))

    async def _maybe_fail(self, endpoint: Endpoint, model: str) -> None:
        latency = float(endpoint.sim_setting("latency", 0.0))
        if latency > 0:
            await asyncio.sleep(latency)
        rate = float(endpoint.sim_setting("failure_rate", 0.0))
        if rate <= 0:
            return
        self._calls += 1
        rng = self._rng(endpoint, model, "fail", str(self._calls))
        if rng.random() >= rate:
            return
        kinds = list(endpoint.sim_setting("error_kinds", ("server_error",)))
        cls, status, msg = _ERRORS[rng.choice(kinds)]
        raise cls(
            msg,
            provider=endpoint.provider,
            model=model,
            status=status,
            request_id=f"sim-{self._calls}",
        )

    def _reply(self, endpoint: Endpoint, request: ChatRequest) -> tuple[str, Usage]:
        prompt = _prompt_text(request.messages)
        rng = self._rng(endpoint, request.model, prompt)
        max_tokens = request.params.get("max_tokens") or request.params.get("max_completion_tokens")
        n_words = rng.randint(8, 24)
        if max_tokens:
            n_words = max(1, min(n_words, int(max_tokens)))
        body = " ".join(rng.choice(_WORDS) for _ in range(n_words))
        last = prompt.strip().splitlines()[-1][:60] if prompt.strip() else ""
        content = f"[simulated {request.model}] {body}" + (f" (re: {last})" if last else "")
        return content, Usage(approx_tokens(prompt), approx_tokens(content))

    def _completion(
        self, request: ChatRequest, content: str, usage: Usage, rid: str
    ) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{rid}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "system_fingerprint": SIM_FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage.to_dict(),
        }

    async def chat(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ChatRequest
    ) -> ChatResponse:
        await self._maybe_fail(endpoint, request.model)
        content, usage = self._reply(endpoint, request)
        rid = "sim-" + hashlib.blake2b(content.encode(), digest_size=6).hexdigest()
        raw = self._completion(request, content, usage, rid)
        return ChatResponse(content, usage, "stop", None, rid, raw, simulated=True)

    async def stream(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncIterator[StreamChunk]:
        await self._maybe_fail(endpoint, request.model)
        content, usage = self._reply(endpoint, request)
        rid = "sim-" + hashlib.blake2b(content.encode(), digest_size=6).hexdigest()
        base = {
            "id": f"chatcmpl-{rid}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.model,
            "system_fingerprint": SIM_FINGERPRINT,
        }
        words = content.split(" ")
        for i, w in enumerate(words):
            piece = w if i == 0 else " " + w
            raw = {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": piece},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            }
            yield StreamChunk(delta=piece, request_id=rid, raw=raw)
            await asyncio.sleep(0)
        last = {
            **base,
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
            "usage": usage.to_dict(),
        }
        yield StreamChunk(finish_reason="stop", usage=usage, request_id=rid, raw=last)

    async def image(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ImageRequest
    ) -> ImageResponse:
        await self._maybe_fail(endpoint, request.model)
        n = int(request.params.get("n") or 1)
        digest = hashlib.blake2b(request.prompt.encode(), digest_size=6).hexdigest()
        images = [
            {
                "url": f"https://simulator.polyroute.invalid/{request.model}/{digest}-{i}.png",
                "revised_prompt": f"[simulated {request.model}] {request.prompt}",
            }
            for i in range(n)
        ]
        raw = {"created": int(time.time()), "data": images}
        return ImageResponse(images=images, request_id=f"sim-{digest}", raw=raw, simulated=True)

    async def embed(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: EmbeddingRequest
    ) -> EmbeddingResponse:
        """A unit vector per input, the same for the same text and model."""
        await self._maybe_fail(endpoint, request.model)
        dims = int(request.params.get("dimensions") or 256)
        vectors: list[list[float]] = []
        for text in request.inputs:
            rng = self._rng(endpoint, request.model, "embed", text)
            v = [rng.gauss(0.0, 1.0) for _ in range(dims)]
            norm = sum(x * x for x in v) ** 0.5 or 1.0
            vectors.append([x / norm for x in v])
        usage = Usage(prompt_tokens=sum(approx_tokens(t) for t in request.inputs))
        raw = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ],
            "model": request.model,
            "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens},
        }
        return EmbeddingResponse(vectors, usage, request_id="sim-embed", raw=raw, simulated=True)
