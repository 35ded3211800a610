"""AnthropicAdapter over real HTTP against a small Messages API server on 127.0.0.1.

The server below plays Anthropic closely enough for the adapter: the request's
``model`` picks the scenario (success, 529, prompt too long, a stream that stops
early, an ``error`` event mid-stream, ...).  It records every request so tests
can check what went on the wire.
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from polyroute import errors as E
from polyroute.providers.anthropic import AnthropicAdapter
from polyroute.providers.base import ChatRequest, Endpoint, ImageRequest, Secret, StreamChunk

KEY = "sk-ant-test-0123456789-SECRET"
REQUEST_ID = "req_011CTest"
TOO_LONG = "prompt is too long: 210000 tokens > 200000 maximum"


def _message(model: str) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello from Claude."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_read_input_tokens": 3, "output_tokens": 5},
    }


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _stream_events(model: str) -> list[tuple[str, dict[str, Any]]]:
    msg = {**_message(model), "content": [], "stop_reason": None}
    msg["usage"] = {"input_tokens": 12, "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"message": msg}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("ping", {}),
    ]
    for piece in ("Hello", " from", " Claude."):
        delta = {"type": "text_delta", "text": piece}
        events.append(("content_block_delta", {"index": 0, "delta": delta}))
    events += [
        ("content_block_stop", {"index": 0}),
        ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}),
        ("message_stop", {}),
    ]
    return [(name, {"type": name, **data}) for name, data in events]


class FakeAnthropic:
    """The server's state: what it received.  Scenarios are chosen by model name."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append((request.path, headers, body))
        rid = {"request-id": REQUEST_ID}
        key = headers.get("x-api-key")
        model = body["model"]
        if not key:
            err = _error("authentication_error", "x-api-key header is required")
            return web.json_response(err, status=401, headers=rid)
        if model == "echo-key":  # a provider careless enough to quote the key back
            err = _error("authentication_error", f"invalid x-api-key {key}")
            return web.json_response(err, status=401, headers=rid)
        if model == "overloaded":
            return web.json_response(
                _error("overloaded_error", "Overloaded"), status=529, headers=rid
            )
        if model == "too-long":
            err = _error("invalid_request_error", TOO_LONG)
            return web.json_response(err, status=400, headers=rid)
        if not body.get("stream"):
            return web.json_response(_message(model), headers=rid)
        return await self._stream(request, model, rid)

    async def _stream(
        self, request: web.Request, model: str, rid: dict[str, str]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", **rid})
        await resp.prepare(request)
        for n, (name, data) in enumerate(_stream_events(model)):
            if n == 4 and model == "stream-error":
                err = _error("overloaded_error", "Overloaded")
                await resp.write(b"event: error\ndata: " + orjson.dumps(err) + b"\n\n")
                break
            if n == 5 and model == "truncated":  # the body ends cleanly, message_stop never came
                break
            if n == 5 and model == "dropped":  # the connection goes away mid-body
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n")
        await resp.write_eof()
        return resp


@pytest_asyncio.fixture(scope="module")
async def server() -> AsyncIterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def endpoint(base_url: str, key: str | None = KEY) -> Endpoint:
    return Endpoint(
        provider="anthropic",
        wire="anthropic",
        base_url=base_url,
        api_key=Secret(key) if key is not None else None,
        headers=(("anthropic-beta", "test-beta"),),
    )


def chat(model: str, **params: Any) -> ChatRequest:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    return ChatRequest(model=model, messages=messages, params=params, timeout=5)


async def collect(
    session: aiohttp.ClientSession, ep: Endpoint, request: ChatRequest, into: list[StreamChunk]
) -> None:
    async for chunk in AnthropicAdapter().stream(session, ep, request):
        into.append(chunk)


def assert_no_key(exc: BaseException) -> None:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    assert all(KEY not in t for t in texts)


async def test_chat_returns_content_usage_and_request_id(server, session) -> None:
    fake, base = server
    resp = await AnthropicAdapter().chat(session, endpoint(base), chat("claude-ok", max_tokens=50))
    assert resp.content == "Hello from Claude."
    assert resp.finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (15, 5)  # cache read counted
    assert resp.request_id == REQUEST_ID
    assert resp.raw is not None
    assert resp.raw["object"] == "chat.completion"
    assert resp.raw["choices"][0]["message"]["content"] == "Hello from Claude."

    path, headers, body = fake.requests[-1]
    assert path == "/v1/messages"
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert headers["anthropic-beta"] == "test-beta"
    assert "authorization" not in headers
    assert body == {
        "model": "claude-ok",
        "max_tokens": 50,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }


async def test_base_url_may_end_in_v1(server, session) -> None:
    fake, base = server
    resp = await AnthropicAdapter().chat(session, endpoint(base + "/v1/"), chat("claude-ok"))
    assert resp.content == "Hello from Claude."
    assert fake.requests[-1][0] == "/v1/messages"


async def test_stream_assembles_text_finish_and_usage(server, session) -> None:
    fake, base = server
    chunks: list[StreamChunk] = []
    await collect(session, endpoint(base), chat("claude-ok"), chunks)
    assert "".join(c.delta for c in chunks) == "Hello from Claude."
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 5)
    assert all(c.request_id == REQUEST_ID for c in chunks)
    assert all(c.raw and c.raw["object"] == "chat.completion.chunk" for c in chunks)
    _, headers, body = fake.requests[-1]
    assert body["stream"] is True
    assert headers["accept"] == "text/event-stream"


