"""``polyroute serve --workers 2``: ``/metrics`` counts every worker's calls, whichever
worker answers the scrape (prometheus-client's multiprocess mode), and the
directory ``serve`` made for it is gone once the gateway has stopped."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.gatewaykit import free_port

MODEL = "simulator/gpt-4o-mini"
STOPPED = (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop


@contextmanager
def workers_gateway(
    cfg: Path, port: int, tmp: Path, workers: int = 2
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The gateway with ``workers`` processes; yields it and its log file."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEYS")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp / f"gateway-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "polyroute.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--config",
            str(cfg),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp,
        start_new_session=True,  # its own process group: the workers can be stopped with it
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start: {log_path.read_text()}")
            time.sleep(0.05)
        yield proc, log_path
    finally:
        # A failed test leaves it running: stop it the clean way first (serve stops its
        # workers and removes its directory); SIGKILL to serve alone would orphan them.
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
        proc.wait(30)
        log.close()
        m = re.search(r"PROMETHEUS_MULTIPROC_DIR=([^)\s]+)", log_path.read_text())
        if m:
            shutil.rmtree(m.group(1), ignore_errors=True)


def metrics_dir(log_path: Path) -> Path:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = re.search(r"PROMETHEUS_MULTIPROC_DIR=([^)\s]+)", log_path.read_text())
        if m:
            return Path(m.group(1))
        time.sleep(0.05)
    raise AssertionError(f"serve did not say where its metrics live: {log_path.read_text()}")


def workers_counted(directory: Path) -> set[str]:
    """The pids that have counted a call (prometheus-client: counter_<pid>.db)."""
    return {p.stem.split("_", 1)[1] for p in directory.glob("counter_*.db")}


def chat(port: int, i: int) -> None:
    # A fresh connection each time (module-level httpx call): the kernel hands each
    # one to whichever worker accepts first, so both serve some.
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"call {i}"}]}
    r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 200, r.text


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):  # also: the text parses
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def requests_total(samples: dict[str, list[tuple[dict[str, str], float]]]) -> float:
    return sum(v for _, v in samples.get("polyroute_requests_total", []))


def test_metrics_add_up_over_workers(tmp_path: Path) -> None:
    cfg = tmp_path / "polyroute.yaml"
    cfg.write_text(
        "providers:\n"
        "  simulator: {simulator: {latency: 0.01}}\n"
        f"usage: {{store: 'sqlite:///{tmp_path / 'usage.db'}'}}\n"
        "server: {drain_delay: 2.0, drain_timeout: 10}\n"
    )
    port = free_port()
    with workers_gateway(cfg, port, tmp_path) as (proc, log_path):
        directory = metrics_dir(log_path)
        assert directory.is_dir()
        sent = 0
        while sent < 40 or len(workers_counted(directory)) < 2:
            assert sent < 400, f"one worker served every call: {workers_counted(directory)}"
            chat(port, sent)
            sent += 1
        assert len(workers_counted(directory)) == 2

        deadline = time.monotonic() + 5  # each call is counted as it ends
        while requests_total(scrape(port)) != sent and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(8):  # each scrape on a fresh connection: either worker answers
            samples = scrape(port)
            assert requests_total(samples) == sent
            # One series per live worker for the config it runs, all the same here.
            info = samples["polyroute_config_info"]
            assert len({labels["pid"] for labels, _ in info}) == 2
            assert len({labels["version"] for labels, v in info if v == 1}) == 1
            # Read at scrape time by the answering worker: exactly one sample each.
            assert len(samples["polyroute_models_cooling_down"]) == 1
            assert len(samples["polyroute_usage_pending_records"]) == 1
            latency = samples["polyroute_request_latency_seconds_count"]
            assert sum(v for _, v in latency) == sent

        # A worker killed outright: uvicorn starts another; the dead one's series of
        # polyroute_config_info goes at the next scrape, its counts stay in the totals.
        victim = int(info[0][0]["pid"])
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            samples = scrape(port)
            pids = {int(labels["pid"]) for labels, _ in samples["polyroute_config_info"]}
            if victim not in pids and len(pids) == 2:
                break
            assert time.monotonic() < deadline, f"worker {victim} not replaced: {pids}"
            time.sleep(0.1)
        assert requests_total(samples) == sent

        # SIGTERM: every worker drains (/readyz 503 for drain_delay), then all stop.
        # (uvicorn's supervisor passes the signal on within about half a second.)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 1.5
        while httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code != 503:
            assert time.monotonic() < deadline, "/readyz still 200 after SIGTERM"
            time.sleep(0.02)
        time.sleep(0.1)  # both workers have it by now
        for _ in range(4):  # fresh connections: either worker answers
            r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            assert r.status_code == 503 and r.json()["ready"] is False
        assert proc.wait(30) in STOPPED
    assert not directory.exists()  # serve removes its multiprocess directory
