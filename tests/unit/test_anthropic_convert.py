"""OpenAI <-> Anthropic Messages translation (pure functions, no HTTP)."""

from __future__ import annotations

import importlib
from typing import Any

import orjson
import pytest

from polyroute.providers.anthropic_convert import (
    DEFAULT_MAX_TOKENS,
    ConversionError,
    StreamConverter,
    to_chat_completion,
    to_messages_body,
)
from polyroute.providers.base import ChatRequest

# A 1x1 PNG.
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
    "2mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def body(messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return to_messages_body(ChatRequest(model="claude-x", messages=messages, params=params), False)


def user(text: Any) -> dict[str, Any]:
    return {"role": "user", "content": text}


# ---------------------------------------------------------------- messages


def test_minimal_body_has_model_default_max_tokens_and_text_block() -> None:
    b = body([user("hi")])
    assert b == {
        "model": "claude-x",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    stream_body = to_messages_body(ChatRequest(model="m", messages=[user("hi")]), stream=True)
    assert stream_body["stream"] is True


def test_system_and_developer_messages_become_top_level_system() -> None:
    b = body(
        [
            {"role": "system", "content": "Be terse."},
            user("a"),
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "assistant", "content": "b"},
            user("c"),
        ]
    )
    assert b["system"] == "Be terse.\n\nAnswer in French."
    assert [m["role"] for m in b["messages"]] == ["user", "assistant", "user"]


def test_no_system_key_without_system_messages() -> None:
    assert "system" not in body([user("x")])


def test_system_with_image_is_refused() -> None:
    part = {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    with pytest.raises(ConversionError, match="text only"):
        body([{"role": "system", "content": [part]}, user("x")])


def test_multipart_user_with_base64_and_url_images() -> None:
    content = [
        {"type": "text", "text": "what is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {
            "type": "image_url",
            "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
        },
    ]
    blocks = body([{"role": "user", "content": content}])["messages"][0]["content"]
    assert blocks == [
        {"type": "text", "text": "what is in these?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    "url", ["data:image/png,notbase64", "data:;base64,AAAA", "ftp://x/y.png", "file:///etc/passwd"]
)
def test_bad_image_urls_are_refused(url: str) -> None:
    with pytest.raises(ConversionError):
        body([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])


def test_unsupported_content_part_is_refused_not_dropped() -> None:
    part = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(ConversionError, match="input_audio"):
        body([{"role": "user", "content": [part]}])


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ConversionError, match="function"):
        body([user("x"), {"role": "function", "name": "f", "content": "1"}])


def test_consecutive_same_role_messages_are_merged() -> None:
    b = body([user("a"), user("b"), {"role": "assistant", "content": "c"}, user("d")])
    assert b["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}]},
        {"role": "user", "content": [{"type": "text", "text": "d"}]},
    ]


def test_empty_messages_are_dropped_and_neighbours_merged() -> None:
    blank = [{"type": "text", "text": " \n"}]
    b = body([user("a"), {"role": "assistant", "content": ""}, user("b"), user("  "), user(blank)])
    assert b["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_final_assistant_prefill_loses_trailing_whitespace() -> None:
    b = body([user("a"), {"role": "assistant", "content": "The answer is "}])
    assert b["messages"][-1]["content"] == [{"type": "text", "text": "The answer is"}]
    b = body([user("a"), {"role": "assistant", "content": "  "}])
    assert [m["role"] for m in b["messages"]] == ["user"]


TOOL_CALLS = [
    {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    },
    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
]


def tool_conversation() -> list[dict[str, Any]]:
    return [
        user("weather and time in Paris?"),
        {"role": "assistant", "content": "Let me check.", "tool_calls": TOOL_CALLS},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "14:05"}]},
        user("thanks, and tomorrow?"),
    ]


def test_assistant_tool_calls_become_tool_use_blocks() -> None:
    assistant = body(tool_conversation())["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
        ],
    }


def test_tool_messages_become_one_user_turn_with_results_first() -> None:
    messages = body(tool_conversation())["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, cloudy"},
        {
            "type": "tool_result",
            "tool_use_id": "call_2",
            "content": [{"type": "text", "text": "14:05"}],
        },
        {"type": "text", "text": "thanks, and tomorrow?"},
    ]


def test_tool_results_move_before_text_of_the_same_turn() -> None:
    msgs = [
        user("x"),
        {"role": "assistant", "content": None, "tool_calls": TOOL_CALLS[:1]},
        user("also note this"),
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    ]
    last = body(msgs)["messages"][-1]["content"]
    assert [b["type"] for b in last] == ["tool_result", "text"]


