"""The gateway through the official openai SDK, against the fake provider."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV, OPENAI_KEY, fake_config
from tests.spec import validate_against_spec

USER = [{"role": "user", "content": "Hello there"}]


def gateway_config(fake: FakeProviderThread, **extra: Any) -> dict[str, Any]:
    cfg = fake_config(
        fake,
        policies={
            "retry": {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.02},
            "cooldown": {"after_failures": 1000},
        },
        tiers={"fast": {"models": ["a", "b"], "max_tokens": 64}},
        routes={"ab": {"models": ["a", "b"]}, "rl": {"models": ["a", "b"]}},
    )
    cfg.update(extra)
    return cfg


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    with GatewayServer(gateway_config(fake_provider), ENV) as server:
        yield server


@pytest.fixture
def client(gw: GatewayServer, fake: FakeProviderThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


def test_chat_completion_through_a_tier(client: openai.OpenAI, fake: FakeProviderThread) -> None:
    raw = client.chat.completions.with_raw_response.create(model="tier:fast", messages=USER)
    r = raw.parse()
    assert "model-a" in (r.choices[0].message.content or "")
    assert raw.headers["x-polyroute-route"] == "tier:fast"
    assert raw.headers["x-polyroute-model"] == "a"
    assert raw.headers["x-polyroute-provider"] == "fake-openai"
    assert raw.headers["x-polyroute-attempts"] == "1"
    assert float(raw.headers["x-polyroute-cost"]) > 0
    assert raw.headers["x-polyroute-cache"] == "miss"
    validate_against_spec(raw.http_response.json(), "CreateChatCompletionResponse")
    upstream = fake.requests_to("/v1/chat/completions")[-1]
    assert upstream.body["max_tokens"] == 64  # the tier's default reached the provider
    assert upstream.headers["authorization"] == f"Bearer {OPENAI_KEY}"


def test_fallback_the_client_never_notices(client: openai.OpenAI, fake: FakeProviderThread) -> None:
    fake.script("model-a", [{"kind": "status", "status": 500}] * 2)
    raw = client.chat.completions.with_raw_response.create(model="ab", messages=USER)
    assert "model-b" in (raw.parse().choices[0].message.content or "")
    assert raw.headers["x-polyroute-model"] == "b"
    assert raw.headers["x-polyroute-attempts"] == "2"


def test_streaming_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="ab", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "model-a" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    for c in chunks:
        validate_against_spec(
            c.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse"
        )


def test_streaming_without_usage_request_sends_no_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="ab", messages=USER, stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_streaming_falls_back_before_first_chunk(
    client: openai.OpenAI, fake: FakeProviderThread
) -> None:
    fake.script("model-a", [{"kind": "status", "status": 503}] * 2)
    raw = client.chat.completions.with_raw_response.create(model="ab", messages=USER, stream=True)
    assert raw.headers["x-polyroute-model"] == "b"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert "model-b" in text


def test_mid_stream_failure_reaches_the_client_as_an_error(
    client: openai.OpenAI, fake: FakeProviderThread
) -> None:
    # A one-model route: nobody can continue the answer, so the client gets an error.
    fake.script("model-a", [{"kind": "stream_cut", "after_chunks": 2}])
    stream = client.chat.completions.create(model="a", messages=USER, stream=True)
    seen = []
    with pytest.raises(openai.APIError):
        for c in stream:
            seen.append(c)
    assert seen  # it had started: the error came after the first chunk, not a clean end


def test_images_and_models(client: openai.OpenAI, gw: GatewayServer) -> None:
    img = client.images.generate(model="simulator/dall-e-3", prompt="a drum kit", n=2)
    assert len(img.data) == 2 and img.data[0].url
    ids = {m.id for m in client.models.list().data}
    assert {"gpt-4o", "tier:fast", "task:image", "ab"} <= ids


def _post(gw: GatewayServer, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, timeout=10, **kw)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "ab", "messages": USER, "temperature": 3}, 400, "temperature"),
        ({"model": "ab", "messages": []}, 400, "messages"),
        ({"model": "ab", "messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role"),
        ({"messages": USER}, 400, "model"),
        ({"model": "no-such-model", "messages": USER}, 404, "model"),
    ],
)
def test_invalid_requests(gw: GatewayServer, body: Any, status: int, param: str) -> None:
    r = _post(gw, "/v1/chat/completions", body)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["param"] == param and err["message"]
    validate_against_spec(r.json(), "ErrorResponse")


def test_upstream_failure_statuses(gw: GatewayServer, fake: FakeProviderThread) -> None:
    fake.script("model-a", [{"kind": "status", "status": 429, "retry_after": "0"}] * 2)
    fake.script("model-b", [{"kind": "status", "status": 429, "retry_after": "0"}] * 2)
    r = _post(gw, "/v1/chat/completions", {"model": "rl", "messages": USER})
    assert r.status_code == 429

    fake.script("model-a", [{"kind": "status", "status": 500}] * 2)
    fake.script("model-b", [{"kind": "malformed"}] * 2)
    r = _post(gw, "/v1/chat/completions", {"model": "ab", "messages": USER})
    assert r.status_code == 502
    err = r.json()["error"]
    assert [a["model"] for a in err["attempts"]] == ["a", "b"]
    assert "route 'ab'" in err["message"]


def test_timeout_is_504(fake_provider: FakeProviderThread, fake: FakeProviderThread) -> None:
    cfg = gateway_config(fake)
    cfg["routes"]["slow"] = {"models": ["a"], "timeout": 0.2}
    with GatewayServer(cfg, ENV) as server:
        fake.script("model-a", [{"kind": "hang", "seconds": 3}] * 2)
        r = _post(server, "/v1/chat/completions", {"model": "slow", "messages": USER})
        assert r.status_code == 504


def test_oversized_body_is_413(gw: GatewayServer) -> None:
    big = "x" * (5 * 1024 * 1024)
    r = _post(
        gw, "/v1/chat/completions", {"model": "ab", "messages": [{"role": "user", "content": big}]}
    )
    assert r.status_code == 413


def test_disallowed_provider_is_403(fake: FakeProviderThread) -> None:
    cfg = gateway_config(fake)
    cfg["server"] = {"allowed_providers": ["fake-openai", "fake-anthropic"]}
    with GatewayServer(cfg, ENV) as server:
        r = _post(server, "/v1/chat/completions", {"model": "openai/gpt-4o", "messages": USER})
        assert r.status_code == 403
        assert "allowed" in r.json()["error"]["message"]
        ok = _post(server, "/v1/chat/completions", {"model": "ab", "messages": USER})
        assert ok.status_code == 200


def test_metrics_health_and_compare(gw: GatewayServer) -> None:
    _post(gw, "/v1/chat/completions", {"model": "ab", "messages": USER})
    assert httpx.get(gw.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(gw.url + "/readyz").json()["ready"] is True
    text = httpx.get(gw.url + "/metrics").text
    assert 'polyroute_requests_total{kind="chat",model="a"' in text
    assert "polyroute_cost_usd_total" in text
    count = re.search(r'polyroute_gateway_overhead_seconds_count\{kind="chat"\} (\S+)', text)
    total = re.search(r'polyroute_gateway_overhead_seconds_sum\{kind="chat"\} (\S+)', text)
    assert count and float(count.group(1)) >= 1 and total
    latency = sum(
        float(v) for v in re.findall(r"polyroute_request_latency_seconds_sum\{[^}]*\} (\S+)", text)
    )
    assert 0 < float(total.group(1)) <= latency  # the hop is part of each call's latency
    r = _post(gw, "/api/v1/compare", {"prompt": "Compare me", "models": ["a", "b", "nope"]})
    cards = r.json()["results"]
    assert [c["ok"] for c in cards] == [True, True, False]
    assert cards[0]["tokens"]["total_tokens"] > 0 and cards[0]["cost"] > 0
    assert "latency" in cards[0] and "retries" in cards[0] and "warnings" in cards[0]
    assert "unknown route" in cards[2]["error"]
    assert "<title>polyroute" in httpx.get(gw.url + "/").text  # the dashboard
