"""Client-side rate limits (memory and Redis) and batches."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from polyroute import ManualClock, Router
from polyroute.errors import RouteExhaustedError
from polyroute.routing.ratelimit import Limit, MemoryBuckets, RateLimiter, RedisBuckets
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import ENV, fake_config
from tests.redisprobe import REDIS_URL, redis_or_skip

pytestmark = pytest.mark.asyncio


def cfg(**extra: Any) -> dict[str, Any]:
    return {
        "models": {
            "limited": {
                "provider": "simulator",
                "model": "gpt-4o-mini",
                "rpm": 6,
                "price": {"input": 0.15, "output": 0.6},
            },
            "spare": {
                "provider": "simulator",
                "model": "gpt-4o",
                "price": {"input": 2.5, "output": 10},
            },
        },
        "routes": {
            "lim": {"models": ["limited"]},
            "lim-or-spare": {"models": ["limited", "spare"]},
        },
        **extra,
    }


async def test_calls_wait_for_capacity_on_the_clock() -> None:
    clock = ManualClock()
    router = Router.from_config(cfg(), environ={}, clock=clock)
    for _ in range(6):
        await router.complete("lim", "hi")
    assert clock.sleeps == []  # a full bucket serves a burst of 6
    await router.complete("lim", "hi")
    assert clock.sleeps == [pytest.approx(10.0)]  # 6 per minute: one every 10 s
    await router.aclose()


async def test_wait_beyond_timeout_falls_back() -> None:
    clock = ManualClock()
    router = Router.from_config(cfg(), environ={}, clock=clock)
    for _ in range(6):
        await router.complete("lim-or-spare", "hi")
    env = await router.complete("lim-or-spare", "hi", timeout=5)
    assert env.model == "spare"
    assert env.attempts[0].trigger == "rate_limit" and "local rate limit" in (
        env.attempts[0].error or ""
    )
    assert router.cooldown.failure_count("limited") == 0  # our limit, not the model's health
    with pytest.raises(RouteExhaustedError):
        await router.complete("lim", "hi", timeout=5)
    await router.aclose()


async def test_token_per_minute_limit_counts_prompt_and_max_tokens() -> None:
    clock = ManualClock()
    limiter = RateLimiter(MemoryBuckets(), clock)
    lim = [Limit("m:tpm", 1000, 600)]
    assert await limiter.acquire(lim, 60, "m") == 0
    waited = await limiter.acquire(lim, 60, "m")  # 400 left, needs 600: 200 tokens at 1000/min
    assert waited == pytest.approx(12.0)


async def test_provider_limit_applies_across_its_models() -> None:
    clock = ManualClock()
    router = Router.from_config(
        cfg(
            providers={"capped": {"type": "simulator", "rpm": 2}},
            routes={"x": {"models": ["capped/gpt-4o"]}, "y": {"models": ["capped/gpt-4o-mini"]}},
        ),
        environ={},
        clock=clock,
    )
    await router.complete("x", "hi")
    await router.complete("y", "hi")
    await router.complete("x", "hi")
    assert clock.sleeps == [pytest.approx(30.0)]
    await router.aclose()


async def test_batch_keeps_order_limits_concurrency_and_reports_progress() -> None:
    router = Router.from_config(
        {"providers": {"slow": {"type": "simulator", "simulator": {"latency": 0.02}}}},
        environ={},
    )
    progress: list[tuple[int, int]] = []
    reqs: list[dict[str, Any]] = [
        {"route": "slow/gpt-4o-mini", "prompt": f"item {i}"} for i in range(12)
    ]
    reqs.append({"route": "no-such-route", "prompt": "x"})
    peak = 0
    inflight = 0
    real = router.complete

    async def counting(*a: Any, **k: Any) -> Any:
        nonlocal peak, inflight
        inflight += 1
        peak = max(peak, inflight)
        try:
            return await real(*a, **k)
        finally:
            inflight -= 1

    router.complete = counting  # type: ignore[method-assign]
    results = await router.batch(
        reqs, concurrency=3, on_progress=lambda d, n: progress.append((d, n))
    )
    assert peak == 3
    assert [f"item {i}" in (r.content or "") for i, r in enumerate(results[:12])] == [True] * 12  # type: ignore[union-attr]
    assert isinstance(results[12], Exception)
    assert progress[-1] == (13, 13) and len(progress) == 13
    await router.aclose()


async def _redis_or_skip() -> RedisBuckets:
    await redis_or_skip()
    return RedisBuckets(REDIS_URL, prefix=f"polyroute-test:{uuid.uuid4().hex}:")


async def test_redis_buckets_are_shared_between_limiters() -> None:
    buckets = await _redis_or_skip()
    other = RedisBuckets(REDIS_URL, prefix=buckets._prefix)
    clock = ManualClock()
    a, b = RateLimiter(buckets, clock), RateLimiter(other, clock)  # two "processes"
    lim = [Limit("shared:rpm", 4, 1)]
    results = await asyncio.gather(
        *(lim_.acquire(lim, 0.0, "m") for lim_ in (a, b, a, b)), return_exceptions=True
    )
    assert all(r == 0 for r in results)
    with pytest.raises(Exception, match="local rate limit"):
        await b.acquire(lim, 0.0, "m")
    clock.advance(15)  # one request's worth refilled
    assert await a.acquire(lim, 0.0, "m") == 0
    await buckets._redis.delete(*[k async for k in buckets._redis.scan_iter(buckets._prefix + "*")])
    await buckets.close()
    await other.close()


async def test_redis_down_serves_without_limiting(
    fake: FakeProviderThread, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = fake_config(fake, state={"url": "redis://127.0.0.1:1/0"})
    cfg["models"]["a"]["rpm"] = 60
    router = Router.from_config(cfg, environ=ENV)
    with caplog.at_level(logging.WARNING, logger="polyroute.router"):
        env = await router.complete("a", "hi")
    assert env.model == "a"
    assert any("shared rate limits unavailable" in r.message for r in caplog.records)
    await router.aclose()
