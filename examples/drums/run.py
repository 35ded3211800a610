"""Seed 003's workflow patterns on its four tiers: song composition and iterative refinement.

    python examples/drums/run.py [input.json]

Pattern 2 (song composition): the fast tier classifies the request, the
advanced tier plans, the balanced tier writes every section at once, the
advanced tier combines them.  Pattern 4 (iterative refinement): the balanced
tier drafts a pattern, the fast tier checks it (PASS/FAIL), the balanced tier
fixes it, at most three rounds.  Then a cached analysis: the second identical
request is answered from the ``pattern_analysis`` cache namespace for $0.

Tiers, cache namespaces and budget are in ``polyroute.yaml``; runs on the
simulator, no key needed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from polyroute import Router
from polyroute.patterns import (
    PatternResult,
    classify_then_route,
    fan_out_then_combine,
    refine_until_valid,
)

HERE = Path(__file__).resolve().parent
# Label -> the route that answers it; the fast tier picks the label.
INTENTS = {"song": "tier:advanced", "groove": "tier:balanced", "fill": "tier:fast"}
PLAN_SYSTEM = "You plan drum songs: list each section with its bars, feel and dynamics."


def money(usd: float) -> str:
    return f"${usd:.6f}"


def report(title: str, result: PatternResult) -> None:
    print(f"\n== {title}")
    print(f"{'stage':<12} {'route':<14} {'model':<38} {'tokens':>6} {'cost':>10} {'latency':>8}")
    for c in result.calls:
        e = c.envelope
        print(
            f"{c.stage:<12} {c.route:<14} {e.model:<38} {e.usage.total_tokens:>6} "
            f"{money(e.cost):>10} {e.latency:>7.3f}s"
        )
    print(
        f"{'total':<12} {'':<14} {'':<38} {result.total_tokens:>6} "
        f"{money(result.total_cost):>10} {result.total_latency:>7.3f}s wall"
    )


async def compose(router: Router, request: str, sections: list[str]) -> float:
    """Pattern 2; returns its cost."""
    plan = await classify_then_route(router, request, INTENTS, default="song", system=PLAN_SYSTEM)
    how = "named by the classifier" if plan.matched else "default"
    print(f"\nclassified as {plan.label!r} ({how}); answered on {plan.route}")
    report("pattern 2a: classify (fast) -> plan (advanced)", plan)

    prompts = [
        f"Write the {name} of this song as 4 bars of 16 steps (kick, snare, hi-hat).\n"
        f"Plan:\n{plan.output}"
        for name in sections
    ]
    song = await fan_out_then_combine(
        router, prompts, section_route="tier:balanced", combine_route="tier:advanced"
    )
    report(f"pattern 2b: {len(sections)} sections in parallel (balanced) -> combine", song)
    print(f"{song.model_time:.3f}s of model time in {song.total_latency:.3f}s of wall time")
    return plan.total_cost + song.total_cost


async def refine(router: Router, request: str) -> float:
    """Pattern 4; returns its cost."""
    fixed = await refine_until_valid(router, request, check_route="tier:fast", max_rounds=3)
    report("pattern 4: draft (balanced) -> check (fast) -> fix (balanced), max 3 rounds", fixed)
    verdicts = ", ".join(
        f"round {h.round}: {'PASS' if h.passed else 'FAIL'}" for h in fixed.history
    )
    print(f"converged: {fixed.converged} after {fixed.rounds} round(s) ({verdicts})")
    return fixed.total_cost


async def cached_analysis(router: Router, pattern: str) -> float:
    cost = 0.0
    print("\n== cached analysis (route pattern-analysis, namespace pattern_analysis)")
    for attempt in (1, 2):
        env = await router.complete("pattern-analysis", f"Describe the feel of:\n{pattern}")
        cost += env.cost
        print(f"analysis #{attempt}: {env.model} cost {money(env.cost)} cache_hit={env.cache_hit}")
    return cost


async def run(data: dict[str, Any]) -> None:
    async with Router.from_config(HERE / "polyroute.yaml") as router:
        total = await compose(router, data["song_request"], list(data["sections"]))
        total += await refine(router, data["pattern_request"])
        total += await cached_analysis(router, "x . . . x . . . x . . . x . . .")
    print(f"\ntotal cost: {money(total)} (seed 003 estimates $0.03-0.05 per song on real models)")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else HERE / "input.json"
    asyncio.run(run(json.loads(source.read_text("utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
