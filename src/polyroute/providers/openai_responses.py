"""OpenAI's Responses API, forwarded as the client sent it (model replaced).

Used when a ``/v1/responses`` request is served by a provider that speaks the
Responses API itself (``responses_api: true``: OpenAI): every feature — built-in
tools (web search, file search), reasoning, server-side conversation state —
works without polyroute knowing it.  Only what routing and usage need is read:
the text, function calls, usage, and the stream's terminal event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from polyroute import errors as E
from polyroute.providers.base import ChatRequest, ChatResponse, Endpoint, StreamChunk
from polyroute.providers.classify import malformed, raise_for_status, request_id_from
from polyroute.providers.http import client_timeout, transport_errors
from polyroute.providers.sse import iter_sse
from polyroute.types import Usage

if TYPE_CHECKING:
    import aiohttp

TERMINAL = ("response.completed", "response.incomplete")


def _body(request: ChatRequest, stream: bool) -> bytes:
    assert request.native is not None
    body = {**request.native, "model": request.model}
    body.pop("stream", None)
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def usage_of(response: Any) -> Usage:
    u = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(u, dict):
        return Usage()
    details = u.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return Usage(
        int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0), int(cached or 0)
    )


def _read_output(response: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    texts.append(part.get("text") or "")
        elif item.get("type") == "function_call":
            fn = {"name": item.get("name"), "arguments": item.get("arguments") or ""}
            calls.append({"id": item.get("call_id"), "type": "function", "function": fn})
    return "".join(texts), calls


def _finish(response: dict[str, Any]) -> str:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    _, calls = _read_output(response)
    return "tool_calls" if calls else "stop"


async def chat(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    request: ChatRequest,
    headers: dict[str, str],
) -> ChatResponse:
    url = endpoint.base_url.rstrip("/") + "/responses"
    with transport_errors(endpoint.provider, request.model, request.timeout):
        async with session.post(
            url,
            data=_body(request, stream=False),
            headers=headers,
            timeout=client_timeout(request.timeout, first_chunk=request.first_chunk_timeout),
        ) as resp:
            await raise_for_status(resp, endpoint, request.model)
            rid = request_id_from(resp.headers)
            raw = await resp.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise malformed(endpoint, request.model, "answer is not valid JSON", rid) from exc
    if not isinstance(data, dict) or data.get("object") != "response":
        raise malformed(endpoint, request.model, "answer is not a response object", rid)
    text, calls = _read_output(data)
    return ChatResponse(
        content=text or None,
        usage=usage_of(data),
        finish_reason=_finish(data),
        tool_calls=calls or None,
        request_id=rid,
        native=data,
    )


async def stream(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    request: ChatRequest,
    headers: dict[str, str],
) -> AsyncIterator[StreamChunk]:
    url = endpoint.base_url.rstrip("/") + "/responses"
    headers = {**headers, "Accept": "text/event-stream"}
    with transport_errors(endpoint.provider, request.model, request.timeout):
        async with session.post(
            url,
            data=_body(request, stream=True),
            headers=headers,
            timeout=client_timeout(request.timeout, streaming=True),
        ) as resp:
            await raise_for_status(resp, endpoint, request.model)
            rid = request_id_from(resp.headers)
            skipped = 0
            async for ev in iter_sse(resp):
                try:
                    data = orjson.loads(ev.data)
                except orjson.JSONDecodeError:
                    skipped += 1  # one bad event in a good stream: skip it, say so
                    continue
                if not isinstance(data, dict):
                    skipped += 1
                    continue
                kind = data.get("type") or ev.event
                if kind in ("error", "response.failed"):
                    err = data.get("error") or (data.get("response") or {}).get("error") or {}
                    raise E.ServerError(
                        str(err.get("message") or "error event in stream"),
                        provider=endpoint.provider,
                        model=request.model,
                        request_id=rid,
                    )
                out = StreamChunk(request_id=rid, skipped_events=skipped)
                skipped = 0
                out.native = f"event: {ev.event}\ndata: {ev.data}\n\n".encode()
                if kind == "response.output_text.delta":
                    out.delta = str(data.get("delta") or "")
                elif kind == "response.function_call_arguments.delta":
                    # Marks a tool call in progress: a cut here is not continued as text.
                    out.raw = {"choices": [{"index": 0, "delta": {"tool_calls": [{}]}}]}
                if kind in TERMINAL:
                    response = data.get("response") or {}
                    out.finish_reason = _finish(response)
                    out.usage = usage_of(response)
                    yield out
                    return
                yield out
    # The body ended with no response.completed: a truncated answer must not look complete.
    raise E.InvalidResponseError(
        "stream ended before its terminal event (no response.completed)",
        provider=endpoint.provider,
        model=request.model,
        request_id=rid,
    )
