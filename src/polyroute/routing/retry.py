"""Retry policy for one candidate: which failures to retry and how long to wait.

Capped exponential backoff with full jitter (a uniform draw in
``[0, min(max_delay, base_delay * 2**n)]``), unless the provider said how long
to wait (``retry-after-ms`` / ``retry-after``), which is honoured up to
``max_retry_after``.  A longer Retry-After is not slept: the candidate is
given up so the route can fall back at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from polyroute.config.schema import RetryOverride, RetryPolicy
from polyroute.errors import ProviderError, ProviderTimeoutError

_NO_OVERRIDE = RetryOverride()


@dataclass(frozen=True, slots=True)
class Backoff:
    max_attempts: int
    base_delay: float
    max_delay: float
    max_retry_after: float
    retry_on: frozenset[int]
    # A timed-out candidate is retried only when it is the last one that can be tried,
    # unless the policy's retry_on names "timeout": waiting again on a model that just
    # used up the deadline is worse than asking the next one.
    retry_timeouts: bool = False

    @classmethod
    def from_policy(
        cls,
        policy: RetryPolicy,
        override: RetryOverride | None = None,
        max_attempts: int | None = None,
    ) -> Backoff:
        o = override or _NO_OVERRIDE
        retry_on = o.retry_on if o.retry_on is not None else policy.retry_on
        return cls(
            max_attempts=max_attempts or o.max_attempts or policy.max_attempts,
            base_delay=policy.base_delay if o.base_delay is None else o.base_delay,
            max_delay=policy.max_delay if o.max_delay is None else o.max_delay,
            max_retry_after=(
                policy.max_retry_after if o.max_retry_after is None else o.max_retry_after
            ),
            retry_on=frozenset(s for s in retry_on if isinstance(s, int)),
            retry_timeouts="timeout" in retry_on,
        )

    def is_retryable(self, error: ProviderError, last: bool = True) -> bool:
        """``last``: no other candidate could be tried after this one."""
        if error.status is not None:
            return error.status in self.retry_on
        if isinstance(error, ProviderTimeoutError):
            return error.retryable and (last or self.retry_timeouts)
        return error.retryable  # resets, malformed bodies carry no status

    def delay(self, retry_number: int, error: ProviderError, rng: random.Random) -> float | None:
        """Seconds to wait before retry ``retry_number`` (1-based), or None when
        the provider asked for longer than ``max_retry_after``."""
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            return error.retry_after
        cap = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        return rng.uniform(0.0, cap)
