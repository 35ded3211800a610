"""Pipelines: ordered steps, each served by the model(s) its config chose.

Seed 000's names (``PipelineConfig``, ``PipelineStepConfig``,
``FunctionPipeline``) and seed 002's several models per step (``ModelSpec``,
``routing: parallel | fallback``, ``model_outputs[provider][model]``)::

    pipeline = FunctionPipeline(
        PipelineConfig(default_model="gpt-4o", step_configs={
            "seo_keywords": PipelineStepConfig(step_name="seo_keywords", model="gpt-4o-mini"),
        }),
        router=router,
        steps=[PromptStep("seo_keywords", "Keywords for: {content}")],
    )
    run = await pipeline.run("an article about drums")
"""

from polyroute.pipelines.config import ModelSpec, PipelineConfig, PipelineStepConfig
from polyroute.pipelines.errors import (
    PipelineError,
    PromptTemplateError,
    UnknownPipelineError,
    UnknownStepError,
)
from polyroute.pipelines.execute import complete_in_order
from polyroute.pipelines.pipeline import FunctionPipeline
from polyroute.pipelines.results import PipelineRun, StepResult
from polyroute.pipelines.select import StepPlan, Target, select_models
from polyroute.pipelines.steps import FunctionStep, PromptStep, Step, StepContext, step

__all__ = [
    "FunctionPipeline",
    "FunctionStep",
    "ModelSpec",
    "PipelineConfig",
    "PipelineError",
    "PipelineRun",
    "PipelineStepConfig",
    "PromptStep",
    "PromptTemplateError",
    "Step",
    "StepContext",
    "StepPlan",
    "StepResult",
    "Target",
    "UnknownPipelineError",
    "UnknownStepError",
    "complete_in_order",
    "select_models",
    "step",
]
