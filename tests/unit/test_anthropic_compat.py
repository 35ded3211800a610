"""The gateway's Anthropic Messages side: request parsing, message and SSE encoding.

The strongest checks run the official ``anthropic`` SDK against a tiny local
aiohttp app that serves what this module produced, so "Anthropic-compatible"
means "the SDK accepts and accumulates it", not just "looks right to us".
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import orjson
import pytest
from aiohttp import web

from polyroute.providers.anthropic_convert import to_messages_body
from polyroute.providers.base import ChatRequest
from polyroute.server.anthropic_compat import (
    MessagesCall,
    MessagesStreamEncoder,
    RequestError,
    anthropic_error_body,
    parse_messages_request,
    to_anthropic_message,
)

PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
    "2mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def full_request() -> dict[str, Any]:
    """An Anthropic request using every feature the gateway maps."""
    return {
        "model": "smart",
        "max_tokens": 512,
        "system": [
            {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Answer in French."},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these pictures?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Let me check the weather."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "And be quick."},
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, sunny"},
                ],
            },
        ],
        "tools": [
            {"name": "weather", "description": "Current weather", "input_schema": WEATHER_SCHEMA}
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "metadata": {"user_id": "u-42", "product_type": "support"},
        "stream": True,
    }


# ---------------------------------------------------------------- request


def test_full_request_converts_to_openai_form() -> None:
    call = parse_messages_request(full_request())
    assert call.model == "smart"
    assert call.stream is True
    assert call.product_type == "support"
    assert call.messages == [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "Be terse."},
                {"type": "text", "text": "Answer in French."},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these pictures?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check the weather.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": json.dumps({"city": "Paris"})},
                }
            ],
        },
        # The tool result comes first, right after the assistant turn that asked.
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, sunny"},
        {"role": "user", "content": "And be quick."},
    ]
    assert call.params == {
        "max_tokens": 512,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "parameters": WEATHER_SCHEMA,
                    "description": "Current weather",
                },
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "user": "u-42",
    }  # top_k is ignored: OpenAI has no equivalent


def test_round_trip_through_anthropic_convert_gives_an_equivalent_request() -> None:
    original = full_request()
    call = parse_messages_request(original)
    back = to_messages_body(
        ChatRequest(model=call.model, messages=call.messages, params=call.params), call.stream
    )
    # What cannot survive, by design: system joined to one string, plain strings
    # as text blocks, thinking dropped, tool_result before the user's text,
    # top_k and polyroute's metadata.product_type gone.
    expected = copy.deepcopy(original)
    expected["system"] = "Be terse.\nAnswer in French."
    del expected["top_k"]
    expected["metadata"] = {"user_id": "u-42"}
    expected["messages"][1]["content"].pop(0)
    expected["messages"][2]["content"].reverse()
    assert back == expected


def test_plain_strings_and_minimal_request() -> None:
    call = parse_messages_request(
        {
            "model": "m",
            "max_tokens": 1,
            "system": "sys",
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    assert call == MessagesCall(
        model="m",
        messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
        params={"max_tokens": 1},
        stream=False,
        product_type=None,
    )


def test_single_text_block_becomes_a_string_and_tool_only_turns() -> None:
    call = parse_messages_request(
        {
            "model": "m",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "one"}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [
                                {"type": "text", "text": "a"},
                                {"type": "text", "text": "b"},
                            ],
                        },
                        {"type": "tool_result", "tool_use_id": "t2"},
                    ],
                },
            ],
        }
    )
    assert call.messages == [
        {"role": "system", "content": "one"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "a\nb"},
        {"role": "tool", "tool_call_id": "t2", "content": ""},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "weather"},
            {"type": "function", "function": {"name": "weather"}},
        ),
    ],
)
def test_tool_choice_mapping(choice: dict[str, Any], expected: Any) -> None:
    body = full_request()
    body["tool_choice"] = choice
    params = parse_messages_request(body).params
    assert params["tool_choice"] == expected
    assert "parallel_tool_calls" not in params


def test_tool_choice_without_tools_is_dropped() -> None:
    body = full_request()
    del body["tools"]
    assert "tool_choice" not in parse_messages_request(body).params


def _bad(mutate: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    body = full_request()
    mutate(body)
    return body


def _block(body: dict[str, Any], msg: int, block: int) -> dict[str, Any]:
    content: dict[str, Any] = body["messages"][msg]["content"][block]
    return content


@pytest.mark.parametrize(
    ("mutate", "param"),
    [
        (lambda b: b.pop("model"), "model"),
        (lambda b: b.update(model=""), "model"),
        (lambda b: b.pop("messages"), "messages"),
        (lambda b: b.update(messages=[]), "messages"),
        (lambda b: b.pop("max_tokens"), "max_tokens"),
        (lambda b: b.update(max_tokens=0), "max_tokens"),
        (lambda b: b.update(max_tokens=-5), "max_tokens"),
        (lambda b: b.update(max_tokens="100"), "max_tokens"),
        (lambda b: b.update(max_tokens=True), "max_tokens"),
        (lambda b: b.update(temperature=1.5), "temperature"),
        (lambda b: b.update(temperature=-0.1), "temperature"),
        (lambda b: b.update(temperature="hot"), "temperature"),
        (lambda b: b.update(top_p=2), "top_p"),
        (lambda b: b.update(stop_sequences="END"), "stop_sequences"),
        (lambda b: b.update(metadata="x"), "metadata"),
        (lambda b: b.update(system=[{"type": "image"}]), "system[0].type"),
        (lambda b: b.update(system=5), "system"),
        (lambda b: b["messages"].append("hi"), "messages[3]"),
        (lambda b: b["messages"][2].update(role="system"), "messages[2].role"),
        (lambda b: b["messages"][0].update(content=[]), "messages[0].content"),
        (lambda b: b["messages"][0].update(content=None), "messages[0].content"),
        (lambda b: _block(b, 0, 0).update(type="video"), "messages[0].content[0].type"),
        (lambda b: _block(b, 0, 0).update(text=None), "messages[0].content[0].text"),
        (
            lambda b: _block(b, 0, 1).update(
                type="document", source={"type": "text", "media_type": "text/plain", "data": "x"}
            ),
            "messages[0].content[1].type",
        ),
        (
            lambda b: _block(b, 0, 1).update(source={"type": "file"}),
            "messages[0].content[1].source",
        ),
        (lambda b: _block(b, 0, 1).update(source=None), "messages[0].content[1].source"),
        (
            lambda b: _block(b, 0, 1)["source"].pop("media_type"),
            "messages[0].content[1].source.media_type",
        ),
        (lambda b: _block(b, 0, 1)["source"].pop("data"), "messages[0].content[1].source.data"),
        (lambda b: _block(b, 0, 2)["source"].pop("url"), "messages[0].content[2].source.url"),
        # Role-bound blocks in the wrong role.
        (lambda b: _block(b, 1, 2).update(type="tool_result"), "messages[1].content[2].type"),
        (lambda b: _block(b, 2, 1).update(type="tool_use"), "messages[2].content[1].type"),
        (lambda b: _block(b, 1, 1).update(type="image"), "messages[1].content[1].type"),
        (lambda b: _block(b, 1, 2).pop("id"), "messages[1].content[2].id"),
        (lambda b: _block(b, 1, 2).pop("name"), "messages[1].content[2].name"),
        (lambda b: _block(b, 1, 2).update(input="x"), "messages[1].content[2].input"),
        (lambda b: _block(b, 2, 1).pop("tool_use_id"), "messages[2].content[1].tool_use_id"),
        (
            lambda b: _block(b, 2, 1).update(content=[{"type": "image", "source": {}}]),
            "messages[2].content[1].content[0].type",
        ),
        (lambda b: _block(b, 2, 1).update(content=5), "messages[2].content[1].content"),
        (lambda b: b.update(tools={"name": "x"}), "tools"),
        (lambda b: b["tools"].append("x"), "tools[1]"),
        (lambda b: b["tools"][0].pop("name"), "tools[0].name"),
        (lambda b: b["tools"][0].pop("input_schema"), "tools[0].input_schema"),
        (
            lambda b: b["tools"].append({"type": "web_search_20250305", "name": "web_search"}),
            "tools[1].type",
        ),
        (lambda b: b.update(tool_choice={"type": "tool"}), "tool_choice"),
        (lambda b: b.update(tool_choice="auto"), "tool_choice"),
    ],
)
def test_request_errors_name_the_param(mutate: Callable[[dict[str, Any]], Any], param: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_messages_request(_bad(mutate))
    assert info.value.param == param
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{param}: ")


# ---------------------------------------------------------------- response


def completion(
    content: Any = "Hello!",
    finish: str | None = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage or {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }


def weather_call(call_id: str = "call_1", args: Any = '{"city": "Paris"}') -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "weather", "arguments": args}}


def test_text_completion_to_message() -> None:
    assert to_anthropic_message(completion(), "openai/gpt-x") == {
        "id": "msg_chatcmpl-abc",
        "type": "message",
        "role": "assistant",
        "model": "openai/gpt-x",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 5},
    }


def test_tool_call_completion_to_message() -> None:
    oai = completion(
        content="Checking.",
        finish="tool_calls",
        tool_calls=[weather_call(), weather_call("call_2", ""), weather_call("call_3", {"x": 1})],
    )
    msg = to_anthropic_message(oai, "m")
    assert msg["stop_reason"] == "tool_use"
    assert msg["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "weather", "input": {}},
        {"type": "tool_use", "id": "call_3", "name": "weather", "input": {"x": 1}},
    ]


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
        ("something_new", "end_turn"),
    ],
)
def test_finish_reasons(finish: str | None, stop_reason: str) -> None:
    assert to_anthropic_message(completion(finish=finish), "m")["stop_reason"] == stop_reason


def test_message_edge_cases() -> None:
    # An empty answer has no content blocks (Anthropic rejects empty text blocks).
    assert to_anthropic_message(completion(content=None), "m")["content"] == []
    assert to_anthropic_message(completion(content=""), "m")["content"] == []
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert to_anthropic_message(completion(content=parts), "m")["content"][0]["text"] == "ab"
    refused = completion(content=None, finish="content_filter")
    refused["choices"][0]["message"]["refusal"] = "I can't help with that."
    msg = to_anthropic_message(refused, "m")
    assert msg["content"] == [{"type": "text", "text": "I can't help with that."}]
    # An id that already is Anthropic's is kept; a missing one is generated.
    anthropic_id = {**completion(), "id": "msg_01XYZ"}
    assert to_anthropic_message(anthropic_id, "m")["id"] == "msg_01XYZ"
    assert to_anthropic_message({**completion(), "id": ""}, "m")["id"].startswith("msg_")
    # OpenAI's prompt_tokens include cache reads; Anthropic's input_tokens do not.
    cached = {
        "prompt_tokens": 100,
        "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 80},
    }
    assert to_anthropic_message(completion(usage=cached), "m")["usage"] == {
        "input_tokens": 20,
        "output_tokens": 3,
        "cache_read_input_tokens": 80,
    }


@pytest.mark.parametrize("args", ["{not json", "[1, 2]"])
def test_tool_arguments_that_are_not_an_object_raise(args: str) -> None:
    with pytest.raises(ValueError):
        to_anthropic_message(completion(tool_calls=[weather_call(args=args)]), "m")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_bodies(status: int, kind: str) -> None:
    assert anthropic_error_body(status, "boom") == {
        "type": "error",
        "error": {"type": kind, "message": "boom"},
    }


# ---------------------------------------------------------------- stream


def chunk(
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    role: bool = False,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    out: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        out["choices"] = []
        out["usage"] = usage
    return out


def tool_delta(index: int, call_id: str | None, name: str | None, args: str) -> dict[str, Any]:
    fn: dict[str, Any] = {"arguments": args}
    call: dict[str, Any] = {"index": index, "function": fn}
    if call_id:
        call.update(id=call_id, type="function")
        fn["name"] = name
    return call


TEXT_CHUNKS = [
    chunk("", role=True),
    chunk("Hel"),
    chunk("lo!"),
    chunk(finish="stop"),
    chunk(usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}),
]
TOOL_CHUNKS = [
    chunk("", role=True),
    chunk("Let me look."),
    chunk(tool_calls=[tool_delta(0, "call_1", "weather", "")]),
    chunk(tool_calls=[tool_delta(0, None, None, '{"city": ')]),
    chunk(tool_calls=[tool_delta(0, None, None, '"Paris"}')]),
    chunk(tool_calls=[tool_delta(1, "call_2", "weather", '{"city": "Oslo"}')]),
    chunk(finish="tool_calls"),
    chunk(usage={"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}),
]


def encode(chunks: list[dict[str, Any]], usage: tuple[int, int] | None = None) -> bytes:
    enc = MessagesStreamEncoder("openai/gpt-x", "msg_1", input_tokens=7)
    return enc.start() + b"".join(enc.feed(c) for c in chunks) + enc.finish(usage)


def parse_sse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    assert data.endswith(b"\n\n")
    for raw in data.decode().split("\n\n")[:-1]:
        name_line, data_line = raw.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        name, payload = name_line[7:], orjson.loads(data_line[6:])
        assert payload["type"] == name  # the event name always matches the data's type
        events.append((name, payload))
    return events


def test_text_stream_event_sequence() -> None:
    events = parse_sse(encode(TEXT_CHUNKS))
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "openai/gpt-x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 7, "output_tokens": 0},
    }
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert [e[1]["delta"] for e in events[3:5]] == [
        {"type": "text_delta", "text": "Hel"},
        {"type": "text_delta", "text": "lo!"},
    ]
    assert events[5][1] == {"type": "content_block_stop", "index": 0}
    assert events[6][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": 9, "output_tokens": 2},
    }


def test_tool_stream_event_sequence() -> None:
    events = parse_sse(encode(TOOL_CHUNKS))
    summary = [(n, e.get("index")) for n, e in events]
    assert summary == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[5][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "input": {},
        "name": "weather",
    }
    args = "".join(
        e["delta"]["partial_json"] for n, e in events if e.get("index") == 1 and n.endswith("delta")
    )
    assert json.loads(args) == {"city": "Paris"}
    assert events[10][1]["delta"] == {
        "type": "input_json_delta",
        "partial_json": '{"city": "Oslo"}',
    }
    assert events[12][1]["delta"]["stop_reason"] == "tool_use"


def test_finish_usage_overrides_and_empty_stream() -> None:
    events = parse_sse(encode([chunk(finish="length")], usage=(100, 50)))
    assert [n for n, _ in events] == ["message_start", "ping", "message_delta", "message_stop"]
    assert events[2][1]["delta"]["stop_reason"] == "max_tokens"
    assert events[2][1]["usage"] == {"input_tokens": 100, "output_tokens": 50}


def test_text_after_a_tool_call_opens_a_new_block() -> None:
    chunks = [chunk(tool_calls=[tool_delta(0, "c1", "f", "{}")]), chunk("after")]
    events = parse_sse(encode(chunks))
    starts = [e["content_block"]["type"] for n, e in events if n == "content_block_start"]
    assert starts == ["tool_use", "text"]


def test_error_ends_the_stream() -> None:
    enc = MessagesStreamEncoder("m", "msg_1")
    enc.start()
    enc.feed(chunk("partial"))
    events = parse_sse(enc.error("overloaded_error", "Overloaded"))
    # No content_block_stop first: an error ends the stream where it stands.
    assert events == [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    ]
    assert enc.feed(chunk("more")) == b""
    assert enc.finish() == b""
    assert enc.error("api_error", "x") == b""


# ---------------------------------------------------------------- the official SDK


class FakeAnthropic:
    """Serves canned bytes at ``POST /v1/messages`` and records what the SDK sent."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b""
        self.content_type = "application/json"
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        return web.Response(status=self.status, body=self.body, content_type=self.content_type)

    def serve_json(self, body: dict[str, Any], status: int = 200) -> None:
        self.status, self.body, self.content_type = status, orjson.dumps(body), "application/json"

    def serve_sse(self, body: bytes) -> None:
        self.status, self.body, self.content_type = 200, body, "text/event-stream"


