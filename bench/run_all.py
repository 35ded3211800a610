"""Run the whole benchmark in one go and print one table.

direct (the fake upstream alone), polyroute's gateway, LiteLLM's proxy and
Portkey's gateway, one after the other, against the same upstream with the
same core placement (gateway on core 1; load generator and upstream on core 0).

Per target: start-up time to the first 200, resident memory idle; maximum
throughput (closed loop, 32 and 128 connections, upstream 0 ms); latency at a
fixed offered rate (100 and 500 requests/s, upstream 0 and 50 ms; measured
from each request's intended send time) and what the gateway adds over direct;
streaming time to first byte added; memory after load; optionally a soak
(``--soak 600``) with memory growth per 100k requests.  Then library import
time and the in-process figures (bench/inprocess.py), and, for polyroute, a
py-spy profile of the gateway under load.

``python bench/run_all.py [--only polyroute] [--quick] [--soak 600]``
Writes bench/results/latest.json (and the profile under bench/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spy
from gateways import (
    BENCH_DIR,
    CLIENT_CORE,
    GATEWAY_CORE,
    LITELLM_VERSION,
    PYTHON,
    Direct,
    Target,
    Unavailable,
    Upstream,
    cpu_seconds,
    make,
    pinned,
    probe,
    rss_mib,
)

COMPETITORS = ("polyroute", "litellm", "portkey")
OPEN_PHASES = [(100, 0), (500, 0), (100, 50), (500, 50)]  # (offered rps, upstream ms)
STREAM_RATE = 50


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadgen(t: Target, *args: str, model: str, timeout: float = 900) -> dict[str, Any]:
    argv = [PYTHON, str(BENCH_DIR / "loadgen.py"), "--url", t.url, "--model", model, "--json"]
    for k, v in t.headers.items():
        argv += ["--header", f"{k}: {v}"]
    r = subprocess.run(
        pinned(CLIENT_CORE, argv + list(args)), capture_output=True, text=True, timeout=timeout
    )
    if r.returncode != 0:
        raise RuntimeError(f"loadgen failed: {r.stderr[-500:]}")
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def settle(t: Target, limit: float = 90.0) -> None:
    """After an overload, wait until the target answers a single call promptly again."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        s = time.perf_counter()
        ok = probe(t.port, t.path, t.model(0), t.headers, timeout=5) == 200
        if ok and time.perf_counter() - s < 0.5:
            break
        time.sleep(0.5)
    time.sleep(1.0)