def test_tool_message_without_id_is_refused() -> None:
    with pytest.raises(ConversionError, match="tool_call_id"):
        body([user("x"), {"role": "tool", "content": "1"}])


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_invalid_tool_arguments_are_refused(arguments: str) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
    with pytest.raises(ConversionError):
        body([user("x"), {"role": "assistant", "content": None, "tool_calls": [call]}])


def test_tool_call_round_trip_through_a_response() -> None:
    """tool_use in an Anthropic answer -> OpenAI tool_calls -> back to the same tool_use."""
    msg = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, {"b": None}]}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    message = to_chat_completion(msg, "claude-x")["choices"][0]["message"]
    again = body([user("x"), message, {"role": "tool", "tool_call_id": "toolu_1", "content": "1"}])
    assert again["messages"][1]["content"] == msg["content"]


# ---------------------------------------------------------------- parameters


def test_max_tokens_sources() -> None:
    assert body([user("x")], max_tokens=10)["max_tokens"] == 10
    assert body([user("x")], max_completion_tokens=20)["max_tokens"] == 20
    assert body([user("x")], max_tokens=None)["max_tokens"] == DEFAULT_MAX_TOKENS


@pytest.mark.parametrize(
    ("given", "sent"), [(0, 0.0), (0.7, 0.7), (1.0, 1.0), (1.5, 1.0), (2, 1.0)]
)
def test_temperature_is_clamped_to_anthropic_range(given: float, sent: float) -> None:
    assert body([user("x")], temperature=given)["temperature"] == sent


