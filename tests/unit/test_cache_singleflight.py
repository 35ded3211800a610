"""Concurrent identical requests call the provider once: in a process (SingleFlight)
and across processes sharing a store (lock.fill_once, here on an in-memory stand-in
for Redis driven by a ManualClock)."""

from __future__ import annotations

import asyncio
import functools
import gc
import secrets
from typing import Any

import pytest

from polyroute.cache import Limits, MemoryCache, ResponseCache, SingleFlight
from polyroute.clock import ManualClock


def _cache(clock: ManualClock | None = None) -> ResponseCache:
    clock = clock or ManualClock()
    return ResponseCache(MemoryCache(clock, Limits(ttl=60, max_size=100)), clock=clock)


class Provider:
    """A compute function that blocks until released and counts its calls."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.calls = 0
        self.cancelled = 0
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.fail = fail

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail is not None:
            raise self.fail
        return {"content": f"answer {self.calls}", "cost": 0.01}


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_twenty_concurrent_callers_one_provider_call() -> None:
    cache = _cache()
    provider = Provider()
    tasks = [asyncio.create_task(cache.get_or_compute("default", "k", provider)) for _ in range(20)]
    await _settle()
    provider.release.set()
    results = await asyncio.gather(*tasks)
    assert provider.calls == 1
    assert {r[0]["content"] for r in results} == {"answer 1"}
    assert sorted(hit for _, hit in results) == [False] + [True] * 19  # one pays
    assert len({id(r[0]) for r in results}) == 20  # each its own copy
    assert (cache.stats.misses, cache.stats.shared) == (1, 19)
    assert len(cache._flight) == 0  # nothing left in flight


async def test_error_reaches_every_caller_and_next_call_recomputes() -> None:
    cache = _cache()
    failing = Provider(fail=RuntimeError("provider exploded"))
    tasks = [asyncio.create_task(cache.get_or_compute("default", "k", failing)) for _ in range(20)]
    await _settle()
    failing.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert failing.calls == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "provider exploded" for r in results)
    assert len(cache._flight) == 0
    assert await cache.lookup("default", "k") is None  # errors are not cached

    ok = Provider()
    ok.release.set()
    value, hit = await cache.get_or_compute("default", "k", ok)
    assert (value["content"], hit, ok.calls) == ("answer 1", False, 1)


async def test_cancelled_leader_does_not_strand_waiters() -> None:
    cache = _cache()
    provider = Provider()
    leader = asyncio.create_task(cache.get_or_compute("default", "k", provider))
    await provider.started.wait()
    waiters = [
        asyncio.create_task(cache.get_or_compute("default", "k", provider)) for _ in range(5)
    ]
    await _settle()
    leader.cancel()
    await _settle()
    assert leader.cancelled()
    assert provider.cancelled == 0  # the call goes on for the waiters
    provider.release.set()
    results = await asyncio.wait_for(asyncio.gather(*waiters), timeout=2)
    assert provider.calls == 1
    assert all(v["content"] == "answer 1" and hit for v, hit in results)
    assert await cache.lookup("default", "k") is not None  # and it was stored


async def test_cancelled_waiter_leaves_the_others_alone() -> None:
    cache = _cache()
    provider = Provider()
    tasks = [asyncio.create_task(cache.get_or_compute("default", "k", provider)) for _ in range(3)]
    await _settle()
    tasks[1].cancel()
    provider.release.set()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [d[0]["content"] for d in (done[0], done[2])] == ["answer 1"] * 2  # type: ignore[index]
    assert provider.calls == 1


async def test_everyone_cancelled_cancels_the_call_and_forgets_it() -> None:
    cache = _cache()
    provider = Provider()
    tasks = [asyncio.create_task(cache.get_or_compute("default", "k", provider)) for _ in range(3)]
    await provider.started.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await _settle()
    assert provider.cancelled == 1  # nobody wanted the answer: the call stopped
    assert len(cache._flight) == 0

    again = Provider()
    again.release.set()
    value, hit = await cache.get_or_compute("default", "k", again)
    assert (value["content"], hit, again.calls) == ("answer 1", False, 1)


async def test_singleflight_distinct_keys_run_separately() -> None:
    flight: SingleFlight[int] = SingleFlight()
    started = 0

    async def work(n: int) -> int:
        nonlocal started
        started += 1
        await asyncio.sleep(0)
        return n

    results = await asyncio.gather(
        *(flight.do(k % 3, functools.partial(work, k % 3)) for k in range(9))
    )
    assert started == 3
    assert sorted(v for v, _ in results) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [shared for _, shared in results].count(False) == 3
    assert not flight.in_flight(0) and len(flight) == 0


async def test_singleflight_failure_after_all_left_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def boom() -> int:
        try:
            await gate.wait()
        except asyncio.CancelledError:
            raise RuntimeError("late failure") from None  # a cleanup that fails
        return 0

    t = asyncio.create_task(flight.do("k", boom))
    await _settle()
    t.cancel()
    await asyncio.gather(t, return_exceptions=True)
    await _settle()
    assert len(flight) == 0
    gc.collect()  # an unretrieved exception is reported when its task is collected
    assert "never retrieved" not in caplog.text


# -- across processes: a shared store with locks, on a ManualClock --------------------------


class SharedStore:
    """Stands in for Redis: one MemoryCache and a lock table seen by several
    ``ResponseCache`` instances (the "processes"), lock expiry on the clock."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.mem = MemoryCache(clock, Limits(ttl=60, max_size=100))
        self.locks: dict[tuple[str, str], tuple[str, float]] = {}
        self.lock_calls = 0

    def view(self) -> SharedView:
        return SharedView(self)


