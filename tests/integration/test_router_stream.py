"""Streaming through routes: fallback before the first chunk, errors after it."""

from __future__ import annotations

import pytest
from aiohttp import web

from polyroute import InvalidResponseError, ProviderError, Router
from polyroute.providers.base import StreamChunk
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import make_router
from tests.spec import validate_against_spec

pytestmark = pytest.mark.asyncio


async def _collect(stream: object) -> list[StreamChunk]:
    return [c async for c in stream]  # type: ignore[attr-defined]


async def test_openai_stream_assembles_and_prices(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    s = router.stream("a", "stream please")
    chunks = await _collect(s)
    text = "".join(c.delta for c in chunks)
    assert s.envelope is not None
    assert s.envelope.content == text and "model-a" in text
    assert s.envelope.finish_reason == "stop"
    u = s.envelope.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0  # from stream_options.include_usage
    assert s.envelope.cost == pytest.approx((u.prompt_tokens + 2 * u.completion_tokens) / 1e6)
    body = fake.requests_to("/v1/chat/completions")[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    for c in chunks:
        validate_against_spec(c.raw, "CreateChatCompletionStreamResponse")
    await router.aclose()


async def test_stream_falls_back_before_first_chunk(fake: FakeProviderThread) -> None:
    router, clock = make_router(fake)
    fake.script("model-a", [{"kind": "status", "status": 503}] * 3)
    s = router.stream("ab", "hi")
    chunks = await _collect(s)
    assert s.model == "b" and "model-b" in "".join(c.delta for c in chunks)
    assert [(a.model, a.outcome) for a in s.envelope.attempts] == [  # type: ignore[union-attr]
        ("a", "error"),
        ("b", "success"),
    ]
    assert len(clock.sleeps) == 2
    await router.aclose()


async def test_stream_cut_after_first_chunk_is_an_error_not_a_clean_end(
    fake: FakeProviderThread,
) -> None:
    router, _ = make_router(fake)
    fake.script("model-a", [{"kind": "stream_cut", "after_chunks": 2}])
    s = router.stream("ab", "hi", stream_recovery="off")
    got: list[str] = []
    with pytest.raises(ProviderError):
        async for c in s:
            got.append(c.delta)
    assert got  # the caller saw the beginning, then an error: never a silent end
    assert s.model == "a"
    assert [r.body["model"] for r in fake.requests_to("/v1/chat/completions")] == ["model-a"]
    await router.aclose()


async def test_anthropic_stream_and_error_event(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    s = router.stream("c1", "hi")
    chunks = await _collect(s)
    assert "".join(c.delta for c in chunks) == s.envelope.content  # type: ignore[union-attr]
    assert s.envelope.usage.completion_tokens > 0  # type: ignore[union-attr]
    for c in chunks:
        validate_against_spec(c.raw, "CreateChatCompletionStreamResponse")

    fake.script("claude-c1", [{"kind": "stream_error_event", "after_chunks": 1}])
    s = router.stream("c1", "hi")
    with pytest.raises(ProviderError):
        await _collect(s)
    await router.aclose()


async def _truncated_sse(request: web.Request) -> web.StreamResponse:
    """An upstream that ends the body cleanly but without finish_reason / [DONE]."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    chunk = (
        b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"half an ans"},"finish_reason":null}]}\n\n'
    )
    await resp.write(chunk)
    await resp.write_eof()
    return resp


async def test_stream_without_terminal_event_raises() -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _truncated_sse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    cfg = {
        "providers": {
            "trunc": {
                "type": "openai-compatible",
                "base_url": f"http://127.0.0.1:{port}/v1",
                "api_key_env": "TRUNC_KEY",
            }
        }
    }
    router = Router.from_config(cfg, environ={"TRUNC_KEY": "k"})
    s = router.stream("trunc/m", "hi")
    with pytest.raises(InvalidResponseError, match="terminal event"):
        await _collect(s)
    await router.aclose()
    await runner.cleanup()


async def test_request_bodies_match_the_openai_spec(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    await router.complete(
        "a",
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        temperature=0.2,
        max_tokens=50,
        stop=["\n\n"],
        response_format={"type": "json_object"},
        tools=[
            {
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
            }
        ],
    )
    await _collect(router.stream("a", "hi"))
    bodies = [r.body for r in fake.requests_to("/v1/chat/completions")]
    assert len(bodies) == 2
    for b in bodies:
        validate_against_spec(b, "CreateChatCompletionRequest")
    env = await router.complete("a", "hi")
    validate_against_spec(env.raw, "CreateChatCompletionResponse")
    env = await router.complete("c1", "hi")  # Anthropic answer, converted
    validate_against_spec(env.raw, "CreateChatCompletionResponse")
    await router.aclose()