def test_top_p_and_stop_sequences() -> None:
    b = body([user("x")], top_p=0.9, stop="END")
    assert b["top_p"] == 0.9
    assert b["stop_sequences"] == ["END"]
    assert body([user("x")], stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    assert "stop_sequences" not in body([user("x")], stop=[])


def test_openai_only_and_unknown_params_are_dropped() -> None:
    b = body(
        [user("x")],
        n=1,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        seed=7,
        logprobs=True,
        some_future_param=True,
    )
    assert set(b) == {"model", "messages", "max_tokens"}


def test_response_format_becomes_a_forced_tool() -> None:
    b = body([user("x")], response_format={"type": "json_object"})
    assert b["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert b["tools"][0]["input_schema"] == {"type": "object"}
    with_tools = body([user("x")], response_format={"type": "json_object"}, tools=[WEATHER_TOOL])
    assert [t["name"] for t in with_tools["tools"]] == ["get_weather"]  # the caller's tools win


def test_n_above_one_is_refused() -> None:
    with pytest.raises(ConversionError, match="n must be 1"):
        body([user("x")], n=2)


def test_user_becomes_metadata_user_id() -> None:
    assert body([user("x")], user="u-42")["metadata"] == {"user_id": "u-42"}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}


def test_function_tools_become_anthropic_tools() -> None:
    bare = {"type": "function", "function": {"name": "ping"}}
    b = body([user("x")], tools=[WEATHER_TOOL, bare])
    assert b["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert b["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice_mapping(choice: Any, expected: dict[str, Any]) -> None:
    assert body([user("x")], tools=[WEATHER_TOOL], tool_choice=choice)["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_tool_use() -> None:
    b = body([user("x")], tools=[WEATHER_TOOL], tool_choice="required", parallel_tool_calls=False)
    assert b["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "tool_choice" not in body([user("x")], tool_choice="auto")


def test_bad_tool_choice_and_non_function_tools_are_refused() -> None:
    with pytest.raises(ConversionError):
        body([user("x")], tools=[WEATHER_TOOL], tool_choice="sometimes")
    with pytest.raises(ConversionError):
        body([user("x")], tools=[{"type": "custom", "custom": {"name": "x"}}])


# ---------------------------------------------------------------- responses


def anthropic_message(**over: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-x-20250101",
        "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    msg.update(over)
    return msg


def test_to_chat_completion_text_answer() -> None:
    out = to_chat_completion(anthropic_message(), "claude-x", created=123)
    assert out == {
        "id": "msg_01",
        "object": "chat.completion",
        "created": 123,
        "model": "claude-x-20250101",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello world", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def test_to_chat_completion_tool_use_only() -> None:
    msg = anthropic_message(
        content=[
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"x": 1}},
        ],
        stop_reason="tool_use",
    )
    choice = to_chat_completion(msg, "claude-x")["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "toolu_9", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}
    ]
    assert orjson.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"x": 1}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("pause_turn", "stop"),
        ("something_new", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reason_mapping(stop_reason: str | None, finish: str) -> None:
    out = to_chat_completion(anthropic_message(stop_reason=stop_reason), "m")
    assert out["choices"][0]["finish_reason"] == finish


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 200,
        "output_tokens": 7,
    }
    out = to_chat_completion(anthropic_message(usage=usage), "m")
    assert out["usage"] == {
        "prompt_tokens": 1210,
        "completion_tokens": 7,
        "total_tokens": 1217,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 200},
    }


def test_model_falls_back_to_the_requested_name() -> None:
    msg = anthropic_message()
    del msg["model"]
    assert to_chat_completion(msg, "claude-asked")["model"] == "claude-asked"


def _spec_validator() -> Any:
    # tests/spec.py is written separately; depending on sys.path it imports as either name.
    for name in ("tests.spec", "spec"):
        try:
            return importlib.import_module(name).validate_against_spec
        except (ImportError, AttributeError):
            continue
    pytest.skip("tests/spec.py with validate_against_spec is not available")


@pytest.mark.parametrize(
    "msg",
    [
        anthropic_message(),
        anthropic_message(
            content=[{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}],
            stop_reason="tool_use",
            usage={"input_tokens": 1, "cache_read_input_tokens": 2, "output_tokens": 3},
        ),
    ],
)
def test_to_chat_completion_matches_openai_spec(msg: dict[str, Any]) -> None:
    validate = _spec_validator()
    validate(to_chat_completion(msg, "claude-x"), "CreateChatCompletionResponse")


# ---------------------------------------------------------------- streaming


def stream_events() -> list[dict[str, Any]]:
    """A text block then a tool_use block, as the Messages API streams them."""
    return [
        {
            "type": "message_start",
            "message": {
                "id": "msg_s",
                "type": "message",
                "role": "assistant",
                "model": "claude-x-1",
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 25, "cache_read_input_tokens": 5, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a": '},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "1}"},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 12},
        },
        {"type": "message_stop"},
    ]


def test_stream_events_convert_to_openai_chunks() -> None:
    conv = StreamConverter("claude-x", created=99)
    chunks = [c for c in (conv.feed(e) for e in stream_events()) if c is not None]
    assert conv.done
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all((c["id"], c["model"], c["created"]) == ("msg_s", "claude-x-1", 99) for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {"content": "!"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
        {},
    ]
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "tool_calls"
    assert last["usage"] == {
        "prompt_tokens": 30,
        "completion_tokens": 12,
        "total_tokens": 42,
        "prompt_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 0},
    }
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def tool_index(chunk: dict[str, Any] | None) -> int:
    assert chunk is not None
    index: int = chunk["choices"][0]["delta"]["tool_calls"][0]["index"]
    return index


def test_stream_tool_indexes_count_only_tool_blocks() -> None:
    # Anthropic numbers every content block; OpenAI numbers tool calls from 0.
    conv = StreamConverter("m")
    conv.feed(stream_events()[0])
    tool = {"type": "tool_use", "name": "f", "input": {}}
    assert tool_index(conv.feed(block_start(0, {**tool, "id": "t0"}))) == 0
    assert conv.feed(block_start(1, {"type": "text", "text": ""})) is None
    assert tool_index(conv.feed(block_start(2, {**tool, "id": "t2"}))) == 1
    args = {"type": "input_json_delta", "partial_json": "{}"}
    assert tool_index(conv.feed(block_delta(2, args))) == 1
    assert tool_index(conv.feed(block_delta(0, args))) == 0


def test_stream_ignores_thinking_and_unknown_events() -> None:
    conv = StreamConverter("m")
    ignored = [
        block_start(0, {"type": "thinking", "thinking": ""}),
        block_delta(0, {"type": "thinking_delta", "thinking": "x"}),
        block_delta(0, {"type": "signature_delta", "signature": "s"}),
        {"type": "content_block_stop", "index": 0},
        {"type": "some_future_event"},
    ]
    assert [conv.feed(e) for e in ignored] == [None] * len(ignored)
    assert not conv.done
    assert conv.feed({"type": "message_stop"}) is None
    assert conv.done


def test_stream_message_delta_with_cumulative_input_usage() -> None:
    conv = StreamConverter("m")
    conv.feed(stream_events()[0])
    chunk = conv.feed(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"input_tokens": 40, "output_tokens": 3, "cache_read_input_tokens": None},
        }
    )
    assert chunk is not None
    assert chunk["choices"][0]["finish_reason"] == "length"
    # input_tokens replaced by the cumulative figure; the earlier cache read (5) still counts.
    assert chunk["usage"]["prompt_tokens"] == 45
    assert chunk["usage"]["completion_tokens"] == 3


def test_stream_chunks_match_openai_spec() -> None:
    validate = _spec_validator()
    conv = StreamConverter("claude-x")
    checked = 0
    for event in stream_events():
        chunk = conv.feed(event)
        if chunk is not None:
            validate(chunk, "CreateChatCompletionStreamResponse")
            checked += 1
    assert checked >= 2  # a content chunk and the final one at least: not a vacuous pass
