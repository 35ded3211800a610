"""The ``polyroute`` command line.  Each command is thin: options in, a shared
function called, a table out.  Rich and the router load only when a command runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from polyroute._version import __version__
from polyroute.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from polyroute.router import Router

app = typer.Typer(
    help="polyroute: route every LLM call to the right model; retry, fall back, record cost.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config file (default: $POLYROUTE_CONFIG, then ./polyroute.yaml, "
        "then built-in defaults).",
        envvar="POLYROUTE_CONFIG",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
T = TypeVar("T")


def _console() -> Console:
    from rich.console import Console

    return Console()


@contextmanager
def _config_errors() -> Iterator[None]:
    """A configuration error ends the command with its message and exit status 2."""
    try:
        yield
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def _router(config: Path | None) -> Router:
    from polyroute.router import Router

    with _config_errors():
        return Router.from_config(config)


def _run(router: Router, work: Coroutine[Any, Any, T]) -> T:
    """Run one of ``router``'s coroutines to completion, then close the router."""

    async def go() -> T:
        async with router:
            return await work

    return asyncio.run(go())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"polyroute {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """polyroute command line."""


@app.command()
def models(
    config: ConfigOpt = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider's models.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The model catalog: provider, prices per 1M tokens, context window, capabilities."""
    from rich.table import Table

    router = _router(config)
    infos = [m for m in router.catalog if provider in (None, m.provider)]
    if as_json:
        typer.echo(json.dumps([m.to_dict() for m in infos], indent=2))
        return
    t = Table(title=f"model catalog ({len(infos)} models)")
    for col in ("id", "provider", "in $/1M", "out $/1M", "context", "max out", "tier", "caps"):
        t.add_column(col, no_wrap=col == "id")
    for m in sorted(infos, key=lambda m: (m.provider, m.id)):
        price_in = f"{m.price_input:g}" if m.price_per_image is None else "-"
        price_out = (
            f"{m.price_output:g}" if m.price_per_image is None else f"{m.price_per_image:g}/img"
        )
        t.add_row(
            m.id,
            m.provider,
            price_in,
            price_out,
            f"{m.context_window or '-'}",
            f"{m.max_output_tokens or '-'}",
            m.tier or "-",
            ",".join(sorted(m.capabilities)),
        )
    _console().print(t)


@app.command()
def routes(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every route with its resolved pool, strategy and parameters."""
    from rich.table import Table

    from polyroute.config.validate import route_names

    router = _router(config)
    rows: list[dict[str, Any]] = []
    for name in route_names(router.config):
        r = router.resolve(name)
        rows.append(
            {
                "route": name,
                "strategy": r.strategy,
                "models": [c.info.id for c in r.candidates],
                "params": dict(r.params),
                "timeout": r.timeout,
                "max_fallbacks": r.max_fallbacks,
                "warnings": list(r.warnings),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    t = Table(title="routes")
    for col in ("route", "strategy", "pool (first is primary)", "params", "timeout"):
        t.add_column(col)
    for row in rows:
        params = " ".join(f"{k}={v}" for k, v in row["params"].items())
        t.add_row(
            row["route"], row["strategy"], "\n".join(row["models"]), params, f"{row['timeout']:g}s"
        )
    _console().print(t)


@app.command()
def doctor(
    config: ConfigOpt = None,
    ping: Annotated[
        bool, typer.Option("--ping", help="Send one tiny request to each provider in use.")
    ] = False,
) -> None:
    """Validate the config and show each provider's credential status."""
    from polyroute.doctor import run_doctor

    raise typer.Exit(run_doctor(config, ping, _console()))


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", envvar="POLYROUTE_PORT")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    log_level: Annotated[
        str,
        typer.Option(
            help="Log level (info shows every routing decision).", envvar="POLYROUTE_LOG_LEVEL"
        ),
    ] = "warning",
    log_format: Annotated[
        str,
        typer.Option(help="text, or json (one object per line).", envvar="POLYROUTE_LOG_FORMAT"),
    ] = "text",
) -> None:
    """Run the gateway: OpenAI- and Anthropic-compatible HTTP API and the dashboard."""
    from polyroute.logs import setup
    from polyroute.server.serve import serve as run

    setup(log_level, log_format)
    with _config_errors():
        run(config, host, port, workers, log_level)


