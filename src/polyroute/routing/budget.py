"""Budgets: refuse spending before it happens.

- Per request: a candidate whose estimated cost (counted prompt tokens plus
  max_tokens, at catalog prices) is over ``max_cost_per_request`` is skipped;
  when every candidate is, the call is refused with the estimate and the limit
  (or, for a tier route with ``step_down``, served by the next cheaper tier).
- Per month (globally and per API key): each call reserves its worst-case
  estimate before it starts and settles to the real cost when it ends, all
  without an ``await`` between check and reserve, so a burst of concurrent
  calls cannot overspend together.

State is per process (``SpendLedger``); seed it from the usage store at start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from polyroute.config.catalog import ModelInfo
from polyroute.config.schema import Budget
from polyroute.errors import BudgetExceededError
from polyroute.tokens import count_messages
from polyroute.types import Message

DEFAULT_ESTIMATE_OUTPUT = 4096  # when neither the call nor the route caps max_tokens
GLOBAL = ""


def month_of(epoch: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(epoch))


def estimate_cost(
    info: ModelInfo,
    messages: list[Message] | None,
    max_tokens: int | None,
    images: int = 0,
    prompt_tokens: int | None = None,
) -> float:
    """Worst-case cost of one call: the prompt as counted now (or ``prompt_tokens``,
    already counted for this model), the whole output allowance."""
    if images:
        return images * (info.price_per_image or 0.0)
    prompt = (
        prompt_tokens
        if prompt_tokens is not None
        else count_messages(messages or [], info.provider, info.name)
    )
    out = max_tokens or min(
        info.max_output_tokens or DEFAULT_ESTIMATE_OUTPUT, DEFAULT_ESTIMATE_OUTPUT
    )
    return (prompt * info.price_input + out * info.price_output) / 1_000_000


@dataclass(slots=True)
class Reservation:
    month: str
    scopes: tuple[str, ...]
    amount: float
    settled: bool = False
    remote_id: str | None = None  # held in the shared (Redis) ledger under this id


class SpendLedger:
    """Month-to-date spend and in-flight reservations per scope (global, key ids)."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._spent: dict[tuple[str, str], float] = {}
        self._reserved: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()  # the sync facade may call from another thread

    def seed(self, amount: float, scope: str = GLOBAL, month: str | None = None) -> None:
        """Spend already recorded (from the usage store) for the month."""
        key = (month or month_of(self._now()), scope)
        with self._lock:
            self._spent[key] = self._spent.get(key, 0.0) + amount

    def absorb(self, other: SpendLedger) -> None:
        """Take over ``other``'s month-to-date spend (a reload that changed the state)."""
        with self._lock:
            for k, v in other._spent.items():
                self._spent[k] = self._spent.get(k, 0.0) + v

    def spent(self, scope: str = GLOBAL) -> float:
        return self._spent.get((month_of(self._now()), scope), 0.0)

    def reserved(self, scope: str = GLOBAL) -> float:
        return self._reserved.get((month_of(self._now()), scope), 0.0)

    def reserve(self, amount: float, limits: Mapping[str, float]) -> tuple[Reservation, list[str]]:
        """Reserve ``amount`` in every scope of ``limits``.  Returns the reservation
        and the scopes it would push over their limit (empty when all fit); the
        caller decides whether that is a refusal or a warning."""
        month = month_of(self._now())
        with self._lock:
            over = [
                scope
                for scope, limit in limits.items()
                if self._spent.get((month, scope), 0.0)
                + self._reserved.get((month, scope), 0.0)
                + amount
                > limit + 1e-12
            ]
            for scope in limits:
                k = (month, scope)
                self._reserved[k] = self._reserved.get(k, 0.0) + amount
        return Reservation(month, tuple(limits), amount), over

    async def reserve_async(
        self, amount: float, limits: Mapping[str, float], refuse: bool
    ) -> tuple[Reservation | None, list[str]]:
        """``reserve``, refusing (reserving nothing, None) when ``refuse`` and any scope
        would go over.  The shared ledger does this in Redis for every replica."""
        r, over = self.reserve(amount, limits)
        if over and refuse:
            self.settle(r, 0.0)
            return None, over
        return r, over

    async def seed_async(self, amount: float, scope: str = GLOBAL) -> None:
        """``seed`` (the shared ledger writes it once for every replica)."""
        self.seed(amount, scope)

    async def close(self) -> None:
        return None

    def settle(self, r: Reservation, actual: float) -> None:
        if r.settled:
            return
        r.settled = True
        with self._lock:
            for scope in r.scopes:
                k = (r.month, scope)
                self._reserved[k] = max(0.0, self._reserved.get(k, 0.0) - r.amount)
                self._spent[k] = self._spent.get(k, 0.0) + actual


class BudgetGuard:
    def __init__(self, budget: Budget, ledger: SpendLedger) -> None:
        self.budget = budget
        self.ledger = ledger

    def per_request_skip(self, estimate: float) -> str | None:
        limit = self.budget.max_cost_per_request
        if limit is not None and estimate > limit:
            return f"budget:max_cost_per_request (estimated ${estimate:.6f} > ${limit:.6f})"
        return None

    def refuse_all(self, route: str, cheapest: float) -> BudgetExceededError:
        return BudgetExceededError(
            f"route {route!r}: estimated cost ${cheapest:.6f} for the cheapest candidate is over "
            f"budget.max_cost_per_request ${self.budget.max_cost_per_request:.6f}; lower "
            "max_tokens, shorten the prompt, or pick a cheaper route"
        )

    def limits_for(self, api_key: str | None) -> dict[str, float]:
        limits: dict[str, float] = {}
        if self.budget.monthly is not None:
            limits[GLOBAL] = self.budget.monthly
        if api_key:
            per = self.budget.keys.get(api_key)
            monthly = per.monthly if per is not None else self.budget.per_key_monthly
            if monthly is not None:
                limits[api_key] = monthly
        return limits

    async def open(
        self, estimate: float, api_key: str | None
    ) -> tuple[Reservation | None, str | None]:
        """Reserve a call's worst case against the monthly limits (in every replica's
        shared ledger when there is one).  Returns the reservation and a warning
        (``warn`` mode); raises in ``stop`` mode."""
        limits = self.limits_for(api_key)
        if not limits:
            return None, None
        stop = self.budget.on_monthly_exceeded != "warn"
        r, over = await self.ledger.reserve_async(estimate, limits, refuse=stop)
        if not over:
            return r, None
        message = self._over_message(over, limits, estimate)
        if r is None:
            raise BudgetExceededError(message)
        return r, message

    def _over_message(self, over: list[str], limits: Mapping[str, float], estimate: float) -> str:
        parts = []
        for scope in over:
            who = "monthly budget" if scope == GLOBAL else f"monthly budget of key {scope}"
            in_flight = max(0.0, self.ledger.reserved(scope) - estimate)
            parts.append(
                f"{who} ${limits[scope]:.2f} (spent ${self.ledger.spent(scope):.4f}, "
                f"in flight ${in_flight:.4f}, this call up to ${estimate:.4f})"
            )
        return "would exceed the " + "; ".join(parts)
