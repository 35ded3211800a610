"""Seed 000's marketing pipeline, seven steps, each on its own model; prints what each cost.

    python examples/marketing/run.py [input.json]

The steps, their models and prompt templates live in ``polyroute.yaml`` next to
this file (``pipelines.marketing``); ``FunctionPipeline.from_settings`` turns
each configured step into a prompt step.  Runs on the simulator: no key needed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from polyroute import Router
from polyroute.pipelines import FunctionPipeline, PipelineRun

HERE = Path(__file__).resolve().parent


def money(usd: float) -> str:
    return f"${usd:.6f}"


def table(run: PipelineRun) -> str:
    rows = [f"{'step':<20} {'model':<26} {'tokens':>7} {'cost':>11} {'latency':>9}"]
    for s in run.steps:
        rows.append(
            f"{s.step_name:<20} {s.model or '-':<26} {s.usage.total_tokens:>7} "
            f"{money(s.cost):>11} {s.latency:>8.3f}s"
        )
    rows.append(
        f"{'total':<20} {'':<26} {run.total_tokens:>7} "
        f"{money(run.total_cost):>11} {run.total_latency:>8.3f}s"
    )
    return "\n".join(rows)


async def run_pipeline(data: dict[str, object]) -> PipelineRun:
    async with Router.from_config(HERE / "polyroute.yaml") as router:
        pipeline = FunctionPipeline.from_settings(router, "marketing")
        context = data.get("context")
        return await pipeline.run(data["content"], context if isinstance(context, dict) else {})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else HERE / "input.json"
    data = json.loads(source.read_text("utf-8"))
    run = asyncio.run(run_pipeline(data))
    print(f"pipeline marketing: {run.status}, {len(run.steps)} steps")
    print(table(run))
    if run.status != "ok":
        print(f"error: {run.error}", file=sys.stderr)
        return 1
    design_kit = str(run.outputs.get("design_kit", ""))
    print(f"\ndesign_kit output: {design_kit[:120]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