async def test_529_is_a_retryable_overloaded_error(server, session) -> None:
    _, base = server
    with pytest.raises(E.OverloadedError) as info:
        await AnthropicAdapter().chat(session, endpoint(base), chat("overloaded"))
    exc = info.value
    assert exc.retryable is True
    assert (exc.status, exc.provider, exc.model, exc.request_id) == (
        529,
        "anthropic",
        "overloaded",
        REQUEST_ID,
    )
    assert_no_key(exc)


async def test_prompt_too_long_is_context_window_exceeded(server, session) -> None:
    _, base = server
    with pytest.raises(E.ContextWindowExceededError) as info:
        await AnthropicAdapter().chat(session, endpoint(base), chat("too-long"))
    assert info.value.retryable is False
    assert info.value.status == 400
    assert "prompt is too long" in str(info.value)


async def test_error_event_mid_stream_raises_overloaded(server, session) -> None:
    _, base = server
    chunks: list[StreamChunk] = []
    with pytest.raises(E.OverloadedError) as info:
        await collect(session, endpoint(base), chat("stream-error"), chunks)
    assert info.value.retryable is True
    assert info.value.request_id == REQUEST_ID
    assert "".join(c.delta for c in chunks) == "Hello"
    assert_no_key(info.value)


async def test_stream_without_a_stop_reason_is_invalid_not_complete(server, session) -> None:
    _, base = server
    chunks: list[StreamChunk] = []
    with pytest.raises(E.InvalidResponseError, match="terminal event") as info:
        await collect(session, endpoint(base), chat("truncated"), chunks)
    assert info.value.retryable is True
    assert info.value.request_id == REQUEST_ID
    assert "".join(c.delta for c in chunks) == "Hello from"
    assert all(c.finish_reason is None for c in chunks)
    assert_no_key(info.value)


async def test_connection_dropped_mid_stream_is_a_connection_error(server, session) -> None:
    _, base = server
    chunks: list[StreamChunk] = []
    with pytest.raises(E.ProviderConnectionError) as info:
        await collect(session, endpoint(base), chat("dropped"), chunks)
    assert info.value.retryable is True
    assert all(c.finish_reason is None for c in chunks)
    assert_no_key(info.value)


async def test_api_key_never_appears_in_errors(server, session) -> None:
    _, base = server
    with pytest.raises(E.AuthError) as info:
        await AnthropicAdapter().chat(session, endpoint(base), chat("echo-key"))
    assert "invalid x-api-key" in str(info.value)
    assert_no_key(info.value)
    chunks: list[StreamChunk] = []
    with pytest.raises(E.AuthError) as info:
        await collect(session, endpoint(base), chat("echo-key"), chunks)
    assert_no_key(info.value)
    assert "Secret('**********')" in repr(endpoint(base))


async def test_missing_key_sends_no_key_header_and_gets_auth_error(server, session) -> None:
    fake, base = server
    with pytest.raises(E.AuthError) as info:
        await AnthropicAdapter().chat(session, endpoint(base, key=None), chat("claude-ok"))
    assert info.value.status == 401
    assert "x-api-key" not in fake.requests[-1][1]


async def test_unconvertible_request_fails_before_sending(server, session) -> None:
    fake, base = server
    sent = len(fake.requests)
    with pytest.raises(E.BadRequestError, match="n must be 1") as info:
        await AnthropicAdapter().chat(session, endpoint(base), chat("claude-ok", n=2))
    assert (info.value.provider, info.value.model, info.value.retryable) == (
        "anthropic",
        "claude-ok",
        False,
    )
    assert len(fake.requests) == sent


