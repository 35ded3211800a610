"""Answers for requests no route takes: unknown path (404), wrong method (405).

Starlette raises ``HTTPException`` for both; this handler answers in the shape of
the ingress the client was aiming at, since that is what its SDK parses:

* under ``/v1/messages`` (and ``/v1/messages/...``): Anthropic's
  ``{"type": "error", "error": {"type": "not_found_error", "message"}}``;
* everywhere else OpenAI's, as api.openai.com answers an unknown URL:
  ``{"error": {"message": "Unknown request URL: GET /v1/nope. ...",
  "type": "invalid_request_error", "param": null, "code": "unknown_url"}}``
  (405: ``code: "method_not_allowed"``, with ``Allow``).

Any other ``HTTPException`` keeps its status and headers and gets the same shapes.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from polyroute.server.anthropic_compat import anthropic_error_body
from polyroute.server.errors import TYPE_OF_STATUS
from polyroute.server.http import json_response

ANTHROPIC_PREFIX = "/v1/messages"
CODES = {404: "unknown_url", 405: "method_not_allowed"}


def is_anthropic_path(path: str) -> bool:
    return path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/")


def _message(request: Request, status: int, allow: str | None, detail: str) -> str:
    target = f"{request.method} {request.url.path}"
    if status == 404:
        return (
            f"Unknown request URL: {target}. Please check the URL for typos, or see the "
            "gateway's endpoint list (GET /v1/models for model names)."
        )
    if status == 405:
        return f"Method not allowed: {target}" + (f"; this path accepts {allow}." if allow else ".")
    return detail


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    message = _message(request, status, headers.get("Allow"), str(exc.detail))
    if is_anthropic_path(request.url.path):
        return json_response(anthropic_error_body(status, message), status, headers)
    kind = "invalid_request_error" if status in CODES else TYPE_OF_STATUS.get(status)
    body = {
        "message": message,
        "type": kind or ("invalid_request_error" if status < 500 else "server_error"),
        "param": None,
        "code": CODES.get(status),
    }
    return json_response({"error": body}, status, headers)
