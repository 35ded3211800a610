"""Retry and fallback over real HTTP against the fake provider, with an injected clock."""

from __future__ import annotations

import email.utils

import pytest

from polyroute import (
    BadRequestError,
    FallbackTrigger,
    RouteExhaustedError,
    Verdict,
)
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import ANTHROPIC_KEY, OPENAI_KEY, make_router

pytestmark = pytest.mark.asyncio


async def test_429_twice_then_500_falls_back_with_both_attempts(fake: FakeProviderThread) -> None:
    router, clock = make_router(fake)
    fake.script(
        "model-a",
        [
            {"kind": "status", "status": 429, "retry_after": "1"},
            {"kind": "status", "status": 429, "retry_after": "2"},
            {"kind": "status", "status": 500},
        ],
    )
    env = await router.complete("ab", "hello")
    assert env.model == "b" and "model-b" in (env.content or "")
    assert [(a.model, a.outcome, a.trigger, a.retries) for a in env.attempts] == [
        ("a", "error", "server_error", 2),
        ("b", "success", None, 0),
    ]
    assert env.attempts[0].status == 500 and env.attempts[0].request_id
    assert clock.sleeps == [1.0, 2.0]  # Retry-After honoured, no jitter
    assert env.attempts[0].retried == [
        "rate_limit 429, waited 1.00s",
        "rate_limit 429, waited 2.00s",
    ]
    assert env.retries == 2 and env.fallbacks == 1
    assert [r.body["model"] for r in fake.requests_to("/v1/chat/completions")] == [
        "model-a",
        "model-a",
        "model-a",
        "model-b",
    ]
    await router.aclose()


async def test_backoff_is_full_jitter_within_cap(fake: FakeProviderThread) -> None:
    router, clock = make_router(fake, seed=42)
    fake.script("model-a", [{"kind": "status", "status": 503}, {"kind": "status", "status": 502}])
    env = await router.complete("a", "hi")
    assert env.model == "a" and env.retries == 2
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 0.5 and 0 <= clock.sleeps[1] <= 1.0
    assert clock.sleeps[0] != clock.sleeps[1]
    await router.aclose()


async def test_retry_after_ms_and_http_date(fake: FakeProviderThread) -> None:
    router, clock = make_router(fake)
    fake.script("model-a", [{"kind": "status", "status": 429, "retry_after_ms": "250"}])
    await router.complete("a", "hi")
    assert clock.sleeps == [0.25]
    clock.sleeps.clear()
    import time

    date = email.utils.formatdate(time.time() + 5, usegmt=True)
    fake.script("model-a", [{"kind": "status", "status": 429, "retry_after": date}])
    await router.complete("a", "hi")
    assert len(clock.sleeps) == 1 and 3.0 <= clock.sleeps[0] <= 5.0
    await router.aclose()


async def test_retry_after_beyond_cap_falls_back_without_sleeping(fake: FakeProviderThread) -> None:
    router, clock = make_router(fake)
    fake.script("model-a", [{"kind": "status", "status": 429, "retry_after": "600"}])
    env = await router.complete("ab", "hi")
    assert env.model == "b"
    assert clock.sleeps == []
    assert env.attempts[0].trigger == "rate_limit"
    await router.aclose()


@pytest.mark.parametrize(
    ("fault", "trigger", "retries"),
    [
        ({"kind": "status", "status": 500}, FallbackTrigger.SERVER_ERROR, 2),
        ({"kind": "status", "status": 503}, FallbackTrigger.OVERLOADED, 2),  # "overloaded" wording
        ({"kind": "reset"}, FallbackTrigger.CONNECTION_ERROR, 2),
        ({"kind": "malformed"}, FallbackTrigger.INVALID_RESPONSE, 2),
        ({"kind": "context_length"}, FallbackTrigger.CONTEXT_WINDOW_EXCEEDED, 0),
        # (a request-side content-policy 400 falls back only when opted in: test_failover.py)
        ({"kind": "content_filter", "mode": "finish_reason"}, FallbackTrigger.CONTENT_FILTERED, 0),
        ({"kind": "status", "status": 401}, FallbackTrigger.AUTH_ERROR, 0),
        ({"kind": "status", "status": 404}, FallbackTrigger.MODEL_NOT_FOUND, 0),
    ],
)
async def test_each_provider_failure_fires_its_trigger(
    fake: FakeProviderThread, fault: dict[str, object], trigger: FallbackTrigger, retries: int
) -> None:
    router, _ = make_router(fake)
    fake.script("model-a", [fault] * 3)
    env = await router.complete("ab", "hi")
    assert env.model == "b"
    first = env.attempts[0]
    assert (first.model, first.outcome, first.trigger, first.retries) == (
        "a",
        "error",
        trigger.value,
        retries,
    )
    await router.aclose()


