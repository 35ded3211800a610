"""Gateway access keys, runtime reconfiguration and the Anthropic-compatible API."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV
from tests.integration.test_gateway_openai import USER, gateway_config

KEYS = {**ENV, "POLYROUTE_API_KEYS": "user-key-1,user-key-2", "POLYROUTE_ADMIN_KEYS": "admin-key"}


def test_keys_are_required_and_checked(fake: FakeProviderThread) -> None:
    with GatewayServer(gateway_config(fake), KEYS) as gw:
        anon = openai.OpenAI(base_url=gw.url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            anon.chat.completions.create(model="ab", messages=USER)
        r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "ab", "messages": USER})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        good = openai.OpenAI(base_url=gw.url + "/v1", api_key="user-key-2", max_retries=0)
        assert good.chat.completions.create(model="ab", messages=USER).choices
        # admin endpoints: user key refused (403), admin key accepted
        h_user = {"Authorization": "Bearer user-key-1"}
        h_admin = {"Authorization": "Bearer admin-key"}
        r = httpx.post(gw.url + "/api/v1/config/reload", headers=h_user)
        assert r.status_code == 403
        assert httpx.post(gw.url + "/api/v1/config/reload", headers=h_admin).status_code == 200
        # health stays open; metrics needs a key
        assert httpx.get(gw.url + "/healthz").status_code == 200
        assert httpx.get(gw.url + "/metrics").status_code == 401
        assert httpx.get(gw.url + "/metrics", headers=h_user).status_code == 200
        # provider keys never leak through any answer
        for path in ("/api/v1/providers", "/api/v1/routes", "/api/v1/tasks", "/metrics", "/"):
            body = httpx.get(gw.url + path, headers=h_admin).text
            assert ENV["FAKE_OPENAI_KEY"] not in body and ENV["FAKE_ANTHROPIC_KEY"] not in body


def test_tasks_api_reconfigures_at_runtime(fake: FakeProviderThread) -> None:
    cfg = gateway_config(fake, tasks={"text": {"models": ["a"]}})
    with GatewayServer(cfg, ENV) as gw:
        tasks = {t["task"]: t for t in httpx.get(gw.url + "/api/v1/tasks").json()["tasks"]}
        assert tasks["text"]["models"] == ["a"] and tasks["text"]["model"] == "model-a"
        r = httpx.put(
            gw.url + "/api/v1/tasks/text",
            json={
                "provider": "fake-openai",
                "model": "model-b",
                "fallback_provider": "fake-openai",
                "fallback_model": "model-c",
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["provider"] == "fake-openai" and r.json()["fallback_model"] == "model-c"
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="task:text", messages=USER)
        assert "model-b" in (raw.parse().choices[0].message.content or "")
        bad = httpx.put(gw.url + "/api/v1/tasks/text", json={"provider": "nope", "model": "x"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "provider"
        # a bad change leaves the running config in place
        still = client.chat.completions.create(model="task:text", messages=USER)
        assert "model-b" in (still.choices[0].message.content or "")


async def test_reload_under_concurrent_load_loses_nothing(fake: FakeProviderThread) -> None:
    fake.latency = 0.02
    with GatewayServer(gateway_config(fake), ENV) as gw:
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)

        async def one(i: int) -> str:
            r = await client.chat.completions.create(model="ab", messages=USER)
            return r.choices[0].message.content or ""

        async def reloads() -> int:
            n = 0
            async with httpx.AsyncClient(base_url=gw.url) as h:
                for i in range(10):
                    model = "model-a" if i % 2 else "model-b"
                    r = await h.put(
                        "/api/v1/tasks/text", json={"provider": "fake-openai", "model": model}
                    )
                    assert r.status_code == 200
                    r = await h.post("/api/v1/config/reload")
                    assert r.status_code == 200
                    n += 2
            return n

        results: list[Any] = await asyncio.gather(
            *(one(i) for i in range(120)), reloads(), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        assert sum(1 for r in results[:120] if "model-a" in r) == 120
        assert gw.gateway.generation == 21
        await client.close()


def test_anthropic_sdk_plain_stream_and_errors(fake: FakeProviderThread) -> None:
    with GatewayServer(gateway_config(fake), ENV) as gw:
        client = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
        msg = client.messages.create(
            model="ab",
            max_tokens=50,
            system="be brief",
            messages=[{"role": "user", "content": "hi"}],
        )
        assert msg.content[0].type == "text" and "model-a" in msg.content[0].text
        assert msg.stop_reason == "end_turn" and msg.usage.output_tokens > 0
        sent = fake.requests_to("/v1/chat/completions")[-1].body
        assert sent["messages"][0] == {"role": "system", "content": "be brief"}

        # an OpenAI-wire model behind the Anthropic API, streamed, through a fallback
        fake.script("model-a", [{"kind": "status", "status": 500}] * 2)
        with client.messages.stream(
            model="ab", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            final = stream.get_final_message()
        assert "model-b" in final.content[0].text  # type: ignore[union-attr]

        # an Anthropic-wire model too
        m = client.messages.create(
            model="c1", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
        assert "claude-c1" in m.content[0].text  # type: ignore[union-attr]

        with pytest.raises(anthropic.NotFoundError):
            client.messages.create(
                model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model="ab", max_tokens=5, messages=[])

        # Nobody left to continue the answer (a one-model route): an error event.
        fake.script("model-a", [{"kind": "stream_cut", "after_chunks": 2}])
        with (
            pytest.raises(anthropic.APIError),
            client.messages.stream(
                model="a", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
            ) as stream,
        ):
            stream.get_final_message()


def test_budget_refusal_is_402(fake: FakeProviderThread) -> None:
    cfg = gateway_config(fake, budget={"max_cost_per_request": 0.000001})
    with GatewayServer(cfg, ENV) as gw:
        r = httpx.post(
            gw.url + "/v1/chat/completions",
            json={"model": "ab", "messages": USER, "max_tokens": 1000},
        )
        assert r.status_code == 402
        assert "max_cost_per_request" in r.json()["error"]["message"]
        assert fake.requests_to("/v1/chat/completions") == []  # refused before any call
