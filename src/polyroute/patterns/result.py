"""What a workflow pattern returns, and the bookkeeping every pattern shares.

A pattern is several router calls in a fixed shape (classify then answer,
sections then combine, draft then check then fix).  Its result keeps every
call's envelope under a stage name, so cost and latency can be read per stage
and in total; the totals are computed from the calls, so they always add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyroute.errors import PolyrouteError
from polyroute.types import Envelope, Message

if TYPE_CHECKING:
    from polyroute.router import Router

Prompt = str | Sequence[Message]


@dataclass(slots=True)
class PatternCall:
    """One router call of a pattern: which stage made it, through which route."""

    stage: str  # "classify", "answer", "section[2]", "combine", "generate", "check[1]", "fix[1]"
    route: str
    envelope: Envelope

    @property
    def content(self) -> str:
        return self.envelope.content or ""

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "route": self.route, **self.envelope.to_dict()}


@dataclass(slots=True, kw_only=True)
class PatternResult:
    pattern: str
    output: str = ""  # the pattern's final answer
    calls: list[PatternCall] = field(default_factory=list)
    # Wall-clock seconds for the whole pattern: what the caller waited.  Concurrent
    # stages overlap, so this is less than ``model_time`` when a pattern fans out.
    total_latency: float = 0.0

    @property
    def total_cost(self) -> float:
        return sum(c.envelope.cost for c in self.calls)

    @property
    def total_tokens(self) -> int:
        return sum(c.envelope.usage.total_tokens for c in self.calls)

    @property
    def model_time(self) -> float:
        """Seconds summed over every call, as if they had run one after another."""
        return sum(c.envelope.latency for c in self.calls)

    @property
    def outputs(self) -> dict[str, str]:
        return {c.stage: c.content for c in self.calls}

    @property
    def envelopes(self) -> list[Envelope]:
        return [c.envelope for c in self.calls]

    @property
    def warnings(self) -> list[str]:
        out: list[str] = []
        for c in self.calls:
            out.extend(w for w in c.envelope.warnings if w not in out)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "output": self.output,
            "calls": [c.to_dict() for c in self.calls],
            "total_cost": self.total_cost,
            "total_tokens": self.total_tokens,
            "total_latency": self.total_latency,
            "model_time": self.model_time,
            "warnings": self.warnings,
        }


class PatternError(PolyrouteError):
    """A stage of a pattern failed after earlier stages had run (and cost money).

    ``stage`` names the failed stage; ``result`` holds the calls that did
    succeed, so their cost is still accounted; the router's error (usually a
    ``RouteExhaustedError`` naming every attempt) is chained as ``__cause__``.
    """

    status_code = 502

    def __init__(self, stage: str, result: PatternResult, cause: BaseException) -> None:
        self.stage = stage
        self.result = result
        super().__init__(f"{result.pattern}: stage {stage!r} failed: {cause}")


def as_messages(prompt: Prompt, system: str | None = None) -> list[Message]:
    msgs: list[Message] = (
        [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    )
    if system is not None:
        msgs.insert(0, {"role": "system", "content": system})
    return msgs


class PatternRun:
    """Calls the router for one pattern run and records each call on ``result``."""

    def __init__(self, router: Router, result: PatternResult, product_type: str | None) -> None:
        self.router = router
        self.result = result
        self.product_type = product_type
        self._t0 = router.clock.monotonic()

    def check_routes(self, *routes: str) -> None:
        """Resolve every route before the first call: a misspelt route fails here,
        as the router's own error, before any stage has spent money."""
        for route in routes:
            self.router.resolve(route, self.product_type)

    async def call(
        self, stage: str, route: str, prompt: Prompt, system: str | None = None, **params: Any
    ) -> Envelope:
        env = await self.complete(stage, route, prompt, system, **params)
        self.record(stage, route, env)
        return env

    async def complete(
        self, stage: str, route: str, prompt: Prompt, system: str | None = None, **params: Any
    ) -> Envelope:
        """One call, not yet recorded (concurrent stages record in a fixed order)."""
        try:
            return await self.router.complete(
                route,
                as_messages(prompt, system),
                product_type=self.product_type,
                labels={"pattern": self.result.pattern, "stage": stage},
                **params,
            )
        except Exception as exc:
            raise self.failed(stage, exc) from exc

    def record(self, stage: str, route: str, env: Envelope) -> None:
        self.result.calls.append(PatternCall(stage, route, env))

    def failed(self, stage: str, exc: BaseException) -> PatternError:
        self.finish()
        return PatternError(stage, self.result, exc)

    def finish(self) -> None:
        self.result.total_latency = self.router.clock.monotonic() - self._t0
