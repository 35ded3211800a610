"""Runtime reassignment (seed 004): in effect at once, over the environment, validated,
kept across reloads, and atomic for calls in flight."""

from __future__ import annotations

import asyncio

import httpx2 as httpx
import pytest

from polyroute import ConfigError, ProviderNotAllowedError, Router
from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV, fake_config
from tests.integration.test_gateway_openai import gateway_config

# Seed 004's environment: the text task set by AI_TEXT_*; only two providers allowed.
SEED_ENV = {
    **ENV,
    "AI_TEXT_PROVIDER": "fake-openai",
    "AI_TEXT_MODEL": "model-a",
    "ALLOWED_MODEL_PROVIDERS": "fake-openai,fake-anthropic",
}


def test_put_task_overrides_the_environment_and_survives_reloads(
    fake: FakeProviderThread,
) -> None:
    with GatewayServer(gateway_config(fake), SEED_ENV) as gw:
        before = httpx.get(gw.url + "/api/v1/tasks").json()["tasks"]
        assert next(t for t in before if t["task"] == "text")["model"] == "model-a"
        r = httpx.put(
            gw.url + "/api/v1/tasks/text", json={"provider": "fake-openai", "model": "model-b"}
        )
        assert r.status_code == 200 and r.json()["model"] == "model-b"
        body = {"model": "task:text", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(gw.url + "/v1/chat/completions", json=body).json()
        assert "model-b" in answer["choices"][0]["message"]["content"]
        assert httpx.post(gw.url + "/api/v1/config/reload").status_code == 200
        after = httpx.get(gw.url + "/api/v1/tasks").json()["tasks"]
        assert next(t for t in after if t["task"] == "text")["model"] == "model-b"
        # Validated like config: a provider outside ALLOWED_MODEL_PROVIDERS is a 403...
        r = httpx.put(gw.url + "/api/v1/tasks/text", json={"provider": "simulator2", "model": "x"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "provider"
        r = httpx.put(gw.url + "/api/v1/tasks/text", json={"provider": "openai", "model": "gpt-4o"})
        assert r.status_code == 403 and r.json()["error"]["param"] == "provider"
        # ...and an unknown model a 400; nothing changed.
        r = httpx.put(gw.url + "/api/v1/tasks/text", json={"model": "no-such-model"})
        assert r.status_code == 400
        still = httpx.get(gw.url + "/api/v1/tasks").json()["tasks"]
        assert next(t for t in still if t["task"] == "text")["model"] == "model-b"


async def test_update_task_in_code_is_atomic_for_calls_in_flight(
    fake: FakeProviderThread,
) -> None:
    router = Router.from_config(
        fake_config(fake, tasks={"text": {"models": ["a"]}}), environ=SEED_ENV
    )
    fake.latency = 0.2
    in_flight = asyncio.ensure_future(router.complete("task:text", "slow"))
    await asyncio.sleep(0.05)  # the call is on its way to model-a
    router.update_task("text", provider="fake-openai", model="model-c")
    assert "model-a" in ((await in_flight).content or "")  # finished where it started
    assert "model-c" in ((await router.complete("task:text", "after")).content or "")
    with pytest.raises(ProviderNotAllowedError):
        router.update_task("text", provider="openai", model="gpt-4o")
    with pytest.raises(ConfigError):
        router.update_task("text", model="no-such-model")
    router.update_tier("fast", ["b"])
    assert (await router.complete("tier:fast", "x")).model == "b"
    router.update_role("writer", ["d"], product_type="landing")
    assert (await router.complete("role:writer", "x", product_type="landing")).model == "d"
    await router.aclose()
