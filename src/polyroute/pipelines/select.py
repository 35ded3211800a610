"""Which model(s) serve a step, with which parameters: seed 000's order, in one place.

1. the step's own ``model`` (or ``models``),
2. the pipeline's ``default_model``,
3. the caller's default: ``FunctionPipeline``'s own (``gpt-5.1``, as seed 000
   says) when a pipeline asks, else the router's ``defaults.model``.

Seed 002's ``workflow.multiModel`` flag off makes a step listing several models
run the first alone; its high token warning threshold rides on the plan.

Temperature follows the same order (step, then ``default_temperature``, then
whatever the router's defaults say); a model's own ``parameters`` in a
multi-model step sit above the step's, and a call's own parameters above all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from polyroute.pipelines.check import model_key
from polyroute.pipelines.config import MULTI_MODEL, ModelSpec, PipelineConfig
from polyroute.pipelines.features import features_for

if TYPE_CHECKING:
    from polyroute.router import Router

Routing = Literal["single", "parallel", "fallback"]
Source = Literal["step", "pipeline", "function_pipeline", "router"]


@dataclass(frozen=True, slots=True)
class Target:
    """One model a step calls: the router name, its output key, its parameters."""

    ref: str
    provider: str  # model_outputs[provider][model]: the provider name the config wrote
    model: str
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StepPlan:
    step_name: str
    targets: tuple[Target, ...]
    routing: Routing
    source: Source  # where the model choice came from
    params: Mapping[str, Any]  # step-level call parameters (temperature, max_tokens)
    # Retries per model (attempts - 1): the step's, else default_max_retries; None
    # leaves policies.retry to decide.  Applied to the route the step is served by.
    max_retries: int | None
    high_token_warning: int | None = None  # tokens per call above which a warning is added
    notes: tuple[str, ...] = ()  # what planning changed (e.g. workflow.multiModel off)

    def describe(self) -> dict[str, Any]:
        return {
            "models": [t.ref for t in self.targets],
            "routing": self.routing,
            "source": self.source,
            "temperature": self.params.get("temperature"),
            "max_tokens": self.params.get("max_tokens"),
            "max_retries": self.max_retries,
            "high_token_warning": self.high_token_warning,
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


def _spec_target(router: Router, spec: ModelSpec, params: Mapping[str, Any]) -> Target:
    ref = spec.ref_on(router.catalog.providers)
    # Filed under the names the config wrote (seed 002's google, custom), not polyroute's.
    provider, model = spec.output_key or model_key(router, ref)
    return Target(ref, provider, model, dict(params))


def select_models(
    config: PipelineConfig | None,
    step_name: str,
    router: Router,
    default_model: str | None = None,
) -> StepPlan:
    """The plan for ``step_name``: step config → pipeline default → ``default_model``
    (``FunctionPipeline``'s) → the router's ``defaults.model``."""
    cfg = config or PipelineConfig()
    s = cfg.step(step_name)
    features = features_for(cfg, s, router.settings.environ)
    temperature = s.temperature if s and s.temperature is not None else cfg.default_temperature
    raw = {"temperature": temperature, "max_tokens": s.max_tokens if s else None}
    params = {k: v for k, v in raw.items() if v is not None}
    retries = s.max_retries if s and s.max_retries is not None else cfg.default_max_retries
    threshold = features.high_token_warning

    if s is not None and s.models:
        targets = tuple(
            _spec_target(router, spec, {**params, **spec.call_params()})
            for spec in _in_order(s.models)
        )
        routing: Routing = s.routing or "fallback"
        notes: tuple[str, ...] = ()
        if len(targets) > 1 and not features.multi_model:
            skipped = ", ".join(t.ref for t in targets[1:])
            notes = (
                f"{MULTI_MODEL} is off: step {step_name!r} runs its first model "
                f"{targets[0].ref} only ({routing} over {len(targets)} models not used; "
                f"skipped: {skipped})",
            )
            targets, routing = targets[:1], "single"
        return StepPlan(step_name, targets, routing, "step", params, retries, threshold, notes)

    source: Source
    if s is not None and s.model:
        ref, source = s.model, "step"
    elif cfg.default_model:
        ref, source = cfg.default_model, "pipeline"
    elif default_model:
        ref, source = default_model, "function_pipeline"
    else:
        ref, source = router.config.defaults.model, "router"
    return StepPlan(
        step_name, (_target(router, ref, params),), "single", source, params, retries, threshold
    )
