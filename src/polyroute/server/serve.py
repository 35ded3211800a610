"""Start the gateway under uvicorn (``polyroute serve``)."""

from __future__ import annotations

import os
from pathlib import Path

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
        uvicorn.run(create_app(gw), host=host, port=port, log_level=log_level, access_log=False)
