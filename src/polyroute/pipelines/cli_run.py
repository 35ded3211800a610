"""``polyroute run`` and ``polyroute runs``: pipelines from the command line.

The pipeline file is either a polyroute config with a ``pipelines`` section,
or one pipeline on its own (``default_model``, ``steps: {name: {model,
prompt}}``), laid over the usual config.
"""

from __future__ import annotations

import asyncio
import json
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


def read_input(file: Path | None, text: str | None) -> Any:
    if text is not None:
        return text
    if file is None:
        return ""
    raw = file.read_text("utf-8")
    if file.suffix == ".json":
        return json.loads(raw)
    return raw


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
    content: Any,
    con: Console | None,
) -> PipelineRun:
    pipeline = FunctionPipeline.from_settings(router, name)
    names = pipeline.step_names
    done: dict[str, StepResult] = {}
    try:
        if con is None:
            return await pipeline.run(content)
        with Live(_table(names, done, None), console=con, refresh_per_second=8) as live:

            def progress(step: str, result: StepResult | None) -> None:
                if result is not None:
                    done[step] = result
                live.update(_table(names, done, None if result else step))

            run = await pipeline.run(content, on_step=progress)
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
    router, pipe = load_pipeline(file, config, name)
    content = read_input(input_file, text)
    run = asyncio.run(run_pipeline(router, pipe, content, None if as_json else con))
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
