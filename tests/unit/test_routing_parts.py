"""Retry policy, error classification, cooldown and validators, with injected time."""

from __future__ import annotations

import email.utils
import random

import orjson
import pytest

from polyroute import errors as E
from polyroute.clock import ManualClock
from polyroute.config.schema import Acceptance, CooldownPolicy, RetryOverride, RetryPolicy
from polyroute.providers.classify import classify_http_error, parse_retry_after
from polyroute.routing.cooldown import CooldownTracker
from polyroute.routing.retry import Backoff
from polyroute.routing.triggers import FallbackTrigger, trigger_for
from polyroute.routing.validators import Verdict, acceptance_validator

NOW = 1_767_225_600.0


def _err(
    status: int, body: dict[str, object], headers: dict[str, str] | None = None
) -> E.ProviderError:
    return classify_http_error(
        provider="p",
        model="m",
        status=status,
        body=orjson.dumps(body),
        headers=headers or {},
        now=NOW,
    )


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "1500"}, NOW) == 1.5
    assert parse_retry_after({"retry-after": "7"}, NOW) == 7.0
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, NOW) == pytest.approx(30.0)
    past = email.utils.formatdate(NOW - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, NOW) == 0.0
    assert parse_retry_after({"retry-after": "soon"}, NOW) is None
    assert parse_retry_after({"retry-after": "999999"}, NOW) is None  # absurd: ignored
    assert parse_retry_after({"retry-after-ms": "200", "retry-after": "9"}, NOW) == 0.2


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (429, {"error": {"message": "Rate limit reached", "type": "requests"}}, E.RateLimitError),
        (
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            E.OverloadedError,
        ),
        (500, {"error": {"message": "boom", "type": "server_error"}}, E.ServerError),
        (
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 128000 tokens.",
                    "code": "context_length_exceeded",
                }
            },
            E.ContextWindowExceededError,
        ),
        (
            400,
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "prompt is too long: 210000 tokens > 200000 maximum",
                },
            },
            E.ContextWindowExceededError,
        ),
        (
            400,
            {
                "error": {
                    "message": "The input token count (1200000) exceeds the maximum number of "
                    "tokens allowed (1048576)."
                }
            },
            E.ContextWindowExceededError,
        ),
        (
            400,
            {
                "error": {
                    "message": "Please reduce the length of the messages or completion.",
                    "type": "invalid_request_error",
                }
            },
            E.ContextWindowExceededError,
        ),
        (
            400,
            {"error": {"message": "blocked", "code": "content_policy_violation"}},
            E.ContentFilterError,
        ),
        (401, {"error": {"message": "Incorrect API key provided"}}, E.AuthError),
        (404, {"error": {"message": "The model `x` does not exist"}}, E.ModelNotFoundError),
        (422, {"error": {"message": "bad param"}}, E.BadRequestError),
    ],
)
def test_classification_by_kind(status: int, body: dict[str, object], cls: type) -> None:
    err = _err(status, body, {"x-request-id": "req_1"})
    assert type(err) is cls
    assert err.status == status and err.request_id == "req_1"


def test_classification_keeps_retry_after_and_handles_non_json() -> None:
    err = _err(429, {"error": {"message": "slow down"}}, {"retry-after": "3"})
    assert isinstance(err, E.RateLimitError) and err.retry_after == 3.0 and err.retryable
    raw = classify_http_error(
        provider="p", model="m", status=502, body=b"<html>bad gateway</html>", headers={}, now=NOW
    )
    assert isinstance(raw, E.ServerError) and "bad gateway" in str(raw)


def test_backoff_bounds_and_cap() -> None:
    b = Backoff.from_policy(RetryPolicy(base_delay=0.5, max_delay=3.0, max_attempts=10))
    rng = random.Random(1)
    err = E.ServerError("x", status=500)
    for n in range(1, 9):
        cap = min(3.0, 0.5 * 2 ** (n - 1))
        delays = [b.delay(n, err, rng) for _ in range(200)]
        assert all(d is not None and 0.0 <= d <= cap for d in delays)
        assert max(d for d in delays if d is not None) > cap * 0.8  # full jitter reaches the cap


