"""The fake provider's stream faults and per-model switches, as raw HTTP clients see them.

Every test reads the response body chunk by chunk with aiohttp, timing each arrival, so it
can assert the exact SSE events, when they came, and how the body ended: a clean end of the
chunked body, or a transport error (``stream_cut``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from tests.fakeprovider import FakeProviderThread, Fault, FaultError, default_reply_text
from tests.fakeprovider.common import split_chunks

QUESTION = "What is the capital of France?"
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
PREFILL = "The capital of France is"
PREFILLED: list[dict[str, Any]] = [*MESSAGES, {"role": "assistant", "content": PREFILL}]
OPENAI_AUTH = {"authorization": "Bearer sk-test"}
ANTHROPIC_AUTH = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
OPENAI_MODEL = "gpt-4o"
ANTHROPIC_MODEL = "claude-x"

STALL = 0.3  # seconds; short so that every test stays well under a second
PROMPT = 0.15  # "at once": well under STALL even on a loaded machine

OPENAI_PREFILL_ERROR = {
    "error": {
        "message": "This model does not support assistant message prefill; the conversation "
        "must end with a user message.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "prefill_not_supported",
    }
}
ANTHROPIC_PREFILL_ERROR = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "This model does not support assistant message prefill. The conversation "
        "must end with a user message.",
    },
}


def pieces(model: str) -> list[str]:
    """The content chunks of the default reply to MESSAGES (3 of them)."""
    return split_chunks(default_reply_text(model, MESSAGES))


@dataclass
class Received:
    """What reached the client: status, headers, timed body chunks, and how the body ended."""

    status: int
    content_type: str
    headers_at: float  # seconds from sending the request to having the headers
    arrivals: list[tuple[float, bytes]] = field(default_factory=list)  # (s after headers, data)
    ended_at: float = 0.0  # seconds after the headers when the body ended (EOF or error)
    error: BaseException | None = None  # transport error that ended the body, if any

    @property
    def raw(self) -> bytes:
        return b"".join(data for _, data in self.arrivals)

    @property
    def last_data_at(self) -> float:
        return self.arrivals[-1][0] if self.arrivals else 0.0

    def events(self) -> list[tuple[str | None, str]]:
        """(event, data) pairs; checks the framing is exactly ``[event: X\\n]data: Y\\n\\n``."""
        raw = self.raw.decode()
        assert raw == "" or raw.endswith("\n\n"), f"body does not end on an event boundary: {raw!r}"
        out: list[tuple[str | None, str]] = []
        for block in raw.split("\n\n")[:-1]:
            lines = block.split("\n")
            name = lines.pop(0).removeprefix("event: ") if lines[0].startswith("event: ") else None
            assert len(lines) == 1 and lines[0].startswith("data: "), f"bad SSE block {block!r}"
            out.append((name, lines[0].removeprefix("data: ")))
        rebuilt = "".join((f"event: {n}\n" if n else "") + f"data: {d}\n\n" for n, d in out)
        assert rebuilt == raw
        return out

    def json_events(self) -> list[tuple[str | None, Any]]:
        """Like :meth:`events` with every ``data`` decoded (``[DONE]`` kept as a str)."""
        return [(n, d if d == "[DONE]" else json.loads(d)) for n, d in self.events()]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def receive(
    http: aiohttp.ClientSession, url: str, body: object, headers: dict[str, str]
) -> Received:
    started = time.monotonic()
    async with http.post(url, json=body, headers=headers) as resp:
        at_headers = time.monotonic()
        got = Received(resp.status, resp.content_type, at_headers - started)
        try:
            async for data in resp.content.iter_any():
                got.arrivals.append((time.monotonic() - at_headers, data))
        except aiohttp.ClientPayloadError as exc:
            got.error = exc
        got.ended_at = time.monotonic() - at_headers
    return got


def openai_request(
    fake: FakeProviderThread, *, stream: bool = True, usage: bool = False, **extra: Any
) -> tuple[str, dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {"model": OPENAI_MODEL, "messages": MESSAGES, **extra}
    if stream:
        body["stream"] = True
    if usage:
        body["stream_options"] = {"include_usage": True}
    return f"{fake.openai_base_url}/chat/completions", body, OPENAI_AUTH


def anthropic_request(
    fake: FakeProviderThread, *, stream: bool = True, **extra: Any
) -> tuple[str, dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 64,
        "messages": MESSAGES,
        **extra,
    }
    if stream:
        body["stream"] = True
    return f"{fake.base_url}/v1/messages", body, ANTHROPIC_AUTH


def model_for(wire: str) -> str:
    return OPENAI_MODEL if wire == "openai" else ANTHROPIC_MODEL


def request_for(
    fake: FakeProviderThread, wire: str, *, stream: bool = True, **extra: Any
) -> tuple[str, dict[str, Any], dict[str, str]]:
    if wire == "openai":
        return openai_request(fake, stream=stream, **extra)
    return anthropic_request(fake, stream=stream, **extra)


def texts_for(wire: str, events: list[tuple[str | None, Any]]) -> list[str]:
    return openai_contents(events) if wire == "openai" else anthropic_texts(events)


def openai_contents(events: list[tuple[str | None, Any]]) -> list[str]:
    return [
        d["choices"][0]["delta"]["content"]
        for _, d in events
        if isinstance(d, dict) and d.get("choices") and d["choices"][0]["delta"].get("content")
    ]


def openai_has_terminal(events: list[tuple[str | None, Any]]) -> bool:
    return any(
        d == "[DONE]"
        or (isinstance(d, dict) and any(c["finish_reason"] for c in d.get("choices", [])))
        for _, d in events
    )


def anthropic_texts(events: list[tuple[str | None, Any]]) -> list[str]:
    return [d["delta"]["text"] for n, d in events if n == "content_block_delta"]


def assert_clean_end(got: Received) -> None:
    assert got.status == 200
    assert got.content_type == "text/event-stream"
    assert got.error is None  # the chunked body ended properly: not a cut, not a reset


async def wait_idle(fake: FakeProviderThread) -> None:
    for _ in range(100):
        if fake.in_flight == 0:
            return
        await asyncio.sleep(0.01)
    assert fake.in_flight == 0


# --- validation --------------------------------------------------------------------------


def test_new_faults_validate_and_round_trip(fake: FakeProviderThread) -> None:
    new: list[dict[str, Any]] = [
        {"kind": "stream_stall", "after_chunks": 2, "seconds": 0.5},
        {"kind": "stream_malformed_event", "after_chunks": 0},
        {"kind": "stream_no_done"},
        {"kind": "stream_truncated", "after_chunks": 3},
        {"kind": "first_chunk_delay", "seconds": 1},
    ]
    for raw in new:
        fault = Fault.from_dict(raw)
        assert Fault.from_dict(fault.to_dict()) == fault
    assert fake.script("m", new) == 5
    assert [f["kind"] for f in fake.pending_faults()["m"]] == [f["kind"] for f in new]

    bad: dict[str, Any]
    for bad in (
        {"kind": "stream_stall", "after_chunks": -1},
        {"kind": "stream_truncated", "after_chunks": "2"},
        {"kind": "stream_truncated", "after_chunks": True},
        {"kind": "first_chunk_delay", "seconds": "soon"},
        {"kind": "stream_stall", "seconds": -1},
        {"kind": "stream_no_done", "after": 1},
    ):
        with pytest.raises(FaultError):
            Fault.from_dict(bad)


# --- 1. stream_stall ----------------------------------------------------------------------


async def test_openai_stream_stall(fake: FakeProviderThread, http: aiohttp.ClientSession) -> None:
    fake.script(OPENAI_MODEL, [{"kind": "stream_stall", "after_chunks": 1, "seconds": STALL}])
    got = await receive(http, *openai_request(fake, usage=True))

    assert_clean_end(got)
    assert got.headers_at < PROMPT
    events = got.json_events()
    assert [d["choices"][0]["delta"] for _, d in events] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": pieces(OPENAI_MODEL)[0]},
    ]
    assert not openai_has_terminal(events)
    assert b"[DONE]" not in got.raw and b'"finish_reason":"' not in got.raw
    # the chunks came at once, then silence for STALL seconds, then the end of the body
    assert got.last_data_at < PROMPT
    assert got.ended_at >= STALL - 0.02


async def test_anthropic_stream_stall(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    fake.script(ANTHROPIC_MODEL, [{"kind": "stream_stall", "after_chunks": 2, "seconds": STALL}])
    got = await receive(http, *anthropic_request(fake))

    assert_clean_end(got)
    events = got.json_events()
    assert [n for n, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
    ]
    assert anthropic_texts(events) == pieces(ANTHROPIC_MODEL)[:2]
    assert b"message_delta" not in got.raw and b"message_stop" not in got.raw
    assert got.last_data_at < PROMPT
    assert got.ended_at >= STALL - 0.02


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_stream_stall_is_cancelled_when_the_client_goes_away(
    fake: FakeProviderThread, http: aiohttp.ClientSession, wire: str
) -> None:
    model = model_for(wire)
    url, body, headers = request_for(fake, wire)
    fake.script(model, [{"kind": "stream_stall", "after_chunks": 1, "seconds": 30}])
    first_piece = pieces(model)[0].encode()
    started = time.monotonic()
    async with http.post(url, json=body, headers=headers) as resp:
        raw = b""
        while first_piece not in raw:
            raw += await asyncio.wait_for(resp.content.readany(), 1)
        assert fake.in_flight == 1  # stalled
        resp.close()  # drop the connection mid-stall
    await wait_idle(fake)
    assert time.monotonic() - started < 1


# --- 2. stream_malformed_event ------------------------------------------------------------


async def test_openai_stream_malformed_event(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    fake.script(OPENAI_MODEL, [{"kind": "stream_malformed_event", "after_chunks": 1}])
    got = await receive(http, *openai_request(fake, usage=True))

    assert_clean_end(got)
    events = got.events()
    assert events[2] == (None, '{"choices": [')  # after the role chunk and 1 content chunk
    assert got.raw.count(b'\n\ndata: {"choices": [\n\ndata: {"object"') == 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[2][1])
    rest: list[tuple[str | None, Any]] = [
        (n, d if d == "[DONE]" else json.loads(d)) for n, d in events[:2] + events[3:]
    ]
    # everything else is the complete, normal stream
    assert openai_contents(rest) == pieces(OPENAI_MODEL)
    assert [d["choices"][0]["finish_reason"] for _, d in rest[:-2]] == [None] * 4 + ["stop"]
    assert rest[-2][1]["choices"] == []
    assert rest[-2][1]["usage"]["completion_tokens"] > 0
    assert rest[-1] == (None, "[DONE]")
    assert got.raw.endswith(b"data: [DONE]\n\n")


async def test_anthropic_stream_malformed_event(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    fake.script(ANTHROPIC_MODEL, [{"kind": "stream_malformed_event", "after_chunks": 0}])
    got = await receive(http, *anthropic_request(fake))

    assert_clean_end(got)
    events = got.events()
    assert [n for n, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",  # the malformed one, before the first content chunk
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    broken = events[3][1]
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken)
    assert f"event: content_block_delta\ndata: {broken}\n\n".encode() in got.raw
    rest = [(n, json.loads(d)) for n, d in events[:3] + events[4:]]
    assert anthropic_texts(rest) == pieces(ANTHROPIC_MODEL)
    assert rest[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert got.raw.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


# --- 3. stream_no_done ---------------------------------------------------------------------


@pytest.mark.parametrize("usage", [True, False], ids=["usage", "no_usage"])
async def test_openai_stream_no_done(
    fake: FakeProviderThread, http: aiohttp.ClientSession, usage: bool
) -> None:
    fake.script(OPENAI_MODEL, [{"kind": "stream_no_done"}])
    got = await receive(http, *openai_request(fake, usage=usage))

    assert_clean_end(got)
    events = got.json_events()
    assert b"[DONE]" not in got.raw
    assert openai_contents(events) == pieces(OPENAI_MODEL)
    chunks = [d for _, d in events]
    if usage:
        *chunks, usage_chunk = chunks
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"]["total_tokens"] > 0
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert got.raw.endswith(b"}\n\n")


async def test_anthropic_stream_no_done(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    fake.script(ANTHROPIC_MODEL, [{"kind": "stream_no_done"}])
    got = await receive(http, *anthropic_request(fake))

    assert_clean_end(got)
    events = got.json_events()
    assert [n for n, _ in events][-2:] == ["content_block_stop", "message_delta"]
    assert "message_stop" not in [n for n, _ in events]
    assert anthropic_texts(events) == pieces(ANTHROPIC_MODEL)
    delta = events[-1][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] > 0


# --- 4. stream_truncated (and how it differs from stream_cut) ------------------------------


async def test_openai_stream_truncated(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    fake.script(OPENAI_MODEL, [{"kind": "stream_truncated", "after_chunks": 2}])
    got = await receive(http, *openai_request(fake, usage=True))

    assert_clean_end(got)
    events = got.json_events()
    assert len(events) == 3  # role chunk + 2 content chunks, nothing else
    assert openai_contents(events) == pieces(OPENAI_MODEL)[:2]
    assert not openai_has_terminal(events)
    assert b'"error"' not in got.raw


async def test_anthropic_stream_truncated(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    fake.script(ANTHROPIC_MODEL, [{"kind": "stream_truncated", "after_chunks": 1}])
    got = await receive(http, *anthropic_request(fake))

    assert_clean_end(got)
    events = got.json_events()
    assert [n for n, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
    ]
    assert anthropic_texts(events) == pieces(ANTHROPIC_MODEL)[:1]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_stream_truncated_after_all_chunks_still_has_no_terminal_event(
    fake: FakeProviderThread, http: aiohttp.ClientSession, wire: str
) -> None:
    model = model_for(wire)
    fake.script(model, [{"kind": "stream_truncated", "after_chunks": 10}])
    request = request_for(fake, wire)
    got = await receive(http, *request)

    assert_clean_end(got)
    events = got.json_events()
    assert texts_for(wire, events) == pieces(model)
    if wire == "openai":
        assert not openai_has_terminal(events)
    else:
        assert [n for n, _ in events][-1] == "content_block_stop"


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_stream_cut_is_a_transport_error_unlike_stream_truncated(
    fake: FakeProviderThread, http: aiohttp.ClientSession, wire: str
) -> None:
    """Same data on the wire; stream_cut never finishes the chunked body, truncated does."""
    model = model_for(wire)
    request = request_for(fake, wire)
    fake.script(
        model,
        [
            {"kind": "stream_cut", "after_chunks": 1},
            {"kind": "stream_truncated", "after_chunks": 1},
        ],
    )
    cut = await receive(http, *request)
    truncated = await receive(http, *request)

    assert isinstance(cut.error, aiohttp.ClientPayloadError)  # "payload is not completed"
    assert truncated.error is None
    assert [n for n, _ in cut.events()] == [n for n, _ in truncated.events()]
    assert texts_for(wire, cut.json_events()) == texts_for(wire, truncated.json_events())
    assert texts_for(wire, cut.json_events()) == pieces(model)[:1]


# --- 5. first_chunk_delay ------------------------------------------------------------------


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_first_chunk_delay_stream(
    fake: FakeProviderThread, http: aiohttp.ClientSession, wire: str
) -> None:
    model = model_for(wire)
    fake.script(model, [{"kind": "first_chunk_delay", "seconds": STALL}])
    request = request_for(fake, wire)
    got = await receive(http, *request)

    assert_clean_end(got)
    assert got.headers_at < PROMPT  # 200 + headers at once
    assert got.arrivals[0][0] >= STALL - 0.02  # ... then silence before the first event
    assert got.last_data_at - got.arrivals[0][0] < PROMPT  # ... then the stream at full speed
    events = got.json_events()
    assert texts_for(wire, events) == pieces(model)
    if wire == "openai":
        assert events[0][1]["choices"][0]["delta"]["role"] == "assistant"
        assert events[-1] == (None, "[DONE]")
    else:
        assert events[0][0] == "message_start"
        assert events[-1][0] == "message_stop"


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_first_chunk_delay_without_stream_is_a_delay(
    fake: FakeProviderThread, http: aiohttp.ClientSession, wire: str
) -> None:
    model = model_for(wire)
    fake.script(model, [{"kind": "first_chunk_delay", "seconds": STALL}])
    url, body, headers = request_for(fake, wire, stream=False)
    started = time.monotonic()
    async with http.post(url, json=body, headers=headers) as resp:
        assert time.monotonic() - started >= STALL - 0.02  # nothing, not even headers, before
        assert resp.status == 200
        answer = await resp.json()
    expected = default_reply_text(model, MESSAGES)
    if wire == "openai":
        assert answer["choices"][0]["message"]["content"] == expected
    else:
        assert answer["content"] == [{"type": "text", "text": expected}]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_stream_faults_on_requests_that_do_not_stream(
    fake: FakeProviderThread, http: aiohttp.ClientSession, wire: str
) -> None:
    model = model_for(wire)
    url, body, headers = request_for(fake, wire, stream=False)
    fake.script(
        model,
        [
            {"kind": "stream_truncated"},
            {"kind": "stream_stall", "seconds": 0.1},
            {"kind": "stream_malformed_event"},
            {"kind": "stream_no_done"},
        ],
    )
    for stalled in (False, True):  # a 200 whose JSON is cut short (like "malformed")
        started = time.monotonic()
        async with http.post(url, json=body, headers=headers) as resp:
            assert resp.status == 200
            text = await resp.text()
        assert time.monotonic() - started >= (0.08 if stalled else 0)
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
    for _ in range(2):  # nothing to insert or omit: a normal answer
        async with http.post(url, json=body, headers=headers) as resp:
            assert resp.status == 200
            assert await resp.json()
    assert fake.pending_faults() == {}


# --- 6. rejects assistant prefill ----------------------------------------------------------


async def test_reject_prefill(fake: FakeProviderThread, http: aiohttp.ClientSession) -> None:
    fake.reject_prefill(OPENAI_MODEL)
    fake.reject_prefill(ANTHROPIC_MODEL)
    fake.script(OPENAI_MODEL, [{"kind": "content", "content": "queued"}])
    cases = [
        (openai_request(fake, stream=False, messages=PREFILLED), OPENAI_PREFILL_ERROR),
        (openai_request(fake, messages=PREFILLED), OPENAI_PREFILL_ERROR),  # stream too
        (anthropic_request(fake, stream=False, messages=PREFILLED), ANTHROPIC_PREFILL_ERROR),
        (anthropic_request(fake, messages=PREFILLED), ANTHROPIC_PREFILL_ERROR),
    ]
    for (url, body, headers), expected in cases:
        async with http.post(url, json=body, headers=headers) as resp:
            assert resp.status == 400
            assert resp.content_type == "application/json"
            assert resp.headers.get("x-request-id", resp.headers.get("request-id", "")).startswith(
                "req_"
            )
            assert await resp.json() == expected
    assert len(fake.requests) == 4  # recorded ...
    assert fake.pending_faults() == {OPENAI_MODEL: [{"kind": "content", "content": "queued"}]}

    # ... and a conversation ending with a user message is served normally
    url, body, headers = openai_request(fake, stream=False)
    async with http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200
        assert (await resp.json())["choices"][0]["message"]["content"] == "queued"
    url, body, headers = anthropic_request(fake, stream=False)
    async with http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200
    # other models accept prefill
    url, body, headers = openai_request(fake, stream=False, messages=PREFILLED)
    async with http.post(url, json={**body, "model": "gpt-4o-mini"}, headers=headers) as resp:
        assert resp.status == 200

    assert fake.switches() == {"down": {}, "reject_prefill": [ANTHROPIC_MODEL, OPENAI_MODEL]}
    fake.allow_prefill(OPENAI_MODEL)
    async with http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200
    fake.reset()
    assert fake.switches() == {"down": {}, "reject_prefill": []}
    url, body, headers = anthropic_request(fake, stream=False, messages=PREFILLED)
    async with http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_accepted_prefill_is_continued_not_repeated(
    fake: FakeProviderThread, http: aiohttp.ClientSession, wire: str, stream: bool
) -> None:
    model = model_for(wire)
    prefill_blocks = [{"type": "text", "text": PREFILL}]  # list content works as well
    messages = [*MESSAGES, {"role": "assistant", "content": prefill_blocks}]
    request = request_for(fake, wire, stream=stream, messages=messages)
    if stream:
        got = await receive(http, *request)
        assert_clean_end(got)
        events = got.json_events()
        text = "".join(texts_for(wire, events))
    else:
        url, body, headers = request
        async with http.post(url, json=body, headers=headers) as resp:
            assert resp.status == 200
            answer = await resp.json()
        text = (
            answer["choices"][0]["message"]["content"]
            if wire == "openai"
            else answer["content"][0]["text"]
        )
    assert text == default_reply_text(model, MESSAGES)
    assert PREFILL not in text


# --- 7. a model that is down ---------------------------------------------------------------


async def test_set_down_and_up(fake: FakeProviderThread, http: aiohttp.ClientSession) -> None:
    fake.set_down(OPENAI_MODEL)
    fake.set_down(ANTHROPIC_MODEL, status=529)
    fake.script(OPENAI_MODEL, [{"kind": "status", "status": 429}])
    oai_url, oai_body, oai_headers = openai_request(fake, stream=False)
    ant_url, ant_body, ant_headers = anthropic_request(fake)

    for _ in range(2):  # persistent, not consumed
        async with http.post(oai_url, json=oai_body, headers=oai_headers) as resp:
            assert resp.status == 503
            assert resp.headers["x-request-id"].startswith("req_")
            assert await resp.json() == {
                "error": {
                    "message": "The server is overloaded or not ready yet.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        async with http.post(ant_url, json=ant_body, headers=ant_headers) as resp:  # stream too
            assert resp.status == 529
            assert await resp.json() == {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
            }
    assert len(fake.requests) == 4  # still recorded
    assert fake.pending_faults() == {OPENAI_MODEL: [{"kind": "status", "status": 429}]}
    # other models are up
    async with http.post(
        oai_url, json={**oai_body, "model": "gpt-4o-mini"}, headers=oai_headers
    ) as r:
        assert r.status == 200
    assert fake.switches() == {
        "down": {OPENAI_MODEL: 503, ANTHROPIC_MODEL: 529},
        "reject_prefill": [],
    }

    fake.set_up(OPENAI_MODEL)
    async with http.post(oai_url, json=oai_body, headers=oai_headers) as resp:
        assert resp.status == 429  # the queue resumes where it was
    async with http.post(oai_url, json=oai_body, headers=oai_headers) as resp:
        assert resp.status == 200
    fake.reset()
    got = await receive(http, ant_url, ant_body, ant_headers)
    assert_clean_end(got)
    assert got.json_events()[-1][0] == "message_stop"


async def test_set_down_any_model_and_bad_status(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    fake.set_down("*", status=502)
    url, body, headers = openai_request(fake, stream=False)
    async with http.post(url, json={**body, "model": "whatever"}, headers=headers) as resp:
        assert resp.status == 502
        assert (await resp.json())["error"]["type"] == "server_error"
    for bad in (200, 302, 600, True):
        with pytest.raises(ValueError):
            fake.set_down(OPENAI_MODEL, status=bad)
    assert fake.switches()["down"] == {"*": 502}


async def test_http_switch_controls(fake: FakeProviderThread, http: aiohttp.ClientSession) -> None:
    base = fake.base_url
    async with http.post(f"{base}/__down", json={"model": OPENAI_MODEL, "status": 500}) as r:
        assert (r.status, await r.json()) == (
            200,
            {"down": {OPENAI_MODEL: 500}, "reject_prefill": []},
        )
    async with http.post(f"{base}/__prefill", json={"model": ANTHROPIC_MODEL}) as r:
        assert r.status == 200
    async with http.get(f"{base}/__switches") as r:
        assert await r.json() == {"down": {OPENAI_MODEL: 500}, "reject_prefill": [ANTHROPIC_MODEL]}
    for path, bad in [
        ("/__down", {"model": OPENAI_MODEL, "status": 200}),
        ("/__down", {"status": 503}),
        ("/__up", {}),
        ("/__prefill", {"model": ANTHROPIC_MODEL, "reject": "yes"}),
    ]:
        async with http.post(f"{base}{path}", json=bad) as r:
            assert r.status == 400, (path, bad)

    url, body, headers = openai_request(fake, stream=False)
    async with http.post(url, json=body, headers=headers) as r:
        assert r.status == 500
    url, body, headers = anthropic_request(fake, stream=False, messages=PREFILLED)
    async with http.post(url, json=body, headers=headers) as r:
        assert (r.status, await r.json()) == (400, ANTHROPIC_PREFILL_ERROR)

    async with http.post(f"{base}/__up", json={"model": OPENAI_MODEL}) as r:
        assert (await r.json())["down"] == {}
    async with http.post(
        f"{base}/__prefill", json={"model": ANTHROPIC_MODEL, "reject": False}
    ) as r:
        assert (await r.json())["reject_prefill"] == []
    fake.set_down(OPENAI_MODEL)
    fake.reject_prefill(OPENAI_MODEL)
    async with http.post(f"{base}/__reset") as r:
        assert r.status == 204
    assert fake.switches() == {"down": {}, "reject_prefill": []}


# --- 8. content policy rejection on the request side ---------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_content_filter_error_is_a_400_on_both_wires(
    fake: FakeProviderThread, http: aiohttp.ClientSession, stream: bool
) -> None:
    fake.script(OPENAI_MODEL, [{"kind": "content_filter", "mode": "error"}])
    fake.script(ANTHROPIC_MODEL, [{"kind": "content_filter"}])  # "error" is the default mode

    url, body, headers = openai_request(fake, stream=stream)
    async with http.post(url, json=body, headers=headers) as resp:
        assert (resp.status, resp.content_type) == (400, "application/json")
        error = (await resp.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "content_policy_violation"
    assert "safety system" in error["message"]

    url, body, headers = anthropic_request(fake, stream=stream)
    async with http.post(url, json=body, headers=headers) as resp:
        assert (resp.status, resp.content_type) == (400, "application/json")
        assert await resp.json() == {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "Output blocked by content filtering policy",
            },
        }
