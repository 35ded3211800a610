"""``POST /v1/responses`` (plain and streaming), ``GET`` / ``DELETE /v1/responses/{id}``.

Any route serves it: the request becomes a chat call (``responses_convert``)
that the engine routes like every other — fallback, budgets, cache, usage
records — and the answer comes back as a ``response`` object or as the
Responses stream events.  With ``store`` (the default) the response and the
conversation it ends are kept, so ``previous_response_id`` continues it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from polyroute.errors import PolyrouteError, RouteExhaustedError
from polyroute.providers.base import StreamChunk
from polyroute.router import Router
from polyroute.routing.streaming import RouterStream
from polyroute.routing.work import Native
from polyroute.server.errors import RequestError, error_body, status_for
from polyroute.server.http import authorize, envelope_headers, gateway_of, json_response, read_json
from polyroute.server.openai_api import cache_choice, product_type_of
from polyroute.server.responses_convert import (
    ResponseEvents,
    ResponsesCall,
    ResponsesRequestError,
    Untranslatable,
    assistant_message,
    new_id,
    output_items,
    parse_request,
    response_object,
)
from polyroute.server.responses_native import ResponsesRelay
from polyroute.server.responses_store import ResponseStore


def response_store(request: Request) -> ResponseStore:
    """Made on first use, with the usage database (or in memory when usage is off)."""
    store: ResponseStore | None = getattr(request.app.state, "response_store", None)
    if store is None:
        usage = gateway_of(request).router.config.usage
        store = ResponseStore(usage.store if usage.enabled else None)
        request.app.state.response_store = store
    return store


async def create_response(request: Request) -> Response:
    labels = authorize(request)
    body = await read_json(request)
    store = response_store(request)
    history = None
    previous = body.get("previous_response_id")
    if previous is not None:
        found = await store.aget(str(previous)) if isinstance(previous, str) else None
        if found is None:
            raise RequestError(
                f"previous response {previous!r} not found (was it created with store: false?)",
                param="previous_response_id",
                status=404,
            )
        history = found["messages"]
    untranslatable = None
    try:
        try:
            call = parse_request(body, history)
        except Untranslatable as exc:
            # Fine for an upstream that serves the Responses API: route it only there.
            untranslatable = f"{exc.param}: {exc}"
            call = parse_request(body, history, lenient=True)
    except ResponsesRequestError as exc:
        raise RequestError(str(exc), param=exc.param) from None
    router = gateway_of(request).router
    kw: dict[str, Any] = {
        "product_type": product_type_of(request, body),
        "labels": labels,
        # A provider that serves the Responses API gets the body as sent; others, chat.
        "native": Native(dict(body), (), untranslatable, wire="responses"),
        **call.params,
    }
    response_id = new_id("resp")
    try:
        return await _serve(request, router, call, kw, store, response_id)
    except RouteExhaustedError as exc:
        if untranslatable and all(
            (a.trigger or "").startswith("untranslatable") for a in exc.attempts
        ):
            # Nothing on the route serves the Responses API itself: the field is the cause.
            param, _, message = untranslatable.partition(": ")
            raise RequestError(
                f"{message} (no model of route {call.model!r} serves the Responses API "
                "itself; route to an OpenAI model for built-in tools)",
                param=param,
            ) from None
        raise


async def _serve(
    request: Request,
    router: Router,
    call: ResponsesCall,
    kw: dict[str, Any],
    store: ResponseStore,
    response_id: str,
) -> Response:
    if not call.stream:
        env = await router.complete(call.model, call.messages, cache=cache_choice(request), **kw)
        if env.native is not None:  # served by the Responses API itself: as it came
            if call.store:
                native = env.native
                messages = [*call.messages, assistant_message(native.get("output") or [])]
                await store.asave(native, messages)
            return json_response(env.native, headers=envelope_headers(env))
        output = output_items(env)
        resp = response_object(
            response_id, call, env.model, "completed", output, env.usage, env.finish_reason
        )
        if call.store:
            await store.asave(resp, [*call.messages, assistant_message(output)])
        return json_response(resp, headers=envelope_headers(env))

    stream = router.stream(call.model, call.messages, **kw)
    first = await stream.start()  # fallback happens here; errors become a JSON answer
    assert stream.envelope is not None
    env = stream.envelope
    headers = envelope_headers(env, streaming=True)
    if first.native is not None:
        return StreamingResponse(
            _relayed(stream, first, call, store), media_type="text/event-stream", headers=headers
        )
    events = ResponseEvents(response_id, call, env.model)

    async def sse() -> AsyncIterator[bytes]:
        yield events.start()
        chunk: Any = first
        try:
            while chunk is not None:
                if chunk.raw:
                    out = events.feed(chunk.raw)
                    if out:
                        yield out
                chunk = await anext(aiter(stream), None)
        except PolyrouteError as exc:
            err = error_body(exc)["error"]
            yield events.error(status_for(exc), err["message"], err.get("code"))
            return
        yield events.finish(env.usage, env.finish_reason)
        if call.store:
            await store.asave(events.final, [*call.messages, assistant_message(events.output)])

    return StreamingResponse(sse(), media_type="text/event-stream", headers=headers)


async def _relayed(
    stream: RouterStream, first: StreamChunk, call: ResponsesCall, store: ResponseStore
) -> AsyncIterator[bytes]:
    """The upstream's own events, byte for byte; a continuation's text spliced in."""
    relay = ResponsesRelay()
    chunk: StreamChunk | None = first
    try:
        while chunk is not None:
            if chunk.native is not None:
                yield relay.relay(chunk.native)
            elif chunk.delta:
                yield relay.text(chunk.delta)
            chunk = await anext(aiter(stream), None)
    except PolyrouteError as exc:
        err = error_body(exc)["error"]
        yield relay.error(status_for(exc), err["message"], err.get("code"))
        return
    env = stream.envelope
    assert env is not None
    yield relay.finish(env.usage)
    if call.store and relay.final is not None and relay.final.get("id"):
        output = relay.final.get("output") or []
        await store.asave(relay.final, [*call.messages, assistant_message(output)])


async def get_response(request: Request) -> Response:
    authorize(request)
    found = await response_store(request).aget(request.path_params["response_id"])
    if found is None:
        raise RequestError("no such response", param="response_id", status=404)
    return json_response(found["response"])


async def delete_response(request: Request) -> Response:
    authorize(request)
    rid = request.path_params["response_id"]
    if not await response_store(request).adelete(rid):
        raise RequestError("no such response", param="response_id", status=404)
    return json_response({"id": rid, "object": "response", "deleted": True})
