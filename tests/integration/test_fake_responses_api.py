"""The fake provider's OpenAI Responses API (``POST /v1/responses``).

Over real HTTP: the official ``openai`` SDK parses what the fake sends (plain and streamed),
scripted faults surface as the SDK's own exceptions or stream endings, the raw payloads
validate against the published OpenAPI spec, and requests are recorded as sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.responses import FunctionToolParam, ToolParam

from tests.fakeprovider import FakeProviderThread, count_tokens, default_reply_text
from tests.fakeprovider.common import split_chunks, split_even
from tests.spec import validate_against_spec

MODEL = "gpt-4o"
PATH = "/v1/responses"
QUESTION = "What is the capital of France?"
REPLY = default_reply_text(MODEL, [{"role": "user", "content": QUESTION}])
AUTH = {"authorization": "Bearer sk-test"}
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}
WEATHER_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}

TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * len(split_chunks(REPLY)),
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
CALL_EVENTS = [
    "response.output_item.added",
    *["response.function_call_arguments.delta"]
    * len(split_even(json.dumps(WEATHER_CALL["arguments"]))),
    "response.function_call_arguments.done",
    "response.output_item.done",
]
#: Spec component per event type.
EVENT_COMPONENTS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "error": "ResponseErrorEvent",
}


@pytest.fixture
async def oai(fake: FakeProviderThread) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    fake: FakeProviderThread,
    body: object,
    headers: dict[str, str] = AUTH,
) -> tuple[int, Any]:
    async with http.post(f"{fake.openai_base_url}/responses", json=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


class Streamed:
    """A raw SSE body: its events, and whether the chunked body ended cleanly."""

    def __init__(self, raw: str, error: BaseException | None) -> None:
        self.raw = raw
        self.error = error

    def blocks(self) -> list[tuple[str | None, str]]:
        """(event, data) pairs; checks the framing is exactly ``event: X\\ndata: Y\\n\\n``."""
        assert self.raw == "" or self.raw.endswith("\n\n"), self.raw[-80:]
        out: list[tuple[str | None, str]] = []
        for block in self.raw.split("\n\n")[:-1]:
            lines = block.split("\n")
            name = lines.pop(0).removeprefix("event: ") if lines[0].startswith("event: ") else None
            assert len(lines) == 1 and lines[0].startswith("data: "), block
            out.append((name, lines[0].removeprefix("data: ")))
        return out

    def events(self) -> list[dict[str, Any]]:
        """Decoded ``data``; each names its ``event:`` as ``type`` and is spec-valid."""
        out = []
        for name, data in self.blocks():
            event = json.loads(data)
            assert name is not None and event["type"] == name
            validate_against_spec(event, EVENT_COMPONENTS[name])
            out.append(event)
        assert [e["sequence_number"] for e in out] == list(range(len(out)))
        return out

    def types(self) -> list[str]:
        return [e["type"] for e in self.events()]


async def stream_raw(
    http: aiohttp.ClientSession, fake: FakeProviderThread, **extra: Any
) -> Streamed:
    body = {"model": MODEL, "input": QUESTION, "stream": True, **extra}
    chunks: list[bytes] = []
    error: BaseException | None = None
    async with http.post(f"{fake.openai_base_url}/responses", json=body, headers=AUTH) as r:
        assert r.status == 200
        assert r.content_type == "text/event-stream"
        try:
            async for data in r.content.iter_any():
                chunks.append(data)
        except aiohttp.ClientPayloadError as exc:
            error = exc
    return Streamed(b"".join(chunks).decode(), error)


def deltas(events: list[dict[str, Any]]) -> list[str]:
    return [e["delta"] for e in events if e["type"] == "response.output_text.delta"]


# --- plain answers ---------------------------------------------------------------------------


async def test_create_parses_output_text_and_usage(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    resp = await oai.responses.create(model=MODEL, input=QUESTION)
    assert resp.output_text == REPLY
    assert resp.object == "response"
    assert resp.status == "completed"
    assert resp.id.startswith("resp_fake")
    assert resp.model == MODEL
    [message] = resp.output
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.status == "completed"
    assert message.id.startswith("msg_fake")
    [part] = message.content
    assert part.type == "output_text"
    assert part.annotations == []
    assert resp.usage is not None
    assert resp.usage.input_tokens == count_tokens(QUESTION)
    assert resp.usage.output_tokens == count_tokens(REPLY)
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert resp.usage.input_tokens_details.cached_tokens == 0
    assert resp.usage.output_tokens_details.reasoning_tokens == 0
    # Distinct requests get distinct ids.
    again = await oai.responses.create(model=MODEL, input=QUESTION)
    assert again.id != resp.id


async def test_raw_response_and_request_validate_against_spec(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    body = {
        "model": MODEL,
        # (String content: the spec's oneOf matches a list-content message twice.)
        "input": [{"role": "user", "content": QUESTION}],
        "instructions": "Be brief.",
        "tools": [WEATHER, {"type": "web_search"}],
        "max_output_tokens": 64,
        "store": False,
    }
    status, resp = await post(http, fake, body)
    assert status == 200
    validate_against_spec(fake.requests_to(PATH)[-1].body, "CreateResponse")
    validate_against_spec(resp, "Response")
    assert resp["output"][0]["content"][0]["text"] == REPLY
    assert resp["instructions"] == "Be brief."
    assert resp["tools"] == body["tools"]
    assert resp["max_output_tokens"] == 64
    assert resp["store"] is False
    assert resp["previous_response_id"] is None
    # The instructions count as input.
    assert resp["usage"]["input_tokens"] == count_tokens("Be brief.") + count_tokens(QUESTION)


async def test_reply_follows_the_last_user_text_or_tool_output(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    history: Any = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "an answer"}]},
        {"role": "user", "content": [{"type": "input_text", "text": QUESTION}]},
    ]
    resp = await oai.responses.create(model=MODEL, input=history)
    assert resp.output_text == REPLY

    call: Any = {"type": "function_call", "call_id": "call_1", "name": "get_weather"}
    call["arguments"] = '{"city": "Paris"}'
    output: Any = {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21C"}
    resp = await oai.responses.create(model=MODEL, input=[*history, call, output])
    assert resp.output_text == f"fake reply from {MODEL}: sunny, 21C"

    long = "word " * 30
    resp = await oai.responses.create(model=MODEL, input=long)
    assert resp.output_text == f"fake reply from {MODEL}: {long[:60]}"


async def test_function_call_output_from_a_scripted_fault(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.script(MODEL, [{"kind": "content", "tool_calls": [WEATHER_CALL]}])
    resp = await oai.responses.create(model=MODEL, input=QUESTION, tools=[WEATHER])
    assert resp.output_text == ""
    [call] = resp.output
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id.startswith("call_")
    assert call.id is not None and call.id.startswith("fc_")
    assert call.status == "completed"

    # Text and calls together; a call without a name takes the first *function* tool.
    tools: list[ToolParam] = [{"type": "web_search"}, WEATHER]
    fault = {"kind": "content", "content": "Let me check.", "tool_calls": [{"id": "call_x"}]}
    fake.script(MODEL, [fault])
    resp = await oai.responses.create(model=MODEL, input=QUESTION, tools=tools)
    assert [o.type for o in resp.output] == ["message", "function_call"]
    assert resp.output_text == "Let me check."
    call = resp.output[1]
    assert call.type == "function_call"
    assert (call.name, call.call_id, call.arguments) == ("get_weather", "call_x", "{}")


# --- streaming -------------------------------------------------------------------------------


async def test_stream_yields_events_in_order(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    async with oai.responses.stream(model=MODEL, input=QUESTION) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    assert [e.type for e in events] == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text_deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert text_deltas == split_chunks(REPLY)
    created = events[0]
    assert created.type == "response.created"
    assert created.response.status == "in_progress"
    assert created.response.output == []
    assert final.output_text == REPLY
    assert final.id == created.response.id
    assert final.status == "completed"
    assert final.usage is not None
    assert final.usage.output_tokens == count_tokens(REPLY)
    assert fake.requests_to(PATH)[-1].body["stream"] is True


async def test_stream_of_text_and_function_calls(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.script(MODEL, [{"kind": "content", "content": "ok", "tool_calls": [WEATHER_CALL] * 2}])
    async with oai.responses.stream(model=MODEL, input=QUESTION, tools=[WEATHER]) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    text = [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        *text,
        *CALL_EVENTS,
        *CALL_EVENTS,
        "response.completed",
    ]
    assert [o.type for o in final.output] == ["message", "function_call", "function_call"]
    assert final.output_text == "ok"
    calls = [o for o in final.output if o.type == "function_call"]
    assert [json.loads(c.arguments) for c in calls] == [{"city": "Paris"}] * 2
    assert len({c.call_id for c in calls}) == 2
    dones = [e.to_dict() for e in events if e.type == "response.function_call_arguments.done"]
    assert [(e["name"], e["output_index"]) for e in dones] == [
        ("get_weather", 1),
        ("get_weather", 2),
    ]
    assert [e["arguments"] for e in dones] == [c.arguments for c in calls]


async def test_raw_stream_shape(fake: FakeProviderThread, http: aiohttp.ClientSession) -> None:
    got = await stream_raw(http, fake)
    assert got.error is None
    assert "[DONE]" not in got.raw
    events = got.events()  # event: == type, spec-valid, sequence numbers 0, 1, ...
    assert [e["type"] for e in events] == TEXT_EVENTS
    added = events[2]
    assert added["item"]["status"] == "in_progress" and added["item"]["content"] == []
    item_id = added["item"]["id"]
    assert {e.get("item_id", item_id) for e in events[3:-2]} == {item_id}
    assert events[-2]["item"]["content"][0]["text"] == REPLY
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["output"] == [events[-2]["item"]]
    assert done["id"] == events[0]["response"]["id"]


# --- errors and faults -----------------------------------------------------------------------


async def test_rate_limit_status_fault(fake: FakeProviderThread, oai: openai.AsyncOpenAI) -> None:
    fake.script(MODEL, [{"kind": "status", "status": 429, "retry_after": "2"}])
    with pytest.raises(openai.RateLimitError) as info:
        await oai.responses.create(model=MODEL, input=QUESTION)
    assert info.value.status_code == 429
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.response.headers["x-request-id"].startswith("req_")
    # The fault was consumed: the next request succeeds.
    assert (await oai.responses.create(model=MODEL, input=QUESTION)).output_text == REPLY


async def test_status_faults_while_streaming_and_down_switch(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.script(MODEL, [{"kind": "status", "status": 500}])
    with pytest.raises(openai.InternalServerError):
        async with oai.responses.stream(model=MODEL, input=QUESTION) as stream:
            [_ async for _ in stream]

    fake.script(MODEL, [{"kind": "content", "content": "after the outage"}])
    fake.set_down(MODEL, 503)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as info:
            await oai.responses.create(model=MODEL, input=QUESTION)
        assert info.value.status_code == 503
    assert len(fake.requests_to(PATH)) == 3  # recorded all the same
    fake.set_up(MODEL)
    resp = await oai.responses.create(model=MODEL, input=QUESTION)
    assert resp.output_text == "after the outage"  # the queued fault survived the outage


async def test_request_errors_are_openai_shaped(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, fake, {"model": MODEL, "input": QUESTION}, headers={})
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"

    status, body = await post(http, fake, {"input": QUESTION})
    assert status == 400
    assert body["error"] == {
        "message": "Missing required parameter: 'model'.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "missing_required_parameter",
    }

    status, body = await post(http, fake, {"model": MODEL, "input": 3})
    assert (status, body["error"]["param"], body["error"]["code"]) == (400, "input", "invalid_type")

    status, body = await post(http, fake, {"model": MODEL, "input": "x", "tools": [{}]})
    assert (status, body["error"]["param"]) == (400, "tools[0].type")

    fake.script(MODEL, [{"kind": "context_length"}])
    status, body = await post(http, fake, {"model": MODEL, "input": QUESTION})
    assert status == 400
    assert (body["error"]["code"], body["error"]["param"]) == ("context_length_exceeded", "input")


async def test_prefill_switch_looks_at_the_last_input_item(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.reject_prefill(MODEL)
    prefilled: Any = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "The capital is"},
    ]
    with pytest.raises(openai.BadRequestError) as info:
        await oai.responses.create(model=MODEL, input=prefilled)
    assert (info.value.code, info.value.param) == ("prefill_not_supported", "input")
    assert (await oai.responses.create(model=MODEL, input=QUESTION)).output_text == REPLY


async def test_connection_and_body_faults(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.script(MODEL, [{"kind": "reset"}, {"kind": "malformed"}, {"kind": "hang", "seconds": 5}])
    with pytest.raises(openai.APIConnectionError):
        await oai.responses.create(model=MODEL, input=QUESTION)
    with pytest.raises(json.JSONDecodeError):
        await oai.responses.create(model=MODEL, input=QUESTION)
    with pytest.raises(openai.APITimeoutError):
        await oai.responses.create(model=MODEL, input=QUESTION, timeout=0.3)


async def test_content_filter_and_length_give_incomplete(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.script(
        MODEL,
        [
            {"kind": "content_filter", "mode": "finish_reason"},
            {"kind": "content", "content": "cut", "finish_reason": "length"},
        ],
    )
    resp = await oai.responses.create(model=MODEL, input=QUESTION)
    assert resp.status == "incomplete"
    assert resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "content_filter"
    assert resp.output == []
    async with oai.responses.stream(model=MODEL, input=QUESTION) as stream:
        types = [event.type async for event in stream]
    assert types[-1] == "response.incomplete"
    assert "response.completed" not in types


async def test_stream_truncated_ends_without_completed(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    fake.script(MODEL, [{"kind": "stream_truncated", "after_chunks": 1}] * 2)
    async with oai.responses.stream(model=MODEL, input=QUESTION) as stream:
        types = [event.type async for event in stream]  # the body ends cleanly
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            await stream.get_final_response()
    assert types == TEXT_EVENTS[:5]

    got = await stream_raw(http, fake)
    assert got.error is None
    assert got.types() == TEXT_EVENTS[:5]
    assert deltas(got.events()) == split_chunks(REPLY)[:1]


async def test_stream_cut_is_a_connection_error(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    fake.script(MODEL, [{"kind": "stream_cut", "after_chunks": 2}] * 2)
    seen: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async with oai.responses.stream(model=MODEL, input=QUESTION) as stream:
            async for event in stream:
                seen.append(event.type)
    assert seen == TEXT_EVENTS[:6]

    got = await stream_raw(http, fake)
    assert got.error is not None  # an incomplete chunked body
    assert deltas(got.events()) == split_chunks(REPLY)[:2]


async def test_stream_error_event(fake: FakeProviderThread, http: aiohttp.ClientSession) -> None:
    fake.script(MODEL, [{"kind": "stream_error_event", "after_chunks": 0}])
    got = await stream_raw(http, fake)
    assert got.error is None
    events = got.events()
    assert [e["type"] for e in events] == [*TEXT_EVENTS[:4], "error"]
    assert events[-1]["code"] == "server_error"
    assert events[-1]["message"]
    assert events[-1]["param"] is None


async def test_stream_error_event_through_the_sdk(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.script(MODEL, [{"kind": "stream_error_event", "after_chunks": 3}])
    async with oai.responses.stream(model=MODEL, input=QUESTION) as stream:
        events = [event async for event in stream]
    # after_chunks >= the number of deltas: the error takes the place of response.completed
    assert [e.type for e in events] == [*TEXT_EVENTS[:-1], "error"]
    error = events[-1]
    assert error.type == "error" and error.code == "server_error"


async def test_stream_malformed_event(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    fake.script(MODEL, [{"kind": "stream_malformed_event", "after_chunks": 1}] * 2)
    with pytest.raises(json.JSONDecodeError):
        async with oai.responses.stream(model=MODEL, input=QUESTION) as stream:
            [_ async for _ in stream]

    got = await stream_raw(http, fake)
    blocks = got.blocks()
    bad = [i for i, (_, data) in enumerate(blocks) if not data.endswith("}")]
    assert bad == [5]  # after the first delta
    assert blocks[5][0] == "response.output_text.delta"
    good = [json.loads(data)["type"] for i, (_, data) in enumerate(blocks) if i != 5]
    assert good == TEXT_EVENTS  # otherwise complete


async def test_stream_stall_and_first_chunk_delay(
    fake: FakeProviderThread, http: aiohttp.ClientSession
) -> None:
    fake.script(MODEL, [{"kind": "stream_stall", "after_chunks": 3, "seconds": 0.3}])
    started = time.monotonic()
    got = await stream_raw(http, fake)
    assert time.monotonic() - started >= 0.3
    assert got.error is None
    assert got.types() == TEXT_EVENTS[:-1]  # all but response.completed, silence, the end

    fake.script(MODEL, [{"kind": "first_chunk_delay", "seconds": 0.3}])
    body = {"model": MODEL, "input": QUESTION, "stream": True}
    started = time.monotonic()
    async with http.post(f"{fake.openai_base_url}/responses", json=body, headers=AUTH) as r:
        headers_at = time.monotonic() - started
        raw = (await r.read()).decode()
    assert headers_at < 0.25  # the headers go out at once
    assert time.monotonic() - started >= 0.3
    assert Streamed(raw, None).types() == TEXT_EVENTS


async def test_latency_applies(fake: FakeProviderThread, oai: openai.AsyncOpenAI) -> None:
    fake.latency = 0.2
    started = time.monotonic()
    await oai.responses.create(model=MODEL, input=QUESTION)
    assert time.monotonic() - started >= 0.2


async def test_hung_stream_is_released_on_disconnect(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    fake.script(MODEL, [{"kind": "stream_stall", "after_chunks": 0, "seconds": 30}])
    with pytest.raises(openai.APITimeoutError):
        async with oai.responses.stream(model=MODEL, input=QUESTION, timeout=0.3) as stream:
            [_ async for _ in stream]
    for _ in range(100):
        if fake.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert fake.in_flight == 0


# --- recording -------------------------------------------------------------------------------


async def test_recorded_request_has_the_fields_as_sent(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    tools: list[ToolParam] = [{"type": "web_search"}, WEATHER]
    resp = await oai.responses.create(
        model=MODEL,
        input=QUESTION,
        instructions="Answer in one word.",
        tools=tools,
        previous_response_id="resp_earlier",
        store=False,
        max_output_tokens=32,
        reasoning={"effort": "low"},
        text={"format": {"type": "text"}},
    )
    [recorded] = fake.requests_to(PATH)
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.body == {
        "model": MODEL,
        "input": QUESTION,
        "instructions": "Answer in one word.",
        "tools": [{"type": "web_search"}, WEATHER],
        "previous_response_id": "resp_earlier",
        "store": False,
        "max_output_tokens": 32,
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "text"}},
    }
    # ... and the response echoes them.
    assert resp.previous_response_id == "resp_earlier"
    assert resp.to_dict()["store"] is False
    assert resp.instructions == "Answer in one word."
    assert [t.type for t in resp.tools] == ["web_search", "function"]
    assert resp.max_output_tokens == 32
    assert resp.reasoning is not None and resp.reasoning.effort == "low"


async def test_json_text_format_wraps_the_reply(
    fake: FakeProviderThread, oai: openai.AsyncOpenAI
) -> None:
    resp = await oai.responses.create(
        model=MODEL, input=QUESTION, text={"format": {"type": "json_object"}}
    )
    assert json.loads(resp.output_text) == {"reply": REPLY}
