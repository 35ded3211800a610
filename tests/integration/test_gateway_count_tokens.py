"""``POST /v1/messages/count_tokens`` through the official anthropic SDK.

An Anthropic-wire candidate counts upstream (the fake answers ceil(chars / 4));
any other is counted by polyroute's tokenizer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import pytest

from polyroute.server.anthropic_compat import parse_messages_request
from polyroute.tokens import count_messages, count_text
from tests.fakeprovider import FakeProviderThread, count_input_tokens
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ANTHROPIC_KEY, ENV
from tests.integration.test_gateway_openai import gateway_config

PATH = "/v1/messages/count_tokens"
MESSAGES: list[Any] = [
    {"role": "user", "content": "What is the weather like in Paris today?"},
    {"role": "assistant", "content": "Let me check."},
    {"role": "user", "content": [{"type": "text", "text": "Please be brief."}]},
]
SYSTEM = "You are a weather assistant."
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Current weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def config(fake: FakeProviderThread) -> dict[str, Any]:
    cfg = gateway_config(fake)
    cfg["routes"]["claude"] = {"models": ["c1", "a"]}
    cfg["routes"]["a_then_claude"] = {"models": ["a", "c1"]}
    cfg["roles"] = {"writer": {"models": ["a"], "by_product": {"claude": ["c1"]}}}
    return cfg


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    with GatewayServer(config(fake_provider), ENV) as server:
        yield server


@pytest.fixture
def claude(gw: GatewayServer, fake: FakeProviderThread) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="client-key-xyz", max_retries=0)


def _upstream_calls(fake: FakeProviderThread) -> list[Any]:
    return fake.requests_to(PATH)


def test_fake_counts_characters_over_four(fake: FakeProviderThread) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "abcdefgh"}], "system": "xy"}
    assert count_input_tokens(body) == math.ceil(10 / 4)
    r = httpx.post(
        fake.base_url + PATH,
        json=body,
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 200 and r.json() == {"input_tokens": 3}
    assert fake.requests_to(PATH)[-1].body == body


def test_anthropic_candidate_counts_upstream(
    claude: anthropic.Anthropic, fake: FakeProviderThread
) -> None:
    raw = claude.messages.with_raw_response.count_tokens(
        model="claude",
        messages=MESSAGES,
        system=SYSTEM,
        tools=TOOLS,
        extra_headers={"anthropic-beta": "token-counting-2024-11-01"},
    )
    sent = {"model": "claude-c1", "messages": MESSAGES, "system": SYSTEM, "tools": TOOLS}
    assert raw.parse().input_tokens == count_input_tokens(sent)
    assert raw.headers["x-polyroute-token-count"] == "upstream"
    assert raw.headers["x-polyroute-model"] == "c1"
    assert raw.headers["x-polyroute-provider"] == "fake-anthropic"
    assert raw.headers["x-polyroute-upstream-request-id"].startswith("req_")

    [up] = _upstream_calls(fake)
    # The body as the client sent it, with the provider's model name.
    assert up.body["model"] == "claude-c1"
    assert up.body["messages"] == MESSAGES
    assert up.body["system"] == SYSTEM
    assert up.body["tools"] == TOOLS
    # The provider's key, the client's version and beta header.
    assert up.headers["x-api-key"] == ANTHROPIC_KEY
    assert up.headers["anthropic-beta"] == "token-counting-2024-11-01"
    assert up.headers["anthropic-version"] == raw.http_request.headers["anthropic-version"]
    assert "client-key-xyz" not in str(up.headers)  # the gateway key stays at the gateway
    assert not fake.requests_to("/v1/messages")  # counting is not a model call


def test_beta_sdk_call_passes_the_beta_header(
    claude: anthropic.Anthropic, fake: FakeProviderThread
) -> None:
    r = claude.beta.messages.count_tokens(
        model="claude", messages=MESSAGES, betas=["context-management-2025-06-27"]
    )
    [up] = _upstream_calls(fake)
    assert r.input_tokens == count_input_tokens(up.body)
    assert "context-management-2025-06-27" in up.headers["anthropic-beta"]


def test_product_type_picks_the_role_pool(
    claude: anthropic.Anthropic, fake: FakeProviderThread
) -> None:
    raw = claude.messages.with_raw_response.count_tokens(
        model="role:writer",
        messages=MESSAGES,
        extra_headers={"x-polyroute-product-type": "claude"},
    )
    assert raw.headers["x-polyroute-model"] == "c1"
    assert len(_upstream_calls(fake)) == 1
    plain = claude.messages.with_raw_response.count_tokens(model="role:writer", messages=MESSAGES)
    assert plain.headers["x-polyroute-model"] == "a"
    assert len(_upstream_calls(fake)) == 1  # counted locally


def test_other_candidates_are_counted_locally(
    claude: anthropic.Anthropic, fake: FakeProviderThread
) -> None:
    raw = claude.messages.with_raw_response.count_tokens(
        model="a_then_claude", messages=MESSAGES, system=SYSTEM, tools=TOOLS
    )
    call = parse_messages_request({"model": "x", "max_tokens": 1, "messages": MESSAGES})
    assert raw.headers["x-polyroute-token-count"] == "local"
    assert raw.headers["x-polyroute-model"] == "a"  # the first candidate decides
    n = raw.parse().input_tokens
    without_tools = claude.messages.count_tokens(
        model="a_then_claude", messages=MESSAGES, system=SYSTEM
    ).input_tokens
    bare = claude.messages.count_tokens(model="a_then_claude", messages=MESSAGES).input_tokens
    assert bare == count_messages(call.messages, "fake-openai", "model-a")
    assert without_tools == bare + count_text(SYSTEM) + 4  # one more message
    assert n > without_tools  # the tool definitions count
    assert not fake.requests  # nothing went to a provider

    tier = claude.messages.count_tokens(model="tier:fast", messages=MESSAGES).input_tokens
    assert tier == bare  # the tier's first model is a too


DOCUMENT: list[Any] = [
    {
        "role": "user",
        "content": [
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "A long report."},
            },
            {"type": "text", "text": "Summarise the report."},
        ],
    }
]


def test_untranslatable_bodies_go_to_an_anthropic_candidate(
    claude: anthropic.Anthropic, fake: FakeProviderThread
) -> None:
    # a is first but cannot read a document: c1, as /v1/messages would pick, counts it.
    raw = claude.messages.with_raw_response.count_tokens(model="a_then_claude", messages=DOCUMENT)
    assert raw.headers["x-polyroute-model"] == "c1"
    assert raw.headers["x-polyroute-token-count"] == "upstream"
    [up] = _upstream_calls(fake)
    assert up.body["messages"] == DOCUMENT and up.body["model"] == "claude-c1"
    assert raw.parse().input_tokens == count_input_tokens(up.body)
    # No Anthropic candidate at all: the body cannot be served, so it cannot be counted.
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.count_tokens(model="ab", messages=DOCUMENT)
    assert "document" in bad.value.message
    assert len(_upstream_calls(fake)) == 1


def test_errors_use_anthropic_shapes(
    claude: anthropic.Anthropic, gw: GatewayServer, fake: FakeProviderThread
) -> None:
    with pytest.raises(anthropic.NotFoundError) as nf:
        claude.messages.count_tokens(model="no-such-route", messages=MESSAGES)
    assert nf.value.body["type"] == "error"  # type: ignore[index]
    assert nf.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]

    with pytest.raises(anthropic.BadRequestError) as bad:  # checked locally: not Anthropic
        claude.messages.count_tokens(model="ab", messages=[])
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "messages" in bad.value.message

    r = httpx.post(gw.url + PATH, content=b"{not json", timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(gw.url + PATH, json={"messages": MESSAGES}, timeout=10)
    assert r.status_code == 400 and "model" in r.json()["error"]["message"]


def test_upstream_errors_keep_their_kind(
    claude: anthropic.Anthropic, fake: FakeProviderThread
) -> None:
    fake.script("claude-c1", [{"kind": "status", "status": 529}])
    with pytest.raises(anthropic.OverloadedError) as over:
        claude.messages.count_tokens(model="claude", messages=MESSAGES)
    assert over.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert over.value.response.headers["x-polyroute-upstream-request-id"].startswith("req_")
    assert over.value.response.headers["retry-after"]

    fake.script("claude-c1", [{"kind": "status", "status": 429, "retry_after": "7"}])
    with pytest.raises(anthropic.RateLimitError) as rl:
        claude.messages.count_tokens(model="claude", messages=MESSAGES)
    assert rl.value.response.headers["retry-after"] == "7"
    assert rl.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]

    fake.script("claude-c1", [{"kind": "status", "status": 400}])
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.count_tokens(model="claude", messages=MESSAGES)

    fake.script("claude-c1", [{"kind": "malformed"}])
    with pytest.raises(anthropic.InternalServerError) as bad_answer:
        claude.messages.count_tokens(model="claude", messages=MESSAGES)
    assert bad_answer.value.status_code == 502
    assert "input_tokens" in bad_answer.value.message
    assert len(_upstream_calls(fake)) == 4  # no retries, no fallback: one call each


def test_gateway_keys_are_checked(fake: FakeProviderThread) -> None:
    env = {**ENV, "POLYROUTE_API_KEYS": "good-key"}
    with GatewayServer(config(fake), env) as server:
        bad = anthropic.Anthropic(base_url=server.url, api_key="wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as denied:
            bad.messages.count_tokens(model="claude", messages=MESSAGES)
        assert denied.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        assert not _upstream_calls(fake)
        good = anthropic.Anthropic(base_url=server.url, api_key="good-key", max_retries=0)
        assert good.messages.count_tokens(model="claude", messages=MESSAGES).input_tokens > 0
        assert _upstream_calls(fake)[-1].headers["x-api-key"] == ANTHROPIC_KEY
