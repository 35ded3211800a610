"""``/v1/responses`` through the gateway with the official openai SDK, on both upstream wires."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2 as httpx
import openai
import pytest

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV
from tests.integration.test_gateway_openai import gateway_config

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    with GatewayServer(gateway_config(fake_provider), ENV) as server:
        yield server


@pytest.fixture
def client(gw: GatewayServer, fake: FakeProviderThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)


@pytest.mark.parametrize(("route", "path"), [("a", "/v1/chat/completions"), ("c1", "/v1/messages")])
def test_create_with_instructions_on_both_wires(
    client: openai.OpenAI, fake: FakeProviderThread, route: str, path: str
) -> None:
    r = client.responses.create(
        model=route, instructions="Be brief.", input="Say hi", max_output_tokens=50
    )
    assert r.status == "completed" and r.object == "response" and r.id.startswith("resp_")
    assert r.output_text.startswith("fake reply from") and r.output_text.endswith("Say hi")
    assert r.usage is not None and r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    [sent] = fake.requests_to(path)
    if path == "/v1/chat/completions":
        assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent.body["max_tokens"] == 50
    else:
        assert "Be brief." in json.dumps(sent.body["system"])


def test_function_call_round_trip_with_previous_response_id(
    client: openai.OpenAI, fake: FakeProviderThread
) -> None:
    fake.script(
        "model-a",
        [
            {
                "kind": "content",
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
            }
        ],
    )
    first = client.responses.create(model="a", input="Weather in Oslo?", tools=TOOLS)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Oslo"}
    second = client.responses.create(
        model="a",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 12C"}],
        tools=TOOLS,
    )
    assert second.status == "completed" and second.previous_response_id == first.id
    sent = fake.requests_to("/v1/chat/completions")[-1].body
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["user", "assistant", "tool"]  # the stored conversation, continued
    assert sent["messages"][1]["tool_calls"][0]["id"] == call.call_id
    assert sent["messages"][2] == {
        "role": "tool",
        "tool_call_id": call.call_id,
        "content": "sunny, 12C",
    }
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    got = client.responses.retrieve(second.id)
    assert got.id == second.id and got.output_text == second.output_text


def test_stream_events_and_final_response(client: openai.OpenAI, fake: FakeProviderThread) -> None:
    with client.responses.stream(model="ab", input="Stream please") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in kinds and kinds[-1] == "response.completed"
    assert final.output_text.endswith("Stream please") and final.usage is not None
    got = client.responses.retrieve(final.id)  # streamed responses are stored too
    assert got.output_text == final.output_text


def test_streamed_function_call(client: openai.OpenAI, fake: FakeProviderThread) -> None:
    fake.script(
        "model-a",
        [
            {
                "kind": "content",
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}],
            }
        ],
    )
    with client.responses.stream(model="a", input="Weather?", tools=TOOLS) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    [call] = [item for item in final.output if item.type == "function_call"]
    assert json.loads(call.arguments) == {"city": "Rome"}


def test_json_schema_format_reaches_the_upstream(
    client: openai.OpenAI, fake: FakeProviderThread
) -> None:
    fake.script("model-a", [{"kind": "content", "content": '{"answer": 42}'}])
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    r = client.responses.create(
        model="a",
        input="The answer?",
        text={
            "format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}
        },
    )
    assert json.loads(r.output_text) == {"answer": 42}
    sent = fake.requests_to("/v1/chat/completions")[-1].body
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }


def test_errors_name_the_field(gw: GatewayServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="a", input="x", previous_response_id="resp_nope")
    r = httpx.post(gw.url + "/v1/responses", json={"model": "a", "input": 5})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
    r = httpx.post(
        gw.url + "/v1/responses",
        json={"model": "a", "input": "x", "tools": [{"type": "web_search"}]},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "tools[0].type"
    r = client.responses.create(model="a", input="not kept", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_openai_agents_sdk_default_model_runs_a_tool_loop(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    agents = pytest.importorskip("agents", reason="openai-agents is not installed")
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    fake.script(
        "model-a",
        [
            {
                "kind": "content",
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
            }
        ],
    )
    client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    model = agents.OpenAIResponsesModel(model="a", openai_client=client)  # the SDK's default API
    agent = agents.Agent(
        name="weather", instructions="Use tools.", model=model, tools=[get_weather]
    )
    result = agents.Runner.run_sync(
        agent, "Weather in Oslo?", run_config=agents.RunConfig(tracing_disabled=True)
    )
    assert calls == ["Oslo"]
    assert "fake reply from model-a" in result.final_output
    last = fake.requests_to("/v1/chat/completions")[-1].body
    assert last["messages"][-1] == {
        "role": "tool",
        "tool_call_id": last["messages"][-2]["tool_calls"][0]["id"],
        "content": "sunny in Oslo",
    }


@pytest.mark.parametrize("stream", [False, True])
def test_structured_output_to_anthropic_is_a_forced_tool(
    client: openai.OpenAI, fake: FakeProviderThread, stream: bool
) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        value: int

    fake.script(
        "claude-c1",
        [{"kind": "content", "tool_calls": [{"name": "Answer", "arguments": {"value": 42}}]}],
    )
    if stream:
        with client.chat.completions.stream(
            model="c1", messages=[{"role": "user", "content": "6*7?"}], response_format=Answer
        ) as s:
            for _ in s:
                pass
            parsed = s.get_final_completion().choices[0].message.parsed
    else:
        done = client.chat.completions.parse(
            model="c1", messages=[{"role": "user", "content": "6*7?"}], response_format=Answer
        )
        assert done.choices[0].finish_reason == "stop"
        parsed = done.choices[0].message.parsed
    assert parsed == Answer(value=42)
    sent = fake.requests_to("/v1/messages")[-1].body
    assert sent["tool_choice"] == {"type": "tool", "name": "Answer"}
    assert sent["tools"][0]["input_schema"]["properties"]["value"]["type"] == "integer"


async def test_reasoning_effort_reaches_only_models_that_reason(fake: FakeProviderThread) -> None:
    from polyroute import Router
    from tests.integration.routerkit import fake_config

    cfg = fake_config(fake, routes={"ra": {"models": ["r", "a"]}})
    cfg["models"]["r"] = {
        **cfg["models"]["a"],
        "model": "model-r",
        "capabilities": ["text", "reasoning"],
    }
    router = Router.from_config(cfg, environ=ENV)
    fake.script("model-r", [{"kind": "status", "status": 503}] * 3)
    env = await router.complete("ra", "think", reasoning_effort="high")
    assert env.model == "a"
    sent = [
        (r.body["model"], r.body.get("reasoning_effort"))
        for r in fake.requests_to("/v1/chat/completions")
    ]
    assert sent[0] == ("model-r", "high") and sent[-1] == ("model-a", None)
    await router.aclose()
