"""Reloads under traffic: no call fails, and no client of a replaced router is left open.

Counts real connections: Redis clients from ``CLIENT LIST`` and TCP connections to
the fake provider from ``/proc/net/tcp``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from polyroute.server import Gateway
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import ENV, fake_config
from tests.redisprobe import REDIS_URL, redis_or_skip

ESTABLISHED = "01"


def tcp_connections_to(port: int) -> int:
    """Established TCP connections (client side) to 127.0.0.1:``port``."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == port:
                n += 1
    return n


async def redis_clients() -> int:
    import redis.asyncio as aioredis

    probe = aioredis.from_url(REDIS_URL)
    try:
        return len(await probe.client_list()) - 1  # not counting the probe itself
    finally:
        await probe.aclose()


def reload_config(fake: FakeProviderThread) -> dict[str, Any]:
    cfg = fake_config(fake, state={"url": REDIS_URL, "prefix": "reloadtest:"})
    cfg["cache"] = {"enabled": True, "ttl": 60}
    cfg["models"]["a"]["rpm"] = 100000  # so the Redis rate limiter is in use
    cfg["usage"] = {"enabled": False}
    return cfg


async def test_twenty_reloads_under_traffic_leak_nothing(fake: FakeProviderThread) -> None:
    await redis_or_skip()
    if not Path("/proc/net/tcp").exists():
        pytest.skip("/proc/net/tcp not available: cannot count connections")
    port = urlsplit(fake.openai_base_url).port
    assert port is not None
    fake.latency = 0.01
    redis_at_start, http_at_start = await redis_clients(), tcp_connections_to(port)
    gateway = Gateway(data=reload_config(fake), environ=ENV)
    gateway.drain_timeout = 10.0

    async def call(i: int) -> str:
        # temperature 0 and distinct prompts: every call uses the cache (miss) and the limiter
        env = await gateway.router.complete("ab", f"q{i}", temperature=0)
        return env.model

    # Warm up at the concurrency of the test: pools grow with the calls in flight.
    assert set(await asyncio.gather(*(call(i) for i in range(200)))) == {"a"}
    redis_one_router = await redis_clients() - redis_at_start
    assert redis_one_router >= 1  # the router's Redis clients are connected

    async def reloads() -> None:
        for i in range(20):
            # Odd reloads change the shared state's prefix, so cooldowns, limiter and cache
            # are rebuilt (new Redis clients); even ones hand everything over.
            prefix = f"reloadtest{i % 2}:" if i % 4 in (1, 2) else "reloadtest:"
            await gateway.reload({"state": {"url": REDIS_URL, "prefix": prefix}})
            await asyncio.sleep(0.01)

    results = await asyncio.gather(
        *(call(1000 + i) for i in range(200)), reloads(), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert gateway.generation == 21
    await asyncio.gather(*gateway._retiring)  # every replaced router has drained and closed
    assert await redis_clients() - redis_at_start <= redis_one_router
    await gateway.aclose()
    await asyncio.sleep(0.05)
    # (<=: clients of earlier tests may still be closing; a leak would leave more.)
    assert await redis_clients() <= redis_at_start
    assert tcp_connections_to(port) <= http_at_start
