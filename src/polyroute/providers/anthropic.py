"""Anthropic wire protocol: the Messages API, plain and SSE.

Requests arrive in OpenAI shape and answers leave in OpenAI shape; the
translation lives in ``anthropic_convert`` so this module is only transport:
URL, headers, status and error mapping, and the stream's terminal-event check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from polyroute import errors as E
from polyroute.providers.anthropic_convert import (
    ConversionError,
    StreamConverter,
    json_tool_name,
    to_chat_completion,
    to_messages_body,
)
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
from polyroute.providers.classify import (
    endpoint_error,
    malformed,
    raise_for_status,
    request_id_from,
)
from polyroute.providers.http import client_timeout, transport_errors
from polyroute.providers.openai import parse_chat_completion
from polyroute.providers.sse import iter_sse
from polyroute.types import Usage

if TYPE_CHECKING:  # aiohttp loads when the first call is made, not at import
    import aiohttp

API_VERSION = "2023-06-01"

# The HTTP status Anthropic documents for each error type.  An ``error`` event
# inside a 200 stream is classified as if it had come with that status, so a
# mid-stream overload is an OverloadedError with status 529, retried like one.
ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def messages_url(endpoint: Endpoint) -> str:
    base = endpoint.base_url.rstrip("/")
    # base_url is the API root, but "https://api.anthropic.com/v1" is a common
    # spelling (the OpenAI presets end in /v1), so accept it too.
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


def _headers(
    endpoint: Endpoint, accept: str, forwarded: tuple[tuple[str, str], ...] = ()
) -> dict[str, str]:
    h = {"content-type": "application/json", "accept": accept, "anthropic-version": API_VERSION}
    h.update(forwarded)  # the client's anthropic-version / anthropic-beta (native requests)
    if endpoint.api_key is not None:
        h["x-api-key"] = endpoint.api_key.get()
    h.update(endpoint.headers)
    return h


def _native(request: ChatRequest) -> bool:
    """The request carries an Anthropic body to forward as sent."""
    return request.native is not None and request.native_wire == "anthropic"


def _body(endpoint: Endpoint, request: ChatRequest, stream: bool) -> bytes:
    if _native(request):
        assert request.native is not None
        # Forwarded as the client sent it: every Anthropic feature (thinking, prompt
        # caching, documents, server tools, citations) works without polyroute knowing it.
        body = {**request.native, "model": request.model}
        body.pop("stream", None)
        if stream:
            body["stream"] = True
        cap = request.params.get("max_tokens")
        if isinstance(cap, int) and isinstance(body.get("max_tokens"), int):
            body["max_tokens"] = min(body["max_tokens"], cap)  # a tier's ceiling still holds
        return orjson.dumps(body)
    try:
        return orjson.dumps(to_messages_body(request, stream))
    except ConversionError as exc:
        raise E.BadRequestError(str(exc), provider=endpoint.provider, model=request.model) from exc


def _event_error(
    endpoint: Endpoint, model: str, data: dict[str, Any], headers: Mapping[str, str]
) -> E.ProviderError:
    err = data.get("error")
    typ = err.get("type") if isinstance(err, dict) else None
    status = ERROR_TYPE_STATUS.get(typ or "", 500)  # unknown: a server-side failure
    return endpoint_error(endpoint, model, status, orjson.dumps(data), headers)


def _sse_bytes(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


def _stream_chunk(chunk: dict[str, Any], rid: str | None) -> StreamChunk:
    choice = chunk["choices"][0]
    usage = chunk.get("usage")
    return StreamChunk(
        delta=choice["delta"].get("content") or "",
        finish_reason=choice["finish_reason"],
        usage=Usage.from_openai(usage) if usage else None,
        request_id=rid,
        raw=chunk,
    )


class AnthropicAdapter:
    async def chat(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ChatRequest
    ) -> ChatResponse:
        payload = _body(endpoint, request, stream=False)
        with transport_errors(endpoint.provider, request.model, request.timeout):
            async with session.post(
                messages_url(endpoint),
                data=payload,
                headers=_headers(endpoint, "application/json", request.native_headers),
                timeout=client_timeout(request.timeout, first_chunk=request.first_chunk_timeout),
            ) as resp:
                await raise_for_status(resp, endpoint, request.model)
                rid = request_id_from(resp.headers)
                headers = resp.headers
                body = await resp.read()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise malformed(endpoint, request.model, "answer is not valid JSON", rid) from exc
        if not isinstance(data, dict):
            raise malformed(endpoint, request.model, "answer is not a JSON object", rid)
        if data.get("type") == "error":
            raise _event_error(endpoint, request.model, data, headers)
        if data.get("type") != "message" or not isinstance(data.get("content"), list):
            raise malformed(endpoint, request.model, "answer is not a message with content", rid)
        json_tool = None if _native(request) else json_tool_name(request.params)
        parsed = parse_chat_completion(
            to_chat_completion(data, request.model, json_tool=json_tool),
            endpoint,
            request.model,
            rid,
        )
        if _native(request):
            parsed.native = data
        return parsed

    async def stream(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ChatRequest
    ) -> AsyncIterator[StreamChunk]:
        payload = _body(endpoint, request, stream=True)
        json_tool = None if _native(request) else json_tool_name(request.params)
        converter = StreamConverter(request.model, json_tool=json_tool)
        with transport_errors(endpoint.provider, request.model, request.timeout):
            async with session.post(
                messages_url(endpoint),
                data=payload,
                headers=_headers(endpoint, "text/event-stream", request.native_headers),
                timeout=client_timeout(request.timeout, streaming=True),
            ) as resp:
                await raise_for_status(resp, endpoint, request.model)
                rid = request_id_from(resp.headers)
                native = _native(request)
                skipped = 0
                async for ev in iter_sse(resp):
                    if not ev.data:
                        continue
                    try:
                        data = orjson.loads(ev.data)
                    except orjson.JSONDecodeError:
                        skipped += 1  # one bad event in a good stream: skip it, say so
                        continue
                    if not isinstance(data, dict):
                        skipped += 1
                        continue
                    if ev.event == "error" or data.get("type") == "error":
                        raise _event_error(endpoint, request.model, data, resp.headers)
                    chunk = converter.feed(data)
                    if chunk is not None or native:
                        out = _stream_chunk(chunk, rid) if chunk else StreamChunk(request_id=rid)
                        out.skipped_events, skipped = skipped, 0
                        if native:  # relayed as it came; the OpenAI form is for bookkeeping
                            out.native = _sse_bytes(ev.event, ev.data)
                        yield out
                    if converter.done:
                        return
                if converter.stopped:
                    return  # complete after message_delta.stop_reason, even without message_stop
        # The upstream closed with no stop_reason: a truncated answer must not look complete.
        raise E.InvalidResponseError(
            "stream ended before its terminal event (no message_delta stop_reason)",
            provider=endpoint.provider,
            model=request.model,
            request_id=rid,
        )

    async def image(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: ImageRequest
    ) -> ImageResponse:
        raise E.BadRequestError(
            "Anthropic does not generate images; route image work to an image model",
            provider=endpoint.provider,
            model=request.model,
        )

    async def embed(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request: EmbeddingRequest
    ) -> EmbeddingResponse:
        # The model's fault, not the request's: another model in the pool can embed.
        raise E.ModelNotFoundError(
            "Anthropic's API has no embeddings; route embedding work to an embedding model",
            provider=endpoint.provider,
            model=request.model,
        )
