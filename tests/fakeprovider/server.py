"""The fake provider's aiohttp application, its control endpoints and its lifecycle.

Provider endpoints (real wire formats, see ``openai_wire`` / ``responses_wire`` /
``anthropic_wire``)::

    POST /v1/chat/completions      OpenAI chat completions (JSON or SSE)
    POST /v1/responses             OpenAI Responses API (JSON or SSE with ``event:`` lines)
    POST /v1/images/generations    OpenAI image generation
    POST /v1/embeddings            OpenAI embeddings
    POST /v1/messages              Anthropic Messages (JSON or SSE)
    POST /v1/messages/count_tokens Anthropic token counting: {"input_tokens": ceil(chars / 4)}
    GET  /img/<n>.png              the (1x1) images whose URLs /v1/images/generations returns

Batch endpoints (see ``batches``)::

    POST /v1/files                            OpenAI file upload (multipart, purpose "batch")
    GET  /v1/files/{id}                       the file object
    GET  /v1/files/{id}/content               the file's bytes (a batch's output JSONL)
    POST /v1/batches                          OpenAI batch: {"input_file_id", "endpoint", ...}
    GET  /v1/batches/{id}                     the batch (in_progress, then completed)
    POST /v1/messages/batches                 Anthropic batch: {"requests": [...]}
    GET  /v1/messages/batches/{id}            the batch (in_progress, then ended)
    GET  /v1/messages/batches/{id}/results    its JSONL results

Control endpoints (for a fake running in another process)::

    GET    /__requests             recorded requests: [{"path", "headers", "body"}, ...]
    DELETE /__requests             forget recorded requests
    POST   /__script               {"model": "gpt-4o", "faults": [{"kind": ...}, ...]}
    GET    /__script               faults still queued, per model
    DELETE /__script               drop all queued faults
    POST   /__down                 {"model": "gpt-4o", "status": 503}: the model answers that
                                   status to every request (status defaults to 503)
    POST   /__up                   {"model": "gpt-4o"}: undo /__down
    POST   /__prefill              {"model": "claude-x", "reject": true}: 400 to requests that
                                   end with an assistant message (``"reject": false`` undoes)
    GET    /__switches             {"down": {model: status}, "reject_prefill": [model, ...]}
    POST   /__reset                drop faults, requests, switches, files and batches;
                                   latency back to 0, batch_polls back to 1
    GET|POST /__config             {"latency": seconds}
    GET|POST /__batches            {"batch_polls": n}: the n-th GET of a new batch is the
                                   first to see it finished (default 1; 0: finished when
                                   created)
    GET    /__health               {"ok": true}
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .anthropic_wire import CountTokens, Messages
from .batches import add_batch_routes
from .common import TINY_PNG
from .dialect import BODY, INVALID_JSON, RESPONSE_HEADERS, json_response
from .faults import FaultError, FaultLike, parse_faults
from .openai_wire import ChatCompletions, Embeddings, ImageGenerations
from .responses_wire import Responses
from .state import ProviderState, RecordedRequest

STATE: web.AppKey[ProviderState] = web.AppKey("fake_state", ProviderState)
CONTROL_PREFIX = "/__"
IMAGE_PREFIX = "/img/"
SHUTDOWN_TIMEOUT = 0.5  # seconds closing waits for in-flight (e.g. hung) requests

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def record_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Decode and record provider requests; count them in flight while handled."""
    if request.path.startswith((CONTROL_PREFIX, IMAGE_PREFIX)):
        return await handler(request)
    state = request.app[STATE]
    raw = await request.read()
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
            request[BODY] = body
        except ValueError:
            body = raw.decode("utf-8", "replace")
            request[BODY] = INVALID_JSON
    headers = {k.lower(): v for k, v in request.headers.items()}
    state.record(RecordedRequest(request.path, headers, body))
    state.enter()
    try:
        return await handler(request)
    finally:
        state.leave()


async def apply_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add request-id and fault headers just before any response's headers go out."""
    response.headers.update(request.get(RESPONSE_HEADERS, {}))


# --- control endpoints ----------------------------------------------------------------------


async def get_requests(request: web.Request) -> web.Response:
    return json_response([r.to_json() for r in request.app[STATE].requests])


