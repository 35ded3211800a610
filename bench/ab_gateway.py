"""A/B the polyroute gateway against tweaked copies of itself, applied from outside.

Each variant runs the same ``polyroute serve`` (same config, same placement as
run_all.py) with one change made before the app starts, then a closed loop of
32 connections; variants alternate for ``--rounds`` so drift hits them alike.

* ``base``: unchanged;
* ``freeze``: ``gc.collect(); gc.freeze()`` once the gateway has started, so
  full collections no longer walk the start-up heap (config, catalog, pydantic
  schemas, FastAPI);
* ``nogc``: the cyclic collector off (an upper bound, not a fix);
* ``notelemetry``: FastAPI's per-request OpenTelemetry check answers False;
* ``nousage``: config ``usage: {enabled: false}`` (no usage records, no SQLite writer);
* ``nospool``: config ``usage: {spool: false}`` (records, but no per-call spool file write);
* ``gcstats``: unchanged, but logs collections per generation (count, total ms,
  longest ms) to the gateway log every 5 s.

Combine with ``+`` (``freeze+notelemetry``).  ``VARIANT@SRC`` runs the variant on
another checkout's source tree, for a before/after A/B of a change::

    git worktree add /tmp/polyroute-before main~3
    python bench/ab_gateway.py base@/tmp/polyroute-before/src base

``python bench/ab_gateway.py base freeze nogc [--rounds 3] [--duration 8]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gateways import BENCH_DIR, CLIENT_CORE, PYTHON, Polyroute, Upstream, pinned

# Runs inside the gateway process: argv[1] is the variant, the rest is `polyroute ...`.
BOOT = r"""
import gc, sys, threading, time
variant = sys.argv.pop(1)
variant, _, src = variant.partition("@")
if src:  # another checkout's source tree (a before/after A/B of a change)
    sys.path.insert(0, src)
if "notelemetry" in variant:
    import fastapi.telemetry._asgi as _t
    _t.NativeTelemetry.enabled = lambda self: False
if "nogc" in variant:
    gc.disable()
if "freeze" in variant:
    import uvicorn.server as _us
    _startup = _us.Server.startup
    async def startup(self, *a, **k):
        await _startup(self, *a, **k)
        gc.collect()
        gc.freeze()
        print("gc frozen:", gc.get_freeze_count(), "objects", file=sys.stderr, flush=True)
    _us.Server.startup = startup
if "gcstats" in variant:
    stats = {g: [0, 0.0, 0.0] for g in range(3)}
    t0 = [0.0]
    def cb(phase, info):
        if phase == "start":
            t0[0] = time.perf_counter()
            return
        d = time.perf_counter() - t0[0]
        s = stats[info["generation"]]
        s[0] += 1; s[1] += d; s[2] = max(s[2], d)
    gc.callbacks.append(cb)
    def report():
        while True:
            time.sleep(5)
            print("gc per generation (count, total ms, max ms):",
                  {g: (n, round(t * 1e3, 1), round(m * 1e3, 2)) for g, (n, t, m) in stats.items()},
                  "tracked objects:", len(gc.get_objects()), file=sys.stderr, flush=True)
    threading.Thread(target=report, daemon=True).start()
from polyroute.cli import app
sys.argv[0] = "polyroute"
app()
"""


class Variant(Polyroute):
    def __init__(self, variant: str, boot: Path) -> None:
        super().__init__()
        self.variant = variant
        self.boot = boot

    def config_text(self, upstream_port: int) -> str:
        text = super().config_text(upstream_port)
        if "nousage" in self.variant:
            text += "usage: {enabled: false}\n"
        elif "nospool" in self.variant:
            text += "usage: {spool: false}\n"
        return text

    def command(self, upstream_port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
        argv, env = super().command(upstream_port, workdir)
        return [PYTHON, str(self.boot), self.variant, *argv[1:]], env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("variants", nargs="+")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--conns", type=int, default=32)
    a = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="polyroute-ab-"))
    boot = workdir / "boot.py"
    boot.write_text(BOOT)
    up = Upstream()
    up.start()
    rows: dict[str, list[tuple[float, float]]] = {v: [] for v in a.variants}
    try:
        for _ in range(a.rounds):
            for v in a.variants:
                t = Variant(v, boot)
                t.start(up.port, workdir)
                time.sleep(3)
                cmd = [PYTHON, str(BENCH_DIR / "loadgen.py"), "--url", t.url, "--model", "bench"]
                cmd += ["--closed", str(a.conns), "--duration", str(a.duration), "--json"]
                for k, val in t.headers.items():
                    cmd += ["--header", f"{k}: {val}"]
                out = subprocess.run(pinned(CLIENT_CORE, cmd), capture_output=True, text=True)
                t.stop()
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows[v].append((r["rps"], r["latency_ms"]["p99"]))
                print(f"{v:24s} {r['rps']:8.0f} rps  p99 {r['latency_ms']['p99']:7.1f} ms")
                if "gcstats" in v and t.log_path is not None:
                    log = t.log_path.read_text(errors="replace").splitlines()
                    gc_lines = [ln for ln in log if ln.startswith("gc per generation")]
                    if gc_lines:
                        print("   " + gc_lines[-1])
    finally:
        up.stop()
    print("\nmedian over rounds:")
    for v, rs in rows.items():
        rps = sorted(r for r, _ in rs)[len(rs) // 2]
        p99 = sorted(q for _, q in rs)[len(rs) // 2]
        print(f"{v:24s} {rps:8.0f} rps  p99 {p99:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
