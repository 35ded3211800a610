"""Legacy ``POST /v1/completions`` and ``GET /v1/models/{id}`` through the official openai SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from polyroute.server.completions_api import legacy_logprobs
from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV
from tests.integration.test_gateway_openai import gateway_config
from tests.spec import validate_against_spec

CHAT = "/v1/chat/completions"


def config(fake: FakeProviderThread) -> dict[str, Any]:
    cfg = gateway_config(fake)
    cfg["roles"] = {"writer": {"models": ["a"], "by_product": {"card": ["b"]}}}
    cfg["pipelines"] = {"blog": {"steps": {"draft": {"model": "a"}}}}
    return cfg


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    with GatewayServer(config(fake_provider), ENV) as server:
        yield server


@pytest.fixture
def client(gw: GatewayServer, fake: FakeProviderThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


def _post(gw: GatewayServer, body: Any) -> httpx.Response:
    return httpx.post(gw.url + "/v1/completions", json=body, timeout=10)


# ---------------------------------------------------------------- /v1/completions


def test_plain_completion(client: openai.OpenAI, fake: FakeProviderThread) -> None:
    raw = client.completions.with_raw_response.create(
        model="ab", prompt="Write a haiku", max_tokens=20, temperature=0.5, stop=["\n\n"]
    )
    r = raw.parse()
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    [choice] = r.choices
    assert choice.text == "fake reply from model-a: Write a haiku"
    assert choice.index == 0 and choice.finish_reason == "stop" and choice.logprobs is None
    assert r.model == "model-a"
    assert r.usage is not None and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    validate_against_spec(raw.http_response.json(), "CreateCompletionResponse")
    assert raw.headers["x-polyroute-route"] == "ab"
    assert raw.headers["x-polyroute-model"] == "a"
    assert float(raw.headers["x-polyroute-cost"]) > 0
    assert raw.headers["x-polyroute-upstream-request-id"].startswith("req_")

    # The prompt went upstream as one user message, the parameters as chat parameters.
    up = fake.requests_to(CHAT)[-1].body
    assert up["messages"] == [{"role": "user", "content": "Write a haiku"}]
    assert up["max_tokens"] == 20 and up["temperature"] == 0.5 and up["stop"] == ["\n\n"]
    assert "prompt" not in up and "echo" not in up


def test_route_defaults_and_fallback(client: openai.OpenAI, fake: FakeProviderThread) -> None:
    r = client.completions.create(model="tier:fast", prompt="Hi")
    assert fake.requests_to(CHAT)[-1].body["max_tokens"] == 64  # the tier's, not OpenAI's 16
    assert r.choices[0].text.startswith("fake reply from model-a")

    fake.script("model-a", [{"kind": "status", "status": 500}] * 2)
    raw = client.completions.with_raw_response.create(model="ab", prompt="Hi")
    assert raw.headers["x-polyroute-model"] == "b"
    assert raw.headers["x-polyroute-attempts"] == "2"
    assert raw.parse().choices[0].text.startswith("fake reply from model-b")


def test_product_type_header_picks_the_role_pool(client: openai.OpenAI) -> None:
    raw = client.completions.with_raw_response.create(
        model="role:writer", prompt="Hi", extra_headers={"x-polyroute-product-type": "card"}
    )
    assert raw.headers["x-polyroute-model"] == "b"
    plain = client.completions.with_raw_response.create(model="role:writer", prompt="Hi")
    assert plain.headers["x-polyroute-model"] == "a"


def test_several_prompts_n_and_echo(client: openai.OpenAI, fake: FakeProviderThread) -> None:
    raw = client.completions.with_raw_response.create(
        model="ab", prompt=["first one", "second one"], n=2, echo=True
    )
    r = raw.parse()
    assert [c.index for c in r.choices] == [0, 1, 2, 3]  # prompt * n + choice
    texts = [c.text for c in r.choices]
    assert texts[0] == texts[1] == "first onefake reply from model-a: first one"
    assert texts[2] == texts[3] == "second onefake reply from model-a: second one"
    calls = fake.requests_to(CHAT)
    assert sorted(c.body["messages"][0]["content"] for c in calls) == ["first one", "second one"]
    assert all(c.body["n"] == 2 for c in calls)
    assert r.usage is not None
    assert r.usage.prompt_tokens == 4  # the fake counts words: 2 + 2
    assert raw.headers["x-polyroute-attempts"] == "2"  # one call per prompt
    validate_against_spec(raw.http_response.json(), "CreateCompletionResponse")


def test_finish_reasons(client: openai.OpenAI, fake: FakeProviderThread) -> None:
    fake.script("model-a", [{"kind": "content", "content": "cut", "finish_reason": "length"}])
    assert client.completions.create(model="a", prompt="x").choices[0].finish_reason == "length"
    tool = {"kind": "content", "content": "", "tool_calls": [{"name": "f", "arguments": {}}]}
    fake.script("model-a", [tool])
    choice = client.completions.create(model="a", prompt="x").choices[0]
    assert choice.finish_reason == "stop" and choice.text == ""  # tool_calls is no legacy reason


def test_logprobs_are_asked_for_and_converted(
    client: openai.OpenAI, fake: FakeProviderThread
) -> None:
    client.completions.create(model="a", prompt="x", logprobs=2)
    up = fake.requests_to(CHAT)[-1].body
    assert up["logprobs"] is True and up["top_logprobs"] == 2
    chat_lp = {
        "content": [
            {"token": "Hel", "logprob": -0.1, "top_logprobs": [{"token": "Hel", "logprob": -0.1}]},
            {"token": "lo", "logprob": -0.5, "top_logprobs": [{"token": "lo", "logprob": -0.5}]},
        ]
    }
    assert legacy_logprobs(chat_lp, offset=3) == {
        "tokens": ["Hel", "lo"],
        "token_logprobs": [-0.1, -0.5],
        "top_logprobs": [{"Hel": -0.1}, {"lo": -0.5}],
        "text_offset": [3, 6],
    }
    assert legacy_logprobs(None) is None


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "ab"}, 400, "prompt"),
        ({"model": "ab", "prompt": []}, 400, "prompt"),
        ({"model": "ab", "prompt": [1212, 318]}, 400, "prompt"),
        ({"model": "ab", "prompt": [[1212, 318]]}, 400, "prompt"),
        ({"prompt": "x"}, 400, "model"),
        ({"model": "ab", "prompt": "x", "temperature": 3}, 400, "temperature"),
        ({"model": "ab", "prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ({"model": "ab", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
        ({"model": "ab", "prompt": "x", "suffix": "end"}, 400, "suffix"),
        ({"model": "ab", "prompt": "x", "best_of": 3}, 400, "best_of"),
        ({"model": "ab", "prompt": "x", "echo": True, "logprobs": 1}, 400, "echo"),
        ({"model": "ab", "prompt": "x", "logprobs": 9}, 400, "logprobs"),
        ({"model": "no-such-route", "prompt": "x"}, 404, "model"),
    ],
)
def test_invalid_requests(
    gw: GatewayServer, fake: FakeProviderThread, body: Any, status: int, param: str
) -> None:
    r = _post(gw, body)
    assert r.status_code == status
    assert r.json()["error"]["param"] == param and r.json()["error"]["message"]
    validate_against_spec(r.json(), "ErrorResponse")
    assert not fake.requests_to(CHAT)


def test_errors_reach_the_sdk(client: openai.OpenAI, fake: FakeProviderThread) -> None:
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-route", prompt="x")
    fake.script("model-a", [{"kind": "status", "status": 500}] * 2)
    fake.script("model-b", [{"kind": "status", "status": 500}] * 2)
    with pytest.raises(openai.APIStatusError) as failed:
        client.completions.create(model="ab", prompt="x")
    assert failed.value.status_code == 502


def test_streaming(client: openai.OpenAI, gw: GatewayServer) -> None:
    chunks = list(
        client.completions.create(
            model="ab", prompt="Stream it", stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "fake reply from model-a: Stream it"
    assert len(chunks) > 2  # arrived in pieces
    assert {c.object for c in chunks} == {"text_completion"}
    assert len({c.id for c in chunks}) == 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and not any(finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    for c in chunks:
        if c.choices and c.choices[0].finish_reason:
            validate_against_spec(c.model_dump(exclude_unset=True), "CreateCompletionResponse")

    # Without include_usage no usage chunk; the raw stream ends with [DONE].
    with httpx.stream(
        "POST",
        gw.url + "/v1/completions",
        json={"model": "ab", "prompt": "Stream it", "stream": True},
        timeout=10,
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-polyroute-model"] == "a"
        assert "x-polyroute-cost" not in r.headers  # not known when headers go out
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert not any('"usage"' in line for line in lines)


def test_streaming_several_prompts_with_echo(client: openai.OpenAI) -> None:
    chunks = list(
        client.completions.create(model="ab", prompt=["p0", "p1"], stream=True, echo=True)
    )
    by_index: dict[int, str] = {}
    for c in chunks:
        for choice in c.choices:
            by_index[choice.index] = by_index.get(choice.index, "") + choice.text
    assert by_index == {0: "p0fake reply from model-a: p0", 1: "p1fake reply from model-a: p1"}


def test_stream_falls_back_before_the_first_chunk(
    client: openai.OpenAI, fake: FakeProviderThread
) -> None:
    fake.script("model-a", [{"kind": "status", "status": 503}] * 2)
    raw = client.completions.with_raw_response.create(model="ab", prompt="x", stream=True)
    assert raw.headers["x-polyroute-model"] == "b"
    assert "model-b" in "".join(c.choices[0].text for c in raw.parse() if c.choices)


def test_mid_stream_failure_is_an_error_event(
    client: openai.OpenAI, gw: GatewayServer, fake: FakeProviderThread
) -> None:
    fake.script("model-a", [{"kind": "stream_cut", "after_chunks": 2}])
    seen = []
    with pytest.raises(openai.APIError):
        for c in client.completions.create(model="a", prompt="x", stream=True):
            seen.append(c)
    assert seen  # it had started: the error came after the first chunk

    fake.script("model-a", [{"kind": "stream_cut", "after_chunks": 2}])
    with httpx.stream(
        "POST", gw.url + "/v1/completions", json={"model": "a", "prompt": "x", "stream": True}
    ) as r:
        lines = [line for line in r.iter_lines() if line]
    assert '"error"' in lines[-1] and "[DONE]" not in lines[-1]


def test_stream_that_cannot_start_is_a_json_error(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    fake.script("model-a", [{"kind": "status", "status": 400}])
    r = _post(gw, {"model": "a", "prompt": "x", "stream": True})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    validate_against_spec(r.json(), "ErrorResponse")


# ---------------------------------------------------------------- /v1/models/{id}


def test_retrieve_models_and_routes(client: openai.OpenAI) -> None:
    listed = {m.id: m for m in client.models.list().data}
    for model_id in ("tier:fast", "ab", "a", "gpt-4o", "role:writer@card", "step:blog/draft"):
        m = client.models.retrieve(model_id)
        assert m.id == model_id and m.object == "model"
        assert m.owned_by == listed[model_id].owned_by
        assert isinstance(m.created, int)
    assert client.models.retrieve("tier:fast").owned_by == "polyroute"
    assert client.models.retrieve("a").owned_by == "fake-openai"


def test_retrieve_unknown_model_is_404(client: openai.OpenAI, gw: GatewayServer) -> None:
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    r = httpx.get(gw.url + "/v1/models/nope/deeper", timeout=10)
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert "nope/deeper" in err["message"]
    validate_against_spec(r.json(), "ErrorResponse")


def test_retrieve_validates_against_the_spec(gw: GatewayServer) -> None:
    r = httpx.get(gw.url + "/v1/models/tier:fast", timeout=10)
    assert r.status_code == 200
    validate_against_spec(r.json(), "Model")
    listed = httpx.get(gw.url + "/v1/models/", timeout=10)  # trailing slash: the list
    assert listed.status_code == 200 and listed.json()["object"] == "list"


def test_retrieve_needs_a_key_when_keys_are_set(fake: FakeProviderThread) -> None:
    with GatewayServer(config(fake), {**ENV, "POLYROUTE_API_KEYS": "k1"}) as server:
        assert httpx.get(server.url + "/v1/models/tier:fast", timeout=10).status_code == 401
        ok = httpx.get(server.url + "/v1/models/tier:fast", headers={"authorization": "Bearer k1"})
        assert ok.status_code == 200
        assert httpx.post(server.url + "/v1/completions", json={}).status_code == 401
