"""The response cache on a real Redis at 127.0.0.1:6379.

Each test writes under its own random prefix and deletes it afterwards.  TTL
checks use real sub-second TTLs: Redis owns that clock.  Skipped with a reason
when the redis package is missing or nothing answers on 127.0.0.1:6379.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

pytest.importorskip("redis", reason="redis package not installed (pip install 'redis>=5')")
import redis.asyncio as aioredis

from polyroute.cache import Limits, ResponseCache
from polyroute.cache.redis import RedisCache
from polyroute.clock import SystemClock
from polyroute.config.schema import Cache

HOST, PORT = "127.0.0.1", 6379
URL = f"redis://{HOST}:{PORT}/0"

CACHE_CONFIG = {  # seed 003
    "pattern_analysis": {"ttl": 3600, "max_size": 1000},
    "template_selection": {"ttl": 86400, "max_size": 500},
    "modification_map": {"ttl": 86400, "max_size": 100},
}


def _redis_answers() -> str | None:
    try:
        with socket.create_connection((HOST, PORT), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
    except OSError as exc:
        return f"no Redis on {HOST}:{PORT} ({exc})"
    if not reply.startswith(b"+PONG"):
        return f"{HOST}:{PORT} did not answer PING like Redis: {reply!r}"
    return None


@pytest.fixture(scope="module", autouse=True)
def _need_redis() -> Iterator[None]:
    reason = _redis_answers()
    if reason:
        pytest.skip(reason)
    yield


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    p = f"polyroute:test:{uuid.uuid4().hex}:"
    yield p
    cleaner = RedisCache(URL, p)
    await cleaner.clear()
    await cleaner.close()


@pytest.fixture
async def raw() -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(URL)
    yield client
    await client.aclose()


async def _keys(raw: Any, prefix: str) -> list[str]:
    return sorted([k.decode() async for k in raw.scan_iter(match=prefix + "*")])


_open: list[ResponseCache] = []


def _cache(prefix: str, lock_ttl: float = 10.0, **spaces: Limits) -> ResponseCache:
    backend = RedisCache(URL, prefix, default=Limits(ttl=60, max_size=100), namespaces=spaces)
    cache = ResponseCache(backend, clock=SystemClock(), namespaces=spaces, lock_ttl=lock_ttl)
    _open.append(cache)
    return cache


@pytest.fixture(autouse=True)
async def _close_caches() -> AsyncIterator[None]:
    # Close connections even when a test fails half way, so no socket outlives its loop.
    yield
    while _open:
        await _open.pop().close()


class Provider:
    def __init__(self, fail: BaseException | None = None) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.fail = fail

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return {"content": f"answer {self.calls}", "cost": 0.02, "raw": {"id": "x"}}


# -- storage -----------------------------------------------------------------------------


async def test_roundtrip_and_layout(prefix: str, raw: Any) -> None:
    cache = _cache(prefix, pa=Limits(ttl=30, max_size=10))
    await cache.store("pa", "k1", {"content": "hi", "cost": 0.5})
    assert await cache.lookup("pa", "k1") == {"content": "hi", "cost": 0.5}
    assert await cache.lookup("pa", "k2") is None
    assert await _keys(raw, prefix) == [f"{prefix}i:pa", f"{prefix}v:pa:k1"]
    assert 29_000 < await raw.pttl(f"{prefix}v:pa:k1") <= 30_000


async def test_ttl_expires_on_redis_time(prefix: str) -> None:
    cache = _cache(prefix, quick=Limits(ttl=0.3, max_size=10))
    await cache.store("quick", "k", {"content": "x", "cost": 0.1})
    await cache.store("quick", "long", {"content": "y", "cost": 0.1}, ttl=5)  # per-entry TTL
    assert await cache.lookup("quick", "k") is not None
    await asyncio.sleep(0.45)
    assert await cache.lookup("quick", "k") is None
    assert await cache.lookup("quick", "long") is not None


async def test_max_entries_evicts_oldest_values_too(prefix: str, raw: Any) -> None:
    cache = _cache(prefix, small=Limits(ttl=60, max_size=3))
    for i in range(5):
        await cache.store("small", f"k{i}", {"content": str(i), "cost": 0.0})
    assert [await cache.lookup("small", f"k{i}") is not None for i in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert await raw.zcard(f"{prefix}i:small") == 3
    assert len([k for k in await _keys(raw, prefix) if ":v:small:" in k]) == 3


async def test_expired_members_leave_the_index(prefix: str, raw: Any) -> None:
    cache = _cache(prefix, quick=Limits(ttl=0.2, max_size=10))
    for i in range(3):
        await cache.store("quick", f"k{i}", {"content": "x", "cost": 0.0})
    await asyncio.sleep(0.3)
    await cache.store("quick", "fresh", {"content": "y", "cost": 0.0})
    assert await raw.zrange(f"{prefix}i:quick", 0, -1) == [b"fresh"]


async def test_seed_003_namespaces(prefix: str, raw: Any) -> None:
    cache = ResponseCache.from_config(
        Cache(enabled=True, namespaces=CACHE_CONFIG), URL, SystemClock(), prefix=prefix
    )
    assert cache is not None and isinstance(cache.backend, RedisCache)
    _open.append(cache)
    await cache.store("pattern_analysis", "k", {"content": "a", "cost": 0.0})
    await cache.store("template_selection", "k", {"content": "b", "cost": 0.0})
    assert 3_590_000 < await raw.pttl(f"{prefix}v:pattern_analysis:k") <= 3_600_000
    assert 86_390_000 < await raw.pttl(f"{prefix}v:template_selection:k") <= 86_400_000
    for i in range(105):
        await cache.store("modification_map", f"k{i}", {"content": "c", "cost": 0.0})
    assert await raw.zcard(f"{prefix}i:modification_map") == 100
    assert await cache.lookup("modification_map", "k4") is None
    assert await cache.lookup("modification_map", "k5") is not None


async def test_clear_one_namespace(prefix: str) -> None:
    cache = _cache(prefix, a=Limits(60, 10), b=Limits(60, 10))
    await cache.store("a", "k", {"content": "a", "cost": 0.0})
    await cache.store("b", "k", {"content": "b", "cost": 0.0})
    await cache.clear("a")
    assert await cache.lookup("a", "k") is None
    assert await cache.lookup("b", "k") is not None


# -- one provider call ---------------------------------------------------------------------


async def test_twenty_concurrent_callers_one_call(prefix: str) -> None:
    cache = _cache(prefix)
    provider = Provider()
    tasks = [asyncio.create_task(cache.get_or_compute("default", "k", provider)) for _ in range(20)]
    await provider.started.wait()
    provider.release.set()
    results = await asyncio.gather(*tasks)
    assert provider.calls == 1
    assert [hit for _, hit in results].count(False) == 1
    assert {v["content"] for v, _ in results} == {"answer 1"}
    value, hit = await cache.get_or_compute("default", "k", provider)
    assert (value["content"], hit, provider.calls) == ("answer 1", True, 1)


async def test_two_processes_one_call(prefix: str, raw: Any) -> None:
    # Two caches with their own connections and flights: two processes as far as
    # Redis can tell.
    a, b = _cache(prefix), _cache(prefix)
    provider = Provider()
    tasks = [
        asyncio.create_task(c.get_or_compute("default", "k", provider))
        for c in (a, b)
        for _ in range(10)
    ]
    await provider.started.wait()
    await asyncio.sleep(0.15)  # let the other process find the lock and poll
    provider.release.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    assert provider.calls == 1
    assert [hit for _, hit in results].count(False) == 1
    assert not [k for k in await _keys(raw, prefix) if ":l:" in k]  # lock released


async def test_error_reaches_everyone_then_recomputes(prefix: str) -> None:
    cache = _cache(prefix)
    failing = Provider(fail=RuntimeError("provider exploded"))
    tasks = [asyncio.create_task(cache.get_or_compute("default", "k", failing)) for _ in range(5)]
    await failing.started.wait()
    failing.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert failing.calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)
    ok = Provider()
    ok.release.set()
    value, hit = await cache.get_or_compute("default", "k", ok)
    assert (value["content"], hit) == ("answer 1", False)


async def test_cancelled_leader_does_not_strand_waiters(prefix: str) -> None:
    cache = _cache(prefix)
    provider = Provider()
    leader = asyncio.create_task(cache.get_or_compute("default", "k", provider))
    await provider.started.wait()
    waiters = [
        asyncio.create_task(cache.get_or_compute("default", "k", provider)) for _ in range(3)
    ]
    await asyncio.sleep(0.05)
    leader.cancel()
    provider.release.set()
    results = await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert provider.calls == 1 and all(hit for _, hit in results)


async def test_failed_holder_lets_other_process_compute(prefix: str) -> None:
    a, b = _cache(prefix), _cache(prefix)
    failing = Provider(fail=RuntimeError("down"))
    first = asyncio.create_task(a.get_or_compute("default", "k", failing))
    await failing.started.wait()
    ok = Provider()
    ok.release.set()
    second = asyncio.create_task(b.get_or_compute("default", "k", ok))
    await asyncio.sleep(0.1)
    assert ok.calls == 0  # b waits for a's lock
    failing.release.set()
    with pytest.raises(RuntimeError):
        await first
    value, hit = await asyncio.wait_for(second, timeout=5)
    assert (value["content"], hit, ok.calls) == ("answer 1", False, 1)


async def test_unlock_never_frees_someone_elses_lock(prefix: str) -> None:
    backend = RedisCache(URL, prefix)
    _open.append(ResponseCache(backend, clock=SystemClock()))
    mine = await backend.try_lock("default", "k", ttl=0.1)
    assert mine is not None
    assert await backend.try_lock("default", "k", ttl=5) is None
    await asyncio.sleep(0.15)  # mine ran out
    theirs = await backend.try_lock("default", "k", ttl=5)
    assert theirs is not None
    await backend.unlock("default", "k", mine)
    assert await backend.locked("default", "k")  # still theirs
    await backend.unlock("default", "k", theirs)
    assert not await backend.locked("default", "k")


async def test_unreachable_redis_serves_misses() -> None:
    # Port 1 refuses at once: the cache must degrade to "no cache", not fail calls.
    backend = RedisCache("redis://127.0.0.1:1/0", "polyroute:test:")
    cache = ResponseCache(backend, clock=SystemClock())
    _open.append(cache)
    ok = Provider()
    ok.release.set()
    value, hit = await cache.get_or_compute("default", "k", ok)
    assert (value["content"], hit) == ("answer 1", False)
    assert cache.stats.errors >= 2