class SharedView:
    def __init__(self, store: SharedStore) -> None:
        self.s = store

    async def get(self, namespace: str, key: str) -> bytes | None:
        return await self.s.mem.get(namespace, key)

    async def set(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        await self.s.mem.set(namespace, key, value, ttl)

    async def delete(self, namespace: str, key: str) -> None:
        await self.s.mem.delete(namespace, key)

    async def clear(self, namespace: str | None = None) -> None:
        await self.s.mem.clear(namespace)

    async def close(self) -> None:
        return None

    def _held(self, namespace: str, key: str) -> tuple[str, float] | None:
        held = self.s.locks.get((namespace, key))
        if held is not None and held[1] <= self.s.clock.monotonic():
            del self.s.locks[(namespace, key)]
            return None
        return held

    async def try_lock(self, namespace: str, key: str, ttl: float) -> str | None:
        self.s.lock_calls += 1
        if self._held(namespace, key) is not None:
            return None
        token = secrets.token_hex(4)
        self.s.locks[(namespace, key)] = (token, self.s.clock.monotonic() + ttl)
        return token

    async def unlock(self, namespace: str, key: str, token: str) -> None:
        held = self._held(namespace, key)
        if held is not None and held[0] == token:
            del self.s.locks[(namespace, key)]

    async def locked(self, namespace: str, key: str) -> bool:
        return self._held(namespace, key) is not None


def _processes(n: int, lock_ttl: float = 30.0) -> tuple[SharedStore, list[ResponseCache]]:
    clock = ManualClock()
    store = SharedStore(clock)
    return store, [
        ResponseCache(store.view(), clock=clock, lock_ttl=lock_ttl, poll=0.05) for _ in range(n)
    ]


async def test_two_processes_call_the_provider_once() -> None:
    _, (a, b) = _processes(2)
    provider = Provider()
    tasks = [
        asyncio.create_task(c.get_or_compute("default", "k", provider))
        for c in (a, b)
        for _ in range(10)
    ]
    await provider.started.wait()
    await _settle()
    provider.release.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=2)
    assert provider.calls == 1
    assert [hit for _, hit in results].count(False) == 1
    assert {v["content"] for v, _ in results} == {"answer 1"}


async def test_holder_failure_lets_the_other_process_take_over() -> None:
    _, (a, b) = _processes(2)
    failing = Provider(fail=RuntimeError("down"))
    first = asyncio.create_task(a.get_or_compute("default", "k", failing))
    await failing.started.wait()
    ok = Provider()
    ok.release.set()
    second = asyncio.create_task(b.get_or_compute("default", "k", ok))
    await _settle()
    assert ok.calls == 0  # b waits on a's lock
    failing.release.set()
    with pytest.raises(RuntimeError, match="down"):
        await first
    value, hit = await asyncio.wait_for(second, timeout=2)
    assert (value["content"], hit, ok.calls) == ("answer 1", False, 1)


async def test_crashed_holder_blocks_at_most_lock_ttl() -> None:
    store, (b,) = _processes(1, lock_ttl=2.0)
    store.locks[("default", "k")] = ("dead-process", store.clock.monotonic() + 2.0)
    ok = Provider()
    ok.release.set()
    start = store.clock.monotonic()
    value, hit = await asyncio.wait_for(b.get_or_compute("default", "k", ok), timeout=2)
    waited = store.clock.monotonic() - start
    assert (value["content"], hit) == ("answer 1", False)
    assert 2.0 <= waited <= 2.0 + 0.051  # polled until the dead lock ran out
    assert store.locks == {}  # and released its own


async def test_caller_arriving_as_the_last_one_leaves_gets_a_fresh_call() -> None:
    # The last caller's cancellation cancels the call; a caller arriving in that
    # same instant must not join the dying call and inherit its CancelledError.
    cache = _cache()
    first = Provider()
    leaving = asyncio.create_task(cache.get_or_compute("default", "k", first))
    await first.started.wait()
    leaving.cancel()
    second = Provider()
    second.release.set()
    arriving = asyncio.create_task(cache.get_or_compute("default", "k", second))
    value, hit = await asyncio.wait_for(arriving, timeout=2)
    assert (value["content"], hit, second.calls) == ("answer 1", False, 1)
    assert leaving.cancelled() and first.cancelled == 1
