"""In-process cost of a call: CPU per call and fan-out wall time, against the fake upstream.

CPU per call is ``time.process_time()`` over N sequential calls (after a
warm-up), divided by N: the client process's own user+system CPU, nothing
subtracted.  Three clients to the same upstream and the same answer:

* ``aiohttp``: a bare ``ClientSession.post`` + ``orjson.loads`` (the floor);
* ``polyroute``: ``Router.complete("bench", ...)`` (route resolution, retries
  policy, cooldown, envelope, cost, call record);
* ``openai``: the official SDK, ``AsyncOpenAI.chat.completions.create``.

Fan-out: ``Router.fan_out`` over 5 models whose upstream latencies are 20, 40,
60, 80 and 100 ms; its wall time is compared with the slowest (100 ms) and
with ``asyncio.gather`` of 5 bare aiohttp posts (the floor).

This process runs on the gateway core (1) and the upstream on core 0, so the
upstream's work never lands in the measured process.

``python bench/inprocess.py [--calls 2000] [--fanouts 30] [--json]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gateways import GATEWAY_CORE, Upstream

MESSAGES = [{"role": "user", "content": "Say hello in five words."}]
FAN_LATENCIES = (20, 40, 60, 80, 100)


def router_config(upstream_port: int) -> dict[str, Any]:
    models: dict[str, Any] = {
        "bench-model": {"provider": "bench-up", "price": {"input": 0.15, "output": 0.6}}
    }
    for ms in FAN_LATENCIES:
        models[f"fan-lat{ms}"] = {"provider": "bench-up", "price": {"input": 0.15, "output": 0.6}}
    return {
        "providers": {
            "bench-up": {
                "type": "openai-compatible",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "api_key_env": "BENCH_UPSTREAM_KEY",
            }
        },
        "models": models,
        "routes": {"bench": {"models": ["bench-model"]}},
    }


async def cpu_per_call(call: Callable[[], Awaitable[Any]], n: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        await call()
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await call()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {"cpu_us": round(cpu / n * 1e6, 1), "wall_us": round(wall / n * 1e6, 1), "calls": n}


async def measure(port: int, calls: int, fanouts: int) -> dict[str, Any]:
    from openai import AsyncOpenAI

    from polyroute import Router

    base = f"http://127.0.0.1:{port}/v1"
    url = base + "/chat/completions"
    warmup = max(20, calls // 20)
    out: dict[str, Any] = {}

    session = aiohttp.ClientSession()
    body = orjson.dumps({"model": "bench-model", "messages": MESSAGES})
    headers = {"Content-Type": "application/json", "Authorization": "Bearer x"}

    async def bare(model_body: bytes = body) -> Any:
        async with session.post(url, data=model_body, headers=headers) as resp:
            return orjson.loads(await resp.read())

    router = Router.from_config(router_config(port), environ={"BENCH_UPSTREAM_KEY": "x"})

    async def routed() -> Any:
        return await router.complete("bench", MESSAGES)

    client = AsyncOpenAI(base_url=base, api_key="x", max_retries=0)

    async def sdk() -> Any:
        return await client.chat.completions.create(model="bench-model", messages=MESSAGES)  # type: ignore[arg-type]

    env = await router.complete("bench", MESSAGES)
    assert env.content, "polyroute got no content from the upstream"
    # Interleave rounds so drift (frequency, caches) hits every client alike; keep the best.
    rounds: dict[str, list[dict[str, float]]] = {"aiohttp": [], "polyroute": [], "openai": []}
    for _ in range(3):
        rounds["aiohttp"].append(await cpu_per_call(bare, calls, warmup))
        rounds["polyroute"].append(await cpu_per_call(routed, calls, warmup))
        rounds["openai"].append(await cpu_per_call(sdk, calls, warmup))
    for name, rs in rounds.items():
        out[name] = min(rs, key=lambda r: r["cpu_us"])
        out[name]["cpu_us_all"] = [r["cpu_us"] for r in rs]

    fan_models = [f"fan-lat{ms}" for ms in FAN_LATENCIES]
    fan_bodies = [orjson.dumps({"model": m, "messages": MESSAGES}) for m in fan_models]
    await router.fan_out(fan_models, MESSAGES)  # warm connections
    walls, floor = [], []
    for _ in range(fanouts):
        t = time.perf_counter()
        res = await router.fan_out(fan_models, MESSAGES)
        walls.append(time.perf_counter() - t)
        assert all(r.ok for r in res), [str(r.error) for r in res if not r.ok]
        t = time.perf_counter()
        await asyncio.gather(*(bare(b) for b in fan_bodies))
        floor.append(time.perf_counter() - t)
    slowest = max(FAN_LATENCIES)
    out["fan_out"] = {
        "models": len(fan_models),
        "latencies_ms": list(FAN_LATENCIES),
        "slowest_ms": slowest,
        "wall_ms_p50": round(statistics.median(walls) * 1000, 2),
        "wall_ms_max": round(max(walls) * 1000, 2),
        "over_slowest_ms_p50": round(statistics.median(walls) * 1000 - slowest, 2),
        "aiohttp_gather_ms_p50": round(statistics.median(floor) * 1000, 2),
        "runs": fanouts,
    }
    await client.close()
    await router.aclose()
    await session.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=2000, help="sequential calls per client per round")
    p.add_argument("--fanouts", type=int, default=30)
    p.add_argument(
        "--upstream-port", type=int, help="use a running upstream instead of starting one"
    )
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(GATEWAY_CORE)})
    up: Upstream | None = None
    port = a.upstream_port
    if port is None:
        up = Upstream()
        up.start()
        port = up.port
    try:
        res = asyncio.run(measure(port, a.calls, a.fanouts))
    finally:
        if up is not None:
            up.stop()
    floor = res["aiohttp"]["cpu_us"]
    res["polyroute_over_aiohttp"] = round(res["polyroute"]["cpu_us"] / floor, 2)
    res["openai_over_aiohttp"] = round(res["openai"]["cpu_us"] / floor, 2)
    res["polyroute_vs_openai"] = round(res["polyroute"]["cpu_us"] / res["openai"]["cpu_us"], 2)
    if a.json:
        print(orjson.dumps(res).decode())
    else:
        for name in ("aiohttp", "polyroute", "openai"):
            r = res[name]
            print(f"{name:10s} {r['cpu_us']:8.1f} µs CPU/call  {r['wall_us']:8.1f} µs wall/call")
        f = res["fan_out"]
        print(
            f"fan_out x{f['models']}: {f['wall_ms_p50']} ms p50 (slowest {f['slowest_ms']} ms, "
            f"+{f['over_slowest_ms_p50']} ms); aiohttp gather {f['aiohttp_gather_ms_p50']} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
