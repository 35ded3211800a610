"""Seed 003's song composition shape: sections generated at once, a stronger model combines.

The sections are independent, so they run concurrently and the wall time is
about the slowest section plus the combine, not the sum of all sections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyroute.patterns.result import PatternResult, PatternRun, Prompt
from polyroute.patterns.text import fill
from polyroute.types import Envelope

if TYPE_CHECKING:
    from polyroute.router import Router

COMBINE_PROMPT = (
    "Combine the {count} sections below, in order, into one coherent result. "
    "Keep what each section says; smooth the transitions.\n\n{sections}"
)


@dataclass(slots=True, kw_only=True)
class CombineResult(PatternResult):
    sections: list[str] = field(default_factory=list)  # each section's answer, in input order


def _numbered(sections: Sequence[str]) -> str:
    return "\n\n".join(f"## Section {i}\n{s}" for i, s in enumerate(sections, 1))


async def fan_out_then_combine(
    router: Router,
    sections: Sequence[Prompt],
    *,
    section_route: str = "tier:balanced",
    combine_route: str = "tier:advanced",
    combine_prompt: str = COMBINE_PROMPT,
    system: str | None = None,
    concurrency: int | None = None,
    product_type: str | None = None,
    **params: Any,
) -> CombineResult:
    """Generate every section on ``section_route`` concurrently, then combine
    them on ``combine_route``.

    ``combine_prompt`` is a template with ``{sections}`` (the answers, numbered,
    in input order) and ``{count}``.  ``concurrency`` caps the sections in
    flight (None: all at once).  ``system`` and ``params`` go to every call.
    When a section fails, the others still finish (and are recorded, with their
    cost) before ``PatternError`` is raised for the first failed section.
    """
    if isinstance(sections, str):
        raise TypeError("sections must be a sequence of prompts, not one string")
    if not sections:
        raise ValueError("give at least one section")
    if concurrency is not None and concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    result = CombineResult(pattern="fan_out_then_combine")
    run = PatternRun(router, result, product_type)
    run.check_routes(section_route, combine_route)
    gate = asyncio.Semaphore(concurrency or len(sections))

    async def one(i: int, prompt: Prompt) -> Envelope:
        async with gate:
            return await run.complete(f"section[{i}]", section_route, prompt, system, **params)

    # return_exceptions: one failed section must not leave its siblings running
    # unobserved (and unaccounted) after the pattern has given up.
    done = await asyncio.gather(
        *(one(i, p) for i, p in enumerate(sections)), return_exceptions=True
    )
    failure: BaseException | None = None
    for i, item in enumerate(done):
        if isinstance(item, Envelope):
            run.record(f"section[{i}]", section_route, item)
            result.sections.append(item.content or "")
        elif failure is None:
            failure = item
    if failure is not None:
        run.finish()
        raise failure  # a PatternError naming the section; its result holds the others

    request = fill(
        combine_prompt, {"sections": _numbered(result.sections), "count": str(len(sections))}
    )
    env = await run.call("combine", combine_route, request, system, **params)
    result.output = env.content or ""
    run.finish()
    return result
