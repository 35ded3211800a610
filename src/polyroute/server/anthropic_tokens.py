"""Anthropic's ``POST /v1/messages/count_tokens`` in front of any route.

``model`` is resolved as a route and its first candidate decides how to count:

* an Anthropic-wire provider counts itself: the body goes upstream to
  ``<base_url>/v1/messages/count_tokens`` as sent, with ``model`` replaced by
  the provider's model name, the provider's key (``x-api-key``), the client's
  ``anthropic-version`` (polyroute's default when absent) and ``anthropic-beta``,
  over the router's shared aiohttp session; its ``{"input_tokens": N}`` is relayed;
* any other provider is counted by polyroute's tokenizer (``polyroute.tokens``:
  tiktoken where its files are on disk, else about four characters a token) over
  the request translated to OpenAI messages, tool definitions included.  A body
  with no OpenAI form (documents, server tools) is counted by the route's first
  Anthropic-wire candidate instead, the one ``/v1/messages`` would send it to
  (400 when there is none).

``x-polyroute-token-count`` says which (``upstream`` or ``local``); the route,
model and provider headers say which candidate counted.

Not a model call: no fallback, no usage record, no cost.  Errors use Anthropic's
error shape; an upstream error keeps its kind (a 529 stays a 529).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from polyroute.config.catalog import ModelInfo
from polyroute.errors import OverloadedError, PolyrouteError, ProviderError, UnknownRouteError
from polyroute.providers.anthropic import _headers, messages_url
from polyroute.providers.classify import malformed, raise_for_status, request_id_from
from polyroute.providers.http import client_timeout, transport_errors
from polyroute.router import Router
from polyroute.server import anthropic_compat as ac
from polyroute.server.anthropic_api import anthropic_status
from polyroute.server.errors import RequestError, error_body, retry_headers
from polyroute.server.http import authorize, gateway_of, json_response, read_json
from polyroute.tokens import count_messages, count_text

UPSTREAM_ID = "x-polyroute-upstream-request-id"
CLIENT_HEADERS = ("anthropic-version", "anthropic-beta")


def _status(exc: BaseException) -> int:
    if isinstance(exc, OverloadedError) and exc.status == 529:
        return 529  # relayed as the upstream said it, not as the router's 503
    return anthropic_status(exc)


def _error(exc: BaseException) -> Response:
    status = _status(exc)
    headers = retry_headers(exc, status)
    if isinstance(exc, ProviderError) and exc.request_id:
        headers[UPSTREAM_ID] = exc.request_id
    message = error_body(exc)["error"]["message"]
    return json_response(ac.anthropic_error_body(status, message), status=status, headers=headers)


async def count_tokens(request: Request) -> Response:
    try:
        return await _count_tokens(request)
    except (RequestError, PolyrouteError) as exc:
        return _error(exc)


async def _count_tokens(request: Request) -> Response:
    authorize(request)
    body = await read_json(request)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise RequestError("model: field required", param="model")
    router = gateway_of(request).router
    route = router.resolve(model, request.headers.get("x-polyroute-product-type") or None)
    if not route.candidates:
        raise UnknownRouteError(f"route {model!r} has no models")
    infos = [c.info for c in route.candidates]
    info = infos[0]
    if not _anthropic(router, info):
        try:
            n = local_count(body, info)
        except ac.UntranslatableError as exc:
            # Documents, server tools...: /v1/messages would send this body only to an
            # Anthropic-wire candidate, so that one counts it.
            native = next((i for i in infos if _anthropic(router, i)), None)
            if native is None:
                raise RequestError(str(exc), param=exc.param) from None
            info = native
        except ac.RequestError as exc:
            raise RequestError(str(exc), param=exc.param) from None
        else:
            headers = _where(route.name, info)
            headers["x-polyroute-token-count"] = "local"
            return json_response({"input_tokens": n}, headers=headers)
    return await _upstream(request, router, body, info, route.timeout, _where(route.name, info))


def _anthropic(router: Router, info: ModelInfo) -> bool:
    return router.registry.spec(info.provider).wire == "anthropic"


def _where(route: str, info: ModelInfo) -> dict[str, str]:
    return {
        "x-polyroute-route": route,
        "x-polyroute-model": info.id,
        "x-polyroute-provider": info.provider,
    }


def local_count(body: dict[str, Any], info: ModelInfo) -> int:
    """The prompt's tokens as polyroute counts them for ``info``'s tokenizer."""
    # count_tokens takes no max_tokens; the Messages parser insists on one.
    call = ac.parse_messages_request(body if "max_tokens" in body else {**body, "max_tokens": 1})
    n = count_messages(call.messages, info.provider, info.name)
    tools = call.params.get("tools")
    if tools:
        n += count_text(orjson.dumps(tools).decode(), info.provider, info.name)
    return n


async def _upstream(
    request: Request,
    router: Router,
    body: dict[str, Any],
    info: ModelInfo,
    timeout: float | None,
    headers: dict[str, str],
) -> Response:
    endpoint = router.registry.client(info.provider).endpoint
    # The provider's key; the client's anthropic-version (polyroute's when absent) and
    # anthropic-beta; the provider's configured headers over all of them.
    forwarded = tuple((h, v) for h in CLIENT_HEADERS if (v := request.headers.get(h)))
    out = _headers(endpoint, "application/json", forwarded)
    url = messages_url(endpoint) + "/count_tokens"
    if request.url.query:  # e.g. the beta SDK's ?beta=true
        url += "?" + request.url.query
    payload = orjson.dumps({**body, "model": info.name})
    session = router.sessions.get()
    with transport_errors(info.provider, info.id, timeout):
        async with session.post(
            url, data=payload, headers=out, timeout=client_timeout(timeout)
        ) as resp:
            await raise_for_status(resp, endpoint, info.id)
            rid = request_id_from(resp.headers)
            raw = await resp.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    tokens = data.get("input_tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        raise malformed(endpoint, info.id, "count_tokens answer has no input_tokens count", rid)
    headers["x-polyroute-token-count"] = "upstream"
    if rid:
        headers[UPSTREAM_ID] = rid
    return json_response(data, headers=headers)
