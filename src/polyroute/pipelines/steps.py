"""The two kinds of step: a Python function (``@step``) and a prompt template (``PromptStep``).

A step sees a ``StepContext``: the pipeline input, earlier steps' outputs, the
caller's context, and ``llm()``, which calls the router with the model(s) and
parameters the pipeline config chose for this step.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import string
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from polyroute.pipelines.errors import PipelineError, PromptTemplateError, did_you_mean
from polyroute.pipelines.execute import call_plan
from polyroute.pipelines.results import StepResult, StepTracker
from polyroute.pipelines.select import StepPlan
from polyroute.types import Envelope, Message

if TYPE_CHECKING:
    from polyroute.router import Router


class StepContext:
    def __init__(
        self,
        *,
        step_name: str,
        route_name: str,
        content: Any,
        outputs: Mapping[str, Any],
        context: Mapping[str, Any],
        plan: StepPlan,
        router: Router,
        tracker: StepTracker,
        results: Mapping[str, StepResult] | None = None,
    ) -> None:
        self.step_name = step_name
        self.route_name = route_name  # step:PIPELINE/STEP, as errors name it
        self.content = content  # the pipeline input
        self.outputs = dict(outputs)  # earlier steps' outputs by step name
        self.context = dict(context)  # the caller's context
        # Earlier steps' full records, e.g. every model's card of a parallel step.
        self.results = dict(results or {})
        self.plan = plan
        self.router = router
        self.last: Envelope | None = None  # the latest answer, for callers wanting more than text
        self._tracker = tracker
        self._loop = asyncio.get_running_loop()

    async def llm(
        self, prompt: str | Sequence[Message], system: str | None = None, **params: Any
    ) -> str:
        """The text answer of this step's model(s); ``params`` (OpenAI names)
        override the step config's."""
        if isinstance(prompt, str):
            messages: list[Message] = [{"role": "user", "content": prompt}]
        else:
            messages = list(prompt)
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        env = await call_plan(
            self.router, self.plan, messages, self.route_name, params, self._tracker
        )
        self.last = env
        return env.content or ""

    def llm_sync(
        self, prompt: str | Sequence[Message], system: str | None = None, **params: Any
    ) -> str:
        """``llm`` for sync steps, which run in a worker thread: the call itself
        runs on the pipeline's event loop, where the router's session lives."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise PipelineError("llm_sync would block the event loop: use await ctx.llm(...)")
        coro = self.llm(prompt, system, **params)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()


class Step(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def needs(self) -> frozenset[str]:
        """Names of earlier steps whose outputs this step reads (when known)."""
        ...

    async def execute(self, ctx: StepContext) -> Any: ...


StepOutput = str | dict[str, Any]
StepFn = Callable[[StepContext], Awaitable[StepOutput] | StepOutput]


@dataclass(frozen=True, slots=True)
class FunctionStep:
    name: str
    fn: StepFn
    needs: frozenset[str] = frozenset()

    def __call__(self, ctx: StepContext) -> Any:
        return self.fn(ctx)  # the decorated function stays callable

    async def execute(self, ctx: StepContext) -> Any:
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(ctx)
        # A sync step may block (files, HTTP, CPU); in a thread it cannot stall
        # other runs sharing the loop, and it can still call ctx.llm_sync().
        result = await asyncio.to_thread(self.fn, ctx)
        return await result if inspect.isawaitable(result) else result


def step(name: str | None = None) -> Callable[[StepFn], FunctionStep]:
    """``@step("seo_keywords")`` makes a function (async or sync) a pipeline step."""

    def wrap(fn: StepFn) -> FunctionStep:
        return FunctionStep(name or step_name_of(fn), fn)

    return wrap


def step_name_of(fn: StepFn) -> str:
    return str(getattr(fn, "__name__", "step"))


_ROOTS = ("content", "outputs", "context")
_ROOT = re.compile(r"[^.\[]*")
_OUTPUT = re.compile(r"outputs\[([^\]]+)\]")


class _Named(dict[str, Any]):
    """A template namespace whose missing keys explain themselves."""

    def __init__(self, step_name: str, label: str, data: Mapping[str, Any], hint: str) -> None:
        super().__init__(data)
        self.step_name, self.label, self.hint = step_name, label, hint

    def __missing__(self, key: str) -> Any:
        raise PromptTemplateError(
            f"prompt step {self.step_name!r}: {{{self.label}[{key}]}} is not available"
            f"{did_you_mean(key, self)}; {self.hint} (available: {', '.join(self) or 'none'})"
        )


def _fields(step_name: str, template: str) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:  # e.g. a lone "{": literal braces must be doubled
        raise PromptTemplateError(f"prompt step {step_name!r}: bad template: {exc}") from None


@dataclass(frozen=True, slots=True)
class PromptStep:
    """A step that sends a ``str.format`` template to its model: ``{content}``,
    ``{outputs[STEP]}`` (an earlier step's output), ``{context[KEY]}``."""

    name: str
    prompt: str
    system: str | None = None
    needs: frozenset[str] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        needs: set[str] = set()
        for template in (self.prompt, self.system or ""):
            for f in _fields(self.name, template):
                root = _ROOT.match(f)
                head = root.group() if root else f
                if head not in _ROOTS:
                    raise PromptTemplateError(
                        f"prompt step {self.name!r}: {{{f}}} is not available"
                        f"{did_you_mean(head, _ROOTS)}; use {{content}}, "
                        f"{{outputs[STEP]}} or {{context[KEY]}}"
                    )
                if m := _OUTPUT.match(f):
                    needs.add(m.group(1))
        object.__setattr__(self, "needs", frozenset(needs))

    def render(self, template: str, ctx: StepContext) -> str:
        namespace = {
            "content": ctx.content,
            "outputs": _Named(
                self.name,
                "outputs",
                ctx.outputs,
                "only earlier steps' outputs exist (run_step takes them as outputs=)",
            ),
            "context": _Named(self.name, "context", ctx.context, "pass it in context="),
        }
        try:
            return template.format_map(namespace)
        except (KeyError, IndexError, AttributeError, ValueError) as exc:
            raise PromptTemplateError(
                f"prompt step {self.name!r}: cannot fill the template: {exc!r}"
            ) from None

    async def execute(self, ctx: StepContext) -> Any:
        system = self.render(self.system, ctx) if self.system is not None else None
        return await ctx.llm(self.render(self.prompt, ctx), system=system)
