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

from polyroute.errors import PolyrouteError
from polyroute.server.errors import RequestError, error_body, status_for
from polyroute.server.http import authorize, envelope_headers, gateway_of, json_response, read_json
from polyroute.server.openai_api import cache_choice, product_type_of
from polyroute.server.responses_convert import (
    ResponseEvents,
    ResponsesRequestError,
    assistant_message,
    new_id,
    output_items,
    parse_request,
    response_object,
)
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
    try:
        call = parse_request(body, history)
    except ResponsesRequestError as exc:
        raise RequestError(str(exc), param=exc.param) from None
    router = gateway_of(request).router
    kw: dict[str, Any] = {
        "product_type": product_type_of(request, body),
        "labels": labels,
        **call.params,
    }
    response_id = new_id("resp")
    if not call.stream:
        env = await router.complete(call.model, call.messages, cache=cache_choice(request), **kw)
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

    return StreamingResponse(
        sse(), media_type="text/event-stream", headers=envelope_headers(env, streaming=True)
    )


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
