"""``polyroute run`` and ``polyroute runs``: pipelines from the command line.

The pipeline file is either a polyroute config with a ``pipelines`` section,
or one pipeline on its own (``default_model``, ``steps: {name: {model,
prompt}}``), laid over the usual config.

The input (``--input``) is text, a JSON value (the content), or seed 000's
request shape ``{"content": ..., "context": {...}, "pipeline_config"?: {...}}``
— the body of ``POST /api/v1/pipeline``, as ``examples/marketing/input.json``
has it: templates then see ``{content}`` and ``{context[KEY]}``, and a
``pipeline_config`` is laid over the file's settings.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from polyroute.config.load import load_settings
from polyroute.errors import ConfigError
from polyroute.pipelines.pipeline import FunctionPipeline
from polyroute.pipelines.results import PipelineRun, StepResult
from polyroute.pipelines.store import RunStore
from polyroute.router import Router


def load_pipeline(file: Path, config: Path | None, name: str | None) -> tuple[Router, str]:
    try:
        data = yaml.safe_load(file.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read pipeline file {file}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a mapping")
    if "pipelines" in data:
        settings = load_settings(file)
    else:
        own = data.pop("name", None) or file.stem
        settings = load_settings(config, overrides={"pipelines": {own: data}})
        name = name or own
    pipelines = list(settings.config.pipelines)
    if name is None:
        if len(pipelines) != 1:
            raise ConfigError(
                f"{file} defines {len(pipelines)} pipelines ({', '.join(pipelines)})"
                "; choose one with --pipeline",
                path="--pipeline",
            )
        name = pipelines[0]
    if name not in settings.config.pipelines:
        raise ConfigError(
            f"no pipeline {name!r} in {file}; it has: {', '.join(pipelines)}", path="--pipeline"
        )
    return Router(settings), name


_BODY_KEYS = frozenset({"content", "context", "pipeline_config"})


@dataclass(slots=True)
class RunInput:
    content: Any
    context: dict[str, Any] = field(default_factory=dict)
    pipeline_config: Mapping[str, Any] | None = None


def read_input(file: Path | None, text: str | None) -> RunInput:
    if text is not None:
        return RunInput(text)
    if file is None:
        return RunInput("")
    try:
        raw = file.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read input file {file}: {exc}", path="--input") from None
    if file.suffix != ".json":
        return RunInput(raw)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file}: not valid JSON: {exc}", path="--input") from None
    return input_of(data, str(file))


def input_of(data: Any, where: str = "input") -> RunInput:
    """Seed 000's ``{content, context, pipeline_config}`` split into its parts; any
    other JSON value is the content itself."""
    if not (isinstance(data, dict) and "content" in data and set(data) <= _BODY_KEYS):
        return RunInput(data)
    context = data.get("context") or {}
    if not isinstance(context, dict):
        raise ConfigError(f"{where}: 'context' must be an object", path="--input")
    config = data.get("pipeline_config")
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"{where}: 'pipeline_config' must be an object", path="--input")
    content = data["content"]
    # As the gateway does: structured content reaches templates as JSON text.
    if not isinstance(content, str):
        content = json.dumps(content, ensure_ascii=False)
    return RunInput(content, context, config)


def _table(names: list[str], done: dict[str, StepResult], running: str | None) -> Table:
    t = Table(title="pipeline")
    for col in ("step", "model", "tokens", "cost $", "latency", "status"):
        t.add_column(col)
    for n in names:
        r = done.get(n)
        if r is None:
            t.add_row(n, "", "", "", "", "[yellow]running…[/yellow]" if n == running else "")
            continue
        status = "[green]ok[/green]" if r.ok else f"[red]{escape(r.error or 'error')}[/red]"
        t.add_row(
            n,
            escape(r.model or "-"),
            str(r.usage.total_tokens),
            f"{r.cost:.6f}",
            f"{r.latency * 1000:.0f} ms",
            status,
        )
    return t


async def run_pipeline(
    router: Router,
    name: str,
    given: RunInput | Any,
    con: Console | None,
) -> PipelineRun:
    data = given if isinstance(given, RunInput) else RunInput(given)
    content, context = data.content, data.context
    try:
        pipeline = FunctionPipeline.from_settings(
            router, name, pipeline_config=data.pipeline_config
        )
    except BaseException:
        await router.aclose()
        raise
    names = pipeline.step_names
    done: dict[str, StepResult] = {}
    try:
        if con is None:
            return await pipeline.run(content, context)
        with Live(_table(names, done, None), console=con, refresh_per_second=8) as live:

            def progress(step: str, result: StepResult | None) -> None:
                if result is not None:
                    done[step] = result
                live.update(_table(names, done, None if result else step))

            run = await pipeline.run(content, context, on_step=progress)
        return run
    finally:
        await router.aclose()


def run_command(
    file: Path,
    input_file: Path | None,
    text: str | None,
    config: Path | None,
    name: str | None,
    as_json: bool,
    store: bool,
    con: Console,
) -> int:
    given = read_input(input_file, text)
    router, pipe = load_pipeline(file, config, name)
    run = asyncio.run(run_pipeline(router, pipe, given, None if as_json else con))
    if store:
        RunStore(router.config.usage.store).save(run)
    if as_json:
        print(json.dumps(run.to_dict(), indent=2))
    else:
        con.print()
        con.print(
            f"run {run.run_id}: {run.status} · {len(run.steps)} steps · "
            f"{run.total_tokens} tokens · ${run.total_cost:.6f} · "
            f"{run.total_latency * 1000:.0f} ms"
        )
        if run.error:
            con.print(f"[red]{escape(run.error)}[/red]")
    return 0 if run.status == "ok" else 1


def runs_command(
    config: Path | None,
    limit: int,
    pipeline: str | None,
    run_id: str | None,
    as_json: bool,
    con: Console,
) -> int:
    settings = load_settings(config)
    store = RunStore(settings.config.usage.store)
    if run_id:
        body = store.get(run_id)
        if body is None:
            con.print(f"[red]no run {escape(run_id)}[/red]")
            return 1
        print(json.dumps(body, indent=2))
        return 0
    rows = store.list(limit, pipeline)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    t = Table(title=f"pipeline runs ({len(rows)})")
    for col in ("run", "pipeline", "started", "status", "steps", "tokens", "cost $", "latency"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["run_id"][:12],
            r["pipeline"],
            r["started_at"][:19],
            r["status"],
            str(r["steps"]),
            str(r["total_tokens"]),
            f"{r['total_cost']:.6f}",
            f"{r['total_latency'] * 1000:.0f} ms",
        )
    con.print(t)
    return 0