async def test_timeout_falls_back(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, policies={"retry": {"max_attempts": 1}})
    fake.script("model-a", [{"kind": "hang", "seconds": 5}])
    env = await router.complete("ab", "hi", timeout=0.2)
    assert env.model == "b"
    assert env.attempts[0].trigger == "timeout"
    await router.aclose()


async def test_anthropic_529_is_overloaded_and_retried(fake: FakeProviderThread) -> None:
    router, clock = make_router(fake, routes={"ca": {"models": ["c1", "a"]}})
    fake.script("claude-c1", [{"kind": "status", "status": 529}] * 3)
    env = await router.complete("ca", "hi")
    assert env.model == "a"
    assert env.attempts[0].trigger == "overloaded" and env.attempts[0].retries == 2
    assert len(clock.sleeps) == 2
    await router.aclose()


async def test_bad_request_does_not_fall_back(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    fake.script("model-a", [{"kind": "status", "status": 400}])
    with pytest.raises(BadRequestError):
        await router.complete("ab", "hi")
    assert [r.body["model"] for r in fake.requests_to("/v1/chat/completions")] == ["model-a"]
    await router.aclose()


async def test_all_fail_names_route_and_every_attempt_and_chains_last(
    fake: FakeProviderThread,
) -> None:
    router, _ = make_router(fake, policies={"retry": {"max_attempts": 1}})
    fake.script("model-a", [{"kind": "status", "status": 500}])
    fake.script("model-b", [{"kind": "status", "status": 429}])
    with pytest.raises(RouteExhaustedError) as info:
        await router.complete("ab", "hi")
    err = info.value
    assert err.route == "ab"
    assert [(a.model, a.trigger) for a in err.attempts] == [
        ("a", "server_error"),
        ("b", "rate_limit"),
    ]
    assert "'ab'" in str(err) and "a [error: server_error" in str(err)
    assert "request id req_" in str(err)
    assert err.__cause__ is err.errors[-1]
    assert getattr(err.__cause__, "status", None) == 429
    await router.aclose()


async def test_max_fallbacks_limits_candidates(fake: FakeProviderThread) -> None:
    router, _ = make_router(
        fake,
        policies={"retry": {"max_attempts": 1}},
        routes={"five": {"models": ["a", "b", "c", "d", "e"], "max_fallbacks": 1}},
    )
    for m in "abcde":
        fake.script(f"model-{m}", [{"kind": "status", "status": 500}])
    with pytest.raises(RouteExhaustedError) as info:
        await router.complete("five", "hi")
    outcomes = [(a.model, a.outcome) for a in info.value.attempts]
    assert outcomes[:2] == [("a", "error"), ("b", "error")]
    assert all(o == "skipped" for _, o in outcomes[2:])
    assert len(fake.requests_to("/v1/chat/completions")) == 2
    await router.aclose()


async def test_missing_key_falls_back_and_names_variable(fake: FakeProviderThread) -> None:
    router, _ = make_router(
        fake, env={"FAKE_OPENAI_KEY": OPENAI_KEY}, routes={"ca": {"models": ["c1", "a"]}}
    )
    env = await router.complete("ca", "hi")
    assert env.model == "a"
    assert env.attempts[0].trigger == "missing_credentials"
    assert "FAKE_ANTHROPIC_KEY" in (env.attempts[0].error or "")
    await router.aclose()


async def test_keys_never_appear_in_errors_or_envelopes(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, routes={"ca": {"models": ["c1", "a"]}})
    fake.script("claude-c1", [{"kind": "status", "status": 401}])
    fake.script("model-a", [{"kind": "status", "status": 401}])
    with pytest.raises(RouteExhaustedError) as info:
        await router.complete("ca", "hi")
    text = str(info.value) + repr(info.value) + repr(info.value.attempts)
    text += "".join(str(e) + repr(e) for e in info.value.errors)
    assert OPENAI_KEY not in text and ANTHROPIC_KEY not in text
    env = await router.complete("a", "hi")
    assert OPENAI_KEY not in str(env.to_dict(include_raw=True))
    client = router.registry.client("fake-openai")
    assert OPENAI_KEY not in repr(client) and OPENAI_KEY not in str(client.endpoint)
    await router.aclose()


async def test_validator_triggers(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    fake.script("model-a", [{"kind": "content", "content": "not json"}])
    fake.script("model-b", [{"kind": "content", "content": '{"title": "t"}'}])
    env = await router.complete("ab", "hi", validate={"required_fields": ["title"]})
    assert env.attempts[0].trigger == "invalid_structure" and env.model == "b"

    fake.script("model-a", [{"kind": "content", "content": '{"body": "x"}'}])
    fake.script("model-b", [{"kind": "content", "content": '{"title": "ok"}'}])
    env = await router.complete("ab", "hi", validate={"required_fields": ["title"]})
    assert env.attempts[0].trigger == "missing_field" and env.content == '{"title": "ok"}'

    fake.script("model-a", [{"kind": "content", "content": "bad"}])
    env = await router.complete("ab", "hi", validate=lambda c: c != "bad")
    assert env.attempts[0].trigger == "validator_hard_fail" and env.model == "b"

    fake.script("model-a", [{"kind": "content", "content": "meh"}])
    env = await router.complete("ab", "hi", validate=lambda c: Verdict.SOFT_FAIL)
    assert env.model == "a" and any("soft fail" in w for w in env.warnings)
    await router.aclose()


async def test_json_schema_acceptance(fake: FakeProviderThread) -> None:
    schema = {
        "type": "object",
        "properties": {"bpm": {"type": "integer"}},
        "required": ["bpm"],
    }
    router, _ = make_router(
        fake, routes={"ab": {"models": ["a", "b"], "accept": {"json_schema": schema}}}
    )
    fake.script("model-a", [{"kind": "content", "content": '{"bpm": "fast"}'}])
    fake.script("model-b", [{"kind": "content", "content": '```json\n{"bpm": 120}\n```'}])
    env = await router.complete("ab", "hi")
    assert env.model == "b"
    assert env.attempts[0].trigger == "invalid_structure"
    assert "bpm" in (env.attempts[0].error or "")
    await router.aclose()


async def test_cost_from_catalog_prices(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    env = await router.complete("a", "one two three")
    u = env.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert env.cost == pytest.approx((u.prompt_tokens * 1.0 + u.completion_tokens * 2.0) / 1e6)
    await router.aclose()


async def test_refused_calls_are_recorded_too(fake: FakeProviderThread) -> None:
    from polyroute import CallRecord, UnknownRouteError

    router, _ = make_router(fake)
    records: list[CallRecord] = []
    router.observers.append(records.append)
    with pytest.raises(UnknownRouteError):
        await router.complete("no-such-route", "hi", labels={"api_key": "key_x"})
    assert [(r.route, r.status, r.labels) for r in records] == [
        ("no-such-route", "UnknownRouteError", {"api_key": "key_x"})
    ]
    await router.aclose()


async def test_a_provider_echoing_the_key_is_redacted(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, policies={"retry": {"max_attempts": 1}})
    echo = {"kind": "status", "status": 401, "message": f"Incorrect API key provided: {OPENAI_KEY}"}
    fake.script("model-a", [echo])
    fake.script("model-b", [echo])
    with pytest.raises(RouteExhaustedError) as info:
        await router.complete("ab", "hi")
    text = str(info.value) + "".join(str(e) for e in info.value.errors)
    assert OPENAI_KEY not in text and "[redacted]" in text
    await router.aclose()
