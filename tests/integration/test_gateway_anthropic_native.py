"""``/v1/messages`` to an Anthropic-wire upstream: forwarded as the client sent it.

Only ``model`` is replaced; ``anthropic-beta`` / ``anthropic-version`` pass
through; the answer (plain or streamed events) is relayed as it came.  A route
whose candidate speaks another wire still gets the translation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import pytest

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV
from tests.integration.test_gateway_openai import gateway_config

ANTHROPIC_ONLY: dict[str, Any] = {
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "metadata": {"user_id": "u-1"},
}
DOC_MESSAGE = {
    "role": "user",
    "content": [
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."},
            "citations": {"enabled": True},
        },
        {"type": "text", "text": "What colour is the sky?", "cache_control": {"type": "ephemeral"}},
    ],
}


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    cfg = gateway_config(fake_provider)
    cfg["routes"]["c1-a"] = {"models": ["c1", "a"]}
    cfg["routes"]["a-c1"] = {"models": ["a", "c1"]}
    with GatewayServer(cfg, ENV) as server:
        yield server


def client(gw: GatewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gw.url,
        api_key="x",
        max_retries=0,
        default_headers={"anthropic-beta": "prompt-caching-2024-07-31,pdfs-2024-09-25"},
    )


def test_plain_request_is_forwarded_as_sent(gw: GatewayServer, fake: FakeProviderThread) -> None:
    msg = client(gw).messages.create(
        model="c1", max_tokens=2000, messages=[DOC_MESSAGE], **ANTHROPIC_ONLY
    )
    assert msg.content[0].type == "text" and msg.content[0].text.startswith("fake reply")
    [sent] = fake.requests_to("/v1/messages")
    assert sent.body["model"] == "claude-c1"
    for key, value in ANTHROPIC_ONLY.items():
        assert sent.body[key] == value  # untouched: no translation round trip
    assert sent.body["messages"] == [DOC_MESSAGE]
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31,pdfs-2024-09-25"
    assert sent.headers["x-api-key"] != "x"  # the upstream's key, not the client's


def test_plain_answer_is_relayed_as_it_came(gw: GatewayServer, fake: FakeProviderThread) -> None:
    r = httpx.post(
        gw.url + "/v1/messages",
        json={"model": "c1", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]},
        headers={"anthropic-version": "2023-06-01"},
    )
    body = r.json()
    assert r.status_code == 200 and body["model"] == "claude-c1"  # the upstream's own body
    assert body["id"].startswith("msg_") and body["usage"]["input_tokens"] > 0


def test_stream_events_are_relayed(gw: GatewayServer, fake: FakeProviderThread) -> None:
    with client(gw).messages.stream(
        model="c1", max_tokens=2000, messages=[DOC_MESSAGE], **ANTHROPIC_ONLY
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds.count("message_start") == 1
    assert "message_stop" in kinds
    assert final.content[0].type == "text" and final.stop_reason == "end_turn"
    [sent] = fake.requests_to("/v1/messages")
    assert sent.body["stream"] is True and sent.body["thinking"] == ANTHROPIC_ONLY["thinking"]


def test_relayed_stream_continued_by_another_wire(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    fake.script("claude-c1", [{"kind": "stream_cut", "after_chunks": 2}])
    with client(gw).messages.stream(
        model="c1-a", max_tokens=200, messages=[{"role": "user", "content": "tell me"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    text = "".join(b.text for b in final.content if b.type == "text")
    assert kinds.count("message_start") == 1 and kinds[-1] == "message_stop"
    assert text.startswith("fake reply from claude-c1") and "fake reply from model-a" in text
    assert final.stop_reason == "end_turn"


def test_other_wires_still_get_the_translation(gw: GatewayServer, fake: FakeProviderThread) -> None:
    msg = client(gw).messages.create(
        model="a", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.content[0].text.startswith("fake reply from model-a")
    [sent] = fake.requests_to("/v1/chat/completions")
    assert sent.body["messages"] == [{"role": "user", "content": "hi"}]


def test_untranslatable_request_goes_only_where_it_is_sent_as_is(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    # A route [a (OpenAI wire), c1 (Anthropic)]: documents and images inside tool
    # results have no OpenAI form, so a is skipped and c1 gets the body as sent.
    tool_turns = [
        {"role": "user", "content": "Look"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "is_error": False,
                    "content": [
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": "iVBORw0KGgo=",
                            },
                        }
                    ],
                },
                DOC_MESSAGE["content"][0],
                {"type": "text", "text": "What do you see?"},
            ],
        },
    ]
    r = httpx.post(
        gw.url + "/v1/messages",
        json={"model": "a-c1", "max_tokens": 100, "messages": tool_turns},
        headers={"x-polyroute-cache": "off"},
    )
    assert r.status_code == 200, r.text
    assert fake.requests_to("/v1/chat/completions") == []
    [sent] = fake.requests_to("/v1/messages")
    assert sent.body["messages"] == tool_turns
    assert r.headers["x-polyroute-model"] == "c1"
    only_openai = httpx.post(
        gw.url + "/v1/messages",
        json={"model": "a", "max_tokens": 100, "messages": [DOC_MESSAGE]},
    )
    assert only_openai.status_code >= 400 and "untranslatable" in only_openai.text


def test_translated_stream_reports_input_tokens_at_message_start(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    with client(gw).messages.stream(
        model="a", max_tokens=50, messages=[{"role": "user", "content": "count these words"}]
    ) as stream:
        events = list(stream)
    start = events[0]
    assert start.type == "message_start" and start.message.usage.input_tokens > 0


def test_openai_fields_polyroute_does_not_read_are_forwarded(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    import openai

    oa = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    oa.chat.completions.create(
        model="a",
        messages=[{"role": "user", "content": "hi"}],
        metadata={"team": "drums"},
        store=True,
        logprobs=True,
        top_logprobs=2,
        prediction={"type": "content", "content": "hello"},
    )
    [sent] = fake.requests_to("/v1/chat/completions")
    assert sent.body["metadata"] == {"team": "drums"} and sent.body["store"] is True
    assert sent.body["logprobs"] is True and sent.body["top_logprobs"] == 2
    assert sent.body["prediction"] == {"type": "content", "content": "hello"}
