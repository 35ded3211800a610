"""Seed 003's "group multiple requests into a single API call": the providers' batch APIs.

``run_provider_batch`` sends many chat requests to one model as one batch —
OpenAI's Batch API (a JSONL file, then ``/batches``) or Anthropic's Message
Batches — polls until the provider has answered them all (on the router's
clock), and returns one envelope (or error) per request, in order, priced at
the provider's batch discount (``batch_discount`` in the presets: half price
for both) and recorded like any call, labelled with the batch id.  Other
providers have no batch API: their requests run as ``Router.batch`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from polyroute import errors as E
from polyroute.providers.anthropic import ERROR_TYPE_STATUS, messages_url
from polyroute.providers.anthropic import _headers as anthropic_headers
from polyroute.providers.anthropic_convert import to_chat_completion, to_messages_body
from polyroute.providers.base import ChatRequest, ChatResponse, Endpoint
from polyroute.providers.classify import endpoint_error, raise_for_status
from polyroute.providers.http import client_timeout, transport_errors
from polyroute.providers.openai import _headers as openai_headers
from polyroute.providers.openai import build_chat_body, parse_chat_completion
from polyroute.routing.contexts import merge_params
from polyroute.types import CallRecord, Envelope, Message

if TYPE_CHECKING:
    import aiohttp

    from polyroute.router import Router

Result = ChatResponse | E.ProviderError
DONE_OPENAI = ("completed", "failed", "expired", "cancelled")
HTTP_TIMEOUT = 60.0  # per HTTP call of the batch protocol (the batch itself takes longer)


async def run_provider_batch(
    router: Router,
    route: str,
    requests: Sequence[Mapping[str, Any]],
    *,
    poll_interval: float = 10.0,
    max_wait: float = 24 * 3600.0,
) -> list[Envelope | Exception]:
    """``requests``: ``{"messages": [...] or "prompt": "...", **params}`` each."""
    r = router.resolve(route)
    candidate = r.candidates[0]  # a batch goes to one model: the route's first
    info = candidate.info
    client = router.registry.client(info.provider)
    endpoint = client.endpoint
    chats = [
        ChatRequest(
            info.name, _messages(req), merge_params(r, candidate, _params(req)), None, info.id
        )
        for req in requests
    ]
    session = router.sessions.get()
    started = router.clock.time()
    if endpoint.wire == "openai":
        batch_id, results = await _openai(session, endpoint, chats, router, poll_interval, max_wait)
    elif endpoint.wire == "anthropic":
        batch_id, results = await _anthropic(
            session, endpoint, chats, router, poll_interval, max_wait
        )
    else:  # no batch API: one call each, within the rate limits
        return await router.batch([{**req, "route": route} for req in requests])
    discount = client.spec.batch_discount
    out: list[Envelope | Exception] = []
    for res in results:
        labels = {"batch": batch_id, **r.labels}
        if isinstance(res, E.ProviderError):
            router.emit(CallRecord.from_error("chat", r.name, res, started, 0.0, labels))
            out.append(res)
            continue
        env = Envelope(
            content=res.content,
            model=info.id,
            provider=info.provider,
            route=r.name,
            usage=res.usage,
            cost=round(info.cost(res.usage) * discount, 10),
            request_id=res.request_id,
            finish_reason=res.finish_reason,
            tool_calls=res.tool_calls,
            raw=res.raw,
        )
        env.warnings.append(f"served in {info.provider} batch {batch_id} at {discount:g}x price")
        router.emit(CallRecord.from_envelope("chat", env, started, labels))
        out.append(env)
    return out


def _messages(req: Mapping[str, Any]) -> list[Message]:
    if req.get("messages"):
        return list(req["messages"])
    return [{"role": "user", "content": str(req.get("prompt") or "")}]


def _params(req: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in req.items() if k not in ("messages", "prompt", "route", "model")}


async def _wait(router: Router, poll_interval: float, max_wait: float, waited: float) -> float:
    if waited >= max_wait:
        raise E.ProviderTimeoutError(f"batch not finished within {max_wait:.0f}s")
    await router.clock.sleep(poll_interval)
    return waited + poll_interval


async def _json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    endpoint: Endpoint,
    model: str,
    headers: Mapping[str, str],
    **kw: Any,
) -> tuple[Any, bytes]:
    with transport_errors(endpoint.provider, model, HTTP_TIMEOUT):
        async with session.request(
            method, url, headers=dict(headers), timeout=client_timeout(HTTP_TIMEOUT), **kw
        ) as resp:
            await raise_for_status(resp, endpoint, model)
            raw = await resp.read()
    try:
        return orjson.loads(raw), raw
    except orjson.JSONDecodeError:
        return None, raw


# -- OpenAI: a JSONL file, /batches, poll, the output file ----------------------------------


async def _openai(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    chats: list[ChatRequest],
    router: Router,
    poll_interval: float,
    max_wait: float,
) -> tuple[str, list[Result]]:
    import aiohttp

    base, model = endpoint.base_url.rstrip("/"), chats[0].model
    lines = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": build_chat_body(c),
        }
        for i, c in enumerate(chats)
    ]
    form = aiohttp.FormData()
    form.add_field("purpose", "batch")
    jsonl = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    form.add_field("file", jsonl, filename="batch.jsonl", content_type="application/jsonl")
    headers = {k: v for k, v in openai_headers(endpoint).items() if k.lower() != "content-type"}
    file, _ = await _json(session, "POST", base + "/files", endpoint, model, headers, data=form)
    body = {
        "input_file_id": file["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    jh = openai_headers(endpoint)
    batch, _ = await _json(
        session, "POST", base + "/batches", endpoint, model, jh, data=orjson.dumps(body)
    )
    waited = 0.0
    while batch.get("status") not in DONE_OPENAI:
        waited = await _wait(router, poll_interval, max_wait, waited)
        batch, _ = await _json(session, "GET", f"{base}/batches/{batch['id']}", endpoint, model, jh)
    results: dict[str, Result] = {}
    for key in ("output_file_id", "error_file_id"):
        if batch.get(key):
            url = f"{base}/files/{batch[key]}/content"
            _, raw = await _json(session, "GET", url, endpoint, model, jh)
            for line in raw.splitlines():
                if line.strip():
                    row = orjson.loads(line)
                    results[row.get("custom_id", "")] = _openai_result(row, endpoint, model)
    missing = E.ServerError(
        f"batch {batch['id']} ended {batch.get('status')} without this request",
        provider=endpoint.provider,
        model=model,
    )
    return str(batch["id"]), [results.get(f"req-{i}", missing) for i in range(len(chats))]


def _openai_result(row: dict[str, Any], endpoint: Endpoint, model: str) -> Result:
    resp = row.get("response") or {}
    status = int(resp.get("status_code") or 500)
    body = resp.get("body")
    if status >= 400 or not isinstance(body, dict):
        return endpoint_error(endpoint, model, status, orjson.dumps(body or row.get("error")), {})
    return parse_chat_completion(body, endpoint, model, resp.get("request_id"))


# -- Anthropic: /messages/batches, poll, the results JSONL ---------------------------------


async def _anthropic(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    chats: list[ChatRequest],
    router: Router,
    poll_interval: float,
    max_wait: float,
) -> tuple[str, list[Result]]:
    url, model = messages_url(endpoint) + "/batches", chats[0].model
    body = {
        "requests": [
            {"custom_id": f"req-{i}", "params": to_messages_body(c, False)}
            for i, c in enumerate(chats)
        ]
    }
    headers = anthropic_headers(endpoint, "application/json")
    batch, _ = await _json(session, "POST", url, endpoint, model, headers, data=orjson.dumps(body))
    waited = 0.0
    while batch.get("processing_status") != "ended":
        waited = await _wait(router, poll_interval, max_wait, waited)
        batch, _ = await _json(session, "GET", f"{url}/{batch['id']}", endpoint, model, headers)
    _, raw = await _json(session, "GET", str(batch["results_url"]), endpoint, model, headers)
    results: dict[str, Result] = {}
    for line in raw.splitlines():
        if line.strip():
            row = orjson.loads(line)
            results[row.get("custom_id", "")] = _anthropic_result(row, endpoint, model)
    missing = E.ServerError(
        f"batch {batch['id']} ended without this request", provider=endpoint.provider, model=model
    )
    return str(batch["id"]), [results.get(f"req-{i}", missing) for i in range(len(chats))]


def _anthropic_result(row: dict[str, Any], endpoint: Endpoint, model: str) -> Result:
    result = row.get("result") or {}
    if result.get("type") == "succeeded" and isinstance(result.get("message"), dict):
        return parse_chat_completion(
            to_chat_completion(result["message"], model), endpoint, model, None
        )
    error = result.get("error") or {"type": "error", "error": {"message": str(result.get("type"))}}
    inner = error.get("error")
    kind = inner.get("type") if isinstance(inner, dict) else None
    status = ERROR_TYPE_STATUS.get(str(kind), 500)
    return endpoint_error(endpoint, model, status, orjson.dumps(error), {})
