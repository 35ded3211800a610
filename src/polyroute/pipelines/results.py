"""What a run records: per step the model, tokens, cost, latency, attempts; per run the totals.

Seed 000 asks for "model used per step, cost per step-model combination,
performance metrics"; seed 002 for per-model cards (``model_outputs``) and
token usage per provider.  Run totals are computed from the steps, so they
always equal the sum of the steps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from polyroute.errors import RouteExhaustedError
from polyroute.pipelines.select import StepPlan, Target
from polyroute.routing.triggers import trigger_for
from polyroute.types import Attempt, Envelope, Usage

ModelOutputs = dict[str, dict[str, dict[str, Any]]]


@dataclass(slots=True)
class StepResult:
    step_name: str
    output: Any = None  # str from a prompt step; str or dict from a function step
    model: str | None = None  # the model whose answer became the output
    provider: str | None = None
    usage: Usage = field(default_factory=Usage)  # every call of the step, every model
    cost: float = 0.0  # USD
    latency: float = 0.0  # seconds, the whole step
    attempts: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model_outputs: ModelOutputs = field(default_factory=dict)  # multi-model steps
    usage_by_provider: dict[str, Usage] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # the resolved plan (StepPlan.describe)
    error: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> Literal["ok", "error"]:
        return "ok" if self.error is None else "error"

    @property
    def tokens_in(self) -> int:
        return self.usage.prompt_tokens

    @property
    def tokens_out(self) -> int:
        return self.usage.completion_tokens

    @property
    def retries(self) -> int:
        return sum(int(a.get("retries") or 0) for a in self.attempts)

    @property
    def max_retries(self) -> int | None:
        value = self.config.get("max_retries")
        return value if isinstance(value, int) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_name": self.step_name,
            "status": self.status,
            "output": self.output,
            "model": self.model,
            "provider": self.provider,
            "usage": self.usage.to_dict(),
            "cost": self.cost,
            "latency": self.latency,
            "attempts": list(self.attempts),
            "retries": self.retries,
            "warnings": list(self.warnings),
            "model_outputs": self.model_outputs,
            "usage_by_provider": {p: u.to_dict() for p, u in self.usage_by_provider.items()},
            "config": dict(self.config),
            "error": self.error,
            "error_type": self.error_type,
        }


@dataclass(slots=True)
class PipelineRun:
    pipeline: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    steps: list[StepResult] = field(default_factory=list)
    status: Literal["ok", "error"] = "ok"
    error: str | None = None

    @property
    def total_cost(self) -> float:
        return sum(s.cost for s in self.steps)

    @property
    def total_tokens(self) -> int:
        return sum(s.usage.total_tokens for s in self.steps)

    @property
    def total_latency(self) -> float:
        return sum(s.latency for s in self.steps)

    @property
    def outputs(self) -> dict[str, Any]:
        return {s.step_name: s.output for s in self.steps if s.ok}

    @property
    def usage_by_provider(self) -> dict[str, Usage]:
        out: dict[str, Usage] = {}
        for s in self.steps:
            for provider, u in s.usage_by_provider.items():
                total = out.setdefault(provider, Usage())
                total.prompt_tokens += u.prompt_tokens
                total.completion_tokens += u.completion_tokens
        return out

    def step(self, step_name: str) -> StepResult | None:
        return next((s for s in self.steps if s.step_name == step_name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "started_at": self.started_at.isoformat(),
            "status": self.status,
            "error": self.error,
            "steps": [s.to_dict() for s in self.steps],
            "outputs": self.outputs,
            "total_cost": self.total_cost,
            "total_tokens": self.total_tokens,
            "total_latency": self.total_latency,
            "usage_by_provider": {p: u.to_dict() for p, u in self.usage_by_provider.items()},
        }


def attempts_of(error: BaseException, target: Target) -> list[Attempt]:
    """The attempts behind a failed call: the router's own list when it gave one."""
    if isinstance(error, RouteExhaustedError):
        return list(error.attempts)
    trigger = trigger_for(error)
    return [
        Attempt(
            model=target.ref,
            provider=target.provider,
            outcome="error",
            trigger=trigger.value if trigger else type(error).__name__,
            status=getattr(error, "status", None),
            error=str(error),
        )
    ]


class StepTracker:
    """Accumulates every call a step makes (a function step may call the LLM
    several times) and turns it into the step's result."""

    def __init__(self, plan: StepPlan) -> None:
        self.plan = plan
        self.result = StepResult(plan.step_name, config=plan.describe())
        self.result.warnings.extend(plan.notes)

    def _count(self, env: Envelope) -> None:
        r = self.result
        r.usage.prompt_tokens += env.usage.prompt_tokens
        r.usage.completion_tokens += env.usage.completion_tokens
        r.cost += env.cost
        r.attempts.extend(a.to_dict() for a in env.attempts)
        r.warnings.extend(w for w in env.warnings if w not in r.warnings)
        by = r.usage_by_provider.setdefault(env.provider, Usage())
        by.prompt_tokens += env.usage.prompt_tokens
        by.completion_tokens += env.usage.completion_tokens

    def answered(self, env: Envelope) -> None:
        """A call whose answer is (for now) the step's answer."""
        self._count(env)
        self.chose(env)

    def chose(self, env: Envelope) -> None:
        """Name the model whose answer became the output (already counted)."""
        self.result.model = env.model
        self.result.provider = env.provider

    def failed(self, error: BaseException, target: Target) -> None:
        self.result.attempts.extend(a.to_dict() for a in attempts_of(error, target))

    def model_output(
        self, target: Target, env: Envelope | None, error: BaseException | None, latency: float
    ) -> None:
        """One model's card in a parallel step, filed under model_outputs[provider][model]."""
        if env is not None:
            self._count(env)
        else:
            self.failed(error or RuntimeError("no answer"), target)
        self.result.model_outputs.setdefault(target.provider, {})[target.model] = {
            "content": env.content if env else None,
            "usage": (env.usage if env else Usage()).to_dict(),
            "latency": env.latency if env else latency,
            "retries": env.retries if env else _retries(error),
            "warnings": list(env.warnings) if env else [],
            "cost": env.cost if env else 0.0,
            "error": None if env else str(error),
        }

    def finish(
        self, latency: float, output: Any = None, error: BaseException | None = None
    ) -> StepResult:
        r = self.result
        r.latency = latency
        if error is None:
            r.output = output
        else:
            r.error = str(error) or type(error).__name__
            r.error_type = type(error).__name__
        return r


def _retries(error: BaseException | None) -> int:
    if isinstance(error, RouteExhaustedError):
        return sum(a.retries for a in error.attempts)
    return 0
