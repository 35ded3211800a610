"""The response cache in the router's call path, in memory and in Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx2 as httpx
import pytest

from polyroute import CallRecord, Router
from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV, fake_config, make_router
from tests.redisprobe import REDIS_URL, redis_or_skip

CACHE = {"enabled": True, "ttl": 60, "max_entries": 100}


def calls(fake: FakeProviderThread) -> int:
    return len(fake.requests_to("/v1/chat/completions"))


async def test_identical_greedy_request_is_served_from_cache(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, cache=CACHE)
    records: list[CallRecord] = []
    router.observers.append(records.append)
    first = await router.complete("ab", "hello", temperature=0)
    second = await router.complete("ab", "hello", temperature=0)
    assert calls(fake) == 1
    assert not first.cache_hit and second.cache_hit
    assert second.content == first.content and second.cost == 0
    assert second.saved_cost == pytest.approx(first.cost) and first.cost > 0
    assert [r.cache_hit for r in records] == [False, True]
    assert records[1].saved_cost == pytest.approx(first.cost) and records[1].cost == 0
    await router.aclose()


async def test_sampling_and_opt_out_bypass_the_cache(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, cache=CACHE)
    await router.complete("ab", "hi")  # temperature unset: provider default, sampling
    await router.complete("ab", "hi")
    await router.complete("ab", "hi", temperature=0.7)
    await router.complete("ab", "hi", temperature=0.7)
    await router.complete("ab", "hi", temperature=0, cache=False)
    await router.complete("ab", "hi", temperature=0, cache=False)
    assert calls(fake) == 6
    await router.aclose()


async def test_route_may_allow_sampled_answers(fake: FakeProviderThread) -> None:
    router, _ = make_router(
        fake,
        cache=CACHE,
        routes={
            "cached": {
                "models": ["a"],
                "cache": {"allow_nonzero_temperature": True, "namespace": "pattern_analysis"},
            }
        },
    )
    await router.complete("cached", "hi", temperature=0.9)
    env = await router.complete("cached", "hi", temperature=0.9)
    assert env.cache_hit and calls(fake) == 1
    await router.aclose()


async def test_concurrent_identical_requests_call_the_provider_once(
    fake: FakeProviderThread,
) -> None:
    router, _ = make_router(fake, cache=CACHE)
    fake.latency = 0.1
    envs = await asyncio.gather(*(router.complete("ab", "same", temperature=0) for _ in range(10)))
    assert calls(fake) == 1
    assert sum(not e.cache_hit for e in envs) == 1  # one paid; nine were served its answer
    assert len({e.content for e in envs}) == 1
    await router.aclose()


async def test_different_requests_do_not_collide(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, cache=CACHE)
    a = await router.complete("ab", "one", temperature=0)
    b = await router.complete("ab", "two", temperature=0)
    c = await router.complete("a", "one", temperature=0)  # same text, other route
    assert calls(fake) == 3 and a.content != b.content and not c.cache_hit
    await router.aclose()


def _redis_config(fake: FakeProviderThread, prefix: str) -> dict[str, Any]:
    cfg = fake_config(fake)
    cfg["cache"] = {**CACHE, "prefix": prefix}
    cfg["state"] = {"url": REDIS_URL}
    return cfg


async def test_redis_cache_is_shared_between_routers(fake: FakeProviderThread) -> None:
    await redis_or_skip()
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    prefix = f"polyroute-test:{uuid.uuid4().hex}:"
    one = Router.from_config(_redis_config(fake, prefix), environ=ENV)
    two = Router.from_config(_redis_config(fake, prefix), environ=ENV)  # another "process"
    first = await one.complete("ab", "shared", temperature=0)
    second = await two.complete("ab", "shared", temperature=0)
    assert second.cache_hit and second.content == first.content and calls(fake) == 1
    keys = [k async for k in client.scan_iter(prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    await one.aclose()
    await two.aclose()


def test_gateway_cache_headers(fake: FakeProviderThread) -> None:
    cfg = fake_config(fake)
    cfg["cache"] = CACHE
    with GatewayServer(cfg, ENV) as gw:
        body = {"model": "ab", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
        first = httpx.post(gw.url + "/v1/chat/completions", json=body)
        second = httpx.post(gw.url + "/v1/chat/completions", json=body)
        assert first.headers["x-polyroute-cache"] == "miss"
        assert second.headers["x-polyroute-cache"] == "hit"
        assert float(second.headers["x-polyroute-saved-cost"]) > 0
        assert second.json()["choices"][0]["message"] == first.json()["choices"][0]["message"]
        off = httpx.post(
            gw.url + "/v1/chat/completions", json=body, headers={"x-polyroute-cache": "off"}
        )
        assert off.headers["x-polyroute-cache"] == "miss" and calls(fake) == 2
