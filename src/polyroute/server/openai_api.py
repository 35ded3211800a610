"""OpenAI-compatible endpoints: chat completions (plain and SSE), images, models.

``model`` is any route name polyroute resolves.  The upstream answer is
relayed in OpenAI's shape; where it came from is in ``x-polyroute-*`` headers.
A stream may fall back until its first chunk; after that, a failure becomes an
``{"error": ...}`` event and the stream ends without ``[DONE]``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from polyroute.config.validate import route_names
from polyroute.errors import PolyrouteError
from polyroute.server.errors import RequestError, error_body
from polyroute.server.http import (
    authorize,
    envelope_headers,
    gateway_of,
    json_response,
    read_json,
    require_str,
)

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Fields polyroute consumes itself; everything else (metadata, store, logprobs,
# prediction, ...) goes upstream as the client sent it.
OWN_FIELDS = frozenset({"model", "messages", "stream", "stream_options"})


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RequestError("'messages' must be a non-empty array", param="messages")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise RequestError("each message must be an object", param=f"messages[{i}]")
        if m.get("role") not in ROLES:
            raise RequestError(
                f"role must be one of {', '.join(sorted(ROLES))}", param=f"messages[{i}].role"
            )
    return msgs


def _params(body: dict[str, Any]) -> dict[str, Any]:
    params = {k: v for k, v in body.items() if k not in OWN_FIELDS}
    t = params.get("temperature")
    if t is not None and (not isinstance(t, int | float) or not 0 <= t <= 2):
        raise RequestError("temperature must be a number between 0 and 2", param="temperature")
    for f in ("max_tokens", "max_completion_tokens", "n"):
        v = params.get(f)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise RequestError(f"{f} must be a positive integer", param=f)
    return params


def product_type_of(request: Request, body: dict[str, Any]) -> str | None:
    pt = request.headers.get("x-polyroute-product-type")
    meta = body.get("metadata")
    if not pt and isinstance(meta, dict):
        value = meta.get("product_type")
        pt = value if isinstance(value, str) else None
    return pt or None


def cache_choice(request: Request) -> bool | None:
    """``x-polyroute-cache: off`` or ``Cache-Control: no-cache`` opt out of the cache."""
    flag = request.headers.get("x-polyroute-cache", "").lower()
    if (
        flag in ("off", "no", "false", "0")
        or "no-cache" in request.headers.get("cache-control", "").lower()
    ):
        return False
    return None


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


async def chat_completions(request: Request) -> Response:
    labels = authorize(request)
    body = await read_json(request)
    model = require_str(body, "model")
    messages = _messages(body)
    params = _params(body)
    router = gateway_of(request).router
    product_type = product_type_of(request, body)
    if not body.get("stream"):
        env = await router.complete(
            model,
            messages,
            product_type=product_type,
            labels=labels,
            cache=cache_choice(request),
            **params,
        )
        return json_response(env.raw or {}, headers=envelope_headers(env))

    opts = body.get("stream_options")
    include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
    stream = router.stream(model, messages, product_type=product_type, labels=labels, **params)
    first = await stream.start()  # fallback happens here; errors become a JSON answer
    assert stream.envelope is not None
    headers = envelope_headers(stream.envelope, streaming=True)

    async def events() -> AsyncIterator[bytes]:
        chunk: Any = first
        last: dict[str, Any] = {}
        try:
            while True:
                raw = dict(chunk.raw or {})
                # Usage is the call's, sent once at the end (below): an upstream's own
                # usage chunk may cover only part of a recovered answer, and an Anthropic
                # upstream reports it on a chunk that still has choices.
                if "usage" in raw:
                    if not raw.get("choices"):
                        raw = {}
                    elif include_usage:
                        raw["usage"] = None  # as OpenAI sends every chunk but the last
                    else:
                        del raw["usage"]
                if raw:
                    last = raw
                    yield _sse(raw)
                chunk = await anext(aiter(stream), None)
                if chunk is None:
                    break
        except PolyrouteError as exc:
            yield _sse(error_body(exc))
            return
        env = stream.envelope
        if include_usage and env is not None:
            # OpenAI's form: a last chunk with no choices and the whole call's usage.
            final = {k: last[k] for k in ("id", "object", "created", "model") if k in last}
            yield _sse({**final, "choices": [], "usage": env.usage.to_dict()})
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def images_generations(request: Request) -> Response:
    labels = authorize(request)
    body = await read_json(request)
    prompt = require_str(body, "prompt")
    model = body.get("model") or "task:image"
    if not isinstance(model, str):
        raise RequestError("'model' must be a string", param="model")
    params = {k: v for k, v in body.items() if k not in ("model", "prompt", "user")}
    n = params.get("n")
    if n is not None and (not isinstance(n, int) or not 1 <= n <= 10):
        raise RequestError("n must be an integer from 1 to 10", param="n")
    env = await gateway_of(request).router.generate_image(model, prompt, labels=labels, **params)
    out = {"created": int(time.time()), "data": env.images or []}
    return json_response(out, headers=envelope_headers(env))


async def embeddings(request: Request) -> Response:
    """OpenAI embeddings through any route (default ``task:embedding``), with fallback,
    cache, budgets and a usage record like every call."""
    labels = authorize(request)
    body = await read_json(request)
    model = body.get("model") or "task:embedding"
    if not isinstance(model, str):
        raise RequestError("'model' must be a string", param="model")
    raw = body.get("input")
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        inputs = list(raw)
    else:
        raise RequestError(
            "'input' must be a string or a non-empty array of strings", param="input"
        )
    params = {k: v for k, v in body.items() if k not in ("model", "input")}
    base64_wanted = params.get("encoding_format") == "base64"
    params.pop("encoding_format", None)  # vectors are read as floats, encoded below
    env = await gateway_of(request).router.embed(
        model, inputs, labels=labels, cache=cache_choice(request), **params
    )
    vectors = env.embeddings or []
    data = [
        {"object": "embedding", "index": i, "embedding": _b64(v) if base64_wanted else v}
        for i, v in enumerate(vectors)
    ]
    out = {
        "object": "list",
        "data": data,
        "model": env.model,
        "usage": {
            "prompt_tokens": env.usage.prompt_tokens,
            "total_tokens": env.usage.prompt_tokens,
        },
    }
    return json_response(out, headers=envelope_headers(env))


def _b64(vector: list[float]) -> str:
    """OpenAI's base64 form: little-endian float32s."""
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def list_models(request: Request) -> Response:
    authorize(request)
    router = gateway_of(request).router
    now = int(time.time())
    data = [
        {"id": m.id, "object": "model", "created": now, "owned_by": m.provider}
        for m in router.catalog
    ]
    data += [
        {"id": name, "object": "model", "created": now, "owned_by": "polyroute"}
        for name in route_names(router.config)
    ]
    return json_response({"object": "list", "data": data})
