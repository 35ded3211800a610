"""Seed 003's iterative refinement: generate → validate → fix, a bounded number of rounds.

A round is one draft and its check: round 1 checks the first draft, each later
round checks a fix of the previous draft.  The loop stops at the first draft
that passes, or after ``max_rounds`` drafts; the last draft is returned either
way and ``converged`` says which.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyroute.patterns.result import PatternResult, PatternRun
from polyroute.patterns.text import fill, parse_verdict
from polyroute.routing.validators import Validation, Verdict, normalize

if TYPE_CHECKING:
    from polyroute.router import Router

CheckOutcome = bool | Verdict | Validation | str
Check = Callable[[str], CheckOutcome | Awaitable[CheckOutcome]]

CHECK_PROMPT = (
    "Check whether the answer below fulfils the task.\n\n"
    "Task:\n{prompt}\n\nAnswer:\n{output}\n\n"
    "Reply PASS if it does; otherwise reply FAIL: followed by what is wrong."
)
FIX_PROMPT = (
    "Fix the answer below so that it fulfils the task.\n\n"
    "Task:\n{prompt}\n\nCurrent answer:\n{output}\n\nProblems found:\n{feedback}\n\n"
    "Reply with the corrected answer only."
)


@dataclass(slots=True)
class RefineRound:
    round: int
    output: str  # the draft this round checked
    passed: bool
    feedback: str = ""  # why it failed (or a soft fail's note)
    checked_by: str = ""  # "validate", a route name, or both joined by "+"


@dataclass(slots=True, kw_only=True)
class RefineResult(PatternResult):
    rounds: int = 0  # drafts checked (1 .. max_rounds)
    converged: bool = False  # the returned draft passed its check
    history: list[RefineRound] = field(default_factory=list)


def judge(outcome: CheckOutcome) -> tuple[bool, str]:
    """``(passed, feedback)`` from what a validator returned.

    bool, ``Verdict`` and ``Validation`` mean what they mean for the router (a
    soft fail passes, its message kept as feedback).  A string is either a
    PASS/FAIL answer or a list of problems: empty means none."""
    # Verdict is a str enum: test it before the plain-string reading.
    if isinstance(outcome, bool | Verdict | Validation):
        v = normalize(outcome)
        return v.verdict is not Verdict.HARD_FAIL, v.message
    if isinstance(outcome, str):
        passed, feedback = parse_verdict(outcome)
        if passed is None:
            return not outcome.strip(), outcome.strip()
        return passed, feedback
    raise TypeError(
        f"a validator must return bool, Verdict, Validation or str, not {type(outcome).__name__}"
    )


async def refine_until_valid(
    router: Router,
    prompt: str,
    validate: Check | None = None,
    *,
    generate_route: str = "tier:balanced",
    check_route: str | None = None,
    fix_route: str = "tier:balanced",
    max_rounds: int = 3,
    check_prompt: str = CHECK_PROMPT,
    fix_prompt: str = FIX_PROMPT,
    system: str | None = None,
    product_type: str | None = None,
    **params: Any,
) -> RefineResult:
    """Generate on ``generate_route``, check, fix on ``fix_route`` while the check
    fails, for at most ``max_rounds`` drafts.

    The check is ``validate`` (a callable, sync or async), ``check_route`` (a
    route, typically ``tier:fast``, asked to answer PASS or FAIL: reasons), or
    both: the callable first, because it is free, then the model.  An answer
    with neither word counts as a failure.  Templates: ``check_prompt`` with
    ``{prompt}`` and ``{output}``; ``fix_prompt`` with those and ``{feedback}``.
    ``system`` and ``params`` go to the generate and fix calls.
    """
    if validate is None and check_route is None:
        raise ValueError("give validate (a callable), check_route (a PASS/FAIL route), or both")
    if max_rounds < 1:
        raise ValueError("max_rounds must be >= 1")
    result = RefineResult(pattern="refine_until_valid")
    run = PatternRun(router, result, product_type)
    run.check_routes(generate_route, fix_route, *([check_route] if check_route else []))

    async def check(draft: str, rnd: int) -> RefineRound:
        by: list[str] = []
        if validate is not None:
            by.append("validate")
            try:
                outcome = validate(draft)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                passed, feedback = judge(outcome)
            except Exception as exc:  # a validator's bug is a failed stage, with the cost so far
                raise run.failed(f"validate[{rnd}]", exc) from exc
            if not passed or check_route is None:
                return RefineRound(rnd, draft, passed, feedback, "+".join(by))
        assert check_route is not None
        by.append(check_route)
        question = fill(check_prompt, {"prompt": prompt, "output": draft})
        env = await run.call(f"check[{rnd}]", check_route, question)
        verdict, feedback = parse_verdict(env.content)
        if verdict is None:
            feedback = f"the checker gave no PASS/FAIL verdict: {feedback[:200]}"
        return RefineRound(rnd, draft, verdict is True, feedback, "+".join(by))

    env = await run.call("generate", generate_route, prompt, system, **params)
    draft = env.content or ""
    for rnd in range(1, max_rounds + 1):
        outcome = await check(draft, rnd)
        result.history.append(outcome)
        result.rounds = rnd
        if outcome.passed:
            result.converged = True
            break
        if rnd == max_rounds:
            break
        request = fill(
            fix_prompt,
            {"prompt": prompt, "output": draft, "feedback": outcome.feedback or "(none given)"},
        )
        env = await run.call(f"fix[{rnd}]", fix_route, request, system, **params)
        draft = env.content or ""
    result.output = draft
    run.finish()
    return result
