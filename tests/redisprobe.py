"""The Redis the tests share (127.0.0.1:6379, database 15 unless POLYROUTE_TEST_REDIS says
otherwise), and a skip with the reason when it is not there."""

from __future__ import annotations

import os

import pytest

REDIS_URL = os.environ.get("POLYROUTE_TEST_REDIS", "redis://127.0.0.1:6379/15")


async def redis_or_skip() -> None:
    redis = pytest.importorskip("redis.asyncio", reason="the redis package is not installed")
    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()
