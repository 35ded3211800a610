"""``FunctionPipeline``: ordered steps, each served by the model its config chose.

Seed 000's shape: ``FunctionPipeline(pipeline_config=...)``, and
``pipeline.pipeline_config = other`` takes effect on the next run.  A step's
model is the step's, else the pipeline config's ``default_model``, else the
FunctionPipeline's own default, ``gpt-5.1`` as the seed says
(``FunctionPipeline(default_model=...)`` changes it).  Like the built-in pools,
that built-in default runs on ``simulator/gpt-5.1`` while no OpenAI key is set.
No config at all means every step runs on that default.  A step's failure ends
the run with status "error"; the steps before it keep their results.

Every finished step leaves one log line on ``polyroute.pipelines`` (seed 002's
telemetry): ``pipeline step finished`` with provider, model, response_time,
retry_count, status, tokens and cost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from polyroute.config.defaults import SIMULATOR
from polyroute.errors import ConfigError
from polyroute.pipelines.check import ref_problem
from polyroute.pipelines.config import PipelineConfig
from polyroute.pipelines.errors import PipelineError, UnknownStepError, did_you_mean
from polyroute.pipelines.results import PipelineRun, StepResult, StepTracker
from polyroute.pipelines.select import StepPlan, select_models
from polyroute.pipelines.steps import (
    FunctionStep,
    PromptStep,
    Step,
    StepContext,
    StepFn,
    step_name_of,
)
from polyroute.router import Router

T = TypeVar("T")
ConfigInput = PipelineConfig | Mapping[str, Any] | None
log = logging.getLogger("polyroute.pipelines")


class FunctionPipeline:
    # Seed 000's "FunctionPipeline default": the model of a step that neither its
    # step config nor the pipeline's default_model names.
    DEFAULT_MODEL: ClassVar[str] = "gpt-5.1"

    def __init__(
        self,
        pipeline_config: ConfigInput = None,
        router: Router | None = None,
        steps: Iterable[Step] | None = None,
        name: str = "pipeline",
        default_model: str | None = None,
    ) -> None:
        self.name = name
        # None: DEFAULT_MODEL, fitted to the credentials present (see default_model_for).
        self._default_model = default_model
        self._router = router
        self._owns_router = False
        self._steps: list[Step] = []
        for s in steps or ():
            self.add_step(s)
        self.pipeline_config = pipeline_config

    @classmethod
    def from_settings(
        cls,
        router: Router,
        name: str,
        steps: Iterable[Step] | None = None,
        pipeline_config: ConfigInput = None,
        default_model: str | None = None,
    ) -> FunctionPipeline:
        """The pipeline ``name`` of the router's config file.  Without ``steps``,
        each configured step becomes a ``PromptStep`` from its ``prompt``/``system``.
        ``pipeline_config`` (an API body's) is laid over the file's."""
        config = PipelineConfig.from_settings(router, name, overlay=pipeline_config)
        if steps is None:
            file_steps = router.config.pipelines[name].steps
            missing = [s for s, sc in file_steps.items() if not sc.prompt]
            if missing:
                raise ConfigError(
                    "no prompt: give the step a prompt in the config, or pass steps=",
                    path=f"pipelines.{name}.steps.{missing[0]}.prompt",
                )
            steps = [PromptStep(s, sc.prompt or "", sc.system) for s, sc in file_steps.items()]
        return cls(config, router=router, steps=steps, name=name, default_model=default_model)

    # -- configuration ----------------------------------------------------------------

    @property
    def router(self) -> Router:
        if self._router is None:  # no router given: the usual config search, like Router.from_env
            self._router = Router.from_env()
            self._owns_router = True
        return self._router

    @property
    def pipeline_config(self) -> PipelineConfig:
        return self._config

    @pipeline_config.setter
    def pipeline_config(self, value: ConfigInput) -> None:
        # Checked now when a router is at hand, so a bad assignment fails where it is made.
        self._config = PipelineConfig.parse(value, self._router)

    @property
    def default_model(self) -> str:
        """The model for steps nobody configured (before fitting to credentials)."""
        return self._default_model or self.DEFAULT_MODEL

    def default_model_for(self, router: Router) -> str:
        """The default model as ``router`` serves it.  One given to the constructor is
        used as given.  The built-in ``gpt-5.1`` is fitted like the built-in pools:
        served by its catalog provider when that provider has its key (or is
        ``AI_PROVIDER``) and is allowed, else by ``simulator/gpt-5.1`` (the same
        model's name and price, labelled simulated)."""
        if self._default_model is not None:
            return self._default_model
        model = self.DEFAULT_MODEL
        info = router.catalog.get(model)
        if info is None:  # the catalog lost it: let the call say so
            return model
        provider = info.provider
        allowed = router.config.server.allowed_providers
        prefer = (router.settings.environ.get("AI_PROVIDER") or "").strip().lower() or None
        usable = provider != SIMULATOR and (allowed is None or provider in allowed)
        if usable and (provider == prefer or router.registry.status(provider).present):
            return model
        return f"{SIMULATOR}/{model}"

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self._steps)

    def add_step(self, step: Step) -> Step:
        names = [s.name for s in self._steps]
        if step.name in names:
            raise PipelineError(f"pipeline {self.name!r} already has a step {step.name!r}")
        unmet = sorted(step.needs - set(names))
        if unmet:
            need = unmet[0]
            raise PipelineError(
                f"step {step.name!r} reads {{outputs[{need}]}}, but no earlier step is named "
                f"{need!r}{did_you_mean(need, names)} (earlier steps: {', '.join(names) or 'none'})"
            )
        self._steps.append(step)
        return step

    def step(self, name: str | None = None) -> Callable[[StepFn], FunctionStep]:
        """``@pipeline.step("name")``: define and append a function step."""

        def wrap(fn: StepFn) -> FunctionStep:
            s = FunctionStep(name or step_name_of(fn), fn)
            self.add_step(s)
            return s

        return wrap

    def _prepare(self) -> tuple[Router, PipelineConfig, str]:
        # One snapshot per run: a reassignment mid-run applies from the next run.
        router, config = self.router, self._config
        config.check(router, [s.name for s in self._steps])
        default = self.default_model_for(router)
        if self._default_model is not None:
            why = ref_problem(router, default)
            if why is not None:
                raise ConfigError(why, path="default_model")
        return router, config, default

    # -- running ----------------------------------------------------------------------

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self._steps]

    async def run(
        self,
        content: Any,
        context: Mapping[str, Any] | None = None,
        on_step: Callable[[str, StepResult | None], None] | None = None,
    ) -> PipelineRun:
        """Run every step in order.  ``on_step(name, None)`` fires when a step starts
        and ``on_step(name, result)`` when it ends (for progress displays)."""
        router, config, default = self._prepare()
        run = PipelineRun(pipeline=self.name)
        outputs: dict[str, Any] = {}
        for s in self._steps:
            results = {r.step_name: r for r in run.steps}
            if on_step is not None:
                on_step(s.name, None)
            result = await self._execute(
                s, router, config, default, content, context or {}, outputs, results
            )
            if on_step is not None:
                on_step(s.name, result)
            run.steps.append(result)
            if not result.ok:
                run.status = "error"
                run.error = f"step {s.name!r} failed: {result.error}"
                break
            outputs[s.name] = result.output
        return run

    async def run_step(
        self,
        step_name: str,
        content: Any,
        context: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
    ) -> StepResult:
        """One step alone; ``outputs`` stands in for earlier steps' outputs."""
        found = next((s for s in self._steps if s.name == step_name), None)
        if found is None:
            raise UnknownStepError(step_name, [s.name for s in self._steps])
        router, config, default = self._prepare()
        return await self._execute(
            found, router, config, default, content, context or {}, outputs or {}
        )

    async def _execute(
        self,
        s: Step,
        router: Router,
        config: PipelineConfig,
        default_model: str,
        content: Any,
        context: Mapping[str, Any],
        outputs: Mapping[str, Any],
        results: Mapping[str, StepResult] | None = None,
    ) -> StepResult:
        plan = select_models(config, s.name, router, default_model)
        tracker = StepTracker(plan)
        route_name = f"step:{self.name}/{s.name}"
        ctx = StepContext(
            step_name=s.name,
            route_name=route_name,
            content=content,
            outputs=outputs,
            context=context,
            plan=plan,
            router=router,
            tracker=tracker,
            results=results,
        )
        t0 = router.clock.monotonic()
        try:
            output = await s.execute(ctx)
        except Exception as exc:  # recorded on the step's result; the run decides what follows
            result = tracker.finish(router.clock.monotonic() - t0, error=exc)
        else:
            result = tracker.finish(router.clock.monotonic() - t0, output=output)
        self._log_step(result, plan, route_name)
        return result

    def _log_step(self, result: StepResult, plan: StepPlan, route_name: str) -> None:
        """Seed 002's telemetry: provider, model, response time, retry count and status
        per step, as one structured log line."""
        last = result.attempts[-1] if result.attempts else {}
        log.log(
            logging.INFO if result.ok else logging.WARNING,
            "pipeline step finished",
            extra={
                "pipeline": self.name,
                "step": result.step_name,
                "route": route_name,
                "provider": result.provider or last.get("provider"),
                "model": result.model or last.get("model") or plan.targets[0].ref,
                "response_time": round(result.latency, 6),
                "retry_count": result.retries,
                "status": result.status,
                "routing": plan.routing,
                "models": [t.ref for t in plan.targets],
                "attempts": len(result.attempts),
                "fallbacks": sum(1 for a in result.attempts if a.get("outcome") == "error"),
                "tokens": result.usage.total_tokens,
                "cost": result.cost,
                "warnings": len(result.warnings),
                "error_type": result.error_type,
            },
        )

    # -- sync facade and lifecycle ----------------------------------------------------

    def run_sync(self, content: Any, context: Mapping[str, Any] | None = None) -> PipelineRun:
        _no_running_loop("run_sync", "run")
        return asyncio.run(self._closing(self.run(content, context)))

    def run_step_sync(
        self,
        step_name: str,
        content: Any,
        context: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
    ) -> StepResult:
        _no_running_loop("run_step_sync", "run_step")
        return asyncio.run(self._closing(self.run_step(step_name, content, context, outputs)))

    async def _closing(self, coro: Coroutine[Any, Any, T]) -> T:
        # asyncio.run makes a loop for this call only; the router's HTTP session
        # for that loop must close with it, or it leaks.
        try:
            return await coro
        finally:
            await self.router.aclose()

    async def aclose(self) -> None:
        """Close the router if this pipeline created it."""
        if self._owns_router and self._router is not None:
            await self._router.aclose()


def _no_running_loop(name: str, async_name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise PipelineError(
        f"{name}() cannot run inside a running event loop: use await pipeline.{async_name}(...)"
    )
