"""OpenAI wire protocol: chat completions (plain and SSE) and image generation.

Serves OpenAI and every OpenAI-compatible preset (Gemini's compatibility
endpoint, Groq, Together, Ollama, vLLM, ...): those differ only in base URL
and key, which the ``Endpoint`` carries.  The request body is built once and
the answer is relayed as parsed; only usage, content and finish_reason are read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from polyroute import errors as E
from polyroute.providers import openai_responses
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
from polyroute.providers.classify import malformed, raise_for_status, request_id_from
from polyroute.providers.http import client_timeout, transport_errors
from polyroute.providers.sse import iter_sse
from polyroute.types import Usage

if TYPE_CHECKING:  # aiohttp loads when the first call is made, not at import
    import aiohttp


def _headers(endpoint: Endpoint) -> dict[str, str]:
    h = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.api_key is not None:
        h["Authorization"] = "Bearer " + endpoint.api_key.get()
    h.update(endpoint.headers)
    return h


def build_chat_body(request: ChatRequest, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "messages": request.messages}
    for k, v in request.params.items():
        if v is not None:
            body[k] = v
    if stream:
        body["stream"] = True
        opts = dict(body.get("stream_options") or {})
        opts["include_usage"] = True
        body["stream_options"] = opts
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    return body


def _usage(data: Any) -> Usage:
    return Usage.from_openai(data)


def parse_chat_completion(
    data: Any, endpoint: Endpoint, model: str, rid: str | None
) -> ChatResponse:
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
    except (KeyError, IndexError, TypeError) as exc:
        raise malformed(endpoint, model, "answer has no choices[0].message", rid) from exc
    finish = choice.get("finish_reason")
    if finish == "content_filter" and not message.get("content"):
        raise E.ContentFilterError(
            "the provider's content filter stopped the answer",
            provider=endpoint.provider,
            model=model,
            request_id=rid,
        )
    return ChatResponse(
        content=message.get("content"),
        usage=_usage(data.get("usage")),
        finish_reason=finish,
        tool_calls=message.get("tool_calls") or None,
        request_id=rid,
        raw=data,
    )


def _responses_native(endpoint: Endpoint, request: ChatRequest) -> bool:
    """A Responses API body for a provider that serves the Responses API itself."""
    return request.native_wire == "responses" and endpoint.responses_api


class OpenAIAdapter:
    async def chat(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ChatRequest
    ) -> ChatResponse:
        if _responses_native(endpoint, request):
            return await openai_responses.chat(session, endpoint, request, _headers(endpoint))
        url = endpoint.base_url.rstrip("/") + "/chat/completions"
        payload = orjson.dumps(build_chat_body(request))
        with transport_errors(endpoint.provider, request.model, request.timeout):
            async with session.post(
                url,
                data=payload,
                headers=_headers(endpoint),
                timeout=client_timeout(request.timeout, first_chunk=request.first_chunk_timeout),
            ) as resp:
                await raise_for_status(resp, endpoint, request.model)
                rid = request_id_from(resp.headers)
                body = await resp.read()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise malformed(endpoint, request.model, "answer is not valid JSON", rid) from exc
        return parse_chat_completion(data, endpoint, request.model, rid)

    async def stream(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncIterator[StreamChunk]:
        if _responses_native(endpoint, request):
            async for chunk in openai_responses.stream(
                session, endpoint, request, _headers(endpoint)
            ):
                yield chunk
            return
        url = endpoint.base_url.rstrip("/") + "/chat/completions"
        payload = orjson.dumps(build_chat_body(request, stream=True))
        headers = _headers(endpoint)
        headers["Accept"] = "text/event-stream"
        with transport_errors(endpoint.provider, request.model, request.timeout):
            async with session.post(
                url,
                data=payload,
                headers=headers,
                timeout=client_timeout(request.timeout, streaming=True),
            ) as resp:
                await raise_for_status(resp, endpoint, request.model)
                rid = request_id_from(resp.headers)
                finished = False
                skipped = 0
                async for ev in iter_sse(resp):
                    if ev.data == "[DONE]":
                        if not finished:
                            break
                        return
                    try:
                        chunk = orjson.loads(ev.data)
                    except orjson.JSONDecodeError:
                        skipped += 1  # one bad event in a good stream: skip it, say so
                        continue
                    if not isinstance(chunk, dict):
                        skipped += 1
                        continue
                    if "error" in chunk:
                        err = chunk["error"] if isinstance(chunk["error"], dict) else {}
                        raise E.ServerError(
                            str(err.get("message") or "error event in stream"),
                            provider=endpoint.provider,
                            model=request.model,
                            request_id=rid,
                        )
                    out = StreamChunk(request_id=rid, raw=chunk, skipped_events=skipped)
                    skipped = 0
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        out.delta += delta.get("content") or ""
                        if choice.get("finish_reason"):
                            out.finish_reason = choice["finish_reason"]
                            finished = True
                    if chunk.get("usage"):
                        out.usage = _usage(chunk["usage"])
                    yield out
                if finished:
                    return  # complete after finish_reason, even without "data: [DONE]"
        # Reaching here means the upstream closed without finish_reason:
        # a truncated answer must not look complete.
        raise E.InvalidResponseError(
            "stream ended before its terminal event (no finish_reason)",
            provider=endpoint.provider,
            model=request.model,
            request_id=rid,
        )

    async def image(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ImageRequest
    ) -> ImageResponse:
        body: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
        body.update({k: v for k, v in request.params.items() if v is not None})
        data, rid = await _post_json(
            session, endpoint, "/images/generations", body, request.model, request.timeout
        )
        try:
            images = list(data["data"])
        except (KeyError, TypeError) as exc:
            raise malformed(endpoint, request.model, "image answer has no data[]", rid) from exc
        return ImageResponse(images=images, request_id=rid, raw=data)

    async def embed(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: EmbeddingRequest
    ) -> EmbeddingResponse:
        body: dict[str, Any] = {"model": request.model, "input": request.inputs}
        body.update({k: v for k, v in request.params.items() if v is not None})
        data, rid = await _post_json(
            session, endpoint, "/embeddings", body, request.model, request.timeout
        )
        try:
            rows = sorted(data["data"], key=lambda d: d.get("index", 0))
            vectors = [row["embedding"] for row in rows]
        except (KeyError, TypeError, AttributeError) as exc:
            raise malformed(endpoint, request.model, "embedding answer has no data[]", rid) from exc
        u = data.get("usage")
        usage = Usage(prompt_tokens=int(u.get("prompt_tokens") or 0) if isinstance(u, dict) else 0)
        return EmbeddingResponse(vectors, usage, request_id=rid, raw=data)


async def _post_json(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    path: str,
    body: dict[str, Any],
    model: str,
    timeout: float | None,
) -> tuple[dict[str, Any], str | None]:
    """POST a JSON body to ``base_url + path``; the answer's JSON object and request id."""
    url = endpoint.base_url.rstrip("/") + path
    with transport_errors(endpoint.provider, model, timeout):
        async with session.post(
            url,
            data=orjson.dumps(body),
            headers=_headers(endpoint),
            timeout=client_timeout(timeout),
        ) as resp:
            await raise_for_status(resp, endpoint, model)
            rid = request_id_from(resp.headers)
            raw = await resp.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise malformed(endpoint, model, "answer is not valid JSON", rid) from exc
    if not isinstance(data, dict):
        raise malformed(endpoint, model, "answer is not a JSON object", rid)
    return data, rid
