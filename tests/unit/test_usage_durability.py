"""No usage record is lost: the database refusing writes, shutting down while
it is down, a crash (the spool replayed), too many records held in memory."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from polyroute.usage.errors import UsageStoreError
from polyroute.usage.store import UsageStore
from tests.unit.test_usage_store import rec, store_at


class Outage:
    """Wraps the writer's insert: the next ``failures`` calls raise, as a down
    database would; ``down=True`` fails every call until cleared."""

    def __init__(self, real: Callable[[Sequence[dict[str, Any]]], None], failures: int = 0):
        self.real, self.failures, self.down, self.calls = real, failures, False, 0

    def __call__(self, rows: Sequence[dict[str, Any]]) -> None:
        self.calls += 1
        if self.down or self.failures > 0:
            self.failures -= 1
            raise ConnectionError("database is down")
        self.real(rows)


def break_writes(store: UsageStore, failures: int = 0, down: bool = False) -> Outage:
    w = store.start()
    outage = Outage(w._write_rows, failures)
    outage.down = down
    w._write_rows = outage
    return outage


async def count(tmp_path: Path) -> int:
    reader = UsageStore(f"sqlite:///{tmp_path / 'usage.db'}", spool=False)
    n = int((await reader.totals())["count"])
    reader.engine.dispose()
    return n


async def test_refused_writes_are_kept_and_written_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_at(tmp_path)
    outage = break_writes(store, failures=2)
    for i in range(30):
        store.record(rec(latency=float(i)))
    with caplog.at_level(logging.ERROR, "polyroute.usage"), pytest.raises(UsageStoreError):
        await store.flush()
    assert store.pending == 30 and store.stats()["failing"]
    with pytest.raises(UsageStoreError):
        await store.flush()
    # logged once per outage, not once per retry
    assert len([r for r in caplog.records if "write failed" in r.message]) == 1
    store.record(rec())
    await store.flush()  # the database is back
    assert store.pending == 0 and outage.calls == 4  # 2 refused, the kept batch, the new one
    assert await count(tmp_path) == 31
    await store.close()


async def test_the_writer_thread_retries_by_itself(tmp_path: Path) -> None:
    store = store_at(tmp_path, flush_interval=0.02)
    break_writes(store, failures=3)
    for _ in range(10):
        store.record(rec())
    deadline = time.monotonic() + 10
    while store.stats()["written"] < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.stats()["written"] == 10 and store.pending == 0
    await store.close()
    assert await count(tmp_path) == 10


async def test_shutdown_while_the_database_is_down_keeps_records_for_next_start(
    tmp_path: Path,
) -> None:
    store = store_at(tmp_path)
    break_writes(store, down=True)
    for _ in range(12):
        store.record(rec())
    assert await store.close() == 12
    spills = list((tmp_path / "usage.db.spool").glob("*.spill-*.jsonl"))
    assert len(spills) == 1
    assert await count(tmp_path) == 0
    again = store_at(tmp_path)
    again.start()
    await again.flush()  # the first pass replays what the last run could not write
    assert await count(tmp_path) == 12
    assert not list((tmp_path / "usage.db.spool").glob("*.spill-*"))  # replayed, deleted
    await again.close()
    assert not list((tmp_path / "usage.db.spool").iterdir())


def crash(store: UsageStore) -> None:
    """What a SIGKILL leaves: no final flush, spool segments on disk, their
    locks released by the dying process."""
    w = store.start()
    w.stop()
    assert w.spool is not None
    w.spool.close(delete=False)


async def test_a_crash_is_recovered_from_the_spool_exactly_once(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for _ in range(20):
        store.record(rec())
    await store.flush()  # these 20 are stored and still in the open segment
    for _ in range(30):
        store.record(rec())
    crash(store)
    assert await count(tmp_path) == 20
    after = store_at(tmp_path)
    after.start()
    await after.flush()
    assert await count(tmp_path) == 50  # the 20 replayed again are not duplicated
    await after.close()


async def test_a_live_process_segment_is_not_replayed(tmp_path: Path) -> None:
    alive = store_at(tmp_path)
    for _ in range(10):
        alive.record(rec())
    other = store_at(tmp_path)
    other.start()
    await other.flush()
    assert await count(tmp_path) == 0  # alive still holds its segment's lock
    await alive.close()
    await other.close()
    assert await count(tmp_path) == 10


async def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for _ in range(5):
        store.record(rec())
    w = store.start()
    assert w.spool is not None
    segment = w.spool._path(w.spool.current)
    crash(store)
    with open(segment, "ab") as f:
        f.write(b'{"id":"half-written","rec":{"kind":"ch')
    after = store_at(tmp_path)
    after.start()
    await after.flush()
    assert await count(tmp_path) == 5
    await after.close()


async def test_past_max_pending_records_spill_to_disk_then_come_back(tmp_path: Path) -> None:
    store = store_at(tmp_path, batch_size=5, max_pending=10)
    outage = break_writes(store, down=True)
    for _ in range(25):
        store.record(rec())
    with pytest.raises(UsageStoreError):
        await store.flush()
    assert store.pending == 10 and store.stats()["spilled"] == 15
    outage.down = False
    await store.flush()  # writes the 10 in memory, then replays the 15 spilled
    assert store.pending == 0
    assert await count(tmp_path) == 25
    await store.close()


async def test_without_a_spool_records_stay_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_at(tmp_path, batch_size=5, max_pending=10, spool=False)
    outage = break_writes(store, down=True)
    for _ in range(25):
        store.record(rec())
    with caplog.at_level(logging.CRITICAL, "polyroute.usage"), pytest.raises(UsageStoreError):
        await store.flush()
    assert store.pending == 25  # never dropped
    assert any("keeping them in memory" in r.message for r in caplog.records)
    outage.down = False
    await store.close()
    assert await count(tmp_path) == 25


async def test_a_record_after_close_is_kept_for_a_later_flush(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_at(tmp_path)
    store.record(rec())
    await store.close()
    with caplog.at_level(logging.WARNING, "polyroute.usage"):
        store.record(rec())  # e.g. a library caller emitting after shutdown
    assert store.pending == 1 and "after the store was closed" in caplog.text
    await store.flush()
    assert await count(tmp_path) == 2


async def test_a_record_no_row_can_hold_is_logged_not_retried_forever(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_at(tmp_path)
    store.record(rec(usage=None))  # no Usage: to_row fails on it
    store.record(rec())
    with caplog.at_level(logging.ERROR, "polyroute.usage"):
        await store.flush()
    assert "usage record cannot be stored" in caplog.text
    assert store.pending == 0 and await count(tmp_path) == 1
    await store.close()
