"""Plain result types: usage, one attempt, the envelope a call returns.

Dataclasses with slots, not pydantic models: these are built on every call and
must stay cheap.  ``to_dict()`` gives the JSON-ready form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Message = dict[str, Any]
Outcome = Literal["success", "error", "skipped"]
# What kind of call a record describes; every kind runs through the same engine.
Kind = Literal["chat", "stream", "image", "embedding"]


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0  # every prompt token, cached ones included
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens: read from the provider's prompt cache
    cache_write_tokens: int = 0  # of prompt_tokens: written to it (Anthropic bills these)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, data: Any) -> Usage:
        """From an OpenAI ``usage`` object (``prompt_tokens_details.cached_tokens``;
        ``cache_write_tokens`` is where polyroute carries Anthropic's cache writes)."""
        if not isinstance(data, dict):
            return cls()
        details = data.get("prompt_tokens_details")
        details = details if isinstance(details, dict) else {}
        return cls(
            int(data.get("prompt_tokens") or 0),
            int(data.get("completion_tokens") or 0),
            int(details.get("cached_tokens") or 0),
            int(details.get("cache_write_tokens") or 0),
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(slots=True)
class Attempt:
    """One candidate tried (or skipped) while serving a route."""

    model: str
    provider: str
    outcome: Outcome
    trigger: str | None = None  # why it failed or was skipped (a FallbackTrigger value)
    retries: int = 0  # extra tries of this same candidate
    status: int | None = None
    request_id: str | None = None
    latency: float = 0.0
    error: str | None = None
    retried: list[str] = field(default_factory=list)  # each retried failure, in order

    def describe(self) -> str:
        bits = [f"{self.model} [{self.outcome}"]
        if self.trigger:
            bits.append(f": {self.trigger}")
        if self.retries:
            bits.append(f", {self.retries} retries")
        if self.request_id:
            bits.append(f", request id {self.request_id}")
        if self.error:
            bits.append(f": {self.error[:300]}")
        bits.append("]")
        return "".join(bits)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Envelope:
    """What every call returns: the answer plus where it came from and what it cost."""

    content: str | None
    model: str  # catalog id (or provider/model) that answered
    provider: str
    route: str
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0  # USD, from catalog prices
    latency: float = 0.0  # seconds, whole call including retries and fallbacks
    attempts: list[Attempt] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cache_hit: bool = False
    saved_cost: float = 0.0  # on a cache hit: what the stored answer cost when it was made
    request_id: str | None = None  # the provider's request id
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    simulated: bool = False
    images: list[dict[str, Any]] | None = None  # image generation results
    embeddings: list[list[float]] | None = None  # embedding results, in input order
    raw: dict[str, Any] | None = None  # provider answer in OpenAI shape
    native: dict[str, Any] | None = None  # the answer as an Anthropic upstream sent it

    @property
    def retries(self) -> int:
        return sum(a.retries for a in self.attempts)

    @property
    def fallbacks(self) -> int:
        return sum(1 for a in self.attempts if a.outcome == "error")

    def to_dict(self, include_raw: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "content": self.content,
            "model": self.model,
            "provider": self.provider,
            "route": self.route,
            "usage": self.usage.to_dict(),
            "cost": self.cost,
            "latency": self.latency,
            "attempts": [a.to_dict() for a in self.attempts],
            "retries": self.retries,
            "warnings": list(self.warnings),
            "cache_hit": self.cache_hit,
            "saved_cost": self.saved_cost,
            "request_id": self.request_id,
            "finish_reason": self.finish_reason,
            "tool_calls": self.tool_calls,
            "simulated": self.simulated,
        }
        if self.images is not None:
            d["images"] = self.images
        if self.embeddings is not None:
            d["embeddings"] = self.embeddings
        if include_raw:
            d["raw"] = self.raw
            if self.native is not None:
                d["native"] = self.native
        return d


@dataclass(slots=True)
class FanOutResult:
    """One model's outcome in a fan-out: an envelope or the error it raised."""

    model: str
    envelope: Envelope | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.envelope is not None

    def to_dict(self) -> dict[str, Any]:
        if self.envelope is not None:
            return {"model": self.model, "ok": True, **self.envelope.to_dict()}
        return {
            "model": self.model,
            "ok": False,
            "error": str(self.error),
            "error_type": type(self.error).__name__,
        }


@dataclass(slots=True)
class CallRecord:
    """One finished call, success or not, as observers (metrics, usage store) see it."""

    kind: Kind
    route: str
    model: str | None
    provider: str | None
    status: str  # "ok", or the error's class name
    time: float  # wall clock, seconds since the epoch, when the call started
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    latency: float = 0.0
    ttft: float | None = None  # time to first chunk, streams only
    malformed_events: int = 0  # streams: malformed events skipped
    retries: int = 0
    fallbacks: int = 0
    cache_hit: bool = False
    saved_cost: float = 0.0
    request_id: str | None = None
    error: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)

    @classmethod
    def from_envelope(
        cls,
        kind: Kind,
        env: Envelope,
        started: float,
        labels: dict[str, str],
    ) -> CallRecord:
        return cls(
            kind=kind,
            route=env.route,
            model=env.model,
            provider=env.provider,
            status="ok",
            time=started,
            usage=env.usage,
            cost=env.cost,
            latency=env.latency,
            retries=env.retries,
            fallbacks=env.fallbacks,
            cache_hit=env.cache_hit,
            saved_cost=env.saved_cost,
            request_id=env.request_id,
            labels=labels,
            attempts=list(env.attempts),
        )

    @classmethod
    def from_error(
        cls,
        kind: Kind,
        route: str,
        exc: BaseException,
        started: float,
        latency: float,
        labels: dict[str, str],
    ) -> CallRecord:
        attempts = list(getattr(exc, "attempts", []) or [])
        last = next((a for a in reversed(attempts) if a.outcome == "error"), None)
        return cls(
            kind=kind,
            route=route,
            model=last.model if last else None,
            provider=last.provider if last else None,
            status=type(exc).__name__,
            time=started,
            latency=latency,
            error=str(exc)[:500],
            labels=labels,
            retries=sum(a.retries for a in attempts),
            fallbacks=sum(1 for a in attempts if a.outcome == "error"),
            attempts=attempts,
            request_id=last.request_id if last else None,
        )
