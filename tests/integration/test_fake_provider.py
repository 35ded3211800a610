"""The fake provider speaks the real wire formats.

The official ``openai`` and ``anthropic`` SDKs work against it unchanged, scripted faults
surface as the SDKs' own exceptions, and the OpenAI payloads validate against the
published OpenAPI spec.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import pytest
from anthropic.types import ToolParam
from openai.types.chat import ChatCompletionFunctionToolParam

from tests.fakeprovider import (
    FakeProvider,
    FakeProviderThread,
    FaultError,
    count_tokens,
    start_fake_provider,
)
from tests.spec import SpecValidationError, validate_against_spec

QUESTION = "What is the capital of France?"
MESSAGES: list[Any] = [{"role": "user", "content": QUESTION}]
WEATHER_TOOL_OPENAI: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
WEATHER_TOOL_ANTHROPIC: ToolParam = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
OPENAI_AUTH = {"authorization": "Bearer sk-test"}
ANTHROPIC_AUTH = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


@pytest.fixture
async def oai(fake: FakeProviderThread) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def claude(fake: FakeProviderThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(
        base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    )
    yield client
    await client.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post_json(
    http: aiohttp.ClientSession, url: str, body: object, headers: dict[str, str]
) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def post_sse(
    http: aiohttp.ClientSession, url: str, body: object, headers: dict[str, str]
) -> list[tuple[str | None, str]]:
    """(event, data) pairs of a server-sent-event response."""
    async with http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        text = await resp.text()
    events: list[tuple[str | None, str]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event"), fields["data"]))
    return events


# --- (a) the openai SDK -------------------------------------------------------------------


async def test_openai_completion(fake: FakeProviderThread, oai: openai.AsyncOpenAI) -> None:
    raw = await oai.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    completion = raw.parse()

    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.model == "gpt-4o"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == f"fake reply from gpt-4o: {QUESTION}"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_tokens(QUESTION)
    assert completion.usage.completion_tokens == count_tokens(choice.message.content)
    assert completion.usage.total_tokens == 6 + completion.usage.completion_tokens

    [recorded] = fake.requests
    path, headers, body = recorded
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == "Bearer sk-test"
    assert body == {"model": "gpt-4o", "messages": MESSAGES}


async def test_openai_stream_with_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"fake reply from gpt-4o-mini: {QUESTION}"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == count_tokens(text)
    assert all(c.usage is None for c in chunks[:-1])


async def test_openai_stream_without_usage_has_no_usage_chunk(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.choices and c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_openai_images(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    result = await oai.images.generate(model="dall-e-3", prompt="a red fox", n=2)
    assert result.data is not None
    assert len(result.data) == 2
    assert result.data[0].revised_prompt == "a red fox"
    url = result.data[0].url
    assert url is not None
    assert url.startswith(f"{fake.base_url}/img/")
    async with http.get(url) as resp:
        assert resp.content_type == "image/png"
        assert (await resp.read()).startswith(b"\x89PNG")

    encoded = await oai.images.generate(prompt="a red fox", response_format="b64_json")
    assert encoded.data is not None
    assert base64.b64decode(encoded.data[0].b64_json or "").startswith(b"\x89PNG")


async def test_openai_scripted_tool_call(fake: FakeProviderThread, oai: openai.AsyncOpenAI) -> None:
    call = {"arguments": {"city": "Paris"}}  # no name: the request's first tool is used
    fake.script("gpt-4o", [{"kind": "content", "tool_calls": [call]}] * 2)

    completion = await oai.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL_OPENAI]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [tool_call] = choice.message.tool_calls or []
    assert tool_call.type == "function"
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}

    stream = await oai.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL_OPENAI], stream=True
    )
    names, arguments, finish = [], "", None
    async for chunk in stream:
        for delta_call in chunk.choices[0].delta.tool_calls or []:
            if delta_call.function and delta_call.function.name:
                names.append(delta_call.function.name)
            arguments += (delta_call.function and delta_call.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["get_weather"]
    assert json.loads(arguments) == {"city": "Paris"}
    assert finish == "tool_calls"


async def test_openai_json_mode_returns_scripted_content(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.script("gpt-4o", [{"kind": "content", "content": '{"capital": "Paris"}'}])
    scripted = await oai.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert json.loads(scripted.choices[0].message.content or "") == {"capital": "Paris"}

    unscripted = await oai.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert "reply" in json.loads(unscripted.choices[0].message.content or "")


# --- (b) the anthropic SDK ----------------------------------------------------------------


async def test_anthropic_message(
    fake: FakeProviderThread, claude: anthropic.AsyncAnthropic
) -> None:
    raw = await claude.messages.with_raw_response.create(
        model="claude-test", max_tokens=64, messages=MESSAGES, system="Be terse."
    )
    message = await raw.parse()  # async for anthropic, sync for openai

    assert raw.headers["request-id"].startswith("req_")
    assert message.id.startswith("msg_")
    assert message.stop_reason == "end_turn"
    [block] = message.content
    assert block.type == "text"
    assert block.text == f"fake reply from claude-test: {QUESTION}"
    assert message.usage.input_tokens == count_tokens(QUESTION) + count_tokens("Be terse.")
    assert message.usage.output_tokens == count_tokens(block.text)

    [(path, headers, body)] = fake.requests
    assert path == "/v1/messages"
    assert headers["anthropic-version"]
    assert body["max_tokens"] == 64


async def test_anthropic_stream(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    expected = f"fake reply from claude-haiku-4-5: {QUESTION}"
    assert len(pieces) == 3
    assert "".join(pieces) == expected
    assert final.content[0].type == "text"
    assert final.content[0].text == expected
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == count_tokens(QUESTION)
    assert final.usage.output_tokens == count_tokens(expected)


async def test_anthropic_stream_event_sequence(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    body = {"model": "claude-x", "max_tokens": 16, "messages": MESSAGES, "stream": True}
    events = await post_sse(http, f"{fake.base_url}/v1/messages", body, ANTHROPIC_AUTH)

    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(data) for _, data in events]
    assert [p["type"] for p in payloads] == names
    start = payloads[0]["message"]
    assert start["content"] == []
    assert start["usage"]["input_tokens"] == count_tokens(QUESTION)
    assert payloads[-2]["delta"]["stop_reason"] == "end_turn"


async def test_anthropic_scripted_tool_use(
    fake: FakeProviderThread, claude: anthropic.AsyncAnthropic
) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    fake.script("claude-x", [{"kind": "content", "content": "Checking.", "tool_calls": [call]}] * 2)

    message = await claude.messages.create(
        model="claude-x", max_tokens=64, messages=MESSAGES, tools=[WEATHER_TOOL_ANTHROPIC]
    )
    assert message.stop_reason == "tool_use"
    text, tool_use = message.content
    assert text.type == "text"
    assert text.text == "Checking."
    assert tool_use.type == "tool_use"
    assert (tool_use.name, tool_use.input) == ("get_weather", {"city": "Paris"})
    assert tool_use.id.startswith("toolu_")

    async with claude.messages.stream(
        model="claude-x", max_tokens=64, messages=MESSAGES, tools=[WEATHER_TOOL_ANTHROPIC]
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    streamed_tool_use = final.content[1]
    assert streamed_tool_use.type == "tool_use"
    assert streamed_tool_use.input == {"city": "Paris"}


# --- (c) scripted faults reach the SDKs as their own errors ---------------------------------


async def test_openai_rate_limit_with_retry_after(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.script("gpt-4o", [{"kind": "status", "status": 429, "retry_after": "2"}])

    with pytest.raises(openai.RateLimitError) as caught:
        await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    err = caught.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "2"
    assert err.response.headers["x-request-id"].startswith("req_")
    assert err.code == "rate_limit_exceeded"
    assert isinstance(err.body, dict)
    assert set(err.body) == {"message", "type", "param", "code"}

    # the queue is consumed: the next request succeeds
    completion = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert completion.choices[0].finish_reason == "stop"


async def test_anthropic_overloaded_529(
    fake: FakeProviderThread, claude: anthropic.AsyncAnthropic
) -> None:
    fake.script("claude-x", [{"kind": "status", "status": 529, "retry_after_ms": "250"}])

    with pytest.raises(anthropic.InternalServerError) as caught:
        await claude.messages.create(model="claude-x", max_tokens=8, messages=MESSAGES)
    err = caught.value
    assert isinstance(err, anthropic.OverloadedError)
    assert err.status_code == 529
    assert err.type == "overloaded_error"
    assert err.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert err.response.headers["retry-after-ms"] == "250"
    assert err.request_id is not None
    assert err.request_id.startswith("req_")


async def test_anthropic_rate_limit(
    fake: FakeProviderThread, claude: anthropic.AsyncAnthropic
) -> None:
    fake.script("claude-x", [{"kind": "status", "status": 429, "retry_after": "7"}])
    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude.messages.create(model="claude-x", max_tokens=8, messages=MESSAGES)
    assert caught.value.type == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "7"


async def test_context_length_errors_use_the_real_wording(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    fake.script("gpt-4o", [{"kind": "context_length"}])
    fake.script("claude-x", [{"kind": "context_length"}])

    with pytest.raises(openai.BadRequestError) as openai_err:
        await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert openai_err.value.code == "context_length_exceeded"
    assert openai_err.value.type == "invalid_request_error"
    assert "maximum context length is 128000 tokens" in openai_err.value.message

    with pytest.raises(anthropic.BadRequestError) as anthropic_err:
        await claude.messages.create(model="claude-x", max_tokens=8, messages=MESSAGES)
    assert anthropic_err.value.type == "invalid_request_error"
    assert anthropic_err.value.api_message == "prompt is too long: 210000 tokens > 200000 maximum"


async def test_malformed_body_is_a_decode_error(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    fake.script("gpt-4o", [{"kind": "malformed"}])
    fake.script("claude-x", [{"kind": "malformed"}])

    # Neither SDK wraps it: the stdlib's json.JSONDecodeError escapes.
    with pytest.raises(json.JSONDecodeError):
        await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with pytest.raises(json.JSONDecodeError):
        await claude.messages.create(model="claude-x", max_tokens=8, messages=MESSAGES)


async def test_content_filter(fake: FakeProviderThread, oai: openai.AsyncOpenAI) -> None:
    fake.script(
        "gpt-4o", [{"kind": "content_filter"}, {"kind": "content_filter", "mode": "finish_reason"}]
    )
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.code == "content_policy_violation"

    filtered = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert filtered.choices[0].finish_reason == "content_filter"


async def test_hang_times_out_and_is_cancelled_on_disconnect(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.script("gpt-4o", [{"kind": "hang", "seconds": 30}])
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await oai.with_options(timeout=0.2).chat.completions.create(
            model="gpt-4o", messages=MESSAGES
        )
    assert time.monotonic() - started < 2
    for _ in range(100):  # the server-side handler goes away with the connection
        if fake.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert fake.in_flight == 0


async def test_reset_is_a_connection_error(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    fake.script("gpt-4o", [{"kind": "reset"}])
    fake.script("claude-x", [{"kind": "reset", "rst": True}])
    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with pytest.raises(anthropic.APIConnectionError):
        await claude.messages.create(model="claude-x", max_tokens=8, messages=MESSAGES)


async def test_reset_seen_by_aiohttp_as_server_disconnected(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    fake.script("gpt-4o", [{"kind": "reset"}])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_json(
            http,
            f"{fake.openai_base_url}/chat/completions",
            {"model": "gpt-4o", "messages": MESSAGES},
            OPENAI_AUTH,
        )


async def test_openai_stream_cut(fake: FakeProviderThread, oai: openai.AsyncOpenAI) -> None:
    fake.script("gpt-4o", [{"kind": "stream_cut", "after_chunks": 1}])
    received: list[str] = []
    stream = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            assert chunk.choices[0].finish_reason is None
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["", "fake reply from gpt-4o:"]  # role chunk, then 1 content chunk


async def test_anthropic_stream_cut(
    fake: FakeProviderThread, claude: anthropic.AsyncAnthropic
) -> None:
    fake.script("claude-x", [{"kind": "stream_cut", "after_chunks": 2}])
    received: list[str] = []
    # Unlike openai, the anthropic SDK lets the transport error escape mid-stream.
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
        async with claude.messages.stream(model="claude-x", max_tokens=8, messages=MESSAGES) as s:
            async for text in s.text_stream:
                received.append(text)
    assert len(received) == 2


async def test_anthropic_stream_error_event(
    fake: FakeProviderThread, claude: anthropic.AsyncAnthropic
) -> None:
    fake.script("claude-x", [{"kind": "stream_error_event", "after_chunks": 1}])
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with claude.messages.stream(model="claude-x", max_tokens=8, messages=MESSAGES) as s:
            async for text in s.text_stream:
                received.append(text)
    assert len(received) == 1
    # The HTTP status was 200; the error type is only in the event body.
    assert caught.value.type == "overloaded_error"


async def test_delay_and_latency(fake: FakeProviderThread, oai: openai.AsyncOpenAI) -> None:
    fake.script("gpt-4o", [{"kind": "content", "content": "slow", "delay": 0.15}])
    fake.latency = 0.05
    started = time.monotonic()
    completion = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert time.monotonic() - started >= 0.2
    assert completion.choices[0].message.content == "slow"


async def test_faults_are_fifo_per_model(fake: FakeProviderThread, oai: openai.AsyncOpenAI) -> None:
    fake.script("gpt-4o", [{"kind": "status", "status": 500}, {"kind": "status", "status": 503}])
    fake.script("*", [{"kind": "status", "status": 502}])

    async def status_of(model: str) -> int:
        try:
            await oai.chat.completions.create(model=model, messages=MESSAGES)
        except openai.APIStatusError as err:
            return err.status_code
        return 200

    assert await status_of("gpt-4o") == 500
    assert await status_of("gpt-4o-mini") == 502  # "*" serves models without a queue
    assert await status_of("gpt-4o") == 503
    assert await status_of("gpt-4o") == 200
    assert await status_of("gpt-4o-mini") == 200
    assert fake.pending_faults() == {}


def test_bad_faults_are_rejected(fake: FakeProviderThread) -> None:
    with pytest.raises(FaultError):
        fake.script("gpt-4o", [{"kind": "explode"}])
    with pytest.raises(FaultError):
        fake.script("gpt-4o", [{"kind": "status"}])  # no status code
    with pytest.raises(FaultError):
        fake.script("gpt-4o", [{"kind": "hang", "secs": 1}])  # typo
    assert fake.pending_faults() == {}


async def test_missing_credentials(fake: FakeProviderThread, http: aiohttp.ClientSession) -> None:
    chat = {"model": "gpt-4o", "messages": MESSAGES}
    status, body = await post_json(http, f"{fake.openai_base_url}/chat/completions", chat, {})
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert set(body["error"]) == {"message", "type", "param", "code"}

    message = {"model": "claude-x", "max_tokens": 8, "messages": MESSAGES}
    url = f"{fake.base_url}/v1/messages"
    status, body = await post_json(http, url, message, {"anthropic-version": "2023-06-01"})
    assert status == 401
    assert body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
    }
    status, body = await post_json(http, url, message, {"x-api-key": "k"})
    assert (status, body["error"]["type"]) == (400, "invalid_request_error")
    # max_tokens is required by the Messages API
    status, body = await post_json(http, url, {**message, "max_tokens": None}, ANTHROPIC_AUTH)
    assert (status, body["error"]["message"]) == (400, "max_tokens: Field required")


async def test_http_control_endpoints(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    script = {"model": "gpt-4o", "faults": [{"kind": "status", "status": 503}]}
    async with http.post(f"{fake.base_url}/__script", json=script) as resp:
        assert (resp.status, await resp.json()) == (200, {"model": "gpt-4o", "queued": 1})
    async with http.post(f"{fake.base_url}/__script", json={"model": "x", "faults": [{}]}) as resp:
        assert resp.status == 400

    chat = {"model": "gpt-4o", "messages": MESSAGES}
    status, _ = await post_json(http, f"{fake.openai_base_url}/chat/completions", chat, OPENAI_AUTH)
    assert status == 503

    async with http.get(f"{fake.base_url}/__requests") as resp:
        [recorded] = await resp.json()
    assert recorded["path"] == "/v1/chat/completions"
    assert recorded["body"] == chat
    assert recorded["headers"]["authorization"] == "Bearer sk-test"

    async with http.delete(f"{fake.base_url}/__requests") as resp:
        assert resp.status == 204
    assert fake.requests == []

    async with http.post(f"{fake.base_url}/__config", json={"latency": 0.01}) as resp:
        assert await resp.json() == {"latency": 0.01}
    assert fake.latency == 0.01
    async with http.post(f"{fake.base_url}/__reset") as resp:
        assert resp.status == 204
    assert fake.latency == 0.0


# --- lifecycle variants ---------------------------------------------------------------------


async def test_in_loop_server() -> None:
    provider = await start_fake_provider()
    try:
        async with openai.AsyncOpenAI(
            base_url=provider.openai_base_url, api_key="sk-test", max_retries=0
        ) as client:
            completion = await client.chat.completions.create(model="m", messages=MESSAGES)
        assert completion.model == "m"
    finally:
        await provider.close()
    async with FakeProvider() as again:
        assert again.base_url.startswith("http://127.0.0.1:")


def test_standalone_process() -> None:
    """``python -m tests.fakeprovider`` serves; it is scripted over HTTP."""
    command = [sys.executable, "-m", "tests.fakeprovider", "--port", "0"]
    root = Path(__file__).resolve().parents[2]
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("fake provider listening on http://127.0.0.1:")
            _standalone_round_trip(line.rsplit(" ", 1)[1].strip())
        finally:
            proc.terminate()


def _standalone_round_trip(base_url: str) -> None:
    with urllib.request.urlopen(f"{base_url}/__health", timeout=5) as health:
        assert json.load(health) == {"ok": True}
    script = {"model": "m", "faults": [{"kind": "status", "status": 429}]}
    request = urllib.request.Request(
        f"{base_url}/__script",
        data=json.dumps(script).encode(),
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).close()
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0) as client:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="m", messages=MESSAGES)
        assert client.chat.completions.create(model="m", messages=MESSAGES).model == "m"


# --- (d) contract: payloads validate against the published OpenAPI spec ---------------------


@pytest.mark.parametrize(
    ("faults", "extra"),
    [
        ([], {}),
        ([], {"n": 2}),
        ([{"kind": "content", "tool_calls": [{"arguments": {"city": "Paris"}}]}], {}),
        ([{"kind": "content_filter", "mode": "finish_reason"}], {}),
        ([{"kind": "content", "content": "{}"}], {"response_format": {"type": "json_object"}}),
    ],
    ids=["plain", "n2", "tool_call", "content_filter", "json_mode"],
)
async def test_chat_completion_matches_spec(
    fake: FakeProviderThread,
    http: aiohttp.ClientSession,
    faults: list[dict[str, Any]],
    extra: dict[str, Any],
) -> None:
    fake.script("gpt-4o", faults)
    body = {"model": "gpt-4o", "messages": MESSAGES, "tools": [WEATHER_TOOL_OPENAI], **extra}
    status, completion = await post_json(
        http, f"{fake.openai_base_url}/chat/completions", body, OPENAI_AUTH
    )
    assert status == 200
    validate_against_spec(completion, "CreateChatCompletionResponse")


@pytest.mark.parametrize(
    ("faults", "stream_options"),
    [
        ([], {"include_usage": True}),
        ([], None),
        ([{"kind": "content", "tool_calls": [{"arguments": {"city": "Paris"}}]}], None),
    ],
    ids=["usage", "no_usage", "tool_call"],
)
async def test_stream_chunks_match_spec(
    fake: FakeProviderThread,
    http: aiohttp.ClientSession,
    faults: list[dict[str, Any]],
    stream_options: dict[str, Any] | None,
) -> None:
    fake.script("gpt-4o", faults)
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": MESSAGES,
        "tools": [WEATHER_TOOL_OPENAI],
        "stream": True,
    }
    if stream_options is not None:
        body["stream_options"] = stream_options
    events = await post_sse(http, f"{fake.openai_base_url}/chat/completions", body, OPENAI_AUTH)

    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert len(chunks) >= 3
    for chunk in chunks:
        validate_against_spec(chunk, "CreateChatCompletionStreamResponse")
    assert len({c["id"] for c in chunks}) == 1


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
async def test_images_match_spec(
    fake: FakeProviderThread, http: aiohttp.ClientSession, response_format: str
) -> None:
    body = {"model": "dall-e-3", "prompt": "a fox", "n": 2, "response_format": response_format}
    status, images = await post_json(
        http, f"{fake.openai_base_url}/images/generations", body, OPENAI_AUTH
    )
    assert status == 200
    assert len(images["data"]) == 2
    validate_against_spec(images, "ImagesResponse")


async def test_openai_errors_match_spec(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    fake.script(
        "gpt-4o",
        [{"kind": "status", "status": 429}, {"kind": "context_length"}, {"kind": "content_filter"}],
    )
    for _ in range(3):
        chat = {"model": "gpt-4o", "messages": MESSAGES}
        status, body = await post_json(
            http, f"{fake.openai_base_url}/chat/completions", chat, OPENAI_AUTH
        )
        assert status >= 400
        validate_against_spec(body, "ErrorResponse")


async def test_sdk_request_matches_spec(fake: FakeProviderThread, oai: openai.AsyncOpenAI) -> None:
    await oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": "Be terse."}, *MESSAGES],
        tools=[WEATHER_TOOL_OPENAI],
        temperature=0.2,
        stream=False,
    )
    validate_against_spec(fake.requests[-1].body, "CreateChatCompletionRequest")

    with pytest.raises(SpecValidationError) as caught:
        validate_against_spec({"model": "gpt-4o", "messages": "hi"}, "CreateChatCompletionRequest")
    assert "$.messages" in str(caught.value)
