"""Cooldowns shared through Redis: a model that trips in one process is skipped by another."""

from __future__ import annotations

import asyncio
import uuid

from polyroute import Router
from polyroute.routing.cooldown_shared import SharedCooldownTracker
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import ENV, fake_config
from tests.redisprobe import REDIS_URL, redis_or_skip


def _router(fake: FakeProviderThread, prefix: str, after_failures: int = 1) -> Router:
    cooldown = {"after_failures": after_failures, "seconds": 30}
    cfg = fake_config(
        fake,
        policies={"retry": {"max_attempts": 1}, "cooldown": cooldown},
        state={"url": REDIS_URL, "prefix": prefix},
    )
    return Router.from_config(cfg, environ=ENV)


async def test_failures_spread_over_replicas_add_up(fake: FakeProviderThread) -> None:
    await redis_or_skip()
    prefix = f"polyroute-test:{uuid.uuid4().hex}:"
    one, two = _router(fake, prefix, 2), _router(fake, prefix, 2)
    fake.script("model-a", [{"kind": "status", "status": 500}] * 2)
    assert (await one.complete("ab", "hi")).model == "b"  # one failure here...
    await asyncio.sleep(0.05)
    assert one.cooldown.cooling_until("a") is None  # (below after_failures on its own)
    assert (await two.complete("ab", "hi")).model == "b"  # ...and one there: two in all
    await asyncio.sleep(0.05)
    assert two.cooldown.cooling_until("a") is not None
    await one.cooldown.sync()  # type: ignore[attr-defined]
    assert one.cooldown.cooling_until("a") is not None
    await one.aclose()
    await two.aclose()


async def test_a_cooldown_in_one_router_is_seen_by_another(fake: FakeProviderThread) -> None:
    await redis_or_skip()
    prefix = f"polyroute-test:{uuid.uuid4().hex}:"
    one, two = _router(fake, prefix), _router(fake, prefix)
    assert isinstance(one.cooldown, SharedCooldownTracker)
    fake.script("model-a", [{"kind": "status", "status": 500}])
    env = await one.complete("ab", "hi")
    assert env.model == "b"
    await asyncio.sleep(0.05)  # the publish runs in the background
    await two.cooldown.sync()  # type: ignore[attr-defined]
    before = len(fake.requests_to("/v1/chat/completions"))
    env = await two.complete("ab", "hi")
    assert env.model == "b" and env.attempts[0].trigger == "cooldown"
    assert len(fake.requests_to("/v1/chat/completions")) == before + 1  # a was never called
    assert two.cooldown.snapshot()["a"]["cooling_for"] > 25  # type: ignore[operator]
    # a success anywhere clears it everywhere
    one.cooldown.record_success("a")
    await asyncio.sleep(0.05)
    await two.cooldown.sync()  # type: ignore[attr-defined]
    assert two.cooldown.cooling_until("a") is None
    await one.aclose()
    await two.aclose()


async def test_redis_down_keeps_local_cooldowns(fake: FakeProviderThread) -> None:
    cfg = fake_config(
        fake,
        policies={"retry": {"max_attempts": 1}, "cooldown": {"after_failures": 1, "seconds": 30}},
        state={"url": "redis://127.0.0.1:1/0"},  # nothing listens there
    )
    router = Router.from_config(cfg, environ=ENV)
    fake.script("model-a", [{"kind": "status", "status": 500}])
    assert (await router.complete("ab", "hi")).model == "b"
    env = await router.complete("ab", "hi")
    assert env.attempts[0].trigger == "cooldown"  # the local state still holds
    await router.aclose()
