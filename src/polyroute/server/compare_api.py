"""``POST /api/v1/compare``: one prompt fanned out to several models; one card each.

Body: ``prompt`` (or ``messages``), optional ``system``, ``models`` (list of
models or routes) or ``route`` (fan out over its pool), ``parameters``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from polyroute.server.errors import RequestError
from polyroute.server.http import authorize, gateway_of, json_response, read_json
from polyroute.types import FanOutResult


def _card(r: FanOutResult) -> dict[str, Any]:
    e = r.envelope
    if e is None:
        attempts = [a.to_dict() for a in getattr(r.error, "attempts", [])]
        return {
            "model": r.model,
            "ok": False,
            "error": str(r.error),
            "error_type": type(r.error).__name__,
            "attempts": attempts,
        }
    return {
        "model": r.model,
        "ok": True,
        "answered_by": e.model,
        "provider": e.provider,
        "content": e.content,
        "tokens": e.usage.to_dict(),
        "latency": e.latency,
        "cost": e.cost,
        "retries": e.retries,
        "warnings": e.warnings,
        "attempts": [a.to_dict() for a in e.attempts],
        "simulated": e.simulated,
    }


async def compare(request: Request) -> Response:
    labels = authorize(request)
    body = await read_json(request)
    messages = body.get("messages")
    if messages is None:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise RequestError("give 'prompt' (a string) or 'messages'", param="prompt")
        messages = [{"role": "user", "content": prompt}]
        system = body.get("system")
        if isinstance(system, str) and system:
            messages.insert(0, {"role": "system", "content": system})
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty array", param="messages")
    models = body.get("models")
    route = body.get("route")
    target: str | list[str]
    if isinstance(models, list) and models and all(isinstance(m, str) for m in models):
        target = models
    elif isinstance(route, str) and route:
        target = route
    else:
        raise RequestError(
            "give 'models' (a list of model or route names) or 'route'", param="models"
        )
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise RequestError("'parameters' must be an object", param="parameters")
    results = await gateway_of(request).router.fan_out(target, messages, labels=labels, **params)
    cards = [_card(r) for r in results]
    return json_response({"results": cards})
