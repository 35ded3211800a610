"""Database engines for the usage store and pipeline runs (SQLAlchemy).

``sqlite:///path`` (the default) or ``postgresql://…`` (through psycopg 3).
SQLite runs in WAL mode so readers (``polyroute usage``, the API) do not block
the writer, and several gateway workers can share one file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import MetaData, create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from polyroute.errors import ConfigError


def engine_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("postgresql+psycopg://") and importlib.util.find_spec("psycopg") is None:
        raise ConfigError(
            "a PostgreSQL store needs the psycopg package: pip install 'psycopg[binary]'",
            path="usage.store",
        )
    if not url.startswith(("sqlite:", "postgresql+")):
        raise ConfigError("must start with sqlite:/// or postgresql://", path="usage.store")
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URL (None for in-memory)."""
    if not url.startswith("sqlite:///"):
        return None
    raw = url[len("sqlite:///") :].split("?", 1)[0]
    return None if raw in ("", ":memory:") else Path(raw)


def make_engine(url: str) -> Engine:
    url = engine_url(url)
    # JSON columns (labels, attempts) through orjson: the writer thread shares the GIL
    # with the event loop, so its CPU is the gateway's CPU.
    kw: dict[str, Any] = {"json_serializer": _json_dumps}
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql+"):
        kw["pool_pre_ping"] = True  # connections die with the server; check before use
        # An unreachable server must not hang the writer for the whole TCP timeout.
        kw["connect_args"] = {"connect_timeout": 5}
    if url.startswith("sqlite:") and path is None:
        # One in-memory database shared by every thread that uses this engine.
        kw["poolclass"] = StaticPool
        kw["connect_args"] = {"check_same_thread": False}
    engine = create_engine(url, **kw)
    if url.startswith("sqlite:"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """Create ``metadata``'s tables where missing.  Several gateway workers may race
    to create them: losing that race (the table appeared between the check and
    CREATE) is not an error."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except SQLAlchemyError:
        existing = set(inspect(engine).get_table_names())
        if not all(t.name in existing for t in metadata.sorted_tables):
            raise


def _json_dumps(obj: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