@app.command()
def compare(
    prompt: Annotated[str, typer.Argument(help="The prompt to send to every model.")],
    models_: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="A model or route (repeat). Default: the pool of tier:balanced.",
        ),
    ] = None,
    route: Annotated[
        str | None, typer.Option(help="Fan out over this route's pool instead.")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one prompt on several models in parallel and compare the answers."""
    from rich.markup import escape
    from rich.table import Table

    router = _router(config)
    target: str | list[str] = models_ if models_ else (route or "tier:balanced")
    results = _run(router, router.fan_out(target, prompt))
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2, default=str))
        return
    t = Table(title=f"compare: {prompt[:60]}")
    for col in ("model", "provider", "answer", "tokens", "latency", "cost $", "retries"):
        t.add_column(col)
    for r in results:
        e = r.envelope
        if e is None:
            t.add_row(r.model, "-", f"[red]error: {escape(str(r.error))}[/red]", "-", "-", "-", "-")
        else:
            t.add_row(
                e.model,
                e.provider + (" (simulated)" if e.simulated else ""),
                escape((e.content or "")[:200]),
                str(e.usage.total_tokens),
                f"{e.latency * 1000:.0f} ms",
                f"{e.cost:.6f}",
                str(e.retries),
            )
    _console().print(t)


@app.command()
def run(
    pipeline_file: Annotated[
        Path, typer.Argument(help="Pipeline YAML (or a config with pipelines).")
    ],
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help='Input file: text, or .json (a value, or {"content", "context"?, '
            '"pipeline_config"?} as POST /api/v1/pipeline takes).',
        ),
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="Input text instead of a file.")
    ] = None,
    pipeline: Annotated[str | None, typer.Option(help="Which pipeline, if several.")] = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not record the run.")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a pipeline with a live per-step display and a final table."""
    from polyroute.pipelines.cli_run import run_command

    with _config_errors():
        code = run_command(
            pipeline_file, input_file, text, config, pipeline, as_json, not no_store, _console()
        )
    raise typer.Exit(code)


@app.command()
def runs(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline.")] = None,
    run_id: Annotated[str | None, typer.Option("--id", help="Show one run in full.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recorded pipeline runs with their totals."""
    from polyroute.pipelines.cli_run import runs_command

    raise typer.Exit(runs_command(config, limit, pipeline, run_id, as_json, _console()))


@app.command()
def batch(
    file: Annotated[Path, typer.Argument(help="JSON lines: {prompt|messages, route?, params...}")],
    route: Annotated[str, typer.Option("--route", "-r", help="Route for lines without one.")] = (
        "default"
    ),
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 8,
    out: Annotated[Path | None, typer.Option(help="Write results as JSON lines here.")] = None,
    provider_batch: Annotated[
        bool,
        typer.Option(
            "--provider-batch",
            help="Send them as one provider batch (OpenAI Batch / Anthropic Message Batches: "
            "half price, answered within hours) to the route's first model.",
        ),
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between batch status polls.")] = 30.0,
    config: ConfigOpt = None,
) -> None:
    """Run many requests within the rate limits, with a progress bar."""
    from rich.progress import Progress

    try:
        lines = [ln for ln in file.read_text("utf-8").splitlines() if ln.strip()]
        requests = [json.loads(ln) for ln in lines]
    except (OSError, json.JSONDecodeError) as exc:
        typer.echo(f"cannot read {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    for req in requests:
        req.setdefault("route", route)
    router = _router(config)
    if provider_batch:
        results = _run(router, router.provider_batch(route, requests, poll_interval=poll))
    else:
        with Progress(transient=True) as bar:
            task = bar.add_task("requests", total=len(requests))
            results = _run(
                router,
                router.batch(
                    requests,
                    concurrency=concurrency,
                    on_progress=lambda done, total: bar.update(task, completed=done),
                ),
            )
    rows = [
        r.to_dict()
        if not isinstance(r, Exception)
        else {"error": str(r), "error_type": type(r).__name__}
        for r in results
    ]
    failed = sum(isinstance(r, Exception) for r in results)
    cost = sum(r.cost for r in results if not isinstance(r, Exception))
    if out is not None:
        out.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    else:
        for r in rows:
            typer.echo(json.dumps(r))
    typer.echo(f"{len(results) - failed} ok, {failed} failed, cost ${cost:.6f}", err=True)
    if failed:
        raise typer.Exit(1)


@app.command()
def ask(
    prompt: Annotated[str, typer.Argument(help="The prompt.")],
    route: Annotated[
        str, typer.Option("--route", "-r", help="Route or model (tier:fast, gpt-4o, ...).")
    ] = "default",
    product_type: Annotated[str | None, typer.Option(help="Product type for role routes.")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send one prompt through a route and show the answer with its envelope."""
    from polyroute.errors import PolyrouteError

    router = _router(config)
    try:
        env = _run(router, router.complete(route, prompt, product_type=product_type))
    except PolyrouteError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(env.to_dict(), indent=2))
        return
    from rich.markup import escape

    con = _console()
    con.print(escape(env.content or ""))
    con.print(
        f"[dim]{env.model} via {env.provider}{' (simulated)' if env.simulated else ''} · "
        f"{env.usage.total_tokens} tokens · ${env.cost:.6f} · {env.latency * 1000:.0f} ms · "
        f"attempts: {escape(', '.join(a.describe() for a in env.attempts))}[/dim]"
    )


@app.command()
def usage(
    config: ConfigOpt = None,
    since: Annotated[
        str, typer.Option(help="Window start: 30m, 1h, 24h, 7d, or an ISO date/time (UTC).")
    ] = "24h",
    until: Annotated[str | None, typer.Option(help="Window end (default: now).")] = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="Group by model|step|tier|route|key (also provider, pipeline, role, task, "
            "product_type, status, error_kind, labels.NAME); repeat or comma-separate.",
        ),
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="Usage store URL (default: the config's usage.store).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Calls, tokens, cost, latency p50/p95/p99, cache hit and fallback rates, alerts."""
    from polyroute.config.load import load_settings
    from polyroute.usage.errors import UsageStoreError
    from polyroute.usage.report import render_usage, usage_report

    with _config_errors():  # only the settings: no router, sessions or cache to open
        cfg = load_settings(config).config.usage
    url = store or cfg.store
    groups = [g.strip() for item in (by or ["model"]) for g in item.split(",") if g.strip()]
    try:
        if as_json:
            data = usage_report(url, since, groups, until=until, thresholds=cfg.alerts)
            typer.echo(json.dumps(data, indent=2))
        else:
            render_usage(url, since, groups, _console(), until=until, thresholds=cfg.alerts)
    except (ValueError, UsageStoreError, ConfigError) as exc:  # bad --since/--by, bad URL
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


if __name__ == "__main__":
    app()
