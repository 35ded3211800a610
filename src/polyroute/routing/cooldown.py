"""Cooldown: a model that fails N times within a window is skipped for a while.

Failure counts expire (``window``) so no model is blacklisted for good; a
success resets the count; a Retry-After longer than the cooldown extends it.

When a cooldown ends the model is *half-open*: the next call that may use it
(``admit``) is its one probe, and the other calls keep skipping it until the
probe is answered.  A success closes it; a failure cools it down again at once.
So a model that is still down costs one request per cooldown, not a burst.
State is in memory, per router; the clock is injected.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from polyroute.clock import Clock
from polyroute.config.schema import CooldownPolicy


@dataclass(slots=True)
class ModelHealth:
    failures: deque[float]
    cooling_until: float = 0.0
    last_error: str | None = None
    half_open: bool = False  # the cooldown ended; the next call is a probe
    probe_started: float | None = None  # a probe is in flight since then


class CooldownTracker:
    def __init__(self, policy: CooldownPolicy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock
        self._health: dict[str, ModelHealth] = {}

    def reconfigure(self, policy: CooldownPolicy) -> None:
        """A reload's new policy; the counts and cooldowns in progress stay."""
        self.policy = policy

    def _h(self, model: str) -> ModelHealth:
        h = self._health.get(model)
        if h is None:
            h = self._health[model] = ModelHealth(deque())
        return h

    def _prune(self, h: ModelHealth, now: float) -> None:
        while h.failures and now - h.failures[0] > self.policy.window:
            h.failures.popleft()

    def record_failure(
        self, model: str, retry_after: float | None = None, error: str | None = None
    ) -> bool:
        """Count one failure; True when this failure starts a cooldown."""
        now = self.clock.monotonic()
        h = self._h(model)
        self._prune(h, now)
        h.failures.append(now)
        h.last_error = error
        started = False
        if h.half_open or len(h.failures) >= self.policy.after_failures:
            h.half_open, h.probe_started = False, None
            until = now + self.policy.seconds
            if retry_after is not None:
                until = max(until, now + retry_after)
            started = h.cooling_until <= now
            h.cooling_until = max(h.cooling_until, until)
        return started

    def record_success(self, model: str) -> None:
        h = self._health.get(model)
        if h is not None:
            h.failures.clear()
            h.cooling_until = 0.0
            h.half_open, h.probe_started = False, None

    def admit(self, model: str) -> bool:
        """Claim the use of a model that is not cooling down: False only when it is
        half-open and another call's probe is in flight."""
        h = self._health.get(model)
        if h is None or not h.half_open:
            return True
        now = self.clock.monotonic()
        if h.probe_started is not None and now - h.probe_started < self._probe_timeout():
            return False
        h.probe_started = now  # this call is the probe
        return True

    def _probe_timeout(self) -> float:
        # A probe that never reports (its caller went away) frees the slot eventually.
        return max(self.policy.seconds, 1.0)

    def reset(self, model: str) -> None:
        self._health.pop(model, None)

    def cooling_until(self, model: str) -> float | None:
        h = self._health.get(model)
        if h is None:
            return None
        now = self.clock.monotonic()
        if h.cooling_until > now:
            return h.cooling_until
        if h.cooling_until:
            # Cooldown over: half-open, counting afresh (the probe's outcome decides).
            h.cooling_until = 0.0
            h.half_open = True
            h.failures.clear()
        if h.half_open and h.probe_started is not None:
            probe_ends = h.probe_started + self._probe_timeout()
            if probe_ends > now:
                return probe_ends  # another call is probing it: skip until it reports
        return None

    def failure_count(self, model: str) -> int:
        h = self._health.get(model)
        if h is None:
            return 0
        self._prune(h, self.clock.monotonic())
        return len(h.failures)

    def snapshot(self) -> dict[str, dict[str, object]]:
        now = self.clock.monotonic()
        out: dict[str, dict[str, object]] = {}
        for model, h in self._health.items():
            self._prune(h, now)
            out[model] = {
                "failures": len(h.failures),
                "cooling_for": max(0.0, h.cooling_until - now),
                "last_error": h.last_error,
            }
        return out
