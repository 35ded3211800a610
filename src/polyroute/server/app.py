"""The gateway application: routes, error handling, lifecycle.

Handlers take the raw ``Request`` and answer ``Response`` objects built with
orjson: FastAPI's per-request model validation and JSON encoding cost more
than the rest of the gateway together, and the OpenAI/Anthropic shapes are
relayed, not rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from polyroute._version import __version__
from polyroute.errors import PolyrouteError
from polyroute.server import admin_api, compare_api, openai_api, pipeline_api
from polyroute.server.errors import RequestError, error_response
from polyroute.server.gateway import Gateway
from polyroute.server.metrics import Metrics
from polyroute.server.status_page import render_status

log = logging.getLogger("polyroute.server")


def create_app(gateway: Gateway) -> FastAPI:
    metrics = Metrics()
    gateway.observers.append(metrics.observe)
    metrics.watch_cooldown(gateway.router.cooldown)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await gateway.aclose()

    app = FastAPI(
        title="polyroute gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # the default docs page loads its JavaScript from a CDN
        redoc_url=None,
        openapi_url=None,
    )
    app.state.gateway = gateway
    app.state.metrics = metrics

    async def on_request_error(request: Request, exc: Exception) -> Response:
        return error_response(exc)

    async def on_polyroute_error(request: Request, exc: Exception) -> Response:
        return error_response(exc)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        return error_response(exc)

    app.add_exception_handler(RequestError, on_request_error)
    app.add_exception_handler(PolyrouteError, on_polyroute_error)
    app.add_exception_handler(Exception, on_unexpected)

    post, get, put = ["POST"], ["GET"], ["PUT"]
    add = app.add_route
    add("/v1/chat/completions", openai_api.chat_completions, methods=post)
    add("/v1/images/generations", openai_api.images_generations, methods=post)
    add("/v1/models", openai_api.list_models, methods=get)
    from polyroute.server import anthropic_api

    add("/v1/messages", anthropic_api.messages, methods=post)
    add("/api/v1/compare", compare_api.compare, methods=post)
    add("/api/v1/pipeline", pipeline_api.run_pipeline, methods=post)
    add("/api/v1/pipeline/steps/{step_name}/execute", pipeline_api.execute_step, methods=post)
    add("/api/v1/runs", pipeline_api.list_runs, methods=get)
    add("/api/v1/runs/{run_id}", pipeline_api.get_run, methods=get)
    add("/api/v1/tasks", admin_api.list_tasks, methods=get)
    add("/api/v1/tasks/{task}", admin_api.put_task, methods=put)
    add("/api/v1/config/reload", admin_api.reload_config, methods=post)
    add("/api/v1/routes", admin_api.list_routes, methods=get)
    add("/api/v1/providers", admin_api.list_providers, methods=get)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        gw: Gateway = request.app.state.gateway
        body = f'{{"ready":true,"generation":{gw.generation}}}'.encode()
        return Response(body, media_type="application/json")

    async def metrics_endpoint(request: Request) -> Response:
        from polyroute.server.http import authorize

        authorize(request)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    async def index(request: Request) -> Response:
        return HTMLResponse(render_status(request.app.state.gateway))

    add("/healthz", healthz, methods=get)
    add("/readyz", readyz, methods=get)
    add("/metrics", metrics_endpoint, methods=get)
    add("/", index, methods=get)
    return app
