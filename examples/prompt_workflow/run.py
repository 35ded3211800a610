"""Seed 002's prompt workflow: one step compares three models side by side, one falls back.

    python examples/prompt_workflow/run.py [input.json]

Steps: ``draft`` (one model) → ``compare`` (three models in parallel, each with
its own parameters; every answer kept under ``model_outputs[provider][model]``)
→ ``verdict`` (a function step that puts the three answers side by side for a
judge, on a fallback list whose first model always fails).  Runs on the
simulator, no key needed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from polyroute import Router
from polyroute.pipelines import (
    FunctionPipeline,
    ModelSpec,
    PipelineConfig,
    PipelineRun,
    PipelineStepConfig,
    PromptStep,
    StepContext,
    step,
)

HERE = Path(__file__).resolve().parent

# The workflow builder's step config, as its API sends it.
CONFIG = PipelineConfig(
    default_model="simulator/gpt-4o-mini",
    step_configs={
        "compare": PipelineStepConfig(
            step_name="compare",
            routing="parallel",
            models=[
                ModelSpec(provider="simulator", model="gpt-4o", parameters={"temperature": 0.7}),
                ModelSpec(
                    provider="simulator",
                    model="claude-sonnet-4-20250514",
                    parameters={"temperature": 0.5, "max_output_tokens": 400},
                ),
                ModelSpec(
                    provider="simulator", model="gemini-2.0-flash", parameters={"top_p": 0.9}
                ),
            ],
        ),
        "verdict": PipelineStepConfig(
            step_name="verdict",
            routing="fallback",
            models=[ModelSpec(model="flaky/gpt-4o"), ModelSpec(model="simulator/gpt-4o-mini")],
        ),
    },
)


@step("verdict")
async def verdict(ctx: StepContext) -> str:
    cards = ctx.results["compare"].model_outputs
    side_by_side = "\n\n".join(
        f"[{provider}/{model}]\n{card['content']}"
        for provider, models in cards.items()
        for model, card in models.items()
        if card["error"] is None
    )
    return await ctx.llm(f"Which answer is clearest, and why? One sentence.\n\n{side_by_side}")


def money(usd: float) -> str:
    return f"${usd:.6f}"


def report(run: PipelineRun) -> None:
    compare = next(s for s in run.steps if s.step_name == "compare")
    print("model cards (compare step, model_outputs[provider][model]):")
    for provider, models in compare.model_outputs.items():
        for model, card in models.items():
            tokens = card["usage"]["total_tokens"]
            status = card["error"] or (card["content"] or "")[:48]
            print(
                f"  {provider + '/' + model:<36} {tokens:>5} tok {money(card['cost']):>10} "
                f"{card['latency']:.3f}s retries={card['retries']}  {status}"
            )
    fallback = next(s for s in run.steps if s.step_name == "verdict")
    tried = " -> ".join(
        f"{a['model']} ({a['trigger'] or a['outcome']}, {a['retries']} retries)"
        for a in fallback.attempts
    )
    print(f"fallback (verdict step): {tried}")
    print(f"\n{'step':<10} {'model':<26} {'tokens':>7} {'cost':>11} {'latency':>9}")
    for s in run.steps:
        print(
            f"{s.step_name:<10} {s.model or '-':<26} {s.usage.total_tokens:>7} "
            f"{money(s.cost):>11} {s.latency:>8.3f}s"
        )
    print(f"{'total':<10} {'':<26} {run.total_tokens:>7} {money(run.total_cost):>11}")
    usage = ", ".join(f"{p}: {u.total_tokens} tokens" for p, u in run.usage_by_provider.items())
    print(f"usage by provider: {usage}")


async def run_workflow(data: dict[str, Any]) -> PipelineRun:
    async with Router.from_config(HERE / "polyroute.yaml") as router:
        pipeline = FunctionPipeline(
            CONFIG,
            router=router,
            name="prompt_workflow",
            steps=[
                PromptStep("draft", "Draft an answer ({context[tone]}): {content}"),
                PromptStep("compare", "Improve this draft:\n{outputs[draft]}\n\nTask: {content}"),
                verdict,
            ],
        )
        return await pipeline.run(data["content"], data.get("context") or {})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else HERE / "input.json"
    run = asyncio.run(run_workflow(json.loads(source.read_text("utf-8"))))
    print(f"workflow: {run.status}")
    if run.status != "ok":
        print(f"error: {run.error}", file=sys.stderr)
        return 1
    report(run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