async def delete_requests(request: web.Request) -> web.Response:
    request.app[STATE].clear_requests()
    return web.Response(status=204)


async def post_script(request: web.Request) -> web.Response:
    try:
        payload = await request.json()
        model = payload["model"]
        if not isinstance(model, str):
            raise FaultError("'model' must be a string")
        faults = parse_faults(payload.get("faults"))
    except (ValueError, KeyError, TypeError) as exc:
        return json_response({"error": f"bad script: {exc}"}, status=400)
    queued = request.app[STATE].script(model, faults)
    return json_response({"model": model, "queued": queued})


async def get_script(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].faults.pending())


async def delete_script(request: web.Request) -> web.Response:
    request.app[STATE].faults.clear()
    return web.Response(status=204)


async def _model_payload(request: web.Request) -> tuple[dict[str, Any], str]:
    payload = await request.json()
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), str):
        raise ValueError("'model' must be a string")
    return payload, payload["model"]


async def post_down(request: web.Request) -> web.Response:
    try:
        payload, model = await _model_payload(request)
        request.app[STATE].set_down(model, payload.get("status", 503))
    except ValueError as exc:
        return json_response({"error": f"bad switch: {exc}"}, status=400)
    return json_response(request.app[STATE].switches())


async def post_up(request: web.Request) -> web.Response:
    try:
        _, model = await _model_payload(request)
    except ValueError as exc:
        return json_response({"error": f"bad switch: {exc}"}, status=400)
    request.app[STATE].set_up(model)
    return json_response(request.app[STATE].switches())


async def post_prefill(request: web.Request) -> web.Response:
    try:
        payload, model = await _model_payload(request)
        reject = payload.get("reject", True)
        if not isinstance(reject, bool):
            raise ValueError("'reject' must be a boolean")
    except ValueError as exc:
        return json_response({"error": f"bad switch: {exc}"}, status=400)
    state = request.app[STATE]
    if reject:
        state.reject_prefill(model)
    else:
        state.allow_prefill(model)
    return json_response(state.switches())


async def get_switches(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].switches())


async def post_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.Response(status=204)


async def config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        try:
            payload = await request.json()
            if "latency" in payload:
                state.latency = float(payload["latency"])
        except (ValueError, TypeError) as exc:
            return json_response({"error": f"bad config: {exc}"}, status=400)
    return json_response({"latency": state.latency})


async def batch_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        try:
            payload = await request.json()
            if "batch_polls" in payload:
                state.batch_polls = _polls(payload["batch_polls"])
        except (ValueError, TypeError) as exc:
            return json_response({"error": f"bad batch config: {exc}"}, status=400)
    return json_response({"batch_polls": state.batch_polls})


def _polls(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"'batch_polls' must be a non-negative integer, not {value!r}")
    return value


async def health(request: web.Request) -> web.Response:
    return json_response({"ok": True})


async def image(request: web.Request) -> web.Response:
    return web.Response(body=TINY_PNG, content_type="image/png")


def build_app(state: ProviderState) -> web.Application:
    app = web.Application(middlewares=[record_requests], client_max_size=64 * 1024**2)
    app[STATE] = state
    app.on_response_prepare.append(apply_response_headers)
    app.router.add_post("/v1/chat/completions", ChatCompletions(state).handle)
    app.router.add_post("/v1/responses", Responses(state).handle)
    app.router.add_post("/v1/images/generations", ImageGenerations(state).handle)
    app.router.add_post("/v1/embeddings", Embeddings(state).handle)
    app.router.add_post("/v1/messages", Messages(state).handle)
    app.router.add_post("/v1/messages/count_tokens", CountTokens(state).handle)
    app.router.add_get(IMAGE_PREFIX + "{name}", image)
    add_batch_routes(app, state)
    app.router.add_get("/__requests", get_requests)
    app.router.add_delete("/__requests", delete_requests)
    app.router.add_post("/__script", post_script)
    app.router.add_get("/__script", get_script)
    app.router.add_delete("/__script", delete_script)
    app.router.add_post("/__down", post_down)
    app.router.add_post("/__up", post_up)
    app.router.add_post("/__prefill", post_prefill)
    app.router.add_get("/__switches", get_switches)
    app.router.add_post("/__reset", post_reset)
    app.router.add_route("GET", "/__config", config)
    app.router.add_route("POST", "/__config", config)
    app.router.add_route("GET", "/__batches", batch_config)
    app.router.add_route("POST", "/__batches", batch_config)
    app.router.add_get("/__health", health)
    return app


