"""A config change on one replica reaches the others through Redis."""

from __future__ import annotations

import asyncio
import uuid

from polyroute.server import Gateway
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import ENV, fake_config
from tests.redisprobe import REDIS_URL, redis_or_skip


async def test_a_change_on_one_replica_reaches_the_other(fake: FakeProviderThread) -> None:
    await redis_or_skip()
    prefix = f"synctest-{uuid.uuid4().hex[:8]}:"
    cfg = fake_config(
        fake, tasks={"text": {"models": ["a"]}}, state={"url": REDIS_URL, "prefix": prefix}
    )
    cfg["usage"] = {"enabled": False}
    one, two = Gateway(data=cfg, environ=ENV), Gateway(data=cfg, environ=ENV)
    one.start_sync()
    two.start_sync()
    await asyncio.sleep(0.2)  # both subscribed
    assert one.config_version == two.config_version
    await one.reload({"tasks": {"text": {"models": ["b"]}}})
    for _ in range(100):
        if two.sync is not None and two.sync.received:
            break
        await asyncio.sleep(0.02)
    assert [c.info.id for c in two.router.resolve("task:text").candidates] == ["b"]
    assert two.config_version == one.config_version and two.generation == 2
    assert one.sync is not None and one.sync.received == 0  # its own message is not applied
    await one.aclose()
    await two.aclose()
