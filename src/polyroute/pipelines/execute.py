"""Calling the router for one step: one model, models in fallback order, or all at once.

A step's models become a ``Route`` (``step_route``) and the engine serves it
like any other: the same retries (the step's ``max_retries``), fallbacks,
cooldowns and budgets, and one usage record per call with every attempt.
A parallel step keeps every model's answer, so it calls each model on its own
route (with the same ``max_retries``), all at once.  Every answer gets seed
002's high token warning when it is over the plan's threshold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from polyroute.config.schema import PoolMember
from polyroute.errors import PolyrouteError, RouteExhaustedError
from polyroute.pipelines.features import warn_high_tokens
from polyroute.pipelines.results import StepTracker, attempts_of
from polyroute.pipelines.select import StepPlan, Target
from polyroute.routing.resolve import Route
from polyroute.types import Envelope, Message

if TYPE_CHECKING:
    from polyroute.router import Router


def merge_params(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A call's own parameters over the plan's; an explicit None means "not given"."""
    return {**base, **{k: v for k, v in overrides.items() if v is not None}}


def step_route(
    router: Router,
    targets: Sequence[Target],
    route_name: str,
    max_retries: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> Route:
    """The step's models in order, each with its own parameters, as one route."""
    members = [PoolMember(model=t.ref, params=dict(t.params)) for t in targets]
    return router.resolve(
        router.resolver.pool(
            list(members),
            name=route_name,
            labels=labels,
            max_attempts=None if max_retries is None else max_retries + 1,
            max_fallbacks=len(members) - 1,  # the step lists its models: try them all
        )
    )


async def complete_in_order(
    router: Router,
    targets: Sequence[Target],
    messages: Sequence[Message],
    route_name: str,
    overrides: Mapping[str, Any],
    max_retries: int | None = None,
) -> Envelope:
    """Try each target in order until one answers: one engine call over a route of
    the targets, so the envelope (and the one usage record) lists every attempt."""
    if len(targets) == 1:  # a model or a route name, served as itself
        t = targets[0]
        return await router.complete(
            single_route(router, t, max_retries), messages, **merge_params(t.params, overrides)
        )
    route = step_route(router, targets, route_name, max_retries)
    return await router.complete(route, messages, **overrides)


def single_route(router: Router, target: Target, max_retries: int | None = None) -> Route:
    """One model (or a route name) as its own route, with the step's retry budget."""
    route = router.resolve(target.ref)
    if max_retries is not None:
        route = replace(route, max_attempts=max_retries + 1)
    return route


async def _fan_out(
    router: Router,
    plan: StepPlan,
    messages: Sequence[Message],
    route_name: str,
    overrides: Mapping[str, Any],
    tracker: StepTracker,
) -> Envelope:
    async def one(t: Target) -> tuple[Envelope | None, Exception | None, float]:
        # One call per model, each with its own parameters and the step's retry
        # budget; a model's failure is its own card, not the step's.
        t0 = router.clock.monotonic()
        try:
            route = single_route(router, t, plan.max_retries)
            env = await router.complete(route, messages, **merge_params(t.params, overrides))
        except Exception as exc:
            return None, exc, router.clock.monotonic() - t0
        warn_high_tokens(env, plan.high_token_warning, plan.step_name, route_name)
        return env, None, router.clock.monotonic() - t0

    results = await asyncio.gather(*(one(t) for t in plan.targets))
    winner: Envelope | None = None
    for t, (env, error, latency) in zip(plan.targets, results, strict=True):
        tracker.model_output(t, env, error, latency)
        if winner is None and env is not None:
            winner = env  # the first in listed order, not the fastest: stable output
    if winner is None:
        errors: list[BaseException] = [e or RuntimeError("no answer") for _, e, _ in results]
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
    targets = plan.targets if plan.routing == "fallback" else plan.targets[:1]
    try:
        env = await complete_in_order(
            router, targets, messages, route_name, overrides, plan.max_retries
        )
    except PolyrouteError as exc:
        tracker.failed(exc, first)  # a RouteExhaustedError's attempts name every model tried
        raise
    warn_high_tokens(env, plan.high_token_warning, plan.step_name, route_name)
    tracker.answered(env)
    return env
