"""Seed 001's landing-page builder: five agents, each served by its role's pool.

    python examples/landing/run.py [--product landing|card|ecommerce|booking|dashboard] [input.json]

classifier (what product is this?) → writer (copy) → expander (sections) →
validator (PASS/FAIL; one revision by the writer on FAIL) → style_refiner
(full_mimic: sends the reference images, so it needs a vision model).  Each
agent names only its role; ``polyroute.yaml`` decides the model per product
type.  Runs on the simulator, no key needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from polyroute import Router
from polyroute.agents import (
    BaseAgent,
    ClassifierAgent,
    ExpanderAgent,
    StyleRefinerAgent,
    ValidatorAgent,
    WriterAgent,
)

HERE = Path(__file__).resolve().parent
DESCRIPTION = "Build a landing page with seed 001's five agent roles."
PRODUCTS = ["landing", "card", "ecommerce", "booking", "dashboard"]
HEADER = f"{'role':<14} {'product':<10} {'model (provider/model)':<50} {'tokens':>6} {'cost':>10}"


def usage_line(router: Router, agent: BaseAgent) -> str:
    env = agent.last
    if env is None:
        return f"{agent.role.value:<14} (not called)"
    name = router.catalog.lookup(env.model).name
    tokens = sum(e.usage.total_tokens for e in agent.calls)
    return (
        f"{agent.role.value:<14} {agent.product_type or '-':<10} "
        f"{env.model + ' (' + env.provider + '/' + name + ')':<50} {tokens:>6} "
        f"{'$' + format(agent.total_cost, '.6f'):>10}  calls={len(agent.calls)} "
        f"fallbacks={env.fallbacks}"
    )


async def build(router: Router, data: dict[str, Any], product: str | None) -> list[BaseAgent]:
    brief = str(data["brief"])
    classifier = ClassifierAgent(router=router)
    chosen = await classifier.classify(brief, PRODUCTS, default="landing")
    product = product or chosen or "landing"
    print(f"product type: {product} (classifier said {chosen!r})")

    writer = WriterAgent(product, router, system="You write conversion-focused web copy.")
    expander = ExpanderAgent(product, router)
    validator = ValidatorAgent(product, router)
    refiner = StyleRefinerAgent(
        product, router, mode="full_mimic", images=list(data.get("reference_images") or [])
    )

    copy = await writer.call_llm(f"Write the hero headline, subline and CTA for: {brief}")
    page = await expander.call_llm(
        f"Expand into full page sections (benefits, pricing, FAQ, footer):\n{copy}"
    )
    verdict = await validator.check(page, requirements=brief)
    print(
        f"validator: {verdict.verdict.value}" + (f" ({verdict.message})" if verdict.message else "")
    )
    if verdict.hard_fail:
        page = await writer.call_llm(f"Revise the page to fix: {verdict.message}\n\n{page}")
    styled = await refiner.refine(page, style=str(data.get("style") or ""))
    print(f"style refiner mode: {refiner.mode} (asked for {refiner.requested_mode})")
    for warning in refiner.warnings:
        print(f"warning: {warning}")
    print(f"page: {styled[:100]}")
    return [classifier, writer, expander, validator, refiner]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("input", nargs="?", default=str(HERE / "input.json"))
    parser.add_argument("--product", choices=PRODUCTS, help="skip the classifier's choice")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.input).read_text("utf-8"))

    async def run() -> None:
        async with Router.from_config(HERE / "polyroute.yaml") as router:
            agents = await build(router, data, args.product)
            print("\n" + HEADER)
            for agent in agents:
                print(usage_line(router, agent))
            total = sum(a.total_cost for a in agents)
            print(f"{'total':<14} {'':<10} {'':<50} {'':>6} {'$' + format(total, '.6f'):>10}")

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
