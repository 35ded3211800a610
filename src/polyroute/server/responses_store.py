"""Responses kept for ``previous_response_id`` and ``GET /v1/responses/{id}``.

Stored next to the usage records (same database URL): one row per response with
the response object and the conversation it ends (chat messages), so a follow-up
request continues it through any route.  With usage records off, responses are
kept in memory (the most recent ``MEMORY_LIMIT``).  Rows are small and one per
call, written in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

import orjson
from sqlalchemy import Column, Float, MetaData, String, Table, Text, delete, select

from polyroute.db import create_tables, make_engine

MEMORY_LIMIT = 10_000

metadata = MetaData()
responses = Table(
    "polyroute_responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("model", String(200), nullable=False),
    Column("response", Text, nullable=False),  # the response object as JSON
    Column("messages", Text, nullable=False),  # the conversation it ends, as JSON
)

Stored = dict[str, Any]  # {"response": {...}, "messages": [...]}


class ResponseStore:
    def __init__(self, url: str | None) -> None:
        self.engine = None
        self._memory: OrderedDict[str, Stored] = OrderedDict()
        if url:
            self.engine = make_engine(url)
            create_tables(self.engine, metadata)

    def save(self, response: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        if self.engine is None:
            self._memory[response["id"]] = {"response": response, "messages": messages}
            while len(self._memory) > MEMORY_LIMIT:
                self._memory.popitem(last=False)
            return
        row = {
            "id": response["id"],
            "created_at": time.time(),
            "model": str(response.get("model") or ""),
            "response": orjson.dumps(response).decode(),
            "messages": orjson.dumps(messages).decode(),
        }
        with self.engine.begin() as conn:
            conn.execute(responses.insert().values(**row))

    def get(self, response_id: str) -> Stored | None:
        if self.engine is None:
            return self._memory.get(response_id)
        q = select(responses.c.response, responses.c.messages).where(responses.c.id == response_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        return {"response": orjson.loads(row[0]), "messages": orjson.loads(row[1])}

    def delete(self, response_id: str) -> bool:
        if self.engine is None:
            return self._memory.pop(response_id, None) is not None
        with self.engine.begin() as conn:
            return bool(
                conn.execute(delete(responses).where(responses.c.id == response_id)).rowcount
            )

    async def asave(self, response: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(self.save, response, messages)

    async def aget(self, response_id: str) -> Stored | None:
        return await asyncio.to_thread(self.get, response_id)

    async def adelete(self, response_id: str) -> bool:
        return await asyncio.to_thread(self.delete, response_id)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
