"""The shared aiohttp session and the mapping of transport failures to errors.

One ``ClientSession`` (one connection pool, keep-alive) per event loop, made on
first use and reused by every provider: creating a session per request costs a
new TCP (and TLS) handshake each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from polyroute import errors as E

if TYPE_CHECKING:  # aiohttp loads when the first session is made, not at import
    import aiohttp


class SessionPool:
    """Hands out the session for the running loop; ``close()`` on shutdown."""

    def __init__(self, limit: int = 0, limit_per_host: int = 0) -> None:
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiohttp.ClientSession
        ] = weakref.WeakKeyDictionary()

    def get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        s = self._sessions.get(loop)
        if s is None or s.closed:
            import aiohttp

            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host, ttl_dns_cache=300
            )
            s = aiohttp.ClientSession(
                connector=connector,
                # Timeouts are per request (ClientTimeout passed on each call).
                timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent",),
            )
            self._sessions[loop] = s
        return s

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        s = self._sessions.pop(loop, None)
        if s is not None and not s.closed:
            await s.close()


@contextlib.contextmanager
def transport_errors(provider: str, model: str, timeout: float | None) -> Iterator[None]:
    """Re-raise aiohttp / asyncio failures as polyroute's typed errors."""
    import aiohttp

    try:
        yield
    except E.PolyrouteError:
        raise
    except TimeoutError as exc:
        raise E.ProviderTimeoutError(
            f"no answer within {timeout}s", provider=provider, model=model
        ) from exc
    except aiohttp.ClientPayloadError as exc:
        raise E.ProviderConnectionError(
            f"connection broke while reading the answer ({type(exc).__name__})",
            provider=provider,
            model=model,
        ) from exc
    except (aiohttp.ClientConnectionError, ConnectionError) as exc:
        raise E.ProviderConnectionError(
            f"connection failed ({type(exc).__name__}: {exc})", provider=provider, model=model
        ) from exc
    except (aiohttp.ClientError, OSError) as exc:
        # Anything else the HTTP client raises (a bad URL, a protocol error) is this
        # candidate's failure, not the request's: classified, so the route falls back.
        raise E.ProviderClientError(
            f"HTTP client error ({type(exc).__name__}: {exc})", provider=provider, model=model
        ) from exc


@functools.lru_cache(maxsize=256)
def client_timeout(
    timeout: float | None, streaming: bool = False, first_chunk: float | None = None
) -> aiohttp.ClientTimeout:
    """Whole-call timeout for plain calls (``first_chunk`` bounds the wait for the
    headers and each read); for streams ``timeout`` bounds the connect and each read
    (the router bounds the first chunk and the gaps itself: ``first_chunk_timeout``,
    ``idle_timeout``)."""
    import aiohttp

    if timeout is None and first_chunk is None:
        return aiohttp.ClientTimeout(total=None)
    if streaming:
        return aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    return aiohttp.ClientTimeout(total=timeout, sock_read=first_chunk)
