"""Mutable state of one fake provider: scripted faults, recorded requests, settings.

Shared between the server's event loop and the test's thread, hence the locks.

Besides the FIFO fault queues (one fault per request), a model can carry persistent
switches that hold until undone or :meth:`ProviderState.reset`:

* down (:meth:`~ProviderState.set_down` / :meth:`~ProviderState.set_up`): every request
  naming the model is answered with the given HTTP status in the wire's error shape;
* rejects prefill (:meth:`~ProviderState.reject_prefill` /
  :meth:`~ProviderState.allow_prefill`): a request whose last message has role
  ``assistant`` is answered 400 in the wire's error shape.

Both are checked after auth and body validation and before a queued fault is taken, so a
rejected request does not consume the model's queue; requests are recorded as always.
The model name ``"*"`` switches every model.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

from .faults import ANY_MODEL, FaultLike, FaultQueue


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
        self._down: dict[str, int] = {}
        self._reject_prefill: set[str] = set()
        #: batch APIs (see ``batches``): the n-th GET of a new batch is the first to see it
        #: finished (0: a batch is finished in its create response)
        self.batch_polls: int = 1
        #: uploaded / generated files and batches by id (``batches.StoredFile`` / ``Batch``)
        self.files: dict[str, Any] = {}
        self.batches: dict[str, Any] = {}
        self._batch_ids = itertools.count(1)

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

    def next_batch_id(self, prefix: str) -> str:
        """``<prefix><n>`` (one counter for files and batches of both providers)."""
        with self._lock:
            return f"{prefix}{next(self._batch_ids)}"

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

    # --- persistent per-model switches -----------------------------------------------------
    def set_down(self, model: str, status: int = 503) -> None:
        """Answer every request for ``model`` ("*": any) with ``status`` until :meth:`set_up`."""
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"a down model answers an HTTP error status (400-599), not {status!r}")
        with self._lock:
            self._down[model] = status

    def set_up(self, model: str) -> None:
        """Undo :meth:`set_down` for ``model`` (it may still be down through ``"*"``)."""
        with self._lock:
            self._down.pop(model, None)

    def down_status(self, model: str) -> int | None:
        """The status a down ``model`` answers with, or None if it is up."""
        with self._lock:
            return self._down.get(model, self._down.get(ANY_MODEL))

    def reject_prefill(self, model: str) -> None:
        """Answer 400 to requests for ``model`` ("*": any) that end with an assistant message."""
        with self._lock:
            self._reject_prefill.add(model)

    def allow_prefill(self, model: str) -> None:
        """Undo :meth:`reject_prefill` for ``model``."""
        with self._lock:
            self._reject_prefill.discard(model)

    def rejects_prefill(self, model: str) -> bool:
        with self._lock:
            return bool(self._reject_prefill & {model, ANY_MODEL})

    def switches(self) -> dict[str, Any]:
        """The persistent switches: ``{"down": {model: status}, "reject_prefill": [model]}``."""
        with self._lock:
            return {"down": dict(self._down), "reject_prefill": sorted(self._reject_prefill)}

    def reset(self) -> None:
        """Forget scripted faults, recorded requests, per-model switches, files and batches;
        latency back to 0, batch_polls back to 1."""
        self.faults.clear()
        self.clear_requests()
        with self._lock:
            self._down.clear()
            self._reject_prefill.clear()
            self.files.clear()
            self.batches.clear()
        self.latency = 0.0
        self.batch_polls = 1
