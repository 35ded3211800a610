"""Pipeline runs, stored next to the usage records (same database URL).

One row per run: totals as columns (for listing and sorting), the whole run as
JSON (for the per-step view).  Writes are small and rare (one per run), so they
go straight to the database in a worker thread.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from polyroute.db import create_tables, make_engine
from polyroute.pipelines.results import PipelineRun

metadata = MetaData()
runs = Table(
    "polyroute_pipeline_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("steps", Integer, nullable=False),
    Column("total_cost", Float, nullable=False),
    Column("total_tokens", Integer, nullable=False),
    Column("total_latency", Float, nullable=False),
    Column("error", Text),
    Column("body", Text, nullable=False),  # PipelineRun.to_dict() as JSON
    Index("ix_polyroute_pipeline_runs_started", "started_at"),
)


class RunStore:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        create_tables(self.engine, metadata)

    def save(self, run: PipelineRun) -> None:
        body = run.to_dict()
        row = {
            "run_id": run.run_id,
            "pipeline": run.pipeline,
            "started_at": run.started_at,
            "status": run.status,
            "steps": len(run.steps),
            "total_cost": run.total_cost,
            "total_tokens": run.total_tokens,
            "total_latency": run.total_latency,
            "error": run.error,
            "body": orjson.dumps(body).decode(),
        }
        with self.engine.begin() as conn:
            conn.execute(runs.insert().values(**row))

    async def asave(self, run: PipelineRun) -> None:
        await asyncio.to_thread(self.save, run)

    def list(self, limit: int = 50, pipeline: str | None = None) -> list[dict[str, Any]]:
        q = select(*(c for c in runs.c if c.name != "body")).order_by(runs.c.started_at.desc())
        if pipeline:
            q = q.where(runs.c.pipeline == pipeline)
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(limit)).mappings().all()
        return [_jsonable(dict(r)) for r in rows]

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            body = conn.execute(select(runs.c.body).where(runs.c.run_id == run_id)).scalar()
        return orjson.loads(body) if body else None

    def close(self) -> None:
        self.engine.dispose()


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    # Column names come back as SQLAlchemy's str subclass, which orjson refuses as keys.
    return {str(k): v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
