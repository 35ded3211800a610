"""Chaos run: the gateway at a steady rate against an upstream that misbehaves.

A fake provider (``tests/fakeprovider``) serves three models; two of them fail in
a scripted mix — 429 with and without Retry-After, 500, 503, 529, hangs, resets
before headers, streams cut or stalled mid-answer, malformed events, missing
[DONE] — and the third is always healthy, so some candidate can always serve.
The gateway (real HTTP on 127.0.0.1, in a thread of this process) routes every
request over the three.  Plain calls and streams are sent open loop at
``--rate`` for ``--duration`` seconds.

It reports: requests sent, answered completely (a plain answer with content; a
stream with content and a clean end), lost (must be 0), usage records written
versus requests (must be equal), latency p50 / p99, RSS at the start and end.
Loopback only, bounded in time and count.  (RSS is this process's: it holds the
fake provider's record of every request too, so it grows with the run's length.)

``python bench/chaos.py --rate 200 --duration 300`` (the suite runs it small).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV, fake_config

# The faults of a misbehaving model, with their weights (the rest answer normally).
FAULTS: list[tuple[dict[str, Any], int]] = [
    ({"kind": "status", "status": 429, "retry_after": "0.05"}, 3),
    ({"kind": "status", "status": 429}, 3),
    ({"kind": "status", "status": 500}, 3),
    ({"kind": "status", "status": 503}, 3),
    ({"kind": "status", "status": 529}, 2),
    ({"kind": "hang", "seconds": 5}, 1),
    ({"kind": "reset"}, 2),
    ({"kind": "stream_cut", "after_chunks": 1}, 2),
    ({"kind": "stream_stall", "after_chunks": 1, "seconds": 5}, 1),
    ({"kind": "stream_malformed_event", "after_chunks": 1}, 2),
    ({"kind": "stream_no_done"}, 2),
    ({"kind": "content", "content": "fine"}, 26),  # a normal answer
]


def chaos_config(fake: FakeProviderThread) -> dict[str, Any]:
    cfg = fake_config(
        fake,
        policies={
            "retry": {"max_attempts": 2, "base_delay": 0.02, "max_delay": 0.1},
            "cooldown": {"after_failures": 5, "seconds": 2, "window": 10, "max_wait": 0.2},
        },
        routes={
            "chaos": {
                "models": ["a", "b", "c"],
                "timeout": 1.0,
                "first_chunk_timeout": 1.0,
                "idle_timeout": 0.5,
            }
        },
    )
    cfg["usage"] = {"store": "sqlite://", "spool": False, "flush_interval": 0.2}
    return cfg


def script_faults(fake: FakeProviderThread, n: int, rng: random.Random) -> None:
    kinds = [f for f, _ in FAULTS]
    weights = [w for _, w in FAULTS]
    for model in ("model-a", "model-b"):
        fake.script(model, rng.choices(kinds, weights, k=n))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def one(session: Any, url: str, stream: bool, i: int) -> tuple[bool, float]:
    import aiohttp

    body: dict[str, Any] = {"model": "chaos", "messages": [{"role": "user", "content": f"q{i}"}]}
    if stream:
        body["stream"] = True
    t0 = time.perf_counter()
    try:
        async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=30)) as r:
            raw = await r.read()
            ok = r.status == 200
    except Exception:
        return False, time.perf_counter() - t0
    if not ok:
        return False, time.perf_counter() - t0
    if not stream:
        content = json.loads(raw)["choices"][0]["message"].get("content")
        return bool(content), time.perf_counter() - t0
    text = raw.decode()
    events = [ln[6:] for ln in text.splitlines() if ln.startswith("data: ")]
    if not events or events[-1] != "[DONE]":
        return False, time.perf_counter() - t0
    answer = ""
    for ev in events[:-1]:
        data = json.loads(ev)
        if "error" in data:
            return False, time.perf_counter() - t0
        for choice in data.get("choices") or ():
            answer += (choice.get("delta") or {}).get("content") or ""
    return bool(answer), time.perf_counter() - t0


async def load(
    url: str, rate: float, duration: float, stream_share: float, seed: int
) -> list[tuple[bool, float]]:
    import aiohttp

    rng = random.Random(seed)
    n = int(rate * duration)
    async with aiohttp.ClientSession() as session:
        tasks = []
        start = time.perf_counter()
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            stream = rng.random() < stream_share
            tasks.append(asyncio.create_task(one(session, url, stream, i)))
        return list(await asyncio.gather(*tasks))


def run_chaos(
    rate: float, duration: float, stream_share: float = 0.3, seed: int = 1
) -> dict[str, Any]:
    import httpx2 as httpx

    with FakeProviderThread() as fake:
        script_faults(fake, int(rate * duration * 2), random.Random(seed))
        with GatewayServer(chaos_config(fake), ENV) as gw:
            rss_start = rss_mib()
            t0 = time.perf_counter()
            results = asyncio.run(
                load(gw.url + "/v1/chat/completions", rate, duration, stream_share, seed)
            )
            wall = time.perf_counter() - t0
            # The usage writer flushes every 0.2 s; the last calls may still be settling.
            deadline = time.monotonic() + 10
            while True:
                totals = httpx.get(gw.url + "/api/v1/usage?since=1h", timeout=10).json()["totals"]
                if int(totals.get("count") or 0) >= len(results) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            by_kind = httpx.get(gw.url + "/api/v1/usage?since=1h&by=kind", timeout=10).json()
            rss_end = rss_mib()
    flags = random.Random(seed)  # the same draws load() made: which requests streamed
    kinds = [flags.random() < stream_share for _ in range(len(results))]
    latencies = sorted(lat for _, lat in results)
    ok = sum(1 for good, _ in results if good)
    return {
        "rate": rate,
        "duration": duration,
        "wall_s": round(wall, 1),
        "sent": len(results),
        "answered_completely": ok,
        "lost": len(results) - ok,
        "usage_records": int(totals.get("count") or 0),
        "usage_records_by_kind": {r["kind"]: r["count"] for r in by_kind.get("rows", [])},
        "sent_streams": sum(1 for stream in kinds if stream),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else None,
        "rss_mib_start": round(rss_start, 1),
        "rss_mib_end": round(rss_end, 1),
        "faults": {json.dumps(f): w for f, w in FAULTS},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--duration", type=float, default=300.0)
    p.add_argument("--stream-share", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    report = run_chaos(a.rate, a.duration, a.stream_share, a.seed)
    print(json.dumps(report, indent=2))
    return 0 if report["lost"] == 0 and report["usage_records"] == report["sent"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
