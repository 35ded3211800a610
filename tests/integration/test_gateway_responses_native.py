"""``/v1/responses`` to a provider that serves the Responses API itself: forwarded as sent.

Only ``model`` is replaced; built-in tools, reasoning and the rest reach the upstream
untouched, and the answer (plain or event by event) comes back as it came.  Other
wires get the chat translation (test_gateway_responses.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV
from tests.integration.test_gateway_openai import gateway_config

WEB_SEARCH = [{"type": "web_search"}]


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    cfg = gateway_config(fake_provider)
    cfg["providers"]["fake-openai"]["responses_api"] = True
    cfg["routes"]["c1-a"] = {"models": ["c1", "a"]}
    cfg["routes"]["a-c1"] = {"models": ["a", "c1"]}
    with GatewayServer(cfg, ENV) as server:
        yield server


@pytest.fixture
def client(gw: GatewayServer, fake: FakeProviderThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)


def test_plain_request_is_forwarded_and_relayed(
    client: openai.OpenAI, fake: FakeProviderThread
) -> None:
    r = client.responses.create(
        model="a",
        input="Find it",
        tools=WEB_SEARCH,  # type: ignore[arg-type]
        reasoning={"effort": "low"},
        store=True,
    )
    assert r.id.startswith("resp_fake") and r.output_text.endswith("Find it")  # the upstream's
    [sent] = fake.requests_to("/v1/responses")
    assert sent.body["model"] == "model-a" and sent.body["tools"] == WEB_SEARCH
    assert sent.body["reasoning"] == {"effort": "low"} and sent.body["input"] == "Find it"
    assert fake.requests_to("/v1/chat/completions") == []
    assert client.responses.retrieve(r.id).id == r.id  # kept for previous_response_id too


def test_stream_events_are_relayed(client: openai.OpenAI, fake: FakeProviderThread) -> None:
    with client.responses.stream(model="a", input="Stream it") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.id.startswith("resp_fake") and final.output_text.endswith("Stream it")
    [sent] = fake.requests_to("/v1/responses")
    assert sent.body["stream"] is True


def test_a_cut_native_stream_is_continued_by_another_wire(
    client: openai.OpenAI, fake: FakeProviderThread
) -> None:
    fake.script("model-a", [{"kind": "stream_truncated", "after_chunks": 2}])
    with client.responses.stream(model="a-c1", input="tell me") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds.count("response.created") == 1 and kinds[-1] == "response.completed"
    assert final.output_text.startswith("fake reply from model-a")
    assert "fake reply from claude-c1" in final.output_text
    assert fake.requests_to("/v1/messages")  # the continuation went to the Anthropic model


def test_built_in_tools_go_only_where_they_are_served(
    client: openai.OpenAI, fake: FakeProviderThread
) -> None:
    r = client.responses.create(model="c1-a", input="Search", tools=WEB_SEARCH)  # type: ignore[arg-type]
    assert r.id.startswith("resp_fake")
    assert fake.requests_to("/v1/messages") == []  # c1 skipped: it cannot run web_search
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="c1", input="Search", tools=WEB_SEARCH)  # type: ignore[arg-type]
    assert info.value.body["param"] == "tools[0].type"  # type: ignore[index]
