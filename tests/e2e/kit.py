"""The e2e tests' gateway (the integration kit's: ``create_app`` mounts the dashboard)
and their configuration."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tests.integration.gatewaykit import GatewayServer


def paths(app: FastAPI) -> set[str]:
    return {p for r in app.router.routes if isinstance(p := getattr(r, "path", None), str)}


# create_app mounts the dashboard itself, so the integration kit serves it as it is.
DashboardServer = GatewayServer


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
