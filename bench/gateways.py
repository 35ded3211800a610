"""The gateways under test: install, start (pinned to a core), probe, measure, stop.

Placement on this 2-core machine (``taskset``): the gateway alone on core 1
(``GATEWAY_CORE``); the load generator *and* the fake upstream on core 0
(``CLIENT_CORE``).  "direct" (the load generator against the upstream, no
gateway) uses the same placement, so its figures are the floor that every
gateway's "added" latency is measured against.

* polyroute: ``polyroute serve --config FILE`` from /work/main/.venv, an
  openai-compatible provider at the upstream, routes ``bench`` (0 ms) and
  ``bench-lat50`` (50 ms), one model each; gateway keys on (``POLYROUTE_API_KEYS``).
* LiteLLM: ``litellm[proxy]`` in its own venv under /tmp (never a dependency of
  polyroute), ``litellm --config cfg.yaml --num_workers 1`` with
  ``LITELLM_LOCAL_MODEL_COST_MAP=True`` and a master key (1.106 refuses to start
  without one); models ``openai/...`` with ``api_base`` at the upstream.
* Portkey: ``@portkey-ai/gateway`` from npm under /tmp with ``@hono/node-server``
  forced to 1.13.8 through npm ``overrides`` (the gateway's own nested copy
  would otherwise be 1.19.x and break streaming, Portkey-AI/gateway#1389);
  ``node build/start-server.js --port=P --headless``; requests carry
  ``x-portkey-provider: openai`` and ``x-portkey-custom-host``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT = BENCH_DIR.parent
VENV_BIN = PROJECT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
CLIENT_CORE = "0"
GATEWAY_CORE = "1"
HAS_TASKSET = shutil.which("taskset") is not None

LITELLM_VENV = Path("/tmp/bench-litellm")
LITELLM_VERSION = "1.106.2"  # the reference figures were measured with this one
PORTKEY_DIR = Path("/tmp/bench-portkey")
PORTKEY_VERSION = "1.15.2"
HONO_NODE_SERVER = "1.13.8"
LITELLM_KEY = "sk-bench-master-key"
POLYROUTE_KEY = "bench-key"


class Unavailable(Exception):
    """A competitor that could not be installed or started; the table says why."""


def pinned(core: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", core, *argv] if HAS_TASKSET else argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- process tree memory ----------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, MiB (VmRSS)."""
    total_kib = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
                        break
        except OSError:
            pass
    return round(total_kib / 1024.0, 1)


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process tree (from /proc/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


# -- a probe request ------------------------------------------------------------------


def probe(port: int, path: str, model: str, headers: dict[str, str], timeout: float = 5) -> int:
    """One blocking chat completion; returns the HTTP status (0 on connection error)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "ping"}]})
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("POST", path, body, {"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0


# -- the targets --------------------------------------------------------------------


@dataclass
class Target:
    """Something the load generator can send chat completions to."""

    name: str
    port: int = 0
    path: str = "/v1/chat/completions"
    headers: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    startup_s: float | None = None
    version: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def model(self, latency_ms: int) -> str:
        """The model name that makes the upstream answer after ``latency_ms``."""
        return "bench-model" if latency_ms == 0 else f"bench-model-lat{latency_ms}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # overridden by real gateways
    def install(self) -> None:
        return None

    def command(self, upstream_port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def import_seconds(self) -> float | None:
        return None

    def start(self, upstream_port: int, workdir: Path, timeout: float = 180.0) -> None:
        """Spawn pinned to the gateway core; ready at the first 200 to a real chat call."""
        self.port = free_port()
        argv, env = self.command(upstream_port, workdir)
        self.log_path = workdir / f"{self.name}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child, closed in stop()
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            pinned(GATEWAY_CORE, argv),
            env={**os.environ, **env},
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() ends its children too
        )
        log.close()
        while True:
            if self.proc.poll() is not None:
                raise Unavailable(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            if probe(self.port, self.path, self.model(0), self.headers, timeout=2) == 200:
                self.startup_s = time.perf_counter() - t0
                return
            if time.perf_counter() - t0 > timeout:
                self.stop()
                raise Unavailable(f"{self.name} not answering after {timeout:.0f}s: {self.tail()}")
            time.sleep(0.02)

    def tail(self, n: int = 400) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")[-n:]
        return " ".join(text.split())

    def stop(self) -> None:
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)  # the group this process leads (ours)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        self.proc = None


class Direct(Target):
    """No gateway: the load generator talks to the upstream itself."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__("direct", port=upstream_port)
        self.version = "bench/upstream.py"


def _run(
    argv: list[str], timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    r = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    if r.returncode != 0:
        raise Unavailable(f"{' '.join(argv[:3])} failed: {(r.stderr or r.stdout)[-400:]}")
    return r.stdout.strip()


def _import_seconds(python: str, module: str, env: dict[str, str] | None = None) -> float:
    """Median of 3 fresh interpreters, pinned to the gateway core: seconds for ``import``."""
    code = (
        "import time; t = time.perf_counter(); import "
        + module
        + "; print(time.perf_counter() - t)"
    )
    runs = sorted(
        float(_run(pinned(GATEWAY_CORE, [python, "-c", code]), 300, env).splitlines()[-1])
        for _ in range(3)
    )
    return runs[1]


class Polyroute(Target):
    def __init__(self) -> None:
        super().__init__("polyroute", headers={"Authorization": f"Bearer {POLYROUTE_KEY}"})

    def model(self, latency_ms: int) -> str:
        return "bench" if latency_ms == 0 else f"bench-lat{latency_ms}"

    def install(self) -> None:
        self.version = _run([PYTHON, "-c", "import polyroute; print(polyroute.__version__)"], 60)

    def config_text(self, upstream_port: int) -> str:
        return f"""\
providers:
  bench-up:
    type: openai-compatible
    base_url: http://127.0.0.1:{upstream_port}/v1
    api_key_env: BENCH_UPSTREAM_KEY
models:
  bench-model:
    provider: bench-up
    price: {{input: 0.15, output: 0.6}}
  bench-model-lat50:
    provider: bench-up
    price: {{input: 0.15, output: 0.6}}
routes:
  bench: {{models: [bench-model]}}
  bench-lat50: {{models: [bench-model-lat50]}}
"""

    def command(self, upstream_port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
        cfg = workdir / "polyroute.yaml"
        cfg.write_text(self.config_text(upstream_port))
        argv = [str(VENV_BIN / "polyroute"), "serve", "--config", str(cfg), "--port"]
        argv.append(str(self.port))
        env = {"BENCH_UPSTREAM_KEY": "x", "POLYROUTE_API_KEYS": POLYROUTE_KEY}
        return argv, env

    def import_seconds(self) -> float | None:
        return _import_seconds(PYTHON, "polyroute")


class LiteLLM(Target):
    def __init__(self, version: str = LITELLM_VERSION) -> None:
        super().__init__("litellm", headers={"Authorization": f"Bearer {LITELLM_KEY}"})
        self.pin = version
        self.python = str(LITELLM_VENV / "bin" / "python")

    def model(self, latency_ms: int) -> str:
        return "bench" if latency_ms == 0 else f"bench-lat{latency_ms}"

    def install(self) -> None:
        spec = f"litellm[proxy]=={self.pin}" if self.pin else "litellm[proxy]"
        have = self._installed()
        if have is None or (self.pin and have != self.pin):
            if not LITELLM_VENV.exists():
                _run([sys.executable, "-m", "venv", str(LITELLM_VENV)], 300)
            _run([self.python, "-m", "pip", "install", "-q", spec], 1800)
            have = self._installed()
        if have is None:
            raise Unavailable("litellm did not install")
        self.version = have

    def _installed(self) -> str | None:
        if not Path(self.python).exists():
            return None
        code = "import importlib.metadata as m; print(m.version('litellm'))"
        try:
            return _run([self.python, "-c", code], 60)
        except Unavailable:
            return None

    def command(self, upstream_port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
        cfg = workdir / "litellm.yaml"
        base = f"http://127.0.0.1:{upstream_port}/v1"
        entries = []
        for name, model in (("bench", "bench-model"), ("bench-lat50", "bench-model-lat50")):
            entries.append(
                f"  - model_name: {name}\n    litellm_params:\n      model: openai/{model}\n"
                f"      api_base: {base}\n      api_key: x\n"
            )
        cfg.write_text("model_list:\n" + "".join(entries))
        argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(cfg)]
        argv += ["--port", str(self.port), "--num_workers", "1"]
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": LITELLM_KEY}
        return argv, env

    def import_seconds(self) -> float | None:
        return _import_seconds(self.python, "litellm", {"LITELLM_LOCAL_MODEL_COST_MAP": "True"})


class Portkey(Target):
    def __init__(self) -> None:
        super().__init__("portkey")
        self.script = PORTKEY_DIR / "node_modules/@portkey-ai/gateway/build/start-server.js"

    def install(self) -> None:
        node = shutil.which("node")
        if node is None or shutil.which("npm") is None:
            raise Unavailable("node/npm not found")
        manifest = {
            "name": "bench-portkey",
            "private": True,
            "dependencies": {
                "@portkey-ai/gateway": PORTKEY_VERSION,
                "@hono/node-server": HONO_NODE_SERVER,
            },
            # The gateway depends on ^1.x itself and npm nests a newer copy for it;
            # only an override reaches that nested copy.
            "overrides": {"@hono/node-server": HONO_NODE_SERVER},
        }
        PORTKEY_DIR.mkdir(parents=True, exist_ok=True)
        pkg = PORTKEY_DIR / "package.json"
        want = json.dumps(manifest, indent=2)
        if not self.script.exists() or not pkg.exists() or pkg.read_text() != want:
            pkg.write_text(want)
            npm = ["npm", "install", "--no-audit", "--no-fund"]
            _run(npm, 1800, {"npm_config_loglevel": "error"}, cwd=PORTKEY_DIR)
        hono = []
        for p in PORTKEY_DIR.glob("node_modules/**/@hono/node-server/package.json"):
            hono.append(json.loads(p.read_text())["version"])
        if any(v != HONO_NODE_SERVER for v in hono):
            raise Unavailable(f"@hono/node-server versions {hono}, want {HONO_NODE_SERVER} only")
        gw = PORTKEY_DIR / "node_modules/@portkey-ai/gateway/package.json"
        self.version = (
            json.loads(gw.read_text())["version"] + f" (node {_run([node, '--version'], 30)})"
        )

    def command(self, upstream_port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
        self.headers = {
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": f"http://127.0.0.1:{upstream_port}/v1",
            "Authorization": "Bearer x",
        }
        argv = ["node", str(self.script), f"--port={self.port}", "--headless"]
        return argv, {}


def make(name: str, litellm_version: str = LITELLM_VERSION) -> Target:
    if name == "polyroute":
        return Polyroute()
    if name == "litellm":
        return LiteLLM(litellm_version)
    if name == "portkey":
        return Portkey()
    raise ValueError(name)


class Upstream:
    """bench/upstream.py as a subprocess on the client core."""

    def __init__(self, workers: int = 1) -> None:
        self.port = free_port()
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [PYTHON, str(BENCH_DIR / "upstream.py"), "--port", str(self.port)]
        argv += ["--workers", str(self.workers)]
        self.proc = subprocess.Popen(
            pinned(CLIENT_CORE, argv),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.perf_counter() + 15
        while probe(self.port, "/v1/chat/completions", "bench-model", {}, 1) != 200:
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.02)

    def served(self) -> int:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/__stats")
            n: int = json.loads(conn.getresponse().read())["served"]
            conn.close()
            return n
        except (OSError, ValueError, KeyError):
            return -1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None
