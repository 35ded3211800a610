"""Batch APIs of the fake: OpenAI Files + Batch and Anthropic Message Batches.

Every batched request is answered by the fake's own synchronous endpoint (the same
handler object, called in-process), so it gets the same default reply, usage, auth,
per-model switches and queued faults: a scripted ``{"kind": "status", "status": 500}``
makes exactly that item fail.  Items are processed, in input order, when the batch ends.

OpenAI (Bearer auth, errors ``{"error": {...}}``)::

    POST /v1/files                 multipart ``file`` (JSONL) + ``purpose`` -> file object
    GET  /v1/files/{id}            the file object
    GET  /v1/files/{id}/content    the file's bytes (a batch's output JSONL)
    POST /v1/batches               {"input_file_id", "endpoint", "completion_window",
                                   "metadata"?} -> batch object ("validating")
    GET  /v1/batches/{id}          the batch ("in_progress", then "completed")

    input line:   {"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}
    output line:  {"id": "batch_req_...", "custom_id", "response": {"status_code",
                  "request_id", "body"}, "error": null}

  Every item, failed or not, is a line of the output file (a failed one has the HTTP
  status and the error envelope as ``response``); ``error_file_id`` stays null.  Supported
  ``endpoint`` / ``url``: /v1/chat/completions, /v1/embeddings, /v1/responses.  An input
  file with a bad line (not JSON, no/duplicate ``custom_id``, method not POST, url not
  the batch's endpoint, body not an object) makes the batch ``failed`` with ``errors``.

Anthropic (x-api-key or Bearer + anthropic-version, errors ``{"type": "error", ...}``)::

    POST /v1/messages/batches               {"requests": [{"custom_id", "params"}]}
    GET  /v1/messages/batches/{id}          "in_progress", then "ended" + results_url
    GET  /v1/messages/batches/{id}/results  JSONL {"custom_id", "result": {"type":
                                            "succeeded", "message"} | {"type": "errored",
                                            "error": {"type": "error", "error": {...}}}}

Polling: ``state.batch_polls`` (default 1; ``fake.batch_polls``, ``POST /__batches
{"batch_polls": n}``) is how many ``GET`` of a batch it takes to see it finished: the
create response and the first n-1 GETs show it unfinished, the n-th GET (and every later
one) finished.  With 0 the create response is already finished.  The value is taken when
the batch is created.
Unknown ids answer 404 in the wire's error shape.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from .anthropic_wire import Messages
from .common import dumps
from .dialect import BODY, INVALID_JSON, RESPONSE_HEADERS, Endpoint, json_response
from .openai_wire import ChatCompletions, Embeddings, OpenAIEndpoint
from .responses_wire import Responses
from .state import ProviderState

DAY = 24 * 3600


@dataclass(slots=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass(slots=True)
class ItemResult:
    custom_id: str
    status: int
    body: Any
    request_id: str


@dataclass(slots=True)
class Batch:
    """One batch of either provider; ``items`` are ``(custom_id, request body)``."""

    id: str
    provider: str  # "openai" | "anthropic"
    items: list[tuple[str, Any]]
    polls_left: int
    created_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    results: list[ItemResult] = field(default_factory=list)
    # OpenAI only
    endpoint: str = ""
    input_file_id: str = ""
    completion_window: str = "24h"
    metadata: Any = None
    output_file_id: str | None = None
    errors: list[dict[str, Any]] | None = None  # validation errors: the batch failed
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def call_endpoint(endpoint: Endpoint, outer: web.Request, body: Any) -> tuple[int, Any, str]:
    """Answer ``body`` as ``endpoint`` would: (status, decoded JSON body, request id).

    The inner request carries the outer request's headers (auth, anthropic-version).
    Non-stream only (``stream`` is dropped); a fault that drops the connection
    (``reset``, ``stream_cut``) becomes a 500 in the wire's error shape.
    """
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    request = make_mocked_request("POST", outer.path, headers=dict(outer.headers))
    request[BODY] = body if isinstance(body, dict) else INVALID_JSON
    try:
        response = await endpoint.handle(request)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # really cancelled, not a dropped inner "connection"
        response = endpoint.error(
            500, error_type="server_error", message="fake: connection dropped"
        )
    request_id = request.get(RESPONSE_HEADERS, {}).get(endpoint.request_id_header, "")
    assert isinstance(response, web.Response), "batched requests never stream"
    text = response.text or ""
    try:
        decoded: Any = json.loads(text)
    except ValueError:  # a ``malformed`` fault: a 200 whose body is not JSON
        return (
            500,
            endpoint.error_body(500, "server_error", "fake: malformed", None, None),
            (request_id),
        )
    return response.status, decoded, request_id


async def _finish(batch: Batch, endpoint: Endpoint, request: web.Request) -> None:
    async with batch.lock:
        if batch.ended_at is not None:
            return
        for custom_id, body in batch.items:
            status, answer, request_id = await call_endpoint(endpoint, request, body)
            batch.results.append(ItemResult(custom_id, status, answer, request_id))
        batch.ended_at = time.time()


async def _advance(batch: Batch, endpoint: Endpoint, request: web.Request) -> None:
    """One GET of ``batch``: the ``batch_polls``-th one ends it."""
    if batch.ended_at is not None or batch.errors is not None:
        return
    if batch.polls_left > 0:
        batch.polls_left -= 1
    if batch.polls_left == 0:
        await _finish(batch, endpoint, request)


# --- OpenAI -----------------------------------------------------------------------------


class OpenAIBatches(OpenAIEndpoint):
    """``/v1/files`` and ``/v1/batches``; also the aiohttp handlers (``create_file`` ...)."""

    def __init__(self, state: ProviderState) -> None:
        super().__init__(state)
        self.endpoints: dict[str, Endpoint] = {
            "/v1/chat/completions": ChatCompletions(state),
            "/v1/embeddings": Embeddings(state),
            "/v1/responses": Responses(state),
        }

    # Endpoint's abstract hooks: unused, the handlers below do their own flow.
    def validate(self, body: Mapping[str, Any]) -> web.Response | None:
        return None

    def model_of(self, body: Mapping[str, Any]) -> str:
        return ""

    async def malformed(self, request: web.Request, body: Mapping[str, Any]) -> web.Response:
        raise NotImplementedError

    async def success(self, request: web.Request, body: Mapping[str, Any], fault: Any) -> Any:
        raise NotImplementedError

    def _begin(self, request: web.Request) -> web.Response | None:
        request_id = self.state.next_request_id()
        request.setdefault(RESPONSE_HEADERS, {})[self.request_id_header] = f"req_{request_id}"
        return self.check_auth(request)

    def _bad(self, message: str, param: str | None = None) -> web.Response:
        return self.error(400, error_type="invalid_request_error", message=message, param=param)

    def _not_found(self, message: str) -> web.Response:
        return self.error(404, error_type="invalid_request_error", message=message)

    # --- files ----------------------------------------------------------------------------
    async def create_file(self, request: web.Request) -> web.Response:
        if (denied := self._begin(request)) is not None:
            return denied
        fields = parse_multipart(request.headers.get("content-type", ""), await request.read())
        if fields is None:
            return self._bad("Expected a multipart/form-data body.")
        purpose = fields.get("purpose")
        upload = fields.get("file")
        if upload is None:
            return self._bad("Missing required parameter: 'file'.", "file")
        if purpose is None:
            return self._bad("Missing required parameter: 'purpose'.", "purpose")
        stored = StoredFile(
            id=self.state.next_batch_id("file-fake"),
            filename=upload[0] or "upload.jsonl",
            purpose=purpose[1].decode("utf-8", "replace"),
            content=upload[1],
        )
        self.state.files[stored.id] = stored
        return json_response(stored.to_json())

    async def get_file(self, request: web.Request) -> web.Response:
        if (denied := self._begin(request)) is not None:
            return denied
        stored = self.state.files.get(request.match_info["file_id"])
        if stored is None:
            return self._not_found(f"No such File object: {request.match_info['file_id']}")
        return json_response(stored.to_json())

    async def file_content(self, request: web.Request) -> web.Response:
        if (denied := self._begin(request)) is not None:
            return denied
        stored = self.state.files.get(request.match_info["file_id"])
        if stored is None:
            return self._not_found(f"No such File object: {request.match_info['file_id']}")
        return web.Response(body=stored.content, content_type="application/octet-stream")

    # --- batches --------------------------------------------------------------------------
    async def create_batch(self, request: web.Request) -> web.Response:
        if (denied := self._begin(request)) is not None:
            return denied
        body = request.get(BODY)
        if body is INVALID_JSON or not isinstance(body, dict):
            return self._bad(self.invalid_json_message)
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(name), str):
                return self.missing(name)
        if body["endpoint"] not in self.endpoints:
            return self._bad(
                f"Invalid value: '{body['endpoint']}'. Supported values are: "
                + ", ".join(f"'{e}'" for e in self.endpoints),
                "endpoint",
            )
        if body["completion_window"] != "24h":
            return self._bad(
                f"Invalid value: '{body['completion_window']}'. Supported values are: '24h'.",
                "completion_window",
            )
        stored = self.state.files.get(body["input_file_id"])
        if stored is None:
            return self._not_found(f"No such File object: {body['input_file_id']}")
        items, errors = _parse_input(stored.content, body["endpoint"])
        batch = Batch(
            id=self.state.next_batch_id("batch_fake"),
            provider="openai",
            items=items,
            polls_left=self.state.batch_polls,
            endpoint=body["endpoint"],
            input_file_id=stored.id,
            metadata=body.get("metadata"),
            errors=errors or None,
        )
        self.state.batches[batch.id] = batch
        if batch.polls_left == 0 and batch.errors is None:
            await _finish(batch, self.endpoints[batch.endpoint], request)
            self._write_output(batch)
        return json_response(self._render(batch, fresh=True))

    async def get_batch(self, request: web.Request) -> web.Response:
        if (denied := self._begin(request)) is not None:
            return denied
        batch = self.state.batches.get(request.match_info["batch_id"])
        if not isinstance(batch, Batch) or batch.provider != "openai":
            return self._not_found(f"No batch found with id '{request.match_info['batch_id']}'.")
        await _advance(batch, self.endpoints[batch.endpoint], request)
        self._write_output(batch)
        return json_response(self._render(batch))

    def _write_output(self, batch: Batch) -> None:
        if batch.ended_at is not None and batch.output_file_id is None:
            lines = []
            for n, result in enumerate(batch.results, start=1):
                response = {
                    "status_code": result.status,
                    "request_id": result.request_id,
                    "body": result.body,
                }
                lines.append(
                    {
                        "id": f"batch_req_{batch.id.removeprefix('batch_')}_{n:04d}",
                        "custom_id": result.custom_id,
                        "response": response,
                        "error": None,
                    }
                )
            output = StoredFile(
                id=self.state.next_batch_id("file-fake"),
                filename=f"{batch.id}_output.jsonl",
                purpose="batch_output",
                content="".join(dumps(line) + "\n" for line in lines).encode(),
            )
            self.state.files[output.id] = output
            batch.output_file_id = output.id

    def _render(self, batch: Batch, fresh: bool = False) -> dict[str, Any]:
        created = int(batch.created_at)
        ended = int(batch.ended_at) if batch.ended_at is not None else None
        failed = sum(1 for r in batch.results if not 200 <= r.status < 300)
        if batch.errors is not None:
            status = "failed"
        elif ended is not None:
            status = "completed"
        else:
            status = "validating" if fresh else "in_progress"
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": status,
            "output_file_id": batch.output_file_id,
            "error_file_id": None,
            "created_at": created,
            "in_progress_at": None if status in ("validating", "failed") else created,
            "expires_at": created + DAY,
            "finalizing_at": ended,
            "completed_at": ended,
            "failed_at": created if status == "failed" else None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {
                "total": len(batch.items),
                "completed": len(batch.results) - failed,
                "failed": failed,
            },
            "metadata": batch.metadata,
        }


def _parse_input(
    content: bytes, endpoint: str
) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
    items: list[tuple[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()

    def fail(line: int, code: str, message: str, param: str | None = None) -> None:
        errors.append({"code": code, "message": message, "param": param, "line": line})

    for number, raw in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            fail(number, "invalid_json_line", "This line is not parseable as valid JSON.")
            continue
        if not isinstance(entry, dict):
            fail(number, "invalid_json_line", "This line is not a JSON object.")
            continue
        custom_id = entry.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            fail(number, "missing_required_parameter", "Missing 'custom_id'.", "custom_id")
        elif custom_id in seen:
            fail(number, "duplicate_custom_id", "The custom_id is not unique.", "custom_id")
        elif entry.get("method") != "POST":
            fail(number, "invalid_method", "Only POST is supported.", "method")
        elif entry.get("url") != endpoint:
            fail(number, "mismatched_endpoint", f"The url must be the batch's {endpoint}.", "url")
        elif not isinstance(entry.get("body"), dict):
            fail(number, "missing_required_parameter", "Missing 'body'.", "body")
        else:
            seen.add(custom_id)
            items.append((custom_id, entry["body"]))
    if not items and not errors:
        fail(0, "empty_file", "The input file is empty.")
    return items, errors


def parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]] | None:
    """``{field name: (filename, bytes)}`` of a multipart/form-data body, or None."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        return None
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            out[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return out


# --- Anthropic --------------------------------------------------------------------------


class MessageBatches(Messages):
    """``/v1/messages/batches``: the aiohttp handlers are ``create`` / ``get`` / ``results``."""

    def __init__(self, state: ProviderState) -> None:
        super().__init__(state)
        self.messages = Messages(state)

    def _begin(self, request: web.Request) -> web.Response | None:
        request_id = self.state.next_request_id()
        request.setdefault(RESPONSE_HEADERS, {})[self.request_id_header] = f"req_{request_id}"
        return self.check_auth(request)

    def _bad(self, message: str) -> web.Response:
        return self.error(400, error_type="invalid_request_error", message=message)

    def _lookup(self, request: web.Request) -> Batch | web.Response:
        batch = self.state.batches.get(request.match_info["batch_id"])
        if not isinstance(batch, Batch) or batch.provider != "anthropic":
            return self.error(
                404,
                error_type="not_found_error",
                message=f"No message batch found with id '{request.match_info['batch_id']}'",
            )
        return batch

    async def create(self, request: web.Request) -> web.Response:
        if (denied := self._begin(request)) is not None:
            return denied
        body = request.get(BODY)
        if body is INVALID_JSON or not isinstance(body, dict):
            return self._bad(self.invalid_json_message)
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return self._bad("requests: Field required")
        items: list[tuple[str, Any]] = []
        for i, entry in enumerate(requests):
            if not isinstance(entry, dict) or not isinstance(entry.get("custom_id"), str):
                return self._bad(f"requests.{i}.custom_id: Field required")
            if not isinstance(entry.get("params"), dict):
                return self._bad(f"requests.{i}.params: Field required")
            if any(entry["custom_id"] == seen for seen, _ in items):
                return self._bad(
                    f"Duplicate custom_id '{entry['custom_id']}': custom_id must be unique "
                    "within a batch."
                )
            items.append((entry["custom_id"], entry["params"]))
        batch = Batch(
            id=self.state.next_batch_id("msgbatch_fake"),
            provider="anthropic",
            items=items,
            polls_left=self.state.batch_polls,
        )
        self.state.batches[batch.id] = batch
        if batch.polls_left == 0:
            await _finish(batch, self.messages, request)
        return json_response(self._render(batch, request))

    async def get(self, request: web.Request) -> web.Response:
        if (denied := self._begin(request)) is not None:
            return denied
        batch = self._lookup(request)
        if isinstance(batch, web.Response):
            return batch
        await _advance(batch, self.messages, request)
        return json_response(self._render(batch, request))

    async def results(self, request: web.Request) -> web.Response:
        if (denied := self._begin(request)) is not None:
            return denied
        batch = self._lookup(request)
        if isinstance(batch, web.Response):
            return batch
        if batch.ended_at is None:
            return self._bad(f"Message batch {batch.id} has not ended yet.")
        lines = []
        for result in batch.results:
            if 200 <= result.status < 300:
                outcome: dict[str, Any] = {"type": "succeeded", "message": result.body}
            else:
                outcome = {"type": "errored", "error": result.body}
            lines.append({"custom_id": result.custom_id, "result": outcome})
        text = "".join(dumps(line) + "\n" for line in lines)
        return web.Response(body=text.encode(), headers={"content-type": "application/binary"})

    def _render(self, batch: Batch, request: web.Request) -> dict[str, Any]:
        ended = batch.ended_at is not None
        errored = sum(1 for r in batch.results if not 200 <= r.status < 300)
        root = f"{request.scheme}://{request.host}"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": {
                "processing": 0 if ended else len(batch.items),
                "succeeded": len(batch.results) - errored,
                "errored": errored,
                "canceled": 0,
                "expired": 0,
            },
            "ended_at": _rfc3339(batch.ended_at) if batch.ended_at is not None else None,
            "created_at": _rfc3339(batch.created_at),
            "expires_at": _rfc3339(batch.created_at + DAY),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{root}/v1/messages/batches/{batch.id}/results" if ended else None,
        }


def _rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def add_batch_routes(app: web.Application, state: ProviderState) -> None:
    openai_batches = OpenAIBatches(state)
    app.router.add_post("/v1/files", openai_batches.create_file)
    app.router.add_get("/v1/files/{file_id}", openai_batches.get_file)
    app.router.add_get("/v1/files/{file_id}/content", openai_batches.file_content)
    app.router.add_post("/v1/batches", openai_batches.create_batch)
    app.router.add_get("/v1/batches/{batch_id}", openai_batches.get_batch)
    anthropic_batches = MessageBatches(state)
    app.router.add_post("/v1/messages/batches", anthropic_batches.create)
    app.router.add_get("/v1/messages/batches/{batch_id}", anthropic_batches.get)
    app.router.add_get("/v1/messages/batches/{batch_id}/results", anthropic_batches.results)
