"""What the response cache needs from a store (memory or Redis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Limits:
    """One namespace's limits: seconds an entry lives, entries it may hold."""

    ttl: float
    max_size: int


class Backend(Protocol):
    """Bytes by (namespace, key), each namespace with its own TTL and size limit."""

    async def get(self, namespace: str, key: str) -> bytes | None: ...

    async def set(
        self, namespace: str, key: str, value: bytes, ttl: float | None = None
    ) -> None: ...

    async def delete(self, namespace: str, key: str) -> None: ...

    async def clear(self, namespace: str | None = None) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class LockingBackend(Protocol):
    """A store shared between processes that can also elect one computer per key."""

    async def try_lock(self, namespace: str, key: str, ttl: float) -> str | None:
        """A token when this caller now holds the key's lock, else None."""
        ...

    async def unlock(self, namespace: str, key: str, token: str) -> None: ...

    async def locked(self, namespace: str, key: str) -> bool: ...
