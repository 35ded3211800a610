"""Request plumbing shared by every endpoint: body reading, auth, envelope headers.

Bodies are read as bytes and parsed with orjson (no pydantic model per
request): the hot path checks only the fields routing needs.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from polyroute.server.errors import RequestError
from polyroute.server.gateway import Gateway, key_id
from polyroute.types import Envelope


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer encoded with orjson (every endpoint's success path)."""
    return Response(
        orjson.dumps(obj), status_code=status, media_type="application/json", headers=headers
    )


def gateway_of(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return request.headers.get("x-api-key")


def authorize(request: Request, admin: bool = False) -> dict[str, str]:
    """Check the caller's key; returns labels for the usage record."""
    gw = gateway_of(request)
    key = presented_key(request)
    verdict = gw.check_key(key, admin)
    if verdict is None:
        if key and admin and gw.check_key(key, False) is not None:
            raise RequestError(
                "this endpoint needs an admin key", status=403, code="admin_key_required"
            )
        raise RequestError(
            "missing or invalid API key: send 'Authorization: Bearer <key>' with a key from "
            f"{gw.router.config.server.api_keys_env}",
            status=401,
            code="invalid_api_key",
        )
    return {"api_key": key_id(key)} if key and gw.auth_enabled else {}


async def read_json(request: Request) -> dict[str, Any]:
    limit = gateway_of(request).router.config.server.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"request body over {limit} bytes", status=413, code="request_too_large")
    raw = await request.body()
    if len(raw) > limit:
        raise RequestError(f"request body over {limit} bytes", status=413, code="request_too_large")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError("body must be a JSON object")
    return body


def require_str(body: dict[str, Any], field: str) -> str:
    v = body.get(field)
    if not isinstance(v, str) or not v.strip():
        raise RequestError(f"'{field}' is required and must be a non-empty string", param=field)
    return v


def envelope_headers(env: Envelope, streaming: bool = False) -> dict[str, str]:
    """Where the answer came from.  A stream's cost is not known when its headers go
    out, so it has no cost header (the usage record and the final chunk carry it)."""
    headers = {
        "x-polyroute-route": env.route,
        "x-polyroute-model": env.model,
        "x-polyroute-provider": env.provider,
        "x-polyroute-attempts": str(len([a for a in env.attempts if a.outcome != "skipped"])),
        "x-polyroute-cost": f"{env.cost:.8f}",
        "x-polyroute-cache": "hit" if env.cache_hit else "miss",
        **({"x-polyroute-saved-cost": f"{env.saved_cost:.8f}"} if env.cache_hit else {}),
        **({"x-polyroute-simulated": "true"} if env.simulated else {}),
        **({"x-polyroute-upstream-request-id": env.request_id} if env.request_id else {}),
    }
    if streaming:
        headers.pop("x-polyroute-cost")
    return headers
