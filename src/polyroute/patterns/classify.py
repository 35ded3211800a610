"""Seed 003's cascade classification: a cheap model decides, the right model answers.

``classify_then_route``: the fast tier picks one of the caller's labels and the
label's route answers, so simple requests never reach an expensive model.
``single_shot`` (seed 003's pattern 1): the fast tier says what kind of
request it is, the balanced tier generates with that in hand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polyroute.patterns.result import PatternResult, PatternRun
from polyroute.patterns.text import fill, parse_label

if TYPE_CHECKING:
    from polyroute.router import Router

log = logging.getLogger("polyroute.patterns")

# The request goes last: models weigh the end of a prompt most, and the label
# list stays in front of it where it cannot be mistaken for part of the request.
CLASSIFY_PROMPT = (
    "Classify the request below into exactly one of these labels: {labels}.\n"
    "Answer with the label only.\n"
    "Request: {text}"
)
SINGLE_SHOT_CLASSIFY_PROMPT = (
    "In at most five words, name the kind of request below (intent and style).\nRequest: {text}"
)
SINGLE_SHOT_PROMPT = "Request type: {category}\n\n{text}"


@dataclass(slots=True, kw_only=True)
class ClassifyResult(PatternResult):
    label: str = ""  # the label whose route answered
    matched: bool = False  # False: the classifier named no label and ``default`` was used
    route: str = ""  # the route that answered

    @property
    def classifier_answer(self) -> str:
        return self.outputs.get("classify", "")


@dataclass(slots=True, kw_only=True)
class SingleShotResult(PatternResult):
    category: str = ""  # the fast tier's description of the request


async def classify_then_route(
    router: Router,
    text: str,
    labels: Mapping[str, str],
    *,
    classifier: str = "tier:fast",
    default: str | None = None,
    prompt: str | None = None,
    system: str | None = None,
    product_type: str | None = None,
    **params: Any,
) -> ClassifyResult:
    """Classify ``text`` on ``classifier`` into one of ``labels`` (label → route),
    then answer it on that label's route.

    The classifier's answer is read for the first label it mentions; when it
    names none, ``default`` (a label) is used, and without a default the call
    fails with ``PatternError`` after recording the classification.  ``prompt``
    is a template with ``{text}`` and ``{labels}``.  ``system`` and ``params``
    (OpenAI names) go to the answering call only; the classifier keeps its
    tier's settings.
    """
    if not labels:
        raise ValueError("labels must name at least one label and its route")
    if default is not None and default not in labels:
        raise ValueError(f"default {default!r} is not one of the labels ({', '.join(labels)})")
    result = ClassifyResult(pattern="classify_then_route")
    run = PatternRun(router, result, product_type)
    run.check_routes(classifier, *labels.values())

    question = fill(prompt or CLASSIFY_PROMPT, {"text": text, "labels": ", ".join(labels)})
    env = await run.call("classify", classifier, question)
    label = parse_label(env.content, labels)
    result.matched = label is not None
    if label is None:
        if default is None:
            raise run.failed(
                "classify",
                ValueError(
                    f"the classifier's answer names none of the labels ({', '.join(labels)}) "
                    f"and no default was given: {(env.content or '')[:200]!r}"
                ),
            )
        log.info("classifier named no label; using the default", extra={"label": default})
        label = default
    result.label, result.route = label, labels[label]

    answer = await run.call("answer", result.route, text, system, **params)
    result.output = answer.content or ""
    run.finish()
    return result


async def single_shot(
    router: Router,
    text: str,
    *,
    classify_route: str = "tier:fast",
    generate_route: str = "tier:balanced",
    classify_prompt: str | None = None,
    generate_prompt: str | None = None,
    system: str | None = None,
    product_type: str | None = None,
    **params: Any,
) -> SingleShotResult:
    """Fast: classify → balanced: generate.  Templates: ``classify_prompt`` with
    ``{text}``; ``generate_prompt`` with ``{text}`` and ``{category}``.
    ``system`` and ``params`` go to the generating call."""
    result = SingleShotResult(pattern="single_shot")
    run = PatternRun(router, result, product_type)
    run.check_routes(classify_route, generate_route)

    env = await run.call(
        "classify",
        classify_route,
        fill(classify_prompt or SINGLE_SHOT_CLASSIFY_PROMPT, {"text": text}),
    )
    result.category = (env.content or "").strip()
    request = fill(
        generate_prompt or SINGLE_SHOT_PROMPT, {"text": text, "category": result.category}
    )
    gen = await run.call("generate", generate_route, request, system, **params)
    result.output = gen.content or ""
    run.finish()
    return result
