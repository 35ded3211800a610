"""Calling the router for one step: one model, models in fallback order, or all at once.

Fallback over a step's own model list is done here, one ``router.complete``
per model, because the router falls back only along a route it resolved; an
API body's ad-hoc list is no such route.  (A Router API taking an ad-hoc pool,
``router.complete([m1, m2], ...)``, would make this helper unnecessary.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from polyroute.errors import BadRequestError, PolyrouteError, RouteExhaustedError
from polyroute.pipelines.results import StepTracker, attempts_of
from polyroute.pipelines.select import StepPlan, Target
from polyroute.types import Attempt, Envelope, FanOutResult, Message

if TYPE_CHECKING:
    from polyroute.router import Router


def merge_params(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A call's own parameters over the plan's; an explicit None means "not given"."""
    return {**base, **{k: v for k, v in overrides.items() if v is not None}}


async def complete_in_order(
    router: Router,
    targets: Sequence[Target],
    messages: Sequence[Message],
    route_name: str,
    overrides: Mapping[str, Any],
) -> Envelope:
    """Try each target in order until one answers.  The envelope's attempts list
    the failed models first, as the router's own fallback would."""
    failed: list[Attempt] = []
    errors: list[PolyrouteError] = []
    for t in targets:
        try:
            env = await router.complete(t.ref, messages, **merge_params(t.params, overrides))
        except BadRequestError:
            raise  # the request itself is at fault: the next model would refuse it too
        except PolyrouteError as exc:
            failed.extend(attempts_of(exc, t))
            errors.append(exc)
            continue
        if failed:
            env.attempts[:0] = failed
            env.warnings.append(
                f"{route_name}: fell back to {t.ref} after {len(errors)} model(s) failed"
            )
        return env
    raise RouteExhaustedError(route_name, failed, errors) from (errors[-1] if errors else None)


async def _fan_out(
    router: Router,
    plan: StepPlan,
    messages: Sequence[Message],
    route_name: str,
    overrides: Mapping[str, Any],
    tracker: StepTracker,
) -> Envelope:
    async def one(t: Target) -> tuple[FanOutResult, float]:
        # One fan_out per model: fan_out sends the same parameters to every
        # model, and each model here may carry its own.
        t0 = router.clock.monotonic()
        [res] = await router.fan_out([t.ref], messages, **merge_params(t.params, overrides))
        return res, router.clock.monotonic() - t0

    results = await asyncio.gather(*(one(t) for t in plan.targets))
    winner: Envelope | None = None
    for t, (res, latency) in zip(plan.targets, results, strict=True):
        tracker.model_output(t, res.envelope, res.error, latency)
        if winner is None and res.envelope is not None:
            winner = res.envelope  # the first in listed order, not the fastest: stable output
    if winner is None:
        errors = [res.error or RuntimeError("no answer") for res, _ in results]
        attempts = [a for t, e in zip(plan.targets, errors, strict=True) for a in attempts_of(e, t)]
        raise RouteExhaustedError(route_name, attempts, errors, "every model failed") from errors[
            -1
        ]
    tracker.chose(winner)
    return winner


async def call_plan(
    router: Router,
    plan: StepPlan,
    messages: Sequence[Message],
    route_name: str,
    overrides: Mapping[str, Any],
    tracker: StepTracker,
) -> Envelope:
    """Serve one LLM call of a step per its plan, recording it on ``tracker``."""
    pipeline, _, step = route_name.removeprefix("step:").partition("/")
    # Usage records carry the pipeline and step, so spend can be grouped by step.
    overrides = {**overrides, "labels": {"pipeline": pipeline, "step": step}}
    if plan.routing == "parallel":
        return await _fan_out(router, plan, messages, route_name, overrides, tracker)
    first = plan.targets[0]
    try:
        if plan.routing == "fallback":
            env = await complete_in_order(router, plan.targets, messages, route_name, overrides)
        else:
            env = await router.complete(
                first.ref, messages, **merge_params(first.params, overrides)
            )
    except PolyrouteError as exc:
        tracker.failed(exc, first)  # a RouteExhaustedError's attempts name every model tried
        raise
    tracker.answered(env)
    return env
