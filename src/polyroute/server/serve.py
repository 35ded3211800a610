"""Start the gateway under uvicorn (``polyroute serve``).

``--workers N`` (N > 1) runs N uvicorn worker processes on one socket.  Each
builds its own gateway with :func:`app_from_env`.  Their Prometheus metrics add
up through prometheus-client's multiprocess mode: ``serve`` creates a fresh
directory for it, exports ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts
(workers are spawned, so they import prometheus-client with it set), and
removes the directory when the last worker has stopped.  A worker that stops
cleanly marks itself dead there (``mark_process_dead``); one killed outright is
noticed at the next scrape.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from fastapi import FastAPI

from polyroute.config.load import CONFIG_ENV
from polyroute.server.app import create_app
from polyroute.server.gateway import Gateway
from polyroute.server.metrics import MULTIPROC_ENV, Metrics


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: config from ``POLYROUTE_CONFIG`` or the usual search."""
    path = os.environ.get(CONFIG_ENV)
    gw = Gateway(Path(path) if path else None)
    app = create_app(gw)
    _as_worker(app, gw)
    return app


def _as_worker(app: FastAPI, gw: Gateway) -> None:
    """What a worker process adds around the app: its metrics follow its config and
    leave with it, and its first SIGTERM / SIGINT drains like ``draining_server``."""
    metrics: Metrics = app.state.metrics
    metrics.follow_config(lambda: gw.config_version)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        try:
            async with inner(a) as state:
                yield state
        finally:
            metrics.close()  # after the app's own shutdown: every call has been counted

    app.router.lifespan_context = lifespan
    _drain_on_signals(gw)


def _drain_on_signals(gw: Gateway) -> None:
    """Wrap the handlers uvicorn installed (it does so before it calls the factory):
    the first signal turns ``/readyz`` 503 and stops the worker ``server.drain_delay``
    seconds later; a second one stops it at once."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        stop = signal.getsignal(sig)
        if not callable(stop):
            continue

        def handler(s: int, frame: FrameType | None, stop: Any = stop) -> None:
            delay = gw.router.config.server.drain_delay
            if gw.draining or delay <= 0:
                gw.draining = True
                stop(s, frame)
                return
            gw.draining = True  # first signal: unready now, stop accepting later
            timer = threading.Timer(delay, stop, (s, frame))
            timer.daemon = True
            timer.start()

        signal.signal(sig, handler)


@contextmanager
def multiprocess_metrics() -> Iterator[str]:
    """A fresh directory for prometheus-client's multiprocess mode, exported as
    ``PROMETHEUS_MULTIPROC_DIR`` for the workers started inside, removed afterwards.
    Never an inherited one: files left by an earlier run would count its requests."""
    previous = os.environ.get(MULTIPROC_ENV)
    path = tempfile.mkdtemp(prefix="polyroute-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def describe(gw: Gateway, host: str, port: int) -> list[str]:
    router = gw.router
    lines = [f"polyroute gateway listening on http://{host}:{port}  (dashboard: /, API: /v1)"]
    src = router.settings.path
    lines.append(f"config: {src if src else 'built-in defaults'}")
    ready, missing = [], []
    for name in sorted(router.settings.providers):
        st = router.registry.status(name)
        if st.present:
            ready.append(name)
        elif st.required and st.env_var:
            missing.append(f"{name} ({st.env_var})")
    lines.append("providers with credentials: " + (", ".join(ready) or "none"))
    if not ready:
        lines.append("no provider key set: built-in routes run on the simulator provider")
    if gw.auth_enabled:
        lines.append("gateway keys: required (Authorization: Bearer <key>)")
    else:
        lines.append(
            f"gateway keys: none configured (set {router.config.server.api_keys_env} "
            "to require them)"
        )
    return lines


def draining_server(app: FastAPI, gw: Gateway, host: str, port: int, log_level: str) -> Any:
    """A uvicorn server whose first SIGTERM / SIGINT turns the gateway unready
    (``/readyz`` 503) and keeps serving for ``server.drain_delay`` seconds before it
    stops accepting; requests and streams in flight then get ``drain_timeout``."""
    import uvicorn

    cfg = gw.router.config.server
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=int(cfg.drain_timeout) or None,
    )

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if gw.draining or cfg.drain_delay <= 0:
                gw.draining = True
                super().handle_exit(sig, frame)
                return
            gw.draining = True  # first signal: unready now, stop accepting later
            timer = threading.Timer(cfg.drain_delay, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()

    return DrainingServer(config)


def serve(config: Path | None, host: str, port: int, workers: int, log_level: str) -> None:
    import uvicorn

    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    gw = Gateway(config)  # load once here so a bad config fails before binding the port
    for line in describe(gw, host, port):
        print(line, flush=True)
    if workers > 1:
        with multiprocess_metrics() as metrics_dir:
            print(
                f"workers: {workers}; /metrics adds up all of them ({MULTIPROC_ENV}={metrics_dir})",
                flush=True,
            )
            uvicorn.run(
                "polyroute.server.serve:app_from_env",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level=log_level,
                access_log=False,
                timeout_graceful_shutdown=int(gw.router.config.server.drain_timeout) or None,
            )
    else:
        draining_server(create_app(gw), gw, host, port, log_level).run()