def test_backoff_retry_after_and_statuses() -> None:
    b = Backoff.from_policy(RetryPolicy(max_retry_after=10))
    rng = random.Random(0)
    assert b.delay(1, E.RateLimitError("x", status=429, retry_after=4.0), rng) == 4.0
    assert b.delay(1, E.RateLimitError("x", status=429, retry_after=11.0), rng) is None
    assert b.is_retryable(E.OverloadedError("x", status=529))
    assert not b.is_retryable(E.BadRequestError("x", status=400))
    assert b.is_retryable(E.ProviderTimeoutError("x"))
    assert not b.is_retryable(E.ContextWindowExceededError("x"))


def test_per_provider_override() -> None:
    b = Backoff.from_policy(RetryPolicy(), RetryOverride(max_attempts=5, retry_on=[503]))
    assert b.max_attempts == 5
    assert not b.is_retryable(E.ServerError("x", status=500))
    assert b.is_retryable(E.ServerError("x", status=503))
    assert Backoff.from_policy(RetryPolicy(), None, max_attempts=1).max_attempts == 1


def test_cooldown_lifecycle() -> None:
    clock = ManualClock()
    cd = CooldownTracker(CooldownPolicy(after_failures=3, seconds=60, window=30), clock)
    assert not cd.record_failure("m")
    assert not cd.record_failure("m")
    assert cd.cooling_until("m") is None
    assert cd.record_failure("m")  # third within the window starts the cooldown
    until = cd.cooling_until("m")
    assert until == pytest.approx(clock.monotonic() + 60)
    clock.advance(59)
    assert cd.cooling_until("m") is not None
    clock.advance(2)
    assert cd.cooling_until("m") is None
    assert cd.failure_count("m") == 0  # a fresh start after the cooldown


def test_cooldown_window_expires_counts_and_retry_after_extends() -> None:
    clock = ManualClock()
    cd = CooldownTracker(CooldownPolicy(after_failures=2, seconds=10, window=5), clock)
    cd.record_failure("m")
    clock.advance(6)
    cd.record_failure("m")
    assert cd.cooling_until("m") is None
    cd.record_failure("m", retry_after=100)
    assert cd.cooling_until("m") == pytest.approx(clock.monotonic() + 100)
    cd.record_success("m")
    assert cd.cooling_until("m") is None and cd.failure_count("m") == 0


def test_trigger_mapping() -> None:
    assert trigger_for(E.RateLimitError("x")) is FallbackTrigger.RATE_LIMIT
    assert trigger_for(TimeoutError()) is FallbackTrigger.TIMEOUT
    assert trigger_for(ConnectionResetError()) is FallbackTrigger.CONNECTION_ERROR
    assert trigger_for(E.BadRequestError("x")) is None
    assert trigger_for(ValueError()) is None
    assert (
        trigger_for(E.ResponseRejectedError("x", "missing_field")) is FallbackTrigger.MISSING_FIELD
    )


def test_acceptance_validator() -> None:
    check = acceptance_validator(Acceptance(required_fields=["a"], min_length=2))
    assert check('{"a": 1}').verdict is Verdict.PASS
    assert check("{}").trigger is FallbackTrigger.MISSING_FIELD
    assert check("[1]").trigger is FallbackTrigger.MISSING_FIELD
    assert check("nope").trigger is FallbackTrigger.INVALID_STRUCTURE
    assert check("x").trigger is FallbackTrigger.VALIDATOR_HARD_FAIL
    schema = acceptance_validator(
        Acceptance(json_schema={"type": "array", "items": {"type": "integer"}})
    )
    assert schema("[1, 2]").verdict is Verdict.PASS
    bad = schema('[1, "x"]')
    assert bad.hard_fail and "1" in bad.message
