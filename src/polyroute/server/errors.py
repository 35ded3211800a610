"""Errors as HTTP answers in OpenAI's error shape, with fitting statuses.

``{"error": {"message", "type", "param", "code"}}``: the shape the official
SDKs parse.  Messages come from polyroute's own errors, which never contain a
provider key.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from starlette.responses import Response

from polyroute import errors as E

TYPE_OF_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class RequestError(Exception):
    """A client request the gateway refuses before routing (400 unless said)."""

    def __init__(
        self, message: str, param: str | None = None, status: int = 400, code: str | None = None
    ) -> None:
        self.message = message
        self.param = param
        self.status = status
        self.code = code
        super().__init__(message)


def status_for(exc: BaseException) -> int:
    if isinstance(exc, RequestError):
        return exc.status
    if isinstance(exc, E.AllCoolingDownError):
        return 503
    if isinstance(exc, E.RouteExhaustedError):
        if exc.all_rate_limited:
            return 429
        if exc.all_overloaded:
            return 503  # capacity, not a fault: clients back off and retry
        tried = [a for a in exc.attempts if a.outcome == "error"]
        if tried and all(a.trigger == "timeout" for a in tried):
            return 504
        return 502
    if isinstance(exc, E.PolyrouteError):
        return exc.status_code
    return 500


def error_body(exc: BaseException) -> dict[str, Any]:
    status = status_for(exc)
    param: str | None = None
    code: str | None = None
    message = str(exc) if isinstance(exc, E.PolyrouteError | RequestError) else "internal error"
    if isinstance(exc, RequestError):
        param, code = exc.param, exc.code
    elif isinstance(exc, E.ConfigError):
        param = exc.path or None
    elif isinstance(exc, E.UnknownRouteError):
        param, code = "model", "model_not_found"
    elif isinstance(exc, E.ProviderError):
        code = exc.code
    body: dict[str, Any] = {
        "message": message,
        "type": TYPE_OF_STATUS.get(status, "server_error"),
        "param": param,
        "code": code or type(exc).__name__,
    }
    if isinstance(exc, E.RouteExhaustedError):
        body["route"] = exc.route
        body["attempts"] = [a.to_dict() for a in exc.attempts]
    return {"error": body}


def retry_headers(exc: BaseException, status: int) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1) on answers that say "try later"."""
    if status not in (429, 503, 529):
        return {}
    after = getattr(exc, "retry_after", None)
    if after is None:
        after = 1.0
    return {"retry-after": str(max(1, math.ceil(after)))}


def error_response(exc: BaseException, headers: dict[str, str] | None = None) -> Response:
    status = status_for(exc)
    return Response(
        orjson.dumps(error_body(exc)),
        status_code=status,
        media_type="application/json",
        headers={**retry_headers(exc, status), **(headers or {})},
    )
