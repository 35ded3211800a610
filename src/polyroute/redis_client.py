"""One way to open a Redis client for polyroute's shared state.

redis-py's default pool raises ``MaxConnectionsError`` as soon as more than 100
commands are in flight at once, which a busy gateway reaches (every cached call
and every rate-limited call talks to Redis).  A blocking pool makes a command
wait for a free connection instead, for up to ``timeout`` seconds.
"""

from __future__ import annotations

from typing import Any

MAX_CONNECTIONS = 64  # per client; a gateway process holds three (cache, limits, cooldowns)
WAIT_FOR_CONNECTION = 5.0  # seconds


def connect(url: str) -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:  # pragma: no cover - redis is a core dependency
        raise RuntimeError(
            f"state.url is {url.split('@')[-1]!r} but the 'redis' package is not installed; "
            "install it with: pip install 'redis>=5'"
        ) from exc
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_FOR_CONNECTION
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
