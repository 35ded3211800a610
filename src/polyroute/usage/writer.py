"""The background writer: accepted records queue in memory and a thread writes
them to the database in batches.

The request path only appends to a ``deque`` (and, with a spool, one
``os.write``); every database round trip happens on the writer thread or on
a worker thread of ``flush()``.  A batch the database refuses stays at the
head of the line and is tried again with growing pauses: nothing is dropped.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from polyroute.types import CallRecord
from polyroute.usage.records import TierOf, from_json, to_row
from polyroute.usage.spool import Spool

log = logging.getLogger("polyroute.usage")
Row = dict[str, Any]
WriteRows = Callable[[Sequence[Row]], None]
MAX_BACKOFF = 30.0
REPLAY_EVERY = 60.0  # look for segments left by crashed processes this often


class _Item:
    __slots__ = ("rec", "rid", "row", "seg")

    def __init__(self, rid: str, rec: CallRecord, seg: int) -> None:
        self.rid, self.rec, self.seg = rid, rec, seg
        self.row: Row | None = None


class Writer:
    def __init__(
        self,
        write_rows: WriteRows,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_pending: int = 1_000_000,
        spool: Spool | None = None,
        tier_of: TierOf | None = None,
        prepare: Callable[[], None] = lambda: None,
    ) -> None:
        self._write_rows = write_rows
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.spool = spool
        self.tier_of = tier_of
        self._prepare = prepare
        self._prepared = False
        self._queue: deque[_Item] = deque()
        self._retry: list[_Item] = []  # the refused batch, written before anything newer
        self._ids = itertools.count()
        self._prefix = secrets.token_hex(6) + "-"  # unique per process start
        self._append_lock = threading.Lock()  # keeps spool order == queue order
        self._write_lock = threading.Lock()  # one batch in flight at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0  # consecutive failed writes
        self.written = 0
        self.spilled = 0
        self.last_error: str | None = None
        self._over_max_logged = False
        self._closed = False
        self._late_logged = False
        self._last_replay = 0.0

    # -- the request path -------------------------------------------------------------

    def submit(self, rec: CallRecord) -> None:
        rid = self._prefix + format(next(self._ids), "x")
        if self.spool is None:
            self._queue.append(_Item(rid, rec, -1))
        else:
            line = _encode(rid, rec)
            with self._append_lock:  # spool order == queue order; close() cannot interleave
                seg = -1 if self._closed else self.spool.append(line)
                self._queue.append(_Item(rid, rec, seg))
        if self._closed:
            self._late()
        elif len(self._queue) >= self.batch_size:
            self._wake.set()

    def _late(self) -> None:
        # After close() there is no thread and no spool; the record stays queued
        # so a later flush() still writes it.
        if not self._late_logged:
            log.warning("usage record after the store was closed; call flush() to write it")
            self._late_logged = True

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._retry)

    @contextmanager
    def paused(self) -> Iterator[list[CallRecord]]:
        """Hold the writer between batches; yields the records not yet written.
        Reading the database inside sees exactly what is not in the list."""
        with self._write_lock:
            yield [i.rec for i in [*self._retry, *self._queue]]

    # -- the thread -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="polyroute-usage", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pause = self.flush_interval
            if self.failures:
                pause = min(self.flush_interval * 2**self.failures, MAX_BACKOFF)
            self._wake.wait(pause)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.drain()
            except Exception:  # the thread must outlive any bug in one pass
                log.exception("usage writer pass failed")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- writing ----------------------------------------------------------------------

    def drain(self) -> bool:
        """Write what is queued now; False when the database refused (records kept)."""
        with self._write_lock:
            if not self._ensure_prepared():
                return False
            recovering = self.failures > 0
            target = self.pending
            done = 0
            while done < target:
                batch = self._retry or self._take()
                if not batch:
                    break
                if not self._write(batch):
                    self._limit_memory()
                    return False
                done += len(batch)
            if recovering or time.monotonic() - self._last_replay > REPLAY_EVERY:
                self._replay_orphans()
            self._release_spool()
            return True

    def _ensure_prepared(self) -> bool:
        if self._prepared:
            return True
        try:
            self._prepare()
        except Exception as exc:
            self._failed(exc)
            return False
        self._prepared = True
        self._replay_orphans()
        return True

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        q = self._queue
        while q and len(batch) < self.batch_size:
            batch.append(q.popleft())
        return batch

    def _write(self, batch: list[_Item]) -> bool:
        rows: list[Row] = []
        for item in batch:
            if item.row is None:
                item.row = self._convert(item)
            if item.row:
                rows.append(item.row)
        try:
            self._write_rows(rows)
        except Exception as exc:
            self._retry = batch
            self._failed(exc)
            return False
        self._retry = []
        if self.failures:
            log.warning("usage store writable again; %d records pending", self.pending)
        self.failures = 0
        self.written += len(batch)
        return True

    def _convert(self, item: _Item) -> Row:
        try:
            return to_row(item.rid, item.rec, self.tier_of)
        except Exception:
            # A record no row can hold (a bug, not an outage): retrying cannot
            # help, so it goes to the log whole instead of blocking the queue.
            log.exception("usage record cannot be stored: %r", item.rec)
            return {}

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if self.failures == 1:  # once per outage, not once per retry
            log.error(
                "usage store write failed; %d records kept and retried: %s",
                self.pending,
                self.last_error,
            )

    def _release_spool(self) -> None:
        if self.spool is None or self.spool.closed:
            return
        with self._append_lock:
            if self.spool.full:
                self.spool.rotate()
            head = self._retry[0] if self._retry else (self._queue[0] if self._queue else None)
            # Segments before the oldest unwritten record's are fully stored.  An
            # unspooled head (the disk refused it) says nothing: release nothing.
            below = self.spool.current if head is None else max(head.seg, 0)
        self.spool.release(below)

    def _limit_memory(self) -> None:
        """Past ``max_pending``: move the oldest records to a spill file (replayed
        when the database is back, or at the next start); with nowhere to spill,
        keep them and say so loudly."""
        excess = self.pending - self.max_pending
        if excess <= 0:
            return
        if self.spool is None:
            if not self._over_max_logged:
                log.critical(
                    "usage store unreachable and %d records pending (max %d); "
                    "keeping them in memory, configure a spool directory",
                    self.pending,
                    self.max_pending,
                )
                self._over_max_logged = True
            return
        moved = [self._queue.popleft() for _ in range(min(excess, len(self._queue)))]
        try:
            path = self.spool.spill([_line(i) for i in moved])
        except OSError as exc:
            self._queue.extendleft(reversed(moved))
            log.critical("usage records over max_pending could not be spilled: %s", exc)
            return
        self.spilled += len(moved)
        log.critical(
            "usage store unreachable: %d records over max_pending moved to %s", len(moved), path
        )

    def _replay_orphans(self) -> None:
        self._last_replay = time.monotonic()
        if self.spool is None:
            return
        for path, fd in self.spool.orphans():
            try:
                replayed = self._replay_file(path)
            except Exception as exc:
                log.warning("replaying usage spool %s failed (%s); kept for later", path, exc)
                return
            finally:
                os.close(fd)
            if replayed:
                log.warning("replayed %d usage records from %s", replayed, path)

    def _replay_file(self, path: Path) -> int:
        rows: list[Row] = []
        bad = 0
        for line in path.read_bytes().splitlines():
            try:
                data = orjson.loads(line)
                rows.append(to_row(data["id"], from_json(data["rec"]), self.tier_of))
            except Exception:  # a line cut short by the crash that left this file
                bad += 1
        for i in range(0, len(rows), self.batch_size):
            self._write_rows(rows[i : i + self.batch_size])
        path.unlink(missing_ok=True)
        if bad:
            log.warning("%d unreadable lines skipped in usage spool %s", bad, path)
        return len(rows)

    def close(self) -> int:
        """Stop the thread and write everything; returns how many could not be
        written (spilled to disk when there is a spool, else lost)."""
        self.stop()
        self.drain()
        with self._write_lock, self._append_lock:
            self._closed = True
            left = [*self._retry, *self._queue]
            if self.spool is None or self.spool.closed:
                if left:
                    log.critical("usage store unreachable at shutdown: %d records lost", len(left))
                return len(left)
            if left:
                try:
                    path = self.spool.spill([_line(i) for i in left])
                except OSError as exc:
                    log.critical(
                        "usage store unreachable at shutdown and spill failed (%s); "
                        "%d records stay in the spool segments for the next start",
                        exc,
                        len(left),
                    )
                else:
                    log.error(
                        "usage store unreachable at shutdown: %d records kept in %s, "
                        "written at the next start",
                        len(left),
                        path,
                    )
                    self._retry, self._queue = [], deque()
            # Stored or spilled, every own segment may go; if the spill failed,
            # they stay (unlocked now) and the next start replays them.
            self.spool.close(delete=not self.pending)
            return len(left)


def _encode(rid: str, rec: CallRecord) -> bytes:
    """One spool line; ``_replay_file`` reads it back."""
    return orjson.dumps({"id": rid, "rec": rec}, option=orjson.OPT_APPEND_NEWLINE)


def _line(item: _Item) -> bytes:
    return _encode(item.rid, item.rec)
