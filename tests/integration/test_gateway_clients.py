"""Third-party clients pointed at the gateway: LangChain (both wires) and pydantic-ai."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV
from tests.integration.test_gateway_openai import gateway_config


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    with GatewayServer(gateway_config(fake_provider), ENV) as server:
        yield server


def test_langchain_openai_chat_stream_and_structured_output(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    lc = pytest.importorskip("langchain_openai", reason="langchain-openai is not installed")
    llm = lc.ChatOpenAI(model="ab", base_url=gw.url + "/v1", api_key="x", max_retries=0)
    assert llm.invoke("hello").content.endswith("hello")
    assert "".join(str(c.content) for c in llm.stream("streamed")).endswith("streamed")
    fake.script("model-a", [{"kind": "content", "content": '{"city": "Oslo", "celsius": 12}'}])
    out = llm.with_structured_output(Weather, method="json_schema").invoke("Oslo?")
    assert out == Weather(city="Oslo", celsius=12)
    # Also the Responses API, as langchain-openai's use_responses_api uses it.
    responses = lc.ChatOpenAI(
        model="a", base_url=gw.url + "/v1", api_key="x", max_retries=0, use_responses_api=True
    )
    assert "fake reply from model-a" in responses.invoke("via responses").text


def test_langchain_anthropic_chat_tools_and_structured_output(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    la = pytest.importorskip("langchain_anthropic", reason="langchain-anthropic is not installed")
    llm = la.ChatAnthropic(model="c1", base_url=gw.url, api_key="x", max_retries=0, max_tokens=200)
    assert llm.invoke("hello").content.endswith("hello")
    fake.script(
        "claude-c1",
        [
            {
                "kind": "content",
                "tool_calls": [{"name": "Weather", "arguments": {"city": "Rome", "celsius": 20}}],
            }
        ],
    )
    out = llm.with_structured_output(Weather).invoke("Rome?")
    assert out == Weather(city="Rome", celsius=20)
    # The same client through a route served by an OpenAI-wire model (translated).
    other = la.ChatAnthropic(model="a", base_url=gw.url, api_key="x", max_retries=0, max_tokens=50)
    assert "fake reply from model-a" in str(other.invoke("translated").content)


def test_pydantic_ai_agents_on_both_ingresses(gw: GatewayServer, fake: FakeProviderThread) -> None:
    pai = pytest.importorskip("pydantic_ai", reason="pydantic-ai is not installed")
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.anthropic import AnthropicProvider
    from pydantic_ai.providers.openai import OpenAIProvider

    openai_model = OpenAIChatModel(
        "ab", provider=OpenAIProvider(base_url=gw.url + "/v1", api_key="x")
    )
    anthropic_model = AnthropicModel("c1", provider=AnthropicProvider(base_url=gw.url, api_key="x"))

    async def run() -> tuple[str, Weather]:
        text = await pai.Agent(openai_model).run("plain text")
        fake.script(
            "claude-c1",
            [
                {
                    "kind": "content",
                    "tool_calls": [
                        {"name": "final_result", "arguments": {"city": "Bern", "celsius": 3}}
                    ],
                }
            ],
        )
        structured = await pai.Agent(anthropic_model, output_type=Weather).run("Bern?")
        return text.output, structured.output

    text, weather = asyncio.run(run())
    assert text.endswith("plain text")
    assert weather == Weather(city="Bern", celsius=3)
