"""Which model(s) serve a step, with which parameters: seed 000's order, in one place.

1. the step's own ``model`` (or ``models``),
2. the pipeline's ``default_model``,
3. the router's ``defaults.model``.

Temperature follows the same order (step, then ``default_temperature``, then
whatever the router's defaults say); a model's own ``parameters`` in a
multi-model step sit above the step's, and a call's own parameters above all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from polyroute.pipelines.check import model_key
from polyroute.pipelines.config import ModelSpec, PipelineConfig

if TYPE_CHECKING:
    from polyroute.router import Router

Routing = Literal["single", "parallel", "fallback"]
Source = Literal["step", "pipeline", "router"]


@dataclass(frozen=True, slots=True)
class Target:
    """One model a step calls: the router name, its output key, its parameters."""

    ref: str
    provider: str  # model_outputs[provider][model]
    model: str
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StepPlan:
    step_name: str
    targets: tuple[Target, ...]
    routing: Routing
    source: Source  # where the model choice came from
    params: Mapping[str, Any]  # step-level call parameters (temperature, max_tokens)
    # Recorded, not applied: Router.complete takes no per-call retry budget yet,
    # so policies.retry governs.  (step:PIPELINE/STEP routes do apply it.)
    max_retries: int | None

    def describe(self) -> dict[str, Any]:
        return {
            "models": [t.ref for t in self.targets],
            "routing": self.routing,
            "source": self.source,
            "temperature": self.params.get("temperature"),
            "max_tokens": self.params.get("max_tokens"),
            "max_retries": self.max_retries,
        }


def _in_order(specs: list[ModelSpec]) -> list[ModelSpec]:
    # A priority puts a model ahead; models without one keep their listed order, after.
    ranked = sorted(
        enumerate(specs),
        key=lambda im: (im[1].priority is None, im[1].priority or 0, im[0]),
    )
    return [s for _, s in ranked]


def _target(router: Router, ref: str, params: Mapping[str, Any]) -> Target:
    provider, model = model_key(router, ref)
    return Target(ref, provider, model, dict(params))


def select_models(config: PipelineConfig | None, step_name: str, router: Router) -> StepPlan:
    """The plan for ``step_name``: step config → pipeline default → router default."""
    cfg = config or PipelineConfig()
    s = cfg.step(step_name)
    temperature = s.temperature if s and s.temperature is not None else cfg.default_temperature
    raw = {"temperature": temperature, "max_tokens": s.max_tokens if s else None}
    params = {k: v for k, v in raw.items() if v is not None}
    retries = s.max_retries if s and s.max_retries is not None else cfg.default_max_retries

    if s is not None and s.models:
        targets = tuple(
            _target(router, spec.ref, {**params, **spec.call_params()})
            for spec in _in_order(s.models)
        )
        return StepPlan(step_name, targets, s.routing or "fallback", "step", params, retries)

    source: Source
    if s is not None and s.model:
        ref, source = s.model, "step"
    elif cfg.default_model:
        ref, source = cfg.default_model, "pipeline"
    else:
        ref, source = router.config.defaults.model, "router"
    return StepPlan(step_name, (_target(router, ref, params),), "single", source, params, retries)
