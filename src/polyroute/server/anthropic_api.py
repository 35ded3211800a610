"""Anthropic-compatible ``POST /v1/messages``: the ``anthropic`` SDK with any route behind it.

The request is translated to OpenAI form, routed like any other call, and the
answer translated back (plain, or as Anthropic's stream events).  Errors use
Anthropic's error shape, since that is what its SDK parses.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from polyroute.errors import (
    AllCoolingDownError,
    InvalidResponseError,
    PolyrouteError,
    RouteExhaustedError,
)
from polyroute.providers.base import StreamChunk
from polyroute.routing.streaming import RouterStream
from polyroute.routing.work import Native
from polyroute.server import anthropic_compat as ac
from polyroute.server.anthropic_native import NativeRelay
from polyroute.server.errors import RequestError, error_body, retry_headers, status_for
from polyroute.server.http import (
    authorize,
    envelope_headers,
    gateway_of,
    json_response,
    read_json,
)
from polyroute.server.openai_api import cache_choice
from polyroute.tokens import count_messages


def anthropic_status(exc: BaseException) -> int:
    """As on the OpenAI ingress, except that "no capacity now" (every candidate cooling
    down or overloaded) is Anthropic's own 529 ``overloaded_error``."""
    if isinstance(exc, AllCoolingDownError) or (
        isinstance(exc, RouteExhaustedError) and exc.all_overloaded
    ):
        return 529
    return status_for(exc)


def _error(exc: BaseException) -> Response:
    status = anthropic_status(exc)
    message = error_body(exc)["error"]["message"]
    return json_response(
        ac.anthropic_error_body(status, message),
        status=status,
        headers=retry_headers(exc, status),
    )


async def messages(request: Request) -> Response:
    try:
        return await _messages(request)
    except (RequestError, PolyrouteError) as exc:
        return _error(exc)


# Client headers an Anthropic upstream must see as sent (betas switch features on).
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


async def _messages(request: Request) -> Response:
    labels = authorize(request)
    body = await read_json(request)
    untranslatable = None
    try:
        call = ac.parse_messages_request(body)
    except ac.UntranslatableError as exc:
        # Fine for an Anthropic upstream, which gets the body as sent: route it there.
        untranslatable = str(exc)
        call = _lenient(body)
    except ac.RequestError as exc:
        raise RequestError(str(exc), param=exc.param) from None
    product_type = request.headers.get("x-polyroute-product-type") or call.product_type
    router = gateway_of(request).router
    # An Anthropic-wire candidate gets the body as the client sent it (model replaced);
    # any other gets the translation in call.messages / call.params.
    forwarded = tuple(
        (h, v) for h in FORWARDED_HEADERS if (v := request.headers.get(h)) is not None
    )
    native = Native(body, forwarded, untranslatable)
    if not call.stream:
        env = await router.complete(
            call.model,
            call.messages,
            product_type=product_type,
            labels=labels,
            cache=cache_choice(request),
            native=native,
            **call.params,
        )
        if env.native is not None:
            return json_response(env.native, headers=envelope_headers(env))
        try:
            msg = ac.to_anthropic_message(env.raw or {}, env.model)
        except ValueError as exc:  # e.g. tool arguments that are not a JSON object
            raise InvalidResponseError(
                f"cannot express the answer in Anthropic's format: {exc}",
                provider=env.provider,
                model=env.model,
            ) from None
        return json_response(msg, headers=envelope_headers(env))

    stream = router.stream(
        call.model,
        call.messages,
        product_type=product_type,
        labels=labels,
        native=native,
        **call.params,
    )
    first = await stream.start()
    assert stream.envelope is not None
    env = stream.envelope
    headers = envelope_headers(env, streaming=True)
    if first.native is not None:
        return StreamingResponse(
            _relayed(stream, first), media_type="text/event-stream", headers=headers
        )
    # message_start carries the input tokens (clients show context use from it); the
    # translated upstream reports them only at the end, so count them now.
    info = router.catalog.lookup(env.model)
    prompt = count_messages(call.messages, info.provider, info.name)
    encoder = ac.MessagesStreamEncoder(env.model, "msg_" + uuid.uuid4().hex[:24], prompt)

    async def events() -> AsyncIterator[bytes]:
        yield encoder.start()
        chunk: Any = first
        try:
            while chunk is not None:
                if chunk.raw:
                    out = encoder.feed(chunk.raw)
                    if out:
                        yield out
                chunk = await anext(aiter(stream), None)
        except PolyrouteError as exc:
            err = ac.anthropic_error_body(anthropic_status(exc), str(exc))["error"]
            yield encoder.error(err["type"], err["message"])
            return
        u = env.usage
        yield encoder.finish((u.prompt_tokens, u.completion_tokens) if u.total_tokens else None)

    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _lenient(body: dict[str, Any]) -> ac.MessagesCall:
    try:
        return ac.parse_messages_request(body, lenient=True)
    except ac.RequestError as exc:
        raise RequestError(str(exc), param=exc.param) from None


async def _relayed(stream: RouterStream, first: StreamChunk) -> AsyncIterator[bytes]:
    """The upstream's own events, byte for byte; a continuation's text spliced in."""
    relay = NativeRelay()
    chunk: StreamChunk | None = first
    try:
        while chunk is not None:
            if chunk.native is not None:
                yield relay.relay(chunk.native)
            elif chunk.delta:
                yield relay.text(chunk.delta)
            chunk = await anext(aiter(stream), None)
    except PolyrouteError as exc:
        err = ac.anthropic_error_body(anthropic_status(exc), str(exc))["error"]
        yield relay.error(err["type"], err["message"])
        return
    env = stream.envelope
    assert env is not None
    yield relay.finish(env.finish_reason, env.usage.completion_tokens)
