"""Seed 003's pattern 3: an expert model analyses the input, a cheaper one generates.

``analyse_then_generate`` sends the input — text, or message content parts such as
``input_audio`` (a recording) or ``image_url`` — to the analysing route, whose
candidates must be able to take it (a model without the ``audio`` capability is
skipped for audio, like one without ``vision`` for images); the analysis, as text,
then goes to the generating route with the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polyroute.patterns.result import PatternResult, PatternRun
from polyroute.patterns.text import fill

if TYPE_CHECKING:
    from polyroute.router import Router

ANALYSE_PROMPT = "Analyse this input for the request below. Be specific and brief.\nRequest: {text}"
GENERATE_PROMPT = "Analysis of the input:\n{analysis}\n\nRequest: {text}"


@dataclass(slots=True, kw_only=True)
class AnalyseResult(PatternResult):
    analysis: str = ""  # the analysing route's answer


async def analyse_then_generate(
    router: Router,
    text: str,
    parts: Sequence[dict[str, Any]] = (),
    *,
    analyse_route: str = "tier:expert",
    generate_route: str = "tier:balanced",
    analyse_prompt: str | None = None,
    generate_prompt: str | None = None,
    system: str | None = None,
    product_type: str | None = None,
    **params: Any,
) -> AnalyseResult:
    """``parts``: OpenAI content parts analysed with ``text`` (e.g. ``{"type":
    "input_audio", "input_audio": {"data": <base64>, "format": "wav"}}``).
    Templates: ``analyse_prompt`` with ``{text}``; ``generate_prompt`` with
    ``{text}`` and ``{analysis}``.  ``system`` and ``params`` go to the generating call."""
    result = AnalyseResult(pattern="analyse_then_generate")
    run = PatternRun(router, result, product_type)
    run.check_routes(analyse_route, generate_route)
    question = fill(analyse_prompt or ANALYSE_PROMPT, {"text": text})
    content: Any = [{"type": "text", "text": question}, *parts] if parts else question
    env = await run.call("analyse", analyse_route, [{"role": "user", "content": content}])
    result.analysis = (env.content or "").strip()
    request = fill(generate_prompt or GENERATE_PROMPT, {"text": text, "analysis": result.analysis})
    gen = await run.call("generate", generate_route, request, system, **params)
    result.output = gen.content or ""
    run.finish()
    return result
