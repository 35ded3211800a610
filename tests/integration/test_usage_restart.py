"""The headline: a real gateway process under load, stopped with SIGTERM, killed
with SIGKILL, restarted: every call that got an HTTP answer has exactly one
usage row in the SQLite file.

Each request carries a unique prompt; the simulator derives its request id
from the answer, so the id in each HTTP answer names exactly one row.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from tests.integration.gatewaykit import free_port

MODEL = "simulator/gpt-4o-mini"
LATENCY = 0.4  # simulated upstream seconds: requests are in flight when the signal lands
# uvicorn shuts down gracefully, then re-raises the signal it caught: a clean stop
# exits by SIGTERM (-15), never by an error code.
STOPPED = (0, -signal.SIGTERM)


def _wired() -> bool:
    from polyroute.server import Gateway, create_app

    app = create_app(Gateway(data={"usage": {"store": "sqlite://"}}, environ={}))
    return getattr(app.state, "usage_store", None) is not None


pytestmark = pytest.mark.skipif(not _wired(), reason="needs app wiring")


def write_config(tmp: Path) -> tuple[Path, Path]:
    db = tmp / "usage.db"
    cfg = tmp / "polyroute.yaml"
    cfg.write_text(
        "providers:\n"
        f"  simulator: {{simulator: {{latency: {LATENCY}}}}}\n"
        # No timed writes: until shutdown, records live in the queue and the spool.
        f"usage: {{store: 'sqlite:///{db}', flush_interval: 60}}\n"
    )
    return cfg, db


@contextmanager
def gateway(cfg: Path, port: int, tmp: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEYS")}
    log = open(tmp / f"gateway-{port}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "polyroute.cli", "serve", "--port", str(port), "--config", str(cfg)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start: {(tmp / log.name).read_text()}")
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        log.close()


async def call(client: httpx.AsyncClient, port: int, tag: str, stream: bool) -> str | None:
    """One chat call; the simulator request id of its answer, or None if the
    server never answered (refused, reset)."""
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": tag}]}
    if stream:
        body["stream"] = True
    try:
        r = await client.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body)
    except httpx.TransportError:
        return None
    assert r.status_code == 200, r.text
    if stream:
        first = next(ln for ln in r.text.splitlines() if ln.startswith("data: {"))
        rid = str(orjson.loads(first[6:])["id"])
    else:
        rid = str(r.json()["id"])
    return rid.removeprefix("chatcmpl-")


async def burst(
    port: int,
    tag: str,
    n: int,
    signal_after: float | None = None,
    proc: subprocess.Popen[bytes] | None = None,
) -> tuple[set[str], int]:
    """``n`` concurrent calls; optionally a SIGTERM ``signal_after`` seconds in."""
    async with httpx.AsyncClient(timeout=30) as client:
        tasks = [
            asyncio.create_task(call(client, port, f"{tag} call {i}", stream=i % 5 == 0))
            for i in range(n)
        ]
        if signal_after is not None and proc is not None:
            await asyncio.sleep(signal_after)
            proc.send_signal(signal.SIGTERM)
        results = await asyncio.gather(*tasks)
    return {r for r in results if r is not None}, len(results)


def rows(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT request_id FROM polyroute_usage")]


def test_no_record_lost_across_sigterm_sigkill_and_restarts(tmp_path: Path) -> None:
    cfg, db = write_config(tmp_path)
    answered: set[str] = set()

    # 1. SIGTERM while 40 calls are in flight: uvicorn finishes them, the
    #    lifespan shutdown flushes their records.
    port = free_port()
    with gateway(cfg, port, tmp_path) as proc:
        got, _ = asyncio.run(burst(port, "run1", 40, signal_after=LATENCY / 2, proc=proc))
        assert proc.wait(30) in STOPPED
    assert len(got) == 40  # accepted before the signal, so all answered
    answered |= got

    # 2. SIGKILL right after 30 answers: no shutdown at all; the records sit in
    #    the spool (written before each answer was sent).
    port = free_port()
    with gateway(cfg, port, tmp_path) as proc:
        got, _ = asyncio.run(burst(port, "run2", 30))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert len(got) == 30
    assert len(rows(db)) == 40  # run 2's records are only in the spool now
    answered |= got

    # 3. Restart: the spool is replayed; the API sees everything so far.  Then
    #    SIGTERM mid-load again.
    port = free_port()
    with gateway(cfg, port, tmp_path) as proc:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            totals = httpx.get(url + "/api/v1/usage?since=1h&by=model").json()["totals"]
            if totals["count"] >= len(answered) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert totals["count"] == len(answered)
        assert httpx.get(url + "/api/v1/alerts?since=1h").status_code == 200
        assert httpx.get(url + "/api/v1/calls?limit=5").json()["calls"][0]["attempts"]
        assert b"polyroute_usage_window_requests" in httpx.get(url + "/metrics").content
        got, _ = asyncio.run(burst(port, "run3", 40, signal_after=LATENCY / 2, proc=proc))
        assert proc.wait(30) in STOPPED
    assert len(got) == 40
    answered |= got

    ids = rows(db)
    assert len(ids) == len(set(ids)), "a call was recorded twice"
    assert set(ids) == answered  # every answered call once, nothing else
    assert len(answered) == 110
    spool = db.with_name(db.name + ".spool")
    assert not list(spool.glob("*.jsonl")), "spool left behind after a clean stop"
