"""A cached envelope dict back into an ``Envelope`` for a cache hit."""

from __future__ import annotations

from typing import Any

from polyroute.types import Envelope, Usage


def envelope_from_cache(d: dict[str, Any]) -> tuple[Envelope, float]:
    """The envelope a hit returns, and the cost the hit saved (the original call's).

    A hit costs nothing and made no provider attempts, so ``cost`` is 0 and
    ``attempts`` (hence ``retries`` and ``fallbacks``) are empty: metrics and the
    usage store must not count the original call's retries again.  ``usage``
    keeps the original token counts because they describe the answer the client
    receives (OpenAI-shaped responses carry them); observers should read
    ``cache_hit`` to tell tokens served from tokens billed.  ``warnings`` are
    dropped: they were about the original call; the router adds the current
    route's own.  ``latency`` is 0; the router sets the real one.
    """
    u = d.get("usage") or {}
    env = Envelope(
        content=d.get("content"),
        model=str(d.get("model", "")),
        provider=str(d.get("provider", "")),
        route=str(d.get("route", "")),
        usage=Usage(
            prompt_tokens=int(u.get("prompt_tokens") or 0),
            completion_tokens=int(u.get("completion_tokens") or 0),
        ),
        cost=0.0,
        cache_hit=True,
        request_id=d.get("request_id"),
        finish_reason=d.get("finish_reason"),
        tool_calls=d.get("tool_calls"),
        simulated=bool(d.get("simulated", False)),
        images=d.get("images"),
        embeddings=d.get("embeddings"),
        raw=d.get("raw"),
        native=d.get("native"),
    )
    return env, float(d.get("cost") or 0.0)
