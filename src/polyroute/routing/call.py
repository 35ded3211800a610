"""One routed call in progress: tries candidates and records every attempt.

``CallContext.try_candidate`` is the unit the strategies compose: skip when
cooling down or incapable, get the provider client (a missing key is a
recorded failure, not a crash), call with retries, validate the answer, update
cooldown state.  It returns an ``Envelope`` or None (the candidate is out) and
raises only when falling back cannot help (a bad request).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from polyroute.clock import Clock
from polyroute.errors import ContentFilterError, ProviderError, ResponseRejectedError
from polyroute.providers.registry import Client, ProviderRegistry
from polyroute.routing.attempt import CandidateFailed, with_retries
from polyroute.routing.capabilities import Needs, skip_reason
from polyroute.routing.cooldown import CooldownTracker
from polyroute.routing.ratelimit import LocalRateLimitError
from polyroute.routing.resolve import Candidate, Route
from polyroute.routing.retry import Backoff
from polyroute.routing.triggers import trigger_for
from polyroute.routing.validators import Validation, Verdict
from polyroute.types import Attempt, Envelope, Message

log = logging.getLogger("polyroute.router")

Invoke = Callable[[Client, Candidate], Awaitable[Envelope]]
BackoffFor = Callable[[Client], Backoff]


@dataclass(slots=True)
class CallContext:
    route: Route
    invoke: Invoke
    registry: ProviderRegistry
    cooldown: CooldownTracker
    backoff_for: BackoffFor
    clock: Clock
    rng: random.Random
    needs: Needs
    messages: list[Message] | None = None
    validator: Callable[[str | None], Validation] | None = None
    budget_skip: Callable[[Candidate], str | None] | None = None
    rate_limit: Callable[[Client, Candidate], Awaitable[float]] | None = None
    fallback_on_content_filter: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def _skip(self, c: Candidate, reason: str) -> None:
        log.info(
            "candidate skipped",
            extra={"route": self.route.name, "candidate": c.info.id, "reason": reason},
        )
        self.attempts.append(Attempt(c.info.id, c.info.provider, "skipped", trigger=reason))

    def usable(self, c: Candidate) -> bool:
        """Capability and cooldown filter, recorded as skipped attempts."""
        if self.cooldown.cooling_until(c.info.id) is not None:
            self._skip(c, "cooldown")
            return False
        reason = skip_reason(c.info, self.needs, self.messages)
        if reason is None and self.needs.untranslatable and self._translates(c):
            reason = f"untranslatable: {self.needs.untranslatable}"
        if reason is None and self.budget_skip is not None:
            reason = self.budget_skip(c)
        if reason is not None:
            self._skip(c, reason)
            return False
        if not self.cooldown.admit(c.info.id):  # half-open: one probe at a time
            self._skip(c, "cooldown")
            return False
        return True

    def _translates(self, c: Candidate) -> bool:
        """Whether ``c``'s provider gets a translation, not the native body as sent."""
        spec = self.registry.spec(c.info.provider)
        if self.needs.native_wire == "responses":
            return not spec.responses_api
        return spec.wire in ("openai", "openai-compatible")

    def could_try(self, c: Candidate) -> bool:
        """Whether ``c`` would pass ``usable`` now (nothing recorded)."""
        if self.cooldown.cooling_until(c.info.id) is not None:
            return False
        if skip_reason(c.info, self.needs, self.messages) is not None:
            return False
        return self.budget_skip is None or self.budget_skip(c) is None

    def only_budget_skips(self) -> bool:
        """Nothing was tried and budget is why (at least one candidate was affordable
        otherwise nothing would be over budget)."""
        return (
            bool(self.attempts)
            and all(a.outcome == "skipped" for a in self.attempts)
            and any((a.trigger or "").startswith("budget:") for a in self.attempts)
        )

    async def try_candidate(
        self, c: Candidate, soft_ok: bool = True, last: bool = True
    ) -> Envelope | None:
        """Call one candidate.  ``soft_ok=False`` (cascade) treats a soft
        validator failure as a reason to escalate; ``last``: no other candidate
        could be tried after this one."""
        info = c.info
        t0 = self.clock.monotonic()
        history: list[str] = []
        try:
            try:
                client = self.registry.client(info.provider)
            except Exception as exc:  # missing key / base URL: this candidate is out
                raise CandidateFailed(exc, 0) from exc
            if self.rate_limit is not None:
                try:
                    await self.rate_limit(client, c)
                except LocalRateLimitError as exc:
                    raise CandidateFailed(exc, 0) from exc
            if log.isEnabledFor(logging.INFO):  # the extra dict is not free on the hot path
                log.info(
                    "candidate chosen",
                    extra={
                        "route": self.route.name,
                        "candidate": info.id,
                        "provider": info.provider,
                    },
                )
            env, history = await with_retries(
                lambda: self.invoke(client, c),
                self.backoff_for(client),
                self.clock,
                self.rng,
                info.id,
                last,
            )
            verdict = self.validator(env.content) if self.validator else None
            if verdict is not None and verdict.verdict is not Verdict.PASS:
                if verdict.verdict is Verdict.HARD_FAIL or not soft_ok:
                    raise CandidateFailed(
                        ResponseRejectedError(
                            verdict.message or "validator refused the answer",
                            trigger=verdict.trigger.value,
                            model=info.id,
                        ),
                        len(history),
                        history,
                    )
                env.warnings.append(f"{info.id}: validator soft fail: {verdict.message}")
        except CandidateFailed as failed:
            self._failed(c, failed.error, failed.history, t0)
            return None
        self.cooldown.record_success(info.id)
        self.attempts.append(
            Attempt(
                info.id,
                info.provider,
                "success",
                retries=len(history),
                request_id=env.request_id,
                latency=self.clock.monotonic() - t0,
                retried=history,
            )
        )
        env.attempts = self.attempts
        env.warnings = [*self.warnings, *env.warnings]
        return env

    def _failed(self, c: Candidate, error: BaseException, history: list[str], t0: float) -> None:
        retries = len(history)
        info = c.info
        trigger = trigger_for(error)
        pe = error if isinstance(error, ProviderError) else None
        self.attempts.append(
            Attempt(
                info.id,
                info.provider,
                "error",
                trigger=trigger.value if trigger else type(error).__name__,
                retries=retries,
                status=pe.status if pe else None,
                request_id=pe.request_id if pe else None,
                latency=self.clock.monotonic() - t0,
                error=str(error),
                retried=history,
            )
        )
        self.errors.append(error)
        if trigger is None:
            raise error  # the request itself is at fault: another model would refuse it too
        if (
            isinstance(error, ContentFilterError)
            and error.status is not None
            and not self.fallback_on_content_filter
        ):
            # The provider refused the request itself: the caller sees its status and
            # reason (policies.fallback.on_content_filter opts in to falling back).
            raise error
        # Validator refusals and missing keys say nothing about the model's health.
        if (
            pe is not None
            and not isinstance(pe, LocalRateLimitError)
            and self.cooldown.record_failure(info.id, pe.retry_after, str(error))
        ):
            log.warning(
                "model cooling down",
                extra={"candidate": info.id, "seconds": self.cooldown.policy.seconds},
            )
        log.info(
            "candidate failed, falling back",
            extra={
                "route": self.route.name,
                "candidate": info.id,
                "trigger": str(trigger),
                "retries": retries,
            },
        )
