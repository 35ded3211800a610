"""SIGTERM with streams in flight: unready first, every stream completes, then exit."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx2 as httpx
import yaml

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import free_port
from tests.integration.routerkit import ENV, fake_config
from tests.integration.test_usage_restart import gateway


def test_sigterm_drains_streams_and_turns_unready_first(
    fake: FakeProviderThread, tmp_path: Path, monkeypatch: object
) -> None:
    cfg = fake_config(fake)
    cfg["server"] = {"drain_delay": 0.6, "drain_timeout": 10}
    cfg["usage"] = {"store": f"sqlite:///{tmp_path / 'usage.db'}"}
    path = tmp_path / "polyroute.yaml"
    path.write_text(yaml.safe_dump(cfg))
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)  # type: ignore[attr-defined]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Each stream waits 1.5 s for its first chunk: in flight when SIGTERM comes.
    fake.script("model-a", [{"kind": "first_chunk_delay", "seconds": 1.5}] * 3)
    body = {"model": "a", "stream": True, "messages": [{"role": "user", "content": "slow"}]}
    results: list[str] = []

    def stream() -> None:
        r = httpx.post(url + "/v1/chat/completions", json=body, timeout=20)
        results.append(r.text)

    with gateway(path, port, tmp_path) as proc:
        assert httpx.get(url + "/readyz").json()["ready"] is True
        version = httpx.get(url + "/readyz").json()["config_version"]
        threads = [threading.Thread(target=stream) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.4)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        r = httpx.get(url + "/readyz")  # still listening, but unready
        assert r.status_code == 503 and r.json()["ready"] is False
        assert r.json()["config_version"] == version
        for t in threads:
            t.join(20)
        # uvicorn re-raises the signal once it has shut down cleanly, so the exit
        # status says SIGTERM; what matters is that it exited by itself, in time.
        assert proc.wait(20) in (0, -signal.SIGTERM)
    assert len(results) == 3
    for text in results:
        assert text.rstrip().endswith("data: [DONE]")  # complete, not cut at shutdown
        chunks = [json.loads(ln[6:]) for ln in text.splitlines() if ln.startswith("data: {")]
        answer = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert answer == "fake reply from model-a: slow"
