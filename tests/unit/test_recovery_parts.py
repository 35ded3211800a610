"""Mid-stream recovery pieces, half-open cooldowns and the timeout retry rule."""

from __future__ import annotations

from polyroute import BadRequestError, ManualClock, ProviderTimeoutError
from polyroute.config.schema import CooldownPolicy, RetryPolicy
from polyroute.routing.cooldown import CooldownTracker
from polyroute.routing.recovery import (
    CONTINUE_INSTRUCTION,
    Overlap,
    continuation_messages,
    rejects_prefill,
)
from polyroute.routing.retry import Backoff

MSGS = [{"role": "user", "content": "Tell me a story"}]


def test_continuation_with_prefill_ends_with_the_sent_text() -> None:
    out = continuation_messages(MSGS, "Once upon a time ", prefill=True)
    assert out == [*MSGS, {"role": "assistant", "content": "Once upon a time"}]
    assert MSGS == [{"role": "user", "content": "Tell me a story"}]  # not mutated


def test_continuation_without_prefill_asks_to_continue() -> None:
    out = continuation_messages(MSGS, "Once upon", prefill=False)
    assert out[-2] == {"role": "assistant", "content": "Once upon"}
    assert out[-1] == {"role": "user", "content": CONTINUE_INSTRUCTION}


def test_overlap_trims_what_was_already_sent() -> None:
    o = Overlap("The quick brown fox jumps")
    assert o.feed("brown fox") == ""  # held: not enough text yet to decide
    assert o.feed(" jumps over the lazy dog", final=True) == " over the lazy dog"
    assert o.feed(" again") == " again"  # decided: text passes through


def test_overlap_keeps_a_continuation_that_repeats_nothing() -> None:
    o = Overlap("abc")
    assert o.feed("def") == "def"
    short = Overlap("Hello, wor")
    assert short.feed("ld!", final=True) == "ld!"  # a shared letter is no repeat


def test_prefill_refusal_is_told_from_other_bad_requests() -> None:
    refusal = BadRequestError("This model does not support assistant message prefill", status=400)
    assert rejects_prefill(refusal)
    assert not rejects_prefill(BadRequestError("max_tokens too large", status=400))
    assert not rejects_prefill(ProviderTimeoutError("slow"))


def test_half_open_lets_one_probe_through() -> None:
    clock = ManualClock()
    cd = CooldownTracker(CooldownPolicy(after_failures=2, seconds=60, window=60), clock)
    cd.record_failure("m")
    assert cd.record_failure("m")  # cooling
    assert cd.cooling_until("m") is not None
    clock.advance(61)
    assert cd.cooling_until("m") is None and cd.admit("m")  # this call is the probe
    assert cd.cooling_until("m") is not None  # others skip while the probe is out
    assert not cd.admit("m")
    cd.record_success("m")
    assert cd.cooling_until("m") is None and cd.admit("m")  # closed


def test_a_failed_probe_cools_down_again_at_once() -> None:
    clock = ManualClock()
    cd = CooldownTracker(CooldownPolicy(after_failures=3, seconds=30, window=60), clock)
    for _ in range(3):
        cd.record_failure("m")
    clock.advance(31)
    assert cd.cooling_until("m") is None and cd.admit("m")
    assert cd.record_failure("m")  # one failure in half-open re-trips it
    until = cd.cooling_until("m")
    assert until is not None and until - clock.monotonic() == 30


def test_timeouts_are_retried_only_on_the_last_candidate() -> None:
    exc = ProviderTimeoutError("no answer", provider="p", model="m")
    backoff = Backoff.from_policy(RetryPolicy())
    assert not backoff.is_retryable(exc, last=False)
    assert backoff.is_retryable(exc, last=True)
    opted_in = Backoff.from_policy(RetryPolicy(retry_on=[429, "timeout"]))
    assert opted_in.is_retryable(exc, last=False) and opted_in.retry_on == {429}
