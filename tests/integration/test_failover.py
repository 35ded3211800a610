"""The failover table: each fault a provider can show, and what the caller gets.

Router level, over real HTTP against the fake provider, with an injected clock
where waiting is involved.  (The gateway's answers for the same faults, on both
ingresses, are in test_gateway_failover.py.)
"""

from __future__ import annotations

from typing import Any

import pytest

from polyroute import (
    AllCoolingDownError,
    ContentFilterError,
    RouteExhaustedError,
    Router,
)
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import make_router

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


def router_for(fake: FakeProviderThread, **sections: Any) -> Router:
    models = {
        # An Anthropic-wire model that accepts a prefill, and one whose provider refuses it.
        "p1": {
            "provider": "fake-anthropic",
            "model": "claude-p1",
            "price": {"input": 3.0, "output": 15.0},
            "capabilities": ["text", "prefill"],
        },
        "p2": {
            "provider": "fake-anthropic",
            "model": "claude-p2",
            "price": {"input": 3.0, "output": 15.0},
            "capabilities": ["text", "prefill"],
        },
    }
    routes = {
        "ab": {"models": ["a", "b"]},
        "abc": {"models": ["a", "b", "c"]},
        "a-p1": {"models": ["a", "p1"]},
        "c1-p2-b": {"models": ["c1", "p2", "b"]},
    }
    sections["models"] = {**models, **sections.get("models", {})}
    sections["routes"] = {**routes, **sections.get("routes", {})}
    router, _ = make_router(fake, **sections)
    return router


def sent_models(fake: FakeProviderThread, path: str = CHAT) -> list[str]:
    return [r.body["model"] for r in fake.requests_to(path)]


async def read(stream: Any) -> str:
    return "".join([c.delta async for c in stream])


# -- plain calls --------------------------------------------------------------------------


async def test_429_without_retry_after_backs_off_then_falls_back(fake: FakeProviderThread) -> None:
    router, clock = make_router(fake)
    fake.script("model-a", [{"kind": "status", "status": 429}] * 3)
    env = await router.complete("ab", "hi")
    assert env.model == "b"
    assert sent_models(fake) == ["model-a"] * 3 + ["model-b"]  # bounded: max_attempts 3
    assert len(clock.sleeps) == 2 and all(0 <= s <= 1.0 for s in clock.sleeps)  # jittered
    await router.aclose()


