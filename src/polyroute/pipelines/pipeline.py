"""``FunctionPipeline``: ordered steps, each served by the model its config chose.

Seed 000's shape: ``FunctionPipeline(pipeline_config=...)``, and
``pipeline.pipeline_config = other`` takes effect on the next run.  No config
means every step runs on the router's default model.  A step's failure ends
the run with status "error"; the steps before it keep their results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from polyroute.errors import ConfigError
from polyroute.pipelines.config import PipelineConfig
from polyroute.pipelines.errors import PipelineError, UnknownStepError, did_you_mean
from polyroute.pipelines.results import PipelineRun, StepResult, StepTracker
from polyroute.pipelines.select import select_models
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


class FunctionPipeline:
    def __init__(
        self,
        pipeline_config: ConfigInput = None,
        router: Router | None = None,
        steps: Iterable[Step] | None = None,
        name: str = "pipeline",
    ) -> None:
        self.name = name
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
        return cls(config, router=router, steps=steps, name=name)

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

    def _prepare(self) -> tuple[Router, PipelineConfig]:
        # One snapshot per run: a reassignment mid-run applies from the next run.
        router, config = self.router, self._config
        config.check(router, [s.name for s in self._steps])
        return router, config

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
        router, config = self._prepare()
        run = PipelineRun(pipeline=self.name)
        outputs: dict[str, Any] = {}
        for s in self._steps:
            results = {r.step_name: r for r in run.steps}
            if on_step is not None:
                on_step(s.name, None)
            result = await self._execute(
                s, router, config, content, context or {}, outputs, results
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
        router, config = self._prepare()
        return await self._execute(found, router, config, content, context or {}, outputs or {})

    async def _execute(
        self,
        s: Step,
        router: Router,
        config: PipelineConfig,
        content: Any,
        context: Mapping[str, Any],
        outputs: Mapping[str, Any],
        results: Mapping[str, StepResult] | None = None,
    ) -> StepResult:
        plan = select_models(config, s.name, router)
        tracker = StepTracker(plan)
        ctx = StepContext(
            step_name=s.name,
            route_name=f"step:{self.name}/{s.name}",
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
            return tracker.finish(router.clock.monotonic() - t0, error=exc)
        return tracker.finish(router.clock.monotonic() - t0, output=output)

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
