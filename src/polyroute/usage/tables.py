"""The usage table (SQLAlchemy Core).  Engines come from ``polyroute.db``
(shared with pipeline runs): SQLite in WAL mode, PostgreSQL through psycopg 3.

``time`` is seconds since the epoch (a float): the same type on SQLite and
PostgreSQL, cheap to compare, and window arithmetic stays in Python.  ``id`` is
assigned when a record is accepted, so writing the same record twice (a batch
retried after a lost acknowledgement, a spool replayed after a crash) inserts
it once.
"""

from __future__ import annotations

import re

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import postgresql

from polyroute.usage.errors import UsageStoreError
from polyroute.usage.records import LABEL_COLUMNS

DEFAULT_TABLE = "polyroute_usage"
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def usage_table(name: str = DEFAULT_TABLE, metadata: MetaData | None = None) -> Table:
    if not _TABLE_NAME.fullmatch(name):
        raise UsageStoreError(f"usage table name {name!r} must be a plain SQL identifier")
    md = metadata or MetaData()
    # none_as_null: a call without extra labels or attempts stores SQL NULL, not 'null'.
    json_type = JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )
    label_cols = [Column(n, String(200)) for n in LABEL_COLUMNS]
    return Table(
        name,
        md,
        Column("id", String(40), primary_key=True),
        Column("time", Float, nullable=False),
        Column("kind", String(16), nullable=False),
        Column("route", String(200), nullable=False),
        Column("model", String(200)),
        Column("provider", String(100)),
        Column("status", String(100), nullable=False),
        Column("error_kind", String(100)),
        Column("error", Text),
        *label_cols,
        Column("labels", json_type),
        Column("tokens_in", Integer, nullable=False, default=0),
        Column("tokens_out", Integer, nullable=False, default=0),
        Column("cost", Float, nullable=False, default=0.0),
        Column("saved_cost", Float, nullable=False, default=0.0),
        Column("latency", Float, nullable=False, default=0.0),
        Column("ttft", Float),
        Column("retries", Integer, nullable=False, default=0),
        Column("fallbacks", Integer, nullable=False, default=0),
        Column("cache_hit", Boolean, nullable=False, default=False),
        Column("request_id", String(200)),
        Column("attempts", json_type),
        Index(f"ix_{name}_time", "time"),
        Index(f"ix_{name}_model", "model"),
        Index(f"ix_{name}_route", "route"),
        Index(f"ix_{name}_api_key", "api_key"),
    )


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
