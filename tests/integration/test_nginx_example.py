"""docs/nginx.conf in front of two real gateway replicas: plain calls reach both,
x-request-id goes through, a stream arrives chunk by chunk (not buffered) and ends
with [DONE], and /readyz answers for the service as a whole.

nginx runs in the foreground, unprivileged paths only (``-p`` a temp prefix, ``-e``
its error log, ``pid`` there too), on a free port; the file is used as written
except for the replica addresses, the ``listen`` port and the log directory.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer, free_port
from tests.integration.routerkit import ENV, fake_config

CONF = Path(__file__).resolve().parents[2] / "docs" / "nginx.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )


NGINX = nginx_binary()
pytestmark = pytest.mark.skipif(
    NGINX is None,
    reason="nginx is not installed (apt-get install -y nginx; .ci/run installs it)",
)


def render(conf: str, replicas: list[int], port: int, logs: Path) -> str:
    """The example with this test's replicas, port and log directory."""
    upstream = re.search(r"upstream polyroute \{.*?\n    \}", conf, re.S)
    assert upstream, "docs/nginx.conf has no `upstream polyroute` block"
    block = upstream.group(0)
    servers = re.findall(r"^ *server \S+:\d+[^;\n]*;\n", block, re.M)
    assert servers, "the upstream block lists no replica"
    opts = servers[0].split(None, 2)[2].rstrip(";\n")  # max_fails=... as in the example
    ours = "".join(f"        server 127.0.0.1:{p} {opts};\n" for p in replicas)
    new_block = block.replace(servers[0], ours, 1)
    for line in servers[1:]:
        new_block = new_block.replace(line, "", 1)
    out = conf.replace(block, new_block)
    assert out.count("listen 80;") == 1
    out = out.replace("listen 80;", f"listen 127.0.0.1:{port};")
    assert "/var/log/nginx/" in out
    return out.replace("/var/log/nginx/", f"{logs}/")


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    text = log.read_text() if log.exists() else ""
    raise RuntimeError(f"nginx did not start (exit {proc.poll()}): {text}")


@pytest.fixture
def stack(fake: FakeProviderThread, tmp_path: Path) -> Iterator[tuple[str, list[GatewayServer]]]:
    """nginx on a free port in front of two gateway replicas; yields its URL."""
    assert NGINX is not None
    with (
        GatewayServer(fake_config(fake), ENV) as one,
        GatewayServer(fake_config(fake), ENV) as two,
    ):
        prefix = tmp_path / "nginx"
        (prefix / "logs").mkdir(parents=True)
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(render(CONF.read_text(), [one.port, two.port], port, prefix / "logs"))
        error_log = prefix / "logs" / "error.log"
        args = [NGINX, "-p", f"{prefix}/", "-c", str(conf), "-e", str(error_log)]
        check = subprocess.run([*args, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen(
            [*args, "-g", f"daemon off; pid {prefix}/nginx.pid;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_port(port, proc, error_log)
            yield f"http://127.0.0.1:{port}", [one, two]
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def calls_seen(gw: GatewayServer) -> float:
    return sum(
        s.value
        for m in gw.app.state.metrics.registry.collect()
        if m.name == "polyroute_requests"
        for s in m.samples
        if s.name == "polyroute_requests_total"
    )


def test_plain_calls_reach_both_replicas_with_request_ids(
    stack: tuple[str, list[GatewayServer]],
) -> None:
    url, replicas = stack
    body = {"model": "a", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=url, timeout=20) as client:  # one client connection
        for i in range(6):
            r = client.post("/v1/chat/completions", json=body, headers={"x-request-id": f"t-{i}"})
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == "fake reply from model-a: hi"
            assert r.headers["x-request-id"] == f"t-{i}"  # the caller's id, kept end to end
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == 200
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])  # nginx's $request_id
    assert all(calls_seen(gw) > 0 for gw in replicas)  # the upstream block has both
    assert sum(calls_seen(gw) for gw in replicas) == 7
    # Keep-alive to the replicas: nginx's connections stay open between calls (with
    # "Connection: close" upstream each would be gone as soon as its answer was).
    assert sum(len(gw.server.server_state.connections) for gw in replicas) >= 1


def test_stream_is_relayed_chunk_by_chunk(
    stack: tuple[str, list[GatewayServer]], fake: FakeProviderThread
) -> None:
    url, _ = stack
    # The first model pauses 1 s after its first chunk, then stops without finishing;
    # the gateway continues the answer on the next model.  Unbuffered, the first chunk
    # reaches the client a second before the end.
    fake.script("model-a", [{"kind": "stream_stall", "after_chunks": 1, "seconds": 1.0}])
    body = {"model": "ab", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    arrivals: list[tuple[float, str]] = []
    start = time.monotonic()
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.monotonic() - start, line[6:]))
    assert arrivals[-1][1] == "[DONE]"
    chunks = [orjson.loads(d) for _, d in arrivals if d != "[DONE]"]
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )
    assert text.startswith("fake reply f")  # model-a's first chunk, then the continuation
    first_content = next(
        t
        for t, d in arrivals
        if d != "[DONE]"
        and (orjson.loads(d).get("choices") or [{}])[0].get("delta", {}).get("content")
    )
    assert arrivals[-1][0] - first_content >= 0.7, arrivals  # not held back by nginx


def test_readyz_through_nginx(stack: tuple[str, list[GatewayServer]]) -> None:
    url, (one, two) = stack
    for _ in range(4):
        r = httpx.get(url + "/readyz", timeout=10)
        assert r.status_code == 200 and r.json()["ready"] is True
    one.gateway.draining = True  # one replica draining: the check goes to the other
    for _ in range(4):
        assert httpx.get(url + "/readyz", timeout=10).status_code == 200
    two.gateway.draining = True  # none ready: the service is not
    r = httpx.get(url + "/readyz", timeout=10)
    assert r.status_code == 503 and r.json()["ready"] is False
    assert httpx.get(url + "/metrics", timeout=10).status_code == 403  # scrape replicas
