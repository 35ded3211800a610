"""Legacy OpenAI text completions, ``POST /v1/completions``, over any chat route.

Each prompt is sent as one user message through ``router.complete`` (or
``router.stream``), with the same routing, fallback, cache, budgets and usage
record as chat; the answer leaves in the ``text_completion`` shape
(``choices[].text``, ``finish_reason``, ``usage``), plain or as SSE chunks ending
with ``data: [DONE]``.

* ``prompt``: a string or an array of strings (up to ``MAX_PROMPTS``; each is its
  own call, ``choices[].index`` = prompt position * ``n`` + choice).  Token-id
  prompts are refused: the models behind a route do not share a tokenizer.
* ``max_tokens``, ``temperature``, ``top_p``, ``n``, ``stop``, ``presence_penalty``,
  ``frequency_penalty``, ``logit_bias``, ``seed``, ``user`` ...: passed on as chat
  parameters.  Without ``max_tokens`` the route's default applies (not OpenAI's 16).
* ``echo``: the prompt is put in front of the text.  ``logprobs`` (0-5): asked of
  the chat model (``logprobs`` + ``top_logprobs``) and converted back to the legacy
  ``tokens`` / ``token_logprobs`` / ``top_logprobs`` / ``text_offset`` form;
  ``echo`` with ``logprobs`` would need the prompt's log probabilities, which chat
  models do not give, so it is refused.  ``best_of`` other than ``n`` and a
  non-empty ``suffix`` have no chat equivalent and are refused (400).
* ``finish_reason``: ``length`` and ``content_filter`` as the chat model said,
  anything else (``tool_calls`` included) is ``stop``.

As on the chat endpoint, a stream falls back until its first chunk; a failure
after it becomes an ``{"error": ...}`` event and the stream ends without
``[DONE]``.  Headers are the first prompt's ``x-polyroute-*``; with several
prompts (plain calls) cost and attempts are their sums.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeGuard

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from polyroute.errors import PolyrouteError
from polyroute.providers.base import StreamChunk
from polyroute.router import Router
from polyroute.routing.streaming import RouterStream
from polyroute.server.errors import RequestError, error_body
from polyroute.server.http import (
    authorize,
    envelope_headers,
    gateway_of,
    json_response,
    read_json,
    require_str,
)
from polyroute.server.openai_api import cache_choice, product_type_of
from polyroute.types import Envelope

MAX_PROMPTS = 128
CONCURRENCY = 16  # prompts of one request in flight at once
MAX_N = 128
# Fields read here; everything else is a chat parameter.
OWN_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "stream",
        "stream_options",
        "metadata",
        "store",
        "echo",
        "logprobs",
        "best_of",
        "suffix",
    }
)


# ---------------------------------------------------------------- request


def _prompts(body: dict[str, Any]) -> list[str]:
    p = body.get("prompt")
    if isinstance(p, str):
        return [p]
    if isinstance(p, list) and p and all(isinstance(x, str) for x in p):
        if len(p) > MAX_PROMPTS:
            raise RequestError(f"at most {MAX_PROMPTS} prompts per request", param="prompt")
        return list(p)
    if isinstance(p, list) and p and all(isinstance(x, int | list) for x in p):
        raise RequestError(
            "token-id prompts are not supported (the models behind a route do not share a "
            "tokenizer): send the prompt as text",
            param="prompt",
        )
    raise RequestError("'prompt' must be a string or a non-empty array of strings", param="prompt")


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _params(body: dict[str, Any]) -> dict[str, Any]:
    params = {k: v for k, v in body.items() if k not in OWN_FIELDS and v is not None}
    t = params.get("temperature")
    if t is not None and (not isinstance(t, int | float) or isinstance(t, bool) or not 0 <= t <= 2):
        raise RequestError("temperature must be a number between 0 and 2", param="temperature")
    for f in ("max_tokens", "n"):
        v = params.get(f)
        if v is not None and (not _int(v) or v < 1):
            raise RequestError(f"{f} must be a positive integer", param=f)
    if (params.get("n") or 1) > MAX_N:
        raise RequestError(f"n must be at most {MAX_N}", param="n")
    stop = params.get("stop")
    if stop is not None and not (
        isinstance(stop, str)
        or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise RequestError("stop must be a string or an array of up to 4 strings", param="stop")

    echo = body.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise RequestError("echo must be a boolean", param="echo")
    logprobs = body.get("logprobs")
    if logprobs is not None:
        if not _int(logprobs) or not 0 <= logprobs <= 5:
            raise RequestError("logprobs must be an integer from 0 to 5", param="logprobs")
        if echo:
            raise RequestError(
                "echo with logprobs needs the prompt's log probabilities, which chat models do "
                "not return",
                param="echo",
            )
        params["logprobs"] = True
        if logprobs:
            params["top_logprobs"] = logprobs
    best_of = body.get("best_of")
    if best_of is not None and best_of != (params.get("n") or 1):
        raise RequestError(
            "best_of (server-side ranking of extra candidates) is not supported over chat "
            "models; leave it out or equal to n",
            param="best_of",
        )
    if body.get("suffix"):
        raise RequestError("suffix (insertion) is not supported over chat models", param="suffix")
    return params


# ---------------------------------------------------------------- response


def _finish(reason: Any) -> str:
    return reason if reason in ("length", "content_filter") else "stop"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some providers answer with text parts
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return ""


def legacy_logprobs(chat_logprobs: Any, offset: int = 0) -> dict[str, Any] | None:
    """Chat ``logprobs`` (``{"content": [{"token", "logprob", "top_logprobs"}]}``) in the
    legacy form; ``offset`` is where the first token starts in ``text``."""
    content = chat_logprobs.get("content") if isinstance(chat_logprobs, dict) else None
    if not isinstance(content, list):
        return None
    out: dict[str, list[Any]] = {
        "tokens": [],
        "token_logprobs": [],
        "top_logprobs": [],
        "text_offset": [],
    }
    pos = offset
    for t in content:
        if not isinstance(t, dict):
            continue
        token = str(t.get("token", ""))
        out["tokens"].append(token)
        out["token_logprobs"].append(float(t.get("logprob") or 0.0))
        tops = t.get("top_logprobs") or ()
        out["top_logprobs"].append(
            {str(x.get("token", "")): float(x.get("logprob") or 0.0) for x in tops if x}
        )
        out["text_offset"].append(pos)
        pos += len(token)
    return out


def _choices(env: Envelope, base: int, prompt: str, echo: bool) -> list[dict[str, Any]]:
    raw = env.raw or {}
    chat_choices = [c for c in raw.get("choices") or () if isinstance(c, dict)]
    if not chat_choices:  # no OpenAI-shaped answer kept: the envelope's own text
        chat_choices = [
            {"index": 0, "message": {"content": env.content}, "finish_reason": env.finish_reason}
        ]
    prefix = prompt if echo else ""
    out = []
    for pos, c in enumerate(chat_choices):
        i = c.get("index")
        text = _text((c.get("message") or {}).get("content"))
        out.append(
            {
                "text": prefix + text,
                "index": base + (i if _int(i) else pos),
                "logprobs": legacy_logprobs(c.get("logprobs"), len(prefix)),
                "finish_reason": _finish(c.get("finish_reason")),
            }
        )
    return out


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _merged_headers(envs: list[Envelope]) -> dict[str, str]:
    headers = envelope_headers(envs[0])
    if len(envs) > 1:
        each = [envelope_headers(e) for e in envs]
        headers["x-polyroute-cost"] = f"{sum(e.cost for e in envs):.8f}"
        headers["x-polyroute-attempts"] = str(sum(int(h["x-polyroute-attempts"]) for h in each))
        if not all(e.cache_hit for e in envs):
            headers["x-polyroute-cache"] = "miss"
            headers.pop("x-polyroute-saved-cost", None)
    return headers


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


# ---------------------------------------------------------------- endpoint


async def completions(request: Request) -> Response:
    labels = authorize(request)
    body = await read_json(request)
    model = require_str(body, "model")
    prompts = _prompts(body)
    params = _params(body)
    echo = body.get("echo") is True
    router = gateway_of(request).router
    product_type = product_type_of(request, body)
    if body.get("stream"):
        if body.get("best_of") not in (None, 1):
            raise RequestError("best_of cannot be streamed", param="best_of")
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        return await _stream(
            router, model, prompts, params, echo, include_usage, product_type, labels
        )

    cache = cache_choice(request)
    envs = await _complete_all(router, model, prompts, params, product_type, labels, cache)
    n = params.get("n") or 1
    choices: list[dict[str, Any]] = []
    for p, (prompt, env) in enumerate(zip(prompts, envs, strict=True)):
        choices += _choices(env, p * n, prompt, echo)
    raw0 = envs[0].raw or {}
    out: dict[str, Any] = {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": raw0.get("model") or envs[0].model,
        "choices": choices,
        "usage": _usage(
            sum(e.usage.prompt_tokens for e in envs), sum(e.usage.completion_tokens for e in envs)
        ),
    }
    if isinstance(raw0.get("system_fingerprint"), str):
        out["system_fingerprint"] = raw0["system_fingerprint"]
    return json_response(out, headers=_merged_headers(envs))


async def _complete_all(
    router: Router,
    model: str,
    prompts: list[str],
    params: dict[str, Any],
    product_type: str | None,
    labels: Mapping[str, str],
    cache: bool | None,
) -> list[Envelope]:
    async def one(prompt: str) -> Envelope:
        return await router.complete(
            model,
            [{"role": "user", "content": prompt}],
            product_type=product_type,
            labels=labels,
            cache=cache,
            **params,
        )

    if len(prompts) == 1:
        return [await one(prompts[0])]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def gated(prompt: str) -> Envelope:
        async with gate:
            return await one(prompt)

    tasks = [asyncio.ensure_future(gated(p)) for p in prompts]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:  # one prompt failed: the answer is an error, stop the others
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _ChunkWriter:
    """Chat stream chunks as ``text_completion`` chunks of one completion id."""

    def __init__(self, model: str) -> None:
        self.id = f"cmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.offsets: dict[int, int] = {}  # choice index -> characters sent (text_offset)

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return _sse(
            {
                "id": self.id,
                "object": "text_completion",
                "created": self.created,
                "model": self.model,
                "choices": choices,
                **extra,
            }
        )

    def text(self, index: int, text: str) -> dict[str, Any]:
        self.offsets[index] = self.offsets.get(index, 0) + len(text)
        return {"text": text, "index": index, "logprobs": None, "finish_reason": None}

    def feed(self, raw: Mapping[str, Any] | None, base: int) -> bytes:
        out: list[dict[str, Any]] = []
        for pos, c in enumerate((raw or {}).get("choices") or ()):
            if not isinstance(c, dict):
                continue
            i = c.get("index")
            index = base + (i if _int(i) else pos)
            text = _text((c.get("delta") or {}).get("content"))
            reason = c.get("finish_reason")
            lp = legacy_logprobs(c.get("logprobs"), self.offsets.get(index, 0))
            if not text and not reason and not lp:
                continue  # e.g. the opening role-only chunk
            choice = self.text(index, text)
            choice["logprobs"] = lp
            choice["finish_reason"] = _finish(reason) if reason else None
            out.append(choice)
        return self.chunk(out) if out else b""


async def _stream(
    router: Router,
    model: str,
    prompts: list[str],
    params: dict[str, Any],
    echo: bool,
    include_usage: bool,
    product_type: str | None,
    labels: Mapping[str, str],
) -> Response:
    def open_stream(prompt: str) -> RouterStream:
        msgs = [{"role": "user", "content": prompt}]
        return router.stream(model, msgs, product_type=product_type, labels=labels, **params)

    stream = open_stream(prompts[0])
    first = await stream.start()  # fallback happens here; errors become a JSON answer
    assert stream.envelope is not None
    headers = envelope_headers(stream.envelope, streaming=True)
    writer = _ChunkWriter((first.raw or {}).get("model") or stream.envelope.model)
    n = params.get("n") or 1

    async def events() -> AsyncIterator[bytes]:
        current = stream
        chunk: StreamChunk | None = first
        prompt_tokens = completion_tokens = 0
        try:
            for p, prompt in enumerate(prompts):
                if p:
                    current = open_stream(prompt)
                    chunk = await current.start()
                if echo:
                    yield writer.chunk([writer.text(p * n + i, prompt) for i in range(n)])
                while chunk is not None:
                    out = writer.feed(chunk.raw, p * n)
                    if out:
                        yield out
                    chunk = await anext(aiter(current), None)
                if current.envelope is not None:
                    prompt_tokens += current.envelope.usage.prompt_tokens
                    completion_tokens += current.envelope.usage.completion_tokens
        except PolyrouteError as exc:
            yield _sse(error_body(exc))
            return
        if include_usage:
            yield writer.chunk([], usage=_usage(prompt_tokens, completion_tokens))
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
