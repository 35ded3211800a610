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
from typing import TYPE_CHECKING

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from polyroute._version import __version__
from polyroute.errors import PolyrouteError
from polyroute.server import admin_api, compare_api, openai_api, pipeline_api, usage_api
from polyroute.server.errors import RequestError, error_response
from polyroute.server.gateway import Gateway, settle_heap
from polyroute.server.metrics import Metrics

if TYPE_CHECKING:
    from polyroute.usage.monitor import UsageMonitor
    from polyroute.usage.store import UsageStore

log = logging.getLogger("polyroute.server")


def _usage(gateway: Gateway, metrics: Metrics) -> tuple[UsageStore | None, UsageMonitor | None]:
    """The usage store as a call observer, and the monitor behind its gauges and alert log."""
    cfg = gateway.router.config.usage
    if not cfg.enabled:
        return None, None
    from polyroute.usage import gauges
    from polyroute.usage.monitor import UsageMonitor
    from polyroute.usage.store import UsageStore
    from polyroute.usage.window import parse_duration

    def tier_of(model: str) -> str | None:  # runs on the writer thread
        info = gateway.router.catalog.get(model)
        return info.tier if info else None

    store = UsageStore(
        cfg.store,
        batch_size=cfg.batch_size,
        flush_interval=cfg.flush_interval,
        max_pending=cfg.max_pending,
        spool=cfg.spool,
        spool_dir=cfg.spool_dir,
        tier_of=tier_of,
    )
    gateway.observers.append(store.record)
    monitor = UsageMonitor(
        store,
        lambda: gateway.router.config.usage.alerts,  # follows config reloads
        window=parse_duration(cfg.window) or 3600.0,
        interval=cfg.alert_interval,
    )
    gauges.register(monitor, metrics.registry)
    return store, monitor


async def _start_usage(gateway: Gateway, store: UsageStore, monitor: UsageMonitor) -> None:
    from polyroute.usage.errors import UsageStoreError

    store.start()
    try:
        await store.flush()  # replays what a crashed or cut-off previous run left in the spool
        by_key, total = await store.month_to_date_by_key()
    except (UsageStoreError, OSError, SQLAlchemyError) as exc:
        log.error("usage store unavailable at start (records are kept and retried): %s", exc)
    else:  # month-to-date spend survives a restart (written once for all replicas)
        ledger = gateway.router.ledger
        await ledger.seed_async(total)
        for key, spent in by_key.items():
            await ledger.seed_async(spent, scope=key)
    monitor.start()


def create_app(gateway: Gateway) -> FastAPI:
    metrics = Metrics()
    gateway.observers.append(metrics.observe)
    metrics.watch_cooldown(gateway.router.cooldown)
    usage_store, usage_monitor = _usage(gateway, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if usage_store is not None and usage_monitor is not None:
            await _start_usage(gateway, usage_store, usage_monitor)
        gateway.start_sync()  # config changes reach every replica on the same Redis
        settle_heap()
        yield
        if usage_monitor is not None:
            await usage_monitor.stop()
        await gateway.aclose()
        run_store = getattr(app.state, "run_store", None)  # made on first pipeline call
        if run_store is not None:
            run_store.close()
        response_store = getattr(app.state, "response_store", None)  # made on first use
        if response_store is not None:
            response_store.close()
        if usage_store is not None:
            # Last: uvicorn has finished every request, so every call has emitted.
            await usage_store.close()

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
    app.state.usage_store = usage_store
    app.state.usage_monitor = usage_monitor

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
    from starlette.exceptions import HTTPException

    from polyroute.server import unmatched

    app.add_exception_handler(HTTPException, unmatched.on_http_exception)  # 404/405 shapes

    post, get, put = ["POST"], ["GET"], ["PUT"]
    add = app.add_route
    add("/v1/chat/completions", openai_api.chat_completions, methods=post)
    add("/v1/images/generations", openai_api.images_generations, methods=post)
    add("/v1/embeddings", openai_api.embeddings, methods=post)
    from polyroute.server import responses_api

    add("/v1/responses", responses_api.create_response, methods=post)
    add("/v1/responses/{response_id}", responses_api.get_response, methods=get)
    add("/v1/responses/{response_id}", responses_api.delete_response, methods=["DELETE"])
    add("/v1/models", openai_api.list_models, methods=get)
    from polyroute.server import anthropic_tokens, completions_api, models_api

    add("/v1/models/{model_id:path}", models_api.retrieve_model, methods=get)
    add("/v1/completions", completions_api.completions, methods=post)
    from polyroute.server import anthropic_api

    add("/v1/messages", anthropic_api.messages, methods=post)
    add("/v1/messages/count_tokens", anthropic_tokens.count_tokens, methods=post)
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
    add("/api/v1/usage", usage_api.usage, methods=get)
    add("/api/v1/alerts", usage_api.alerts, methods=get)
    add("/api/v1/calls", usage_api.recent_calls, methods=get)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        gw: Gateway = request.app.state.gateway
        ready = "false" if gw.draining else "true"
        body = (
            f'{{"ready":{ready},"generation":{gw.generation},'
            f'"config_version":"{gw.config_version}"}}'
        ).encode()
        status = 503 if gw.draining else 200  # draining: a load balancer stops sending
        return Response(body, status_code=status, media_type="application/json")

    async def metrics_endpoint(request: Request) -> Response:
        from polyroute.server.http import authorize

        authorize(request)
        if usage_monitor is not None:
            try:  # the usage gauges read a snapshot; refresh it off the event loop first
                await usage_monitor.refresh(max_age=5.0)
            except Exception as exc:  # a down usage database must not fail the scrape
                log.warning("usage gauges not refreshed: %s", exc)
        metrics.watch_cooldown(gateway.router.cooldown)  # a reload may have replaced it
        metrics.config_version(gateway.config_version)
        # One process: its own registry.  ``serve --workers N``: every worker's counters
        # and histograms added up from PROMETHEUS_MULTIPROC_DIR, whichever answers.
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    add("/healthz", healthz, methods=get)
    add("/readyz", readyz, methods=get)
    add("/metrics", metrics_endpoint, methods=get)
    from polyroute.server.dashboard import mount

    mount(app)  # "/", "/static/{path}" and the dashboard's JSON endpoints
    from polyroute.server import request_id

    request_id.install(app)  # x-request-id on every answer, outermost
    return app