async def test_503_every_time_bills_only_the_answer(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    fake.script("model-a", [{"kind": "status", "status": 503}] * 3)
    env = await router.complete("ab", "hi")
    assert env.model == "b" and "model-b" in (env.content or "")
    assert env.cost == router.catalog.lookup("b").cost(env.usage)  # failed attempts: $0
    assert [a.outcome for a in env.attempts] == ["error", "success"]
    await router.aclose()


async def test_reset_before_headers_is_retried(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    fake.script("model-a", [{"kind": "reset"}])
    env = await router.complete("ab", "hi")
    assert env.model == "a" and env.retries == 1
    await router.aclose()


async def test_hang_falls_back_at_once_without_retrying(fake: FakeProviderThread) -> None:
    router = router_for(fake, routes={"ab": {"models": ["a", "b"], "timeout": 0.3}})
    fake.script("model-a", [{"kind": "hang", "seconds": 5}])
    env = await router.complete("ab", "hi")
    assert env.model == "b"
    assert sent_models(fake) == ["model-a", "model-b"]  # a was not retried
    assert env.attempts[0].trigger == "timeout"
    await router.aclose()


async def test_hang_on_the_last_candidate_is_retried(fake: FakeProviderThread) -> None:
    router = router_for(fake, routes={"solo": {"models": ["a"], "timeout": 0.3}})
    fake.script("model-a", [{"kind": "hang", "seconds": 5}])
    env = await router.complete("solo", "hi")
    assert env.model == "a" and sent_models(fake) == ["model-a", "model-a"]
    await router.aclose()


async def test_retry_on_timeout_opts_back_in(fake: FakeProviderThread) -> None:
    policies = {"retry": {"max_attempts": 2, "retry_on": [429, 500, "timeout"]}}
    router = router_for(
        fake, policies=policies, routes={"ab": {"models": ["a", "b"], "timeout": 0.3}}
    )
    fake.script("model-a", [{"kind": "hang", "seconds": 5}])
    env = await router.complete("ab", "hi")
    assert env.model == "a" and sent_models(fake) == ["model-a", "model-a"]
    await router.aclose()


async def test_context_length_400_falls_back_without_retry(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    fake.script("model-a", [{"kind": "context_length"}])
    env = await router.complete("ab", "hi")
    assert env.model == "b" and sent_models(fake) == ["model-a", "model-b"]
    assert env.attempts[0].trigger == "context_window_exceeded"
    await router.aclose()


async def test_content_policy_400_does_not_fall_back(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    fake.script("model-a", [{"kind": "content_filter"}])
    with pytest.raises(ContentFilterError) as info:
        await router.complete("ab", "hi")
    assert info.value.status == 400 and sent_models(fake) == ["model-a"]
    opt_in = router_for(fake, policies={"fallback": {"on_content_filter": True}})
    fake.script("model-a", [{"kind": "content_filter"}])
    env = await opt_in.complete("ab", "hi")
    assert env.model == "b"
    await router.aclose()
    await opt_in.aclose()


async def test_first_chunk_timeout_bounds_a_plain_calls_headers(fake: FakeProviderThread) -> None:
    router = router_for(fake, routes={"ab": {"models": ["a", "b"], "first_chunk_timeout": 0.2}})
    fake.script("model-a", [{"kind": "hang", "seconds": 2}])  # no headers for 2 s
    env = await router.complete("ab", "hi")
    assert env.model == "b" and env.attempts[0].trigger == "timeout"
    await router.aclose()


# -- cooldowns ----------------------------------------------------------------------------


async def test_outage_served_by_fallback_then_back_on_primary(fake: FakeProviderThread) -> None:
    router, clock = make_router(
        fake, policies={"cooldown": {"after_failures": 2, "seconds": 30, "window": 60}}
    )
    fake.set_down("model-a", status=503)
    served = []
    for _ in range(12):  # a request every 5 s for a minute
        served.append((await router.complete("ab", "hi")).model)
        clock.advance(5)
    assert set(served) == {"b"}
    hits_on_a = sent_models(fake).count("model-a")
    # Two failures (3 tries each) trip the cooldown; each later cooldown costs one probe.
    assert hits_on_a <= 2 * 3 + 2 * 3, hits_on_a
    fake.set_up("model-a")
    clock.advance(31)
    env = await router.complete("ab", "hi")  # the half-open probe succeeds
    assert env.model == "a"
    assert (await router.complete("ab", "hi")).model == "a"
    await router.aclose()


async def test_every_candidate_cooling_down_answers_at_once(fake: FakeProviderThread) -> None:
    router, clock = make_router(
        fake, policies={"cooldown": {"after_failures": 1, "seconds": 30, "window": 60}}
    )
    fake.script("model-a", [{"kind": "status", "status": 500}] * 3)
    fake.script("model-b", [{"kind": "status", "status": 500}] * 3)
    with pytest.raises(RouteExhaustedError):
        await router.complete("ab", "hi")
    clock.sleeps.clear()
    with pytest.raises(AllCoolingDownError) as info:
        await router.complete("ab", "hi")
    assert clock.sleeps == []  # not held for the timeout
    assert info.value.retry_after is not None and 25 <= info.value.retry_after <= 30
    clock.advance(29.5)  # within policies.cooldown.max_wait (1 s) of returning: it waits
    env = await router.complete("ab", "hi")
    assert env.model == "a" and clock.sleeps and clock.sleeps[0] <= 1.0
    await router.aclose()


# -- streams ------------------------------------------------------------------------------


async def test_stream_cut_mid_answer_is_continued_by_the_next_model(
    fake: FakeProviderThread,
) -> None:
    router = router_for(fake)
    fake.script("model-a", [{"kind": "stream_truncated", "after_chunks": 2}])
    stream = router.stream("ab", "tell me")
    text = await read(stream)
    env = stream.envelope
    assert env is not None and env.finish_reason == "stop"
    first = [r for r in fake.requests_to(CHAT)]
    assert [r.body["model"] for r in first] == ["model-a", "model-b"]
    cont = first[1].body["messages"]
    assert cont[-2]["role"] == "assistant" and text.startswith(cont[-2]["content"])
    assert text.endswith("fake reply from model-b: " + cont[-1]["content"][:60])
    assert [(a.model, a.outcome) for a in env.attempts] == [("a", "error"), ("b", "success")]
    assert any("stream recovered mid-answer" in w for w in env.warnings)
    await router.aclose()


async def test_stream_reset_mid_answer_uses_a_prefill_where_accepted(
    fake: FakeProviderThread,
) -> None:
    router = router_for(fake)
    fake.script("model-a", [{"kind": "stream_cut", "after_chunks": 2}])
    text = await read(router.stream("a-p1", "tell me"))
    [cont] = fake.requests_to(MESSAGES)
    last = cont.body["messages"][-1]
    assert last["role"] == "assistant"  # a prefill: p1 continues the text itself
    assert text.startswith(_text_of(last["content"]))
    assert "fake reply from claude-p1" in text
    await router.aclose()


async def test_prefill_refused_is_asked_again_with_the_instruction(
    fake: FakeProviderThread,
) -> None:
    router = router_for(fake)
    fake.reject_prefill("claude-p2")
    fake.script("claude-c1", [{"kind": "stream_cut", "after_chunks": 2}])
    stream = router.stream("c1-p2-b", "tell me")
    text = await read(stream)
    bodies = [r.body for r in fake.requests_to(MESSAGES)]
    assert [b["model"] for b in bodies] == ["claude-c1", "claude-p2", "claude-p2"]
    assert bodies[1]["messages"][-1]["role"] == "assistant"  # the prefill, refused
    assert bodies[2]["messages"][-1]["role"] == "user"  # the instruction form
    assert "fake reply from claude-p2" in text
    assert stream.envelope is not None and stream.envelope.model == "c1"
    await router.aclose()


async def test_when_nothing_can_continue_the_original_failure_is_named(
    fake: FakeProviderThread,
) -> None:
    router = router_for(fake, routes={"c1-p2": {"models": ["c1", "p2"]}})
    fake.reject_prefill("claude-p2")
    fake.script("claude-c1", [{"kind": "stream_cut", "after_chunks": 2}])
    fake.script("claude-p2", [{"kind": "status", "status": 500}] * 3)
    with pytest.raises(RouteExhaustedError) as info:
        await read(router.stream("c1-p2", "tell me"))
    message = str(info.value)
    assert message.index("stream failed mid-answer") < message.index("prefill")
    await router.aclose()


async def test_stall_past_idle_timeout_is_recovered(fake: FakeProviderThread) -> None:
    router = router_for(fake, routes={"ab": {"models": ["a", "b"], "idle_timeout": 0.2}})
    fake.script("model-a", [{"kind": "stream_stall", "after_chunks": 2, "seconds": 5}])
    stream = router.stream("ab", "tell me")
    text = await read(stream)
    assert "fake reply from model-b" in text
    assert stream.envelope is not None and stream.envelope.attempts[0].trigger == "timeout"
    await router.aclose()


async def test_first_chunk_timeout_falls_back_for_a_stream(fake: FakeProviderThread) -> None:
    router = router_for(fake, routes={"ab": {"models": ["a", "b"], "first_chunk_timeout": 0.2}})
    fake.script("model-a", [{"kind": "first_chunk_delay", "seconds": 2}])
    stream = router.stream("ab", "hi")
    text = await read(stream)
    assert stream.model == "b" and "model-b" in text
    patient = router_for(fake)
    fake.script("model-a", [{"kind": "first_chunk_delay", "seconds": 0.3}])
    late = patient.stream("ab", "hi")
    assert "model-a" in await read(late)  # without the setting, it answers when it comes
    await router.aclose()
    await patient.aclose()


async def test_malformed_event_is_skipped_and_counted(fake: FakeProviderThread) -> None:
    router = router_for(fake)
    records: list[Any] = []
    router.observers.append(records.append)
    for model, route in (("model-a", "a"), ("claude-c1", "c1")):
        fake.script(model, [{"kind": "stream_malformed_event", "after_chunks": 1}])
        stream = router.stream(route, "tell me")
        text = await read(stream)
        assert text.endswith("tell me") and stream.envelope is not None
        assert any("malformed" in w for w in stream.envelope.warnings)
    assert [r.malformed_events for r in records] == [1, 1]
    await router.aclose()


async def test_terminal_signal_without_final_marker_is_complete(
    fake: FakeProviderThread,
) -> None:
    router = router_for(fake)
    for model, route in (("model-a", "a"), ("claude-c1", "c1")):
        fake.script(model, [{"kind": "stream_no_done"}])
        stream = router.stream(route, "tell me")
        assert (await read(stream)).endswith("tell me")
        assert stream.envelope is not None and stream.envelope.usage.completion_tokens > 0
        assert [a.outcome for a in stream.envelope.attempts] == ["success"]
    await router.aclose()


async def test_stream_with_no_terminal_signal_is_an_error_when_off(
    fake: FakeProviderThread,
) -> None:
    router = router_for(fake, defaults={"stream_recovery": "off"})
    fake.script("model-a", [{"kind": "stream_truncated", "after_chunks": 2}])
    with pytest.raises(Exception, match="terminal event"):
        await read(router.stream("ab", "tell me"))
    await router.aclose()


async def test_buffer_mode_restarts_cleanly(fake: FakeProviderThread) -> None:
    router = router_for(fake)
    fake.script("model-a", [{"kind": "stream_truncated", "after_chunks": 2}])
    stream = router.stream("ab", "tell me", stream_recovery="buffer")
    chunks = [c async for c in stream]
    text = "".join(c.delta for c in chunks)
    assert text == "fake reply from model-b: tell me"  # nothing of a's broken answer
    [_, second] = fake.requests_to(CHAT)
    assert second.body["messages"][-1] == {"role": "user", "content": "tell me"}
    await router.aclose()


async def test_a_stream_cut_inside_a_tool_call_is_not_continued(
    fake: FakeProviderThread,
) -> None:
    router = router_for(fake)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    fake.script(
        "model-a",
        [
            {
                "kind": "stream_truncated",
                "after_chunks": 2,  # the tool call's head, then one piece of its arguments
                "tool_calls": [{"name": "f", "arguments": {"x": "a long argument value"}}],
            }
        ],
    )
    with pytest.raises(Exception, match="terminal event"):
        await read(router.stream("ab", "call f", tools=tools))
    assert sent_models(fake) == ["model-a"]
    await router.aclose()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content)


async def test_an_http_client_error_falls_back_as_the_candidates_failure() -> None:
    cfg = {
        "providers": {
            "bad": {
                "type": "openai-compatible",
                "base_url": "http://127.0.0.1:99999/v1",  # a port no URL can have
                "api_key_env": "K",
            }
        },
        "models": {"x": {"provider": "bad", "model": "m"}},
        "routes": {"r": {"models": ["x", "simulator/gpt-4o-mini"]}},
    }
    router = Router.from_config(cfg, environ={"K": "k"})
    env = await router.complete("r", "hi")
    assert env.model == "simulator/gpt-4o-mini"
    assert env.attempts[0].trigger == "client_error"
    await router.aclose()