@pytest.fixture
async def sdk() -> AsyncIterator[tuple[anthropic.AsyncAnthropic, FakeAnthropic]]:
    fake = FakeAnthropic()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = anthropic.AsyncAnthropic(
        base_url=f"http://127.0.0.1:{port}", api_key="x", max_retries=0
    )
    try:
        yield client, fake
    finally:
        await client.close()
        await runner.cleanup()


HI: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]


async def test_sdk_accumulates_a_streamed_text_answer(
    sdk: tuple[anthropic.AsyncAnthropic, FakeAnthropic],
) -> None:
    client, fake = sdk
    fake.serve_sse(encode(TEXT_CHUNKS))
    async with client.messages.stream(model="smart", max_tokens=64, messages=HI) as stream:
        texts = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert texts == ["Hel", "lo!"]
    assert final.id == "msg_1"
    assert final.model == "openai/gpt-x"
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == "Hello!"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 2)
    # What the SDK sent parses back into the call the router would serve.
    sent = parse_messages_request(fake.requests[0])
    assert sent.stream is True and sent.messages == [{"role": "user", "content": "hi"}]


async def test_sdk_accumulates_streamed_tool_calls(
    sdk: tuple[anthropic.AsyncAnthropic, FakeAnthropic],
) -> None:
    client, fake = sdk
    fake.serve_sse(encode(TOOL_CHUNKS))
    async with client.messages.stream(model="smart", max_tokens=64, messages=HI) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[0].text == "Let me look."  # type: ignore[union-attr]
    calls = [(b.id, b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert calls == [
        ("call_1", "weather", {"city": "Paris"}),
        ("call_2", "weather", {"city": "Oslo"}),
    ]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 20)


async def test_sdk_raises_on_a_stream_error_event(
    sdk: tuple[anthropic.AsyncAnthropic, FakeAnthropic],
) -> None:
    client, fake = sdk
    enc = MessagesStreamEncoder("m", "msg_1")
    fake.serve_sse(
        enc.start() + enc.feed(chunk("par")) + enc.error("overloaded_error", "Overloaded")
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model="smart", max_tokens=64, messages=HI) as stream:
            await stream.get_final_message()
    assert info.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


async def test_sdk_parses_a_non_streamed_message(
    sdk: tuple[anthropic.AsyncAnthropic, FakeAnthropic],
) -> None:
    client, fake = sdk
    oai = completion(content="Checking.", finish="tool_calls", tool_calls=[weather_call()])
    fake.serve_json(to_anthropic_message(oai, "openai/gpt-x"))
    msg = await client.messages.create(model="smart", max_tokens=64, messages=HI)
    assert msg.id == "msg_chatcmpl-abc"
    assert msg.model == "openai/gpt-x"
    assert msg.stop_reason == "tool_use"
    assert msg.content[0].type == "text" and msg.content[0].text == "Checking."
    tool = msg.content[1]
    assert tool.type == "tool_use"
    assert (tool.id, tool.name, tool.input) == ("call_1", "weather", {"city": "Paris"})
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (12, 5)
    assert fake.headers[0].get("Authorization") == "Bearer x"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (404, anthropic.NotFoundError),
        (429, anthropic.RateLimitError),
        (529, anthropic.InternalServerError),
    ],
)
async def test_sdk_maps_error_bodies(
    sdk: tuple[anthropic.AsyncAnthropic, FakeAnthropic],
    status: int,
    error_class: type[anthropic.APIStatusError],
) -> None:
    client, fake = sdk
    fake.serve_json(anthropic_error_body(status, "nope"), status=status)
    with pytest.raises(error_class) as info:
        await client.messages.create(model="smart", max_tokens=64, messages=HI)
    assert info.value.status_code == status
    assert info.value.body == anthropic_error_body(status, "nope")
