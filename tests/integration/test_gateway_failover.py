"""The failover table through the gateway, on both ingresses, with the official SDKs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV, fake_config

USER = [{"role": "user", "content": "tell me"}]


def failover_config(fake: FakeProviderThread, after_failures: int = 1000) -> dict[str, Any]:
    cfg = fake_config(
        fake,
        policies={
            "retry": {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.02},
            "cooldown": {"after_failures": after_failures, "seconds": 30, "max_wait": 0.1},
        },
        routes={
            "ab": {"models": ["a", "b"]},
            "cd": {"models": ["c", "d"]},
            "solo": {"models": ["e"]},
        },
    )
    return cfg


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    with GatewayServer(failover_config(fake_provider), ENV) as server:
        yield server


def oa(gw: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)


def an(gw: GatewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)


def test_stream_cut_is_recovered_on_the_openai_ingress(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    fake.script("model-a", [{"kind": "stream_truncated", "after_chunks": 2}])
    chunks = list(oa(gw).chat.completions.create(model="ab", messages=USER, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]  # one terminal event
    assert len({c.id for c in chunks}) == 1  # one stream
    assert "fake reply from model-b" in text and text.startswith("fake reply from model-a")


def test_stream_cut_is_recovered_on_the_anthropic_ingress(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    fake.script("model-a", [{"kind": "stream_cut", "after_chunks": 2}])
    with an(gw).messages.stream(model="ab", max_tokens=100, messages=USER) as stream:
        final = stream.get_final_message()
    text = "".join(b.text for b in final.content if b.type == "text")
    assert final.stop_reason == "end_turn"
    assert text.startswith("fake reply from model-a") and "fake reply from model-b" in text


def test_content_policy_400_reaches_the_caller_on_both_ingresses(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    fake.script("model-a", [{"kind": "content_filter"}])
    with pytest.raises(openai.BadRequestError) as oe:
        oa(gw).chat.completions.create(model="ab", messages=USER)
    assert oe.value.status_code == 400
    fake.script("model-a", [{"kind": "content_filter"}])
    with pytest.raises(anthropic.BadRequestError):
        an(gw).messages.create(model="ab", max_tokens=10, messages=USER)
    assert [r.body["model"] for r in fake.requests_to("/v1/chat/completions")] == ["model-a"] * 2


def test_every_candidate_overloaded_is_503_or_529_with_retry_after(
    fake: FakeProviderThread,
) -> None:
    with GatewayServer(failover_config(fake, after_failures=1), ENV) as gw:
        _overloaded_then_cooling(gw, fake)


def _overloaded_then_cooling(gw: GatewayServer, fake: FakeProviderThread) -> None:
    fake.script("model-c", [{"kind": "status", "status": 529}] * 2)
    fake.script("model-d", [{"kind": "status", "status": 529}] * 2)
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "cd", "messages": USER})
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    # Both are cooling down now: answered at once, 529 overloaded_error on Anthropic's side.
    with pytest.raises(anthropic.APIStatusError) as info:
        an(gw).messages.create(model="cd", max_tokens=10, messages=USER)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert int(info.value.response.headers["retry-after"]) >= 20
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "cd", "messages": USER})
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 20


def test_every_candidate_rate_limited_is_429_with_retry_after(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    fake.script("model-e", [{"kind": "status", "status": 429, "retry_after": "120"}])
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "solo", "messages": USER})
    assert r.status_code == 429 and r.headers["retry-after"] == "120"


@pytest.mark.parametrize("route", ["c1", "ab"])
def test_include_usage_is_one_final_chunk_with_the_whole_calls_usage(
    gw: GatewayServer, fake: FakeProviderThread, route: str
) -> None:
    if route == "ab":  # a recovered stream: the usage covers both models' parts
        fake.script("model-a", [{"kind": "stream_truncated", "after_chunks": 2}])
    chunks = list(
        oa(gw).chat.completions.create(
            model=route, messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert [c.usage is not None for c in chunks].count(True) == 1
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
