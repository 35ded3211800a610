"""Runtime reconfiguration (seed 004) and read-only views of routes and providers.

``PUT /api/v1/tasks/{task}`` and ``POST /api/v1/config/reload`` build a new
router and swap it in; requests already running finish on the old one.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from polyroute import reconfigure
from polyroute.config.validate import route_names
from polyroute.errors import ConfigError, ProviderNotAllowedError
from polyroute.router import Router
from polyroute.server.errors import RequestError
from polyroute.server.http import authorize, gateway_of, json_response, read_json


def _task_view(router: Router, task: str) -> dict[str, Any]:
    route = router.resolve(f"task:{task}")
    ids = [c.info for c in route.candidates]
    primary = ids[0] if ids else None
    fallback = ids[1] if len(ids) > 1 else None
    return {
        "task": task,
        "models": [i.id for i in ids],
        "provider": primary.provider if primary else None,
        "model": primary.name if primary else None,
        "fallback_provider": fallback.provider if fallback else None,
        "fallback_model": fallback.name if fallback else None,
    }


async def list_tasks(request: Request) -> Response:
    authorize(request)
    router = gateway_of(request).router
    return json_response({"tasks": [_task_view(router, t) for t in router.config.tasks]})


async def put_task(request: Request) -> Response:
    """Seed 004's runtime reassignment: validated like config (400 with the field, 403
    for a provider that is not allowed), in effect for every later call, and kept
    across reloads (it is an override over the file and the environment)."""
    authorize(request, admin=True)
    task = request.path_params["task"]
    body = await read_json(request)
    gw = gateway_of(request)
    unknown = set(body) - {"provider", "model", "fallback_provider", "fallback_model"}
    if unknown:
        raise RequestError(f"unknown field(s) {sorted(unknown)}", param=sorted(unknown)[0])
    try:
        override = reconfigure.task_override(
            gw.router.settings,
            task,
            body.get("provider"),
            body.get("model"),
            body.get("fallback_provider"),
            body.get("fallback_model"),
        )
        new = await gw.reload(override)
    except ProviderNotAllowedError as exc:
        raise RequestError(str(exc), param="provider", status=403) from None
    except ConfigError as exc:
        raise RequestError(str(exc), param=exc.path or None) from None
    return json_response(_task_view(new, task))


async def reload_config(request: Request) -> Response:
    authorize(request, admin=True)
    gw = gateway_of(request)
    await gw.reload()
    return json_response({"reloaded": True, "generation": gw.generation})


async def list_routes(request: Request) -> Response:
    authorize(request)
    router = gateway_of(request).router
    cooling = router.cooldown.snapshot()
    rows = []
    for name in route_names(router.config):
        r = router.resolver.resolve(name)
        rows.append(
            {
                "route": name,
                "strategy": r.strategy,
                "params": dict(r.params),
                "timeout": r.timeout,
                "max_fallbacks": r.max_fallbacks,
                "warnings": list(r.warnings),
                "models": [
                    {
                        "id": c.info.id,
                        "provider": c.info.provider,
                        "weight": c.weight,
                        **cooling.get(
                            c.info.id, {"failures": 0, "cooling_for": 0.0, "last_error": None}
                        ),
                    }
                    for c in r.candidates
                ],
            }
        )
    return json_response({"routes": rows})


async def list_providers(request: Request) -> Response:
    authorize(request)
    router = gateway_of(request).router
    out = []
    for name in sorted(router.settings.providers):
        st = router.registry.status(name)
        out.append(
            {
                "provider": name,
                "wire": st.wire,
                "key_variable": st.env_var,
                "key_present": st.present,
                "key_required": st.required,
                "usable": st.usable,
                "base_url": st.base_url,
                "key_page": st.key_page,
            }
        )
    return json_response({"providers": out})
