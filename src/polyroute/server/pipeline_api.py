"""Seed 000's pipeline endpoints.

``POST /api/v1/pipeline``: ``{"content", "pipeline"?, "pipeline_config"?, "context"?}``.
With ``pipeline`` naming a pipeline of the config file, its steps (prompt
templates) run with ``pipeline_config`` laid over the file's settings.
Without it, the steps are the keys of ``pipeline_config.step_configs`` and
each runs the generic step prompt below.  A body with no step configs at all
(only ``content``, seed 000's backward compatibility) runs seed 000's seven
steps (``DEFAULT_STEPS``), every one on the default model: the body's
``default_model``, else ``FunctionPipeline``'s (``gpt-5.1``).

``POST /api/v1/pipeline/steps/{step_name}/execute``: one step, with earlier
outputs passed in ``context.outputs`` when a template needs them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from polyroute.errors import ConfigError
from polyroute.pipelines import (
    FunctionPipeline,
    PipelineConfig,
    PipelineError,
    PromptStep,
)
from polyroute.pipelines.store import RunStore
from polyroute.router import Router
from polyroute.server.errors import RequestError
from polyroute.server.http import authorize, gateway_of, json_response, read_json

# Seed 000's content pipeline, in its order: what a body naming no steps runs.
DEFAULT_STEPS = (
    "seo_keywords",
    "marketing_brief",
    "article_generation",
    "seo_optimization",
    "suggested_links",
    "content_formatting",
    "design_kit",
)
GENERIC_PROMPT = (
    "You are the '{step}' step of a content pipeline.\nInput:\n{{content}}\n\nContext:\n{{context}}"
)


def _content(body: dict[str, Any]) -> Any:
    if "content" not in body:
        raise RequestError("'content' is required", param="content")
    content = body["content"]
    return content if isinstance(content, str) else orjson.dumps(content).decode()


def _context(body: dict[str, Any]) -> dict[str, Any]:
    ctx = body.get("context") or {}
    if not isinstance(ctx, dict):
        raise RequestError("'context' must be an object", param="context")
    return ctx


def _pipeline(router: Router, body: dict[str, Any], only_step: str | None) -> FunctionPipeline:
    name = body.get("pipeline")
    overlay = body.get("pipeline_config")
    if overlay is not None and not isinstance(overlay, dict):
        raise RequestError("'pipeline_config' must be an object", param="pipeline_config")
    try:
        if isinstance(name, str) and name:
            if name not in router.config.pipelines:
                known = ", ".join(router.config.pipelines) or "none configured"
                raise RequestError(
                    f"unknown pipeline {name!r}; known: {known}", status=404, param="pipeline"
                )
            return FunctionPipeline.from_settings(router, name, pipeline_config=overlay)
        config = PipelineConfig.parse(overlay or {}, router)
        names = list(config.step_configs) or list(DEFAULT_STEPS)
        if only_step and only_step not in names:
            names.append(only_step)
        steps = [PromptStep(n, GENERIC_PROMPT.format(step=n)) for n in names]
        return FunctionPipeline(config, router=router, steps=steps, name="api")
    except ConfigError as exc:
        raise RequestError(
            str(exc), param=f"pipeline_config.{exc.path}" if exc.path else "pipeline_config"
        ) from None


async def run_pipeline(request: Request) -> Response:
    authorize(request)
    body = await read_json(request)
    content, context = _content(body), _context(body)
    pipeline = _pipeline(gateway_of(request).router, body, None)
    try:
        run = await pipeline.run(content, context)
    except PipelineError as exc:
        raise RequestError(str(exc), status=getattr(exc, "status_code", 400)) from None
    await run_store(request).asave(run)
    return json_response(run.to_dict(), status=200 if run.status == "ok" else 502)


def run_store(request: Request) -> RunStore:
    """One store per app, made on first use (the database URL is the usage store's)."""
    store: RunStore | None = getattr(request.app.state, "run_store", None)
    if store is None:
        store = RunStore(gateway_of(request).router.config.usage.store)
        request.app.state.run_store = store
    return store


async def list_runs(request: Request) -> Response:
    authorize(request)
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        raise RequestError("limit must be an integer", param="limit") from None
    rows = await asyncio.to_thread(
        run_store(request).list, max(1, min(limit, 1000)), request.query_params.get("pipeline")
    )
    return json_response({"runs": rows})


async def get_run(request: Request) -> Response:
    authorize(request)
    body = await asyncio.to_thread(run_store(request).get, request.path_params["run_id"])
    if body is None:
        raise RequestError("no such run", status=404, param="run_id")
    return json_response(body)


async def execute_step(request: Request) -> Response:
    authorize(request)
    step_name = request.path_params["step_name"]
    body = await read_json(request)
    content, context = _content(body), _context(body)
    pipeline = _pipeline(gateway_of(request).router, body, step_name)
    outputs = context.get("outputs") if isinstance(context.get("outputs"), dict) else None
    try:
        result = await pipeline.run_step(step_name, content, context, outputs=outputs)
    except PipelineError as exc:
        raise RequestError(str(exc), status=getattr(exc, "status_code", 400)) from None
    return json_response(result.to_dict(), status=200 if result.ok else 502)