# --- public API -----------------------------------------------------------------------------


class FakeProviderAPI:
    """Scripting and inspection, shared by :class:`FakeProvider` and its thread wrapper."""

    state: ProviderState

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, e.g. for the Anthropic SDK or raw HTTP."""
        if not self.state.base_url:
            raise RuntimeError("the fake provider is not running")
        return self.state.base_url

    @property
    def openai_base_url(self) -> str:
        """``<base_url>/v1``, as the OpenAI SDK expects."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The root URL: the Anthropic SDK appends ``/v1/messages`` itself."""
        return self.base_url

    def script(self, model: str, faults: Iterable[FaultLike]) -> int:
        """Queue faults (dicts or :class:`Fault`) for requests naming ``model`` ("*": any).

        Returns how many faults are now queued for ``model``.  Raises ``FaultError``.
        """
        return self.state.script(model, faults)

    def reset(self) -> None:
        """Drop queued faults, recorded requests and per-model switches; latency back to 0."""
        self.state.reset()

    def set_down(self, model: str, status: int = 503) -> None:
        """Answer every request naming ``model`` ("*": any) with HTTP ``status`` (400-599).

        The error is in the wire's own shape (as a ``status`` fault would give); it holds
        until :meth:`set_up` or :meth:`reset`.  Requests are still recorded, and queued
        faults are not consumed while the model is down.  Raises ``ValueError``.
        """
        self.state.set_down(model, status)

    def set_up(self, model: str) -> None:
        """Undo :meth:`set_down` for ``model``."""
        self.state.set_up(model)

    def reject_prefill(self, model: str) -> None:
        """Make ``model`` ("*": any) reject assistant prefill until :meth:`allow_prefill`.

        A request whose last message has role ``assistant`` gets a 400
        ``invalid_request_error`` (OpenAI ``code: "prefill_not_supported"``,
        ``param: "messages"``); other requests are served normally.  :meth:`reset` clears it.
        """
        self.state.reject_prefill(model)

    def allow_prefill(self, model: str) -> None:
        """Undo :meth:`reject_prefill` for ``model``."""
        self.state.allow_prefill(model)

    def switches(self) -> dict[str, Any]:
        """``{"down": {model: status}, "reject_prefill": [model, ...]}``."""
        return self.state.switches()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of recorded requests: ``(path, headers, body)`` tuples, oldest first."""
        return self.state.requests

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.state.requests if r.path == path]

    @property
    def latency(self) -> float:
        """Seconds the fake waits before every provider answer."""
        return self.state.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.state.latency = seconds

    @property
    def batch_polls(self) -> int:
        """The n-th GET of a new batch is the first to see it finished (default 1).

        The create response and the GETs before show it unfinished; 0: the create response
        is already finished.  Taken when a batch is created; :meth:`reset` sets it back to 1.
        """
        return self.state.batch_polls

    @batch_polls.setter
    def batch_polls(self, polls: int) -> None:
        self.state.batch_polls = _polls(polls)

    @property
    def in_flight(self) -> int:
        """Provider requests being handled right now (hung requests until cancelled)."""
        return self.state.in_flight

    def pending_faults(self) -> dict[str, list[dict[str, Any]]]:
        return self.state.faults.pending()


class FakeProvider(FakeProviderAPI):
    """A fake provider served by aiohttp in the current event loop."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, state: ProviderState | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.state = state or ProviderState()
        self._runner: web.AppRunner | None = None

    async def start(self) -> Self:
        runner = web.AppRunner(
            build_app(self.state),
            handler_cancellation=True,  # a client disconnect cancels hung handlers
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            access_log=None,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        self.state.base_url = f"http://{host}:{self.port}"
        return self

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.state.base_url = ""

    async def __aenter__(self) -> Self:
        return await self.start() if self._runner is None else self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def start_fake_provider(host: str = "127.0.0.1", port: int = 0) -> FakeProvider:
    """Start a fake provider in the running loop (``port=0``: a free port)."""
    return await FakeProvider(host, port).start()
