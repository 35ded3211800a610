"""One candidate, tried with retries: the only place the retry loop lives.

``with_retries`` runs an async call again while its failure is retryable and
the policy allows, sleeping on the injected clock.  It returns the result and
how many retries it took, or raises ``CandidateFailed`` carrying the last
error and the retry count, so the caller can record the attempt.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from polyroute.clock import Clock
from polyroute.errors import ProviderError
from polyroute.routing.retry import Backoff
from polyroute.routing.triggers import trigger_for

T = TypeVar("T")
log = logging.getLogger("polyroute.router")


class CandidateFailed(Exception):
    def __init__(self, error: BaseException, retries: int, history: list[str] | None = None):
        self.error = error
        self.retries = retries
        self.history = history or []
        super().__init__(str(error))


def _describe(exc: ProviderError, delay: float) -> str:
    """What a retried failure was, for the attempt record: 'rate_limit 429, waited 1.0s'."""
    trig = trigger_for(exc)
    kind = trig.value if trig else type(exc).__name__
    status = f" {exc.status}" if exc.status else ""
    return f"{kind}{status}, waited {delay:.2f}s"


async def with_retries(
    call: Callable[[], Awaitable[T]],
    backoff: Backoff,
    clock: Clock,
    rng: random.Random,
    label: str,
    last: bool = True,
) -> tuple[T, list[str]]:
    """The call's result and the retried failures before it (empty when the first try
    worked).  ``last``: no other candidate could be tried after this one (a timeout is
    then retried per policy; otherwise the route moves on at once)."""
    retries = 0
    history: list[str] = []
    while True:
        try:
            return await call(), history
        except ProviderError as exc:
            if retries + 1 >= backoff.max_attempts or not backoff.is_retryable(exc, last):
                raise CandidateFailed(exc, retries, history) from exc
            delay = backoff.delay(retries + 1, exc, rng)
            if delay is None:
                log.info(
                    "retry-after too long, giving up candidate",
                    extra={"candidate": label, "retry_after": exc.retry_after},
                )
                raise CandidateFailed(exc, retries, history) from exc
            retries += 1
            history.append(_describe(exc, delay))
            log.info(
                "retrying candidate",
                extra={
                    "candidate": label,
                    "retry": retries,
                    "delay": round(delay, 3),
                    "status": exc.status,
                    "error_kind": type(exc).__name__,
                },
            )
            await clock.sleep(delay)
        except Exception as exc:  # missing credentials, config: not retryable, still recorded
            raise CandidateFailed(exc, retries, history) from exc