class Runner:
    def __init__(self, args: argparse.Namespace, upstream: Upstream, workdir: Path) -> None:
        self.a = args
        self.up = upstream
        self.workdir = workdir
        self.d = args.duration

    def phases(self, t: Target) -> dict[str, Any]:
        res: dict[str, Any] = {}
        d = str(self.d)
        for conns in (32, 128):
            log(f"{t.name}: closed loop, {conns} connections, x{self.a.repeat}")
            runs = []
            for _ in range(self.a.repeat):
                runs.append(loadgen(t, "--closed", str(conns), "--duration", d, model=t.model(0)))
                settle(t)
            runs.sort(key=lambda r: r["rps"])
            res[f"closed_{conns}"] = {**runs[len(runs) // 2], "rps_runs": [r["rps"] for r in runs]}
        for rate, lat in OPEN_PHASES:
            log(f"{t.name}: open loop {rate} rps, upstream {lat} ms")
            res[f"open_{rate}_{lat}"] = loadgen(
                t,
                "--rate",
                str(rate),
                "--duration",
                d,
                "--drain",
                str(self.a.drain),
                model=t.model(lat),
            )
            settle(t)
        rate = str(self.a.stream_rate)
        log(f"{t.name}: streaming, {rate} rps")
        res["stream"] = loadgen(t, "--rate", rate, "--duration", d, "--stream", model=t.model(0))
        settle(t)
        return res

    def soak(self, t: Target, max_rps: float) -> dict[str, Any]:
        rate = max(1.0, min(self.a.soak_rate, 0.5 * max_rps)) if max_rps > 0 else self.a.soak_rate
        assert t.pid is not None
        log(f"{t.name}: soak {self.a.soak:.0f}s at {rate:.0f} rps")
        rss0 = rss_mib(t.pid)
        argv = [PYTHON, str(BENCH_DIR / "loadgen.py"), "--url", t.url, "--model", t.model(0)]
        argv += ["--rate", f"{rate:.1f}", "--duration", str(self.a.soak), "--warmup", "0", "--json"]
        for k, v in t.headers.items():
            argv += ["--header", f"{k}: {v}"]
        p = subprocess.Popen(pinned(CLIENT_CORE, argv), stdout=subprocess.PIPE, text=True)
        samples: list[tuple[float, float]] = []
        t0 = time.perf_counter()
        while p.poll() is None:
            samples.append((round(time.perf_counter() - t0, 1), rss_mib(t.pid)))
            time.sleep(min(30.0, max(1.0, self.a.soak / 20)))
        out, _ = p.communicate()
        res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        time.sleep(2)
        rss1 = rss_mib(t.pid)
        n = res["count"]
        return {
            "seconds": self.a.soak,
            "rate": round(rate, 1),
            "requests": n,
            "errors": res["errors"],
            "error_kinds": res["error_kinds"],
            "rss_before_mib": rss0,
            "rss_after_mib": rss1,
            "growth_mib_per_100k": round((rss1 - rss0) / n * 100_000, 2) if n else None,
            "rss_samples": samples,
            "latency_ms": res["latency_ms"],
        }

    def profile(self, t: Target) -> dict[str, Any] | None:
        if self.a.profile <= 0 or spy.py_spy() is None or t.pid is None:
            return None
        log(f"{t.name}: py-spy profile, {self.a.profile:.0f}s under closed-loop load (32 conns)")
        argv = [PYTHON, str(BENCH_DIR / "loadgen.py"), "--url", t.url, "--model", t.model(0)]
        argv += ["--closed", "32", "--duration", str(self.a.profile + 4), "--json"]
        for k, v in t.headers.items():
            argv += ["--header", f"{k}: {v}"]
        lg = subprocess.Popen(pinned(CLIENT_CORE, argv), stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        raw = BENCH_DIR / "results" / f"profile-{t.name}.raw"
        try:
            spy.record(t.pid, self.a.profile, raw, core=CLIENT_CORE)
        finally:
            lg.communicate()
        summary = spy.summarize(raw)
        (BENCH_DIR / "results" / f"profile-{t.name}-summary.txt").write_text(spy.render(summary))
        return summary

    def target(self, t: Target) -> dict[str, Any]:
        r: dict[str, Any] = {"name": t.name, "version": t.version}
        served0 = self.up.served()
        if not isinstance(t, Direct):
            log(f"{t.name}: starting")
            try:
                t.start(self.up.port, self.workdir)
            except Unavailable as exc:
                return {**r, "unavailable": str(exc)}
            assert t.pid is not None
            r["startup_s"] = round(t.startup_s or 0, 3)
            time.sleep(3)
            r["rss_idle_mib"] = rss_mib(t.pid)
            cpu0 = cpu_seconds(t.pid)
        try:
            r["phases"] = self.phases(t)
            if t.pid is not None:
                time.sleep(3)
                r["rss_after_load_mib"] = rss_mib(t.pid)
                r["cpu_s_during_phases"] = round(cpu_seconds(t.pid) - cpu0, 2)
            r["phases_ok"] = sum(p["ok"] for p in r["phases"].values())
            if self.a.soak > 0 and t.pid is not None:
                r["soak"] = self.soak(t, r["phases"]["closed_32"]["rps"])
            if t.name == "polyroute":
                r["profile"] = self.profile(t)
        finally:
            t.stop()
        r["upstream_calls"] = self.up.served() - served0
        return r


def added(
    target: dict[str, Any], direct: dict[str, Any], phase: str, key: str, pct: str
) -> float | None:
    try:
        a = target["phases"][phase][key][pct]
        b = direct["phases"][phase][key][pct]
    except (KeyError, TypeError):
        return None
    return round(a - b, 2)


def errors_of(r: dict[str, Any]) -> tuple[int, int]:
    """(errors, unanswered at the end of an overloaded phase) over every phase."""
    if "phases" not in r:
        return (0, 0)
    unf = sum(p.get("unfinished", 0) for p in r["phases"].values())
    return sum(p["errors"] for p in r["phases"].values()) - unf, unf


# -- the table -----------------------------------------------------------------------

Row = tuple[str, str, bool]  # (label, metric key, higher is better)


def metrics(r: dict[str, Any], direct: dict[str, Any]) -> dict[str, float | None]:
    m: dict[str, float | None] = {}
    ph = r.get("phases", {})
    m["rps32"] = ph.get("closed_32", {}).get("rps")
    m["rps128"] = ph.get("closed_128", {}).get("rps")
    for rate, lat in OPEN_PHASES:
        for pct in ("p50", "p99"):
            key = f"open_{rate}_{lat}"
            if r is direct:
                v = ph.get(key, {}).get("latency_ms", {}) or {}
                m[f"{key}_{pct}"] = v.get(pct)
            else:
                m[f"{key}_{pct}"] = added(r, direct, key, "latency_ms", pct)
    for pct in ("p50", "p99"):
        if r is direct:
            m[f"ttfb_{pct}"] = (ph.get("stream", {}).get("ttfb_ms") or {}).get(pct)
        else:
            m[f"ttfb_{pct}"] = added(r, direct, "stream", "ttfb_ms", pct)
    err, unf = errors_of(r)
    m["errors"], m["unfinished"] = (float(err), float(unf)) if "phases" in r else (None, None)
    m["rss_idle"] = r.get("rss_idle_mib")
    m["rss_load"] = r.get("rss_after_load_mib")
    soak = r.get("soak") or {}
    m["soak_growth"] = soak.get("growth_mib_per_100k")
    m["soak_rss"] = soak.get("rss_after_mib")
    m["startup"] = r.get("startup_s")
    m["import"] = r.get("import_s")
    return m


ROWS: list[Row] = [
    ("max rps, closed loop 32 conns (upstream 0 ms)", "rps32", True),
    ("max rps, closed loop 128 conns", "rps128", True),
    ("added p50 ms @100 rps, upstream 0 ms", "open_100_0_p50", False),
    ("added p99 ms @100 rps, upstream 0 ms", "open_100_0_p99", False),
    ("added p50 ms @500 rps, upstream 0 ms", "open_500_0_p50", False),
    ("added p99 ms @500 rps, upstream 0 ms", "open_500_0_p99", False),
    ("added p50 ms @100 rps, upstream 50 ms", "open_100_50_p50", False),
    ("added p99 ms @100 rps, upstream 50 ms", "open_100_50_p99", False),
    ("added p50 ms @500 rps, upstream 50 ms", "open_500_50_p50", False),
    ("added p99 ms @500 rps, upstream 50 ms", "open_500_50_p99", False),
    ("stream TTFB added p50 ms @{stream_rate} rps", "ttfb_p50", False),
    ("stream TTFB added p99 ms @{stream_rate} rps", "ttfb_p99", False),
    ("errors (all phases)", "errors", False),
    ("unanswered at end of a phase (overload)", "unfinished", False),
    ("RSS idle MiB", "rss_idle", False),
    ("RSS after load MiB", "rss_load", False),
    ("RSS after soak MiB", "soak_rss", False),
    ("soak growth MiB / 100k requests", "soak_growth", False),
    ("start-up to first 200, s", "startup", False),
    ("library import, s", "import", False),
]
DIRECT_LABEL = {  # direct has no "added": its cells are the absolute floor
    "open_100_0_p50": "p50 ms",
    "ttfb_p50": "p50 ms",
}


def fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(poly: float | None, other: float | None, higher_better: bool, key: str) -> str:
    """How many times better polyroute is (>1 = polyroute better)."""
    if poly is None or other is None:
        return "n/a"
    if key in ("errors", "unfinished"):
        if poly == other:
            return "="
        return "better" if poly < other else "worse"
    if key == "soak_growth":
        return "n/a"  # growth near zero makes ratios meaningless; read the values
    if higher_better:
        return _x(poly / other) if other > 0 else "n/a"
    floor = 0.1 if key.startswith(("open", "ttfb")) else 1e-9
    p, o = max(poly, floor), max(other, floor)
    mark = "≥" if poly < floor or other < floor else ""
    return mark + _x(o / p)


def _x(r: float) -> str:
    return ">100x" if r > 100 else f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def table(results: dict[str, dict[str, Any]], stream_rate: float = STREAM_RATE) -> str:
    direct = results["direct"]
    cols = ["direct", *[c for c in COMPETITORS if c in results]]
    ms = {c: metrics(results[c], direct) for c in cols}
    comp = [c for c in cols if c not in ("direct", "polyroute")]
    head = ["metric", *cols] + ([f"polyroute vs {c}" for c in comp] if "polyroute" in cols else [])
    rows: list[list[str]] = []
    for label, key, hb in ROWS:
        row = [label.format(stream_rate=f"{stream_rate:g}")]
        for c in cols:
            r = results[c]
            if "unavailable" in r:
                row.append("n/a")
            elif c == "direct" and key.startswith(("open", "ttfb")):
                row.append(f"({fmt(ms[c][key])})")
            else:
                row.append(fmt(ms[c][key]))
        if "polyroute" in cols:
            for c in comp:
                row.append(ratio(ms["polyroute"][key], ms[c][key], hb, key))
        rows.append(row)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    notes = [
        "direct column: absolute latency of the upstream alone, in parentheses (the floor);",
        "other columns: gateway minus direct at the same percentile, offered rate and",
        "upstream latency.  Ratios: how many times better polyroute is (>1 = polyroute",
        "better; throughput: polyroute/other; latency, memory, time: other/polyroute;",
        "≥ when a value is under the 0.1 ms floor).",
    ]
    for c in cols:
        if "unavailable" in results[c]:
            notes.append(f"{c}: n/a, {results[c]['unavailable']}")
    return "\n".join(out) + "\n\n" + "\n".join(notes)


def inprocess_table(ip: dict[str, Any]) -> str:
    if "error" in ip:
        return f"in-process: n/a ({ip['error']})"
    lines = [
        "| in-process (client on core 1, upstream on core 0) "
        "| CPU µs/call | wall µs/call | vs aiohttp |",
        "|---|---|---|---|",
    ]
    for name, label in (
        ("aiohttp", "bare aiohttp POST + orjson (floor)"),
        ("polyroute", 'polyroute Router.complete("bench")'),
        ("openai", "openai AsyncOpenAI chat.completions.create"),
    ):
        r = ip[name]
        lines.append(
            f"| {label} | {r['cpu_us']:.1f} | {r['wall_us']:.1f} | "
            f"{r['cpu_us'] / ip['aiohttp']['cpu_us']:.2f}x |"
        )
    f = ip["fan_out"]
    lines.append("")
    lines.append(
        f"fan_out over {f['models']} models (upstream {'/'.join(map(str, f['latencies_ms']))} ms): "
        f"wall p50 {f['wall_ms_p50']} ms, max {f['wall_ms_max']} ms, slowest model "
        f"{f['slowest_ms']} ms -> +{f['over_slowest_ms_p50']} ms over the slowest "
        f"(bare aiohttp gather: {f['aiohttp_gather_ms_p50']} ms)"
    )
    lines.append(
        f"polyroute CPU/call vs openai SDK: {ip['polyroute_vs_openai']:.2f}x "
        f"({1 / ip['polyroute_vs_openai']:.1f} times less CPU)"
    )
    return "\n".join(lines)


# -- environment ----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    pyv = subprocess.run([PYTHON, "--version"], capture_output=True, text=True).stdout.strip()
    git = ["git", "-C", str(BENCH_DIR.parent)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": pyv,
        "node": node or "n/a",
        "polyroute_commit": commit.stdout.strip()
        + (" (+ uncommitted src changes)" if dirty.stdout.strip() else ""),
        "placement": (
            f"gateway on core {GATEWAY_CORE}; load generator + upstream on core {CLIENT_CORE}"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="comma list of competitors to run (direct always runs)")
    p.add_argument("--skip", default="", help="comma list of competitors to skip")
    p.add_argument("--quick", action="store_true", help="3 s phases, fewer in-process calls")
    p.add_argument("--duration", type=float, help="seconds per load phase (default 10, quick 3)")
    p.add_argument("--stream-rate", type=float, default=STREAM_RATE, help="streaming phase rps")
    p.add_argument(
        "--repeat", type=int, help="closed-loop runs per phase, median kept (default 3, quick 1)"
    )
    p.add_argument("--drain", type=float, default=10.0, help="open loop: wait for late answers")
    p.add_argument(
        "--soak", type=float, default=0.0, help="soak seconds per gateway (600 = 10 min)"
    )
    p.add_argument(
        "--soak-rate", type=float, default=200.0, help="soak offered rps (capped at half the max)"
    )
    p.add_argument(
        "--profile", type=float, default=15.0, help="py-spy seconds on polyroute (0 = off)"
    )
    p.add_argument("--litellm-version", default=LITELLM_VERSION, help="'' for the newest")
    p.add_argument("--out", default=str(BENCH_DIR / "results" / "latest.json"))
    a = p.parse_args(argv)
    if a.duration is None:
        a.duration = 3.0 if a.quick else 10.0
    if a.repeat is None:
        a.repeat = 1 if a.quick else 3
    names = [n for n in (a.only.split(",") if a.only else COMPETITORS) if n]
    names = [n for n in names if n not in a.skip.split(",")]
    for n in names:
        if n not in COMPETITORS:
            p.error(f"unknown target {n!r}; choose from {', '.join(COMPETITORS)}")
    (BENCH_DIR / "results").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="polyroute-bench-"))
    env = machine()
    log(f"workdir {workdir}; {env['placement']}")

    targets: list[Target] = []
    results: dict[str, dict[str, Any]] = {}
    for n in names:
        t = make(n, a.litellm_version)
        log(f"{n}: install / check")
        try:
            t.install()
            targets.append(t)
        except (Unavailable, subprocess.TimeoutExpired, OSError) as exc:
            results[n] = {"name": n, "unavailable": f"install failed: {exc}"}

    up = Upstream()
    up.start()
    direct = Direct(up.port)
    try:
        runner = Runner(a, up, workdir)
        results["direct"] = runner.target(direct)
        for t in targets:
            results[t.name] = runner.target(t)
            if "unavailable" not in results[t.name]:
                try:
                    results[t.name]["import_s"] = round(t.import_seconds() or 0, 3) or None
                except Unavailable as exc:
                    results[t.name]["import_error"] = str(exc)
        log("in-process: CPU per call and fan_out")
        calls = "300" if a.quick else "2000"
        ip_argv = [PYTHON, str(BENCH_DIR / "inprocess.py"), "--upstream-port", str(up.port)]
        ip_argv += ["--calls", calls, "--fanouts", "10" if a.quick else "30", "--json"]
        r = subprocess.run(ip_argv, capture_output=True, text=True, timeout=1800)
        if r.returncode == 0:
            inproc: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
        else:
            inproc = {"error": r.stderr.strip()[-300:]}
    finally:
        for t in targets:
            t.stop()
        up.stop()

    ordered = {k: results[k] for k in ("direct", *COMPETITORS) if k in results}
    doc = {
        "machine": env,
        "versions": {k: v.get("version") for k, v in ordered.items()},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {
            "duration_s": a.duration,
            "closed_loop_repeat": a.repeat,
            "drain_s": a.drain,
            "open_phases": OPEN_PHASES,
            "stream_rate": a.stream_rate,
            "soak_s": a.soak,
            "soak_rate": a.soak_rate,
        },
        "results": ordered,
        "inprocess": inproc,
    }
    Path(a.out).write_text(json.dumps(doc, indent=2))
    print(f"\n{env['date']}; {env['cores']} cores, {env['cpu']}; {env['placement']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()) + "\n")
    print(table(ordered, a.stream_rate))
    print()
    print(inprocess_table(inproc))
    prof = ordered.get("polyroute", {}).get("profile")
    if prof:
        print("\npolyroute gateway profile (py-spy, closed loop 32 conns), top self time:")
        for f, pct in prof["self"][:15]:
            print(f"  {pct:5.1f}%  {f}")
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
