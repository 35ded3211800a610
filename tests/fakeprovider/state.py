"""Mutable state of one fake provider: scripted faults, recorded requests, settings.

Shared between the server's event loop and the test's thread, hence the locks.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

from .faults import FaultLike, FaultQueue


class RecordedRequest(NamedTuple):
    """One request the fake received.  ``headers`` keys are lower-case."""

    path: str
    headers: dict[str, str]
    body: Any  # decoded JSON, the raw text if it was not JSON, or None if empty

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "headers": self.headers, "body": self.body}


class ProviderState:
    def __init__(self) -> None:
        self.faults = FaultQueue()
        #: seconds to wait before every provider answer (on top of a fault's ``delay``)
        self.latency: float = 0.0
        self.base_url: str = ""
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._request_ids = itertools.count(1)
        self._image_ids = itertools.count(1)
        self._in_flight = 0

    # --- requests -------------------------------------------------------------------------
    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- counters -------------------------------------------------------------------------
    def next_request_id(self) -> int:
        with self._lock:
            return next(self._request_ids)

    def next_image_id(self) -> int:
        with self._lock:
            return next(self._image_ids)

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        """Provider requests currently being handled (a hung request counts until cancelled)."""
        with self._lock:
            return self._in_flight

    # --- scripting ------------------------------------------------------------------------
    def script(self, model: str, faults: Iterable[FaultLike]) -> int:
        return self.faults.push(model, faults)

    def reset(self) -> None:
        """Forget scripted faults and recorded requests; latency back to 0."""
        self.faults.clear()
        self.clear_requests()
        self.latency = 0.0
