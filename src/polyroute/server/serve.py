"""Start the gateway under uvicorn (``polyroute serve``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from polyroute.config.load import CONFIG_ENV
from polyroute.server.app import create_app
from polyroute.server.gateway import Gateway


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: config from ``POLYROUTE_CONFIG`` or the usual search."""
    path = os.environ.get(CONFIG_ENV)
    return create_app(Gateway(Path(path) if path else None))


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
        uvicorn.run(
            "polyroute.server.serve:app_from_env",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
        )
    else:
        draining_server(create_app(gw), gw, host, port, log_level).run()
