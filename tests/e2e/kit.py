"""A real gateway with the dashboard mounted (uvicorn on 127.0.0.1, free port).

Like ``tests.integration.gatewaykit.GatewayServer``, but it builds the app
itself so it can ``mount`` the dashboard: a no-op replacement once
``create_app`` mounts it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import uvicorn
from fastapi import FastAPI

from polyroute.server import Gateway, create_app
from polyroute.server.dashboard import mount
from tests.integration.gatewaykit import free_port


def paths(app: FastAPI) -> set[str]:
    return {p for r in app.router.routes if isinstance(p := getattr(r, "path", None), str)}


class DashboardServer:
    def __init__(self, data: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self.gateway = Gateway(data=data, environ=environ)
        self.app = create_app(self.gateway)
        mount(self.app)
        self.port = free_port()
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        self._thread.join(10)


def e2e_config(db_url: str, *, usage: bool = True) -> dict[str, Any]:
    """Built-in simulator defaults, a provider that always fails, a named route
    through it, a two-step prompt pipeline, and usage recorded in ``db_url``
    (written every 0.05 s, so the Usage page sees calls at once)."""
    return {
        "providers": {
            # A little latency so cards arrive one by one and latency figures are real.
            "simulator": {"simulator": {"latency": 0.05}},
            "flaky": {
                "type": "simulator",
                "simulator": {"failure_rate": 1.0, "error_kinds": ["server_error"]},
                "retry": {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.05},
            },
        },
        "policies": {"cooldown": {"after_failures": 1, "seconds": 600, "window": 600}},
        "routes": {
            "flaky-route": {"models": ["flaky/gpt-4o", "simulator/gpt-4o-mini"]},
            # OpenAI has no key here: the Routes page shows the missing-key banner.
            "needs-openai": {"models": ["gpt-4o", "simulator/gpt-4o"]},
        },
        "pipelines": {
            "article": {
                "default_model": "simulator/gpt-4o-mini",
                "steps": {
                    "outline": {
                        "model": "simulator/gpt-4o-mini",
                        "prompt": "Outline a short article about {content}",
                    },
                    "draft": {
                        "models": ["simulator/gpt-4o", "simulator/claude-sonnet-4-20250514"],
                        "routing": "fallback",
                        "system": "You write clear, concise articles.",
                        "prompt": "Write the article from this outline:\n{outputs[outline]}",
                    },
                },
            }
        },
        "usage": {"store": db_url, "enabled": usage, "flush_interval": 0.05},
    }
