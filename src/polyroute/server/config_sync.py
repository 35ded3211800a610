"""Config changes reach every replica on one Redis (``state.url: redis://…``).

A replica that reloads — its file, ``POST /api/v1/config/reload``, ``PUT
/api/v1/tasks/...`` — publishes its runtime overrides on ``<prefix>config``;
every other replica applies them and rebuilds from its own file, so all of them
run the same configuration (``/readyz`` and ``polyroute_config_info`` show the
version each runs).  Redis unreachable: each replica keeps what it has, logs
it, and listens again when Redis returns.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from polyroute.server.gateway import Gateway

log = logging.getLogger("polyroute.server")
RETRY_AFTER = 1.0  # seconds before listening again after Redis went away


class ConfigSync:
    def __init__(self, gateway: Gateway, url: str, prefix: str) -> None:
        from polyroute.redis_client import connect

        self.gateway = gateway
        self.channel = prefix + "config"
        self.origin = uuid.uuid4().hex  # this replica: its own messages are not applied
        self._redis: Any = connect(url)
        self._task: asyncio.Task[None] | None = None
        self.received = 0  # changes applied from other replicas

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def publish(self, overrides: dict[str, Any]) -> None:
        message = orjson.dumps({"origin": self.origin, "overrides": overrides})
        try:
            await self._redis.publish(self.channel, message)
        except Exception as exc:  # the change holds here; others get it with the next one
            log.warning("config change not shared with other replicas: %s", exc)

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._apply(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("config changes of other replicas not received: %s", exc)
                await asyncio.sleep(RETRY_AFTER)

    async def _apply(self, data: bytes) -> None:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(body, dict) or body.get("origin") == self.origin:
            return
        overrides = body.get("overrides")
        if not isinstance(overrides, dict):
            return
        try:
            await self.gateway.apply_shared(overrides)
        except Exception as exc:  # another replica's change that does not load here
            log.error("config change from another replica refused: %s", exc)
            return
        self.received += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._redis.aclose()