async def test_image_generation_is_a_bad_request(server, session) -> None:
    _, base = server
    request = ImageRequest(model="claude-ok", prompt="a cat")
    with pytest.raises(E.BadRequestError, match="does not generate images") as info:
        await AnthropicAdapter().image(session, endpoint(base), request)
    assert (info.value.provider, info.value.model) == ("anthropic", "claude-ok")


# ---------------------------------------------------------------- the shared fake provider
# The same adapter against the project's fake provider (tests/fakeprovider, fixture
# ``fake`` from tests/conftest.py), driven by its scripted faults.  Skipped where the
# fixture is not defined.


@pytest.fixture
def shared(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("fake")
    except pytest.FixtureLookupError:
        pytest.skip("the shared fake provider fixture `fake` is not defined")


def fake_endpoint(fake: Any) -> Endpoint:
    return Endpoint(
        provider="anthropic",
        wire="anthropic",
        base_url=fake.anthropic_base_url,
        api_key=Secret(KEY),
    )


async def test_fake_plain_call(shared, session) -> None:
    shared.script("claude-fake-plain", [{"kind": "content", "content": "scripted answer"}])
    resp = await AnthropicAdapter().chat(session, fake_endpoint(shared), chat("claude-fake-plain"))
    assert resp.content == "scripted answer"
    assert resp.finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens == 2
    assert resp.request_id and resp.request_id.startswith("req_")
    sent = shared.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.body["system"] == "Be brief."


async def test_fake_stream(shared, session) -> None:
    shared.script("claude-fake-stream", [{"kind": "content", "content": "one two three four"}])
    chunks: list[StreamChunk] = []
    await collect(session, fake_endpoint(shared), chat("claude-fake-stream"), chunks)
    assert "".join(c.delta for c in chunks) == "one two three four"
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


async def test_fake_tool_call(shared, session) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    faults = [{"kind": "content", "tool_calls": [{"name": "lookup", "arguments": {"q": "x"}}]}]
    shared.script("claude-fake-tools", faults * 2)
    request = chat("claude-fake-tools", tools=[tool])
    resp = await AnthropicAdapter().chat(session, fake_endpoint(shared), request)
    assert resp.finish_reason == "tool_calls"
    assert resp.tool_calls is not None
    assert resp.tool_calls[0]["function"]["name"] == "lookup"
    assert orjson.loads(resp.tool_calls[0]["function"]["arguments"]) == {"q": "x"}
    chunks: list[StreamChunk] = []
    await collect(session, fake_endpoint(shared), request, chunks)
    parts = [
        call["function"].get("arguments", "")
        for c in chunks
        for call in (c.raw or {})["choices"][0]["delta"].get("tool_calls", ())
    ]
    assert orjson.loads("".join(parts)) == {"q": "x"}
    assert chunks[-1].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("fault", "stream", "error"),
    [
        ({"kind": "status", "status": 529}, False, E.OverloadedError),
        ({"kind": "status", "status": 529}, True, E.OverloadedError),
        ({"kind": "context_length"}, False, E.ContextWindowExceededError),
        ({"kind": "stream_error_event", "after_chunks": 1}, True, E.OverloadedError),
        # The fake drops the TCP connection mid-body: a transport failure, which the
        # shared transport_errors maps to ProviderConnectionError (retryable, never
        # a clean end).  A body that ends cleanly without message_stop is
        # InvalidResponseError: see test_stream_without_message_stop_is_invalid_not_complete.
        ({"kind": "stream_cut", "after_chunks": 2}, True, E.ProviderConnectionError),
    ],
)
async def test_fake_faults(
    shared, session, fault: dict[str, Any], stream: bool, error: type[E.ProviderError]
) -> None:
    model = f"claude-fake-{fault['kind']}"
    shared.script(model, [{**fault, "content": "alpha beta gamma delta"}])
    chunks: list[StreamChunk] = []
    with pytest.raises(error) as info:
        if stream:
            await collect(session, fake_endpoint(shared), chat(model), chunks)
        else:
            await AnthropicAdapter().chat(session, fake_endpoint(shared), chat(model))
    assert all(c.finish_reason is None for c in chunks)
    assert info.value.retryable is (error is not E.ContextWindowExceededError)
    assert_no_key(info.value)
