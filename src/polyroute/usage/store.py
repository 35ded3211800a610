"""``UsageStore``: one row per finished call, in SQLite (default) or PostgreSQL.

Use its ``record`` as a router observer.  Recording costs the request path a
queue append (plus one unbuffered write to the local spool, when enabled); a
background thread writes batches, and every query runs on a worker thread, so
the event loop never waits on the database.

    store = UsageStore("sqlite:///polyroute.db")
    router.observers.append(store.record)
    ...
    await store.summary(since="24h", group_by=["model"])
    await store.close()        # writes what is queued; call it on shutdown
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Insert, MetaData, inspect
from sqlalchemy.dialects import postgresql, sqlite

from polyroute.db import create_tables, make_engine, sqlite_path
from polyroute.types import CallRecord
from polyroute.usage import queries
from polyroute.usage.errors import UsageStoreError
from polyroute.usage.records import TierOf, costs
from polyroute.usage.spool import Spool, spool_key
from polyroute.usage.tables import DEFAULT_TABLE, redact, usage_table
from polyroute.usage.window import iso, month_start, parse_time
from polyroute.usage.writer import Row, Writer

log = logging.getLogger("polyroute.usage")
T = TypeVar("T")
When = float | datetime | str | None


def _epoch(when: When, now: float) -> float | None:
    if when is None:
        return None
    if isinstance(when, datetime):
        return when.timestamp()
    if isinstance(when, str):
        return parse_time(when, now)
    return float(when)


class UsageStore:
    def __init__(
        self,
        url: str = "sqlite:///polyroute.db",
        *,
        table: str = DEFAULT_TABLE,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_pending: int = 1_000_000,
        spool: bool = True,
        spool_dir: str | Path | None = None,
        tier_of: TierOf | None = None,
    ) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.metadata = MetaData()
        self.table = usage_table(table, self.metadata)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.tier_of = tier_of
        self.spool_dir = self._spool_dir(spool, spool_dir)
        self._writer: Writer | None = None
        self._start_lock = threading.Lock()
        self._schema_ready = False
        self._insert = self._insert_statement()

    def _spool_dir(self, enabled: bool, given: str | Path | None) -> Path | None:
        if not enabled:
            return None
        if given is not None:
            return Path(given)
        db = sqlite_path(self.url)
        if db is not None:
            return db.with_name(db.name + ".spool")
        if self.url.startswith("sqlite:"):
            return None  # in-memory: nothing outlives the process anyway
        return Path("polyroute-usage-spool")

    def _insert_statement(self) -> Insert:
        # ON CONFLICT DO NOTHING: a record written twice (a batch retried after a
        # lost commit acknowledgement, a replayed spool) is stored once.
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(self.table).on_conflict_do_nothing(index_elements=["id"])
        return sqlite.insert(self.table).on_conflict_do_nothing(index_elements=["id"])

    def __repr__(self) -> str:
        return f"UsageStore({redact(self.url)!r}, table={self.table.name!r})"

    # -- recording ----------------------------------------------------------------------

    def start(self) -> Writer:
        """Start the writer thread (``record`` does this on first use)."""
        with self._start_lock:
            if self._writer is None:
                spool = None
                if self.spool_dir is not None:
                    try:
                        spool = Spool(self.spool_dir, spool_key(self.url, self.table.name))
                    except OSError as exc:  # recording goes on; only crash-safety is lost
                        log.error(
                            "usage spool %s unusable, running without: %s", self.spool_dir, exc
                        )
                self._writer = Writer(
                    self._write_rows,
                    batch_size=self.batch_size,
                    flush_interval=self.flush_interval,
                    max_pending=self.max_pending,
                    spool=spool,
                    tier_of=self.tier_of,
                    prepare=self.ensure_schema,
                )
                self._writer.start()
            return self._writer

    def record(self, rec: CallRecord) -> None:
        """The router observer: accept one finished call.  Never touches the database."""
        w = self._writer
        if w is None:
            w = self.start()
        w.submit(rec)

    @property
    def pending(self) -> int:
        return self._writer.pending if self._writer else 0

    def stats(self) -> dict[str, Any]:
        w = self._writer
        return {
            "store": redact(self.url),
            "pending": w.pending if w else 0,
            "written": w.written if w else 0,
            "spilled": w.spilled if w else 0,
            "failing": bool(w and w.failures),
            "last_error": w.last_error if w else None,
            "spool": str(self.spool_dir) if self.spool_dir else None,
        }

    async def flush(self) -> None:
        """Write everything queued; raises UsageStoreError (records kept) if the
        database refuses."""
        w = self._writer
        if w is None:
            return
        if not await asyncio.to_thread(w.drain):
            raise UsageStoreError(
                f"usage store {redact(self.url)} refused a write; {w.pending} records kept "
                f"and retried: {w.last_error}"
            )

    async def close(self) -> int:
        """Flush, stop the writer and release the database; returns the number of
        records that could not be written (kept in the spool for the next start)."""
        return await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> int:
        left = self._writer.close() if self._writer is not None else 0
        self.engine.dispose()
        return left

    def _write_rows(self, rows: Sequence[Row]) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._insert, list(rows))

    def ensure_schema(self) -> None:
        if not self._schema_ready:
            create_tables(self.engine, self.metadata)
            self._schema_ready = True

    # -- queries ------------------------------------------------------------------------

    def _exists(self, conn: Connection) -> bool:
        if not self._schema_ready:
            self._schema_ready = inspect(conn).has_table(self.table.name)
        return self._schema_ready

    def _read_sync(self, fn: Callable[[Connection], T], empty: T) -> T:
        db = sqlite_path(self.url)
        if db is not None and not db.exists():
            return empty  # reading must not create a database file
        with self.engine.connect() as conn:
            return fn(conn) if self._exists(conn) else empty

    async def _read(self, fn: Callable[[Connection], T], empty: T) -> T:
        return await asyncio.to_thread(self._read_sync, fn, empty)

    async def summary(
        self,
        since: When = None,
        until: When = None,
        group_by: Sequence[str] = (),
        *,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """One row per group (no groups: one totals row, or none if the window is
        empty): count, errors, tokens, cost, saved cost, latency avg/p50/p95/p99,
        cache hit rate, fallback rate.  Sorted by cost, highest first."""
        now = time.time() if now is None else now
        lo, hi = _epoch(since, now), _epoch(until, now)
        names = queries.group_names(group_by)  # raises GroupByError before any thread
        return await self._read(lambda c: queries.summary(c, self.table, lo, hi, names), empty=[])

    async def totals(self, since: When = None, until: When = None) -> dict[str, Any]:
        rows = await self.summary(since, until)
        return rows[0] if rows else queries.empty_totals()

    async def recent(
        self, limit: int = 50, filters: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """The latest calls, newest first, with their attempts; ``filters`` are
        equalities on groupable names (model, route, api_key, labels.x...)."""
        flt = dict(filters or {})
        queries.group_names(list(flt))
        none: list[dict[str, Any]] = []
        rows = await self._read(lambda c: queries.recent(c, self.table, limit, flt), none)
        for r in rows:
            r["timestamp"] = r["time"]
            r["time"] = iso(r["time"])
        return rows

    async def month_to_date_cost(
        self, api_key: str | None = None, now: float | datetime | None = None
    ) -> float:
        """USD spent this calendar month (UTC), all keys or one, including records
        accepted but not yet written."""
        by_key, total = await self.month_to_date_by_key(now)
        return total if api_key is None else by_key.get(api_key, 0.0)

    async def month_to_date_by_key(
        self, now: float | datetime | None = None
    ) -> tuple[dict[str, float], float]:
        """This month's spend per API key id, and in total: what a budget ledger
        is seeded with at start (``ledger.seed(total)``, ``ledger.seed(v, key)``)."""
        at = time.time() if now is None else _epoch(now, time.time())
        assert at is not None
        start = month_start(at)

        def read() -> tuple[dict[str, float], float]:
            def costs_since(conn: Connection) -> tuple[dict[str, float], float]:
                by_key = queries.cost_by_key_since(conn, self.table, start)
                return by_key, queries.cost_since(conn, self.table, start, None)

            none: tuple[dict[str, float], float] = ({}, 0.0)
            return self._read_sync(costs_since, none)

        def run() -> tuple[dict[str, float], float]:
            w = self._writer
            if w is None:
                return read()
            with w.paused() as unwritten:  # exact: no batch is half-written meanwhile
                by_key, total = read()
                for r in unwritten:
                    if r.time >= start:
                        cost = costs(r)[0]
                        total += cost
                        key = r.labels.get("api_key")
                        if key is not None:
                            by_key[key] = by_key.get(key, 0.0) + cost
                return by_key, total

        return await asyncio.to_thread(run)
