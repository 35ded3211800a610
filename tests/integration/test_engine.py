"""One call engine: every kind of call through the same layers.

Streams obey the same budgets as plain calls; a route named, given as a
``Route`` or as a list of models behaves the same; every call leaves exactly
one record; the sync facade runs the same engine.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from polyroute import BudgetExceededError, CallRecord, Router
from polyroute.routing.budget import estimate_cost
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import make_router
from tests.integration.test_router_budget import sim_router


def recorded(router: Router) -> list[CallRecord]:
    records: list[CallRecord] = []
    router.observers.append(records.append)
    return records


async def drain(stream: Any) -> str:
    return "".join([c.delta async for c in stream])


# -- streams obey the budgets ------------------------------------------------------------


async def test_stream_over_max_cost_per_request_is_refused_before_sending(
    fake: FakeProviderThread,
) -> None:
    router, _ = make_router(fake, budget={"max_cost_per_request": 1e-9})
    records = recorded(router)
    with pytest.raises(BudgetExceededError) as info:
        await router.stream("a", "hello", max_tokens=100).start()
    assert info.value.status_code == 402
    assert fake.requests_to("/v1/chat/completions") == []  # nothing was sent
    assert [(r.kind, r.status) for r in records] == [("stream", "BudgetExceededError")]
    # The same call without streaming is refused the same way.
    with pytest.raises(BudgetExceededError):
        await router.complete("a", "hello", max_tokens=100)
    await router.aclose()


async def test_stream_spend_reaches_the_monthly_ledger() -> None:
    router = sim_router({"monthly": 10.0})
    records = recorded(router)
    stream = router.stream("cheap", "hello", max_tokens=200)
    text = await drain(stream)
    assert text and stream.envelope is not None and stream.envelope.cost > 0
    assert router.ledger.spent() == pytest.approx(stream.envelope.cost)
    assert router.ledger.reserved() == pytest.approx(0.0, abs=1e-12)
    [rec] = records
    assert rec.kind == "stream" and rec.status == "ok" and rec.cost == stream.envelope.cost
    assert rec.ttft is not None


async def test_concurrent_burst_of_streams_cannot_overspend() -> None:
    router = sim_router({"monthly": 0.003})
    one = estimate_cost(
        router.catalog.lookup("slow-cheap"), [{"role": "user", "content": "go"}], 1000
    )

    async def one_stream() -> str:
        return await drain(router.stream("slow", "go", max_tokens=1000))

    results = await asyncio.gather(*(one_stream() for _ in range(40)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(ok) + len(refused) == 40
    assert len(ok) == int(0.003 // one)
    assert router.ledger.spent() <= 0.003
    assert router.ledger.reserved() == pytest.approx(0.0, abs=1e-12)


# -- a route is a value: name, Route and list behave the same ------------------------------

SCRIPT = [
    # model-a: a 429 (retried), then a 500 three times (falls back), twice -> cooling down
    {"kind": "status", "status": 429, "retry_after": "1"},
    {"kind": "status", "status": 500},
    {"kind": "status", "status": 500},
]


@pytest.mark.parametrize("form", ["name", "route", "list"])
async def test_name_route_and_list_behave_the_same(fake: FakeProviderThread, form: str) -> None:
    router, clock = make_router(
        fake, policies={"cooldown": {"after_failures": 2, "seconds": 60, "window": 60}}
    )
    records = recorded(router)
    target: Any = {"name": "ab", "route": router.resolve("ab"), "list": ["a", "b"]}[form]
    fake.script("model-a", SCRIPT + [{"kind": "status", "status": 500}] * 3)
    first = await router.complete(target, "hi")
    second = await router.complete(target, "hi")
    third = await router.complete(target, "hi")  # model a is cooling down now: skipped
    shape = [
        [(a.model, a.outcome, a.trigger, a.retries) for a in env.attempts]
        for env in (first, second, third)
    ]
    assert shape == [
        [("a", "error", "server_error", 2), ("b", "success", None, 0)],
        [("a", "error", "server_error", 2), ("b", "success", None, 0)],
        [("a", "skipped", "cooldown", 0), ("b", "success", None, 0)],
    ]
    assert clock.sleeps[0] == 1.0  # Retry-After honoured in every form
    assert router.cooldown.cooling_until("a") is not None
    assert [len(r.attempts) for r in records] == [2, 2, 2]  # one record per call
    await router.aclose()


async def test_list_of_models_is_a_fallback_pool(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    fake.script("model-c", [{"kind": "status", "status": 503}] * 3)
    env = await router.complete(["c", "d"], "hi")
    assert env.model == "d" and env.route == "pool:c,d"
    assert any("fell back to d" in w for w in env.warnings)
    await router.aclose()


# -- embeddings run through the same layers ----------------------------------------------


async def test_embeddings_fall_back_are_cached_and_recorded() -> None:
    cfg = {
        "providers": {"broken": {"type": "simulator", "simulator": {"failure_rate": 1.0}}},
        "models": {
            "bad-embed": {
                "provider": "broken",
                "model": "text-embedding-3-small",
                "price": {"input": 0.02},
                "capabilities": ["embedding"],
            }
        },
        "routes": {"emb": {"models": ["bad-embed", "simulator/text-embedding-3-small"]}},
        "policies": {"retry": {"max_attempts": 1}},
        "cache": {"enabled": True},
    }
    router = Router.from_config(cfg, environ={})
    records = recorded(router)
    env = await router.embed("emb", ["one", "two"])
    assert env.model == "simulator/text-embedding-3-small" and env.embeddings is not None
    assert len(env.embeddings) == 2 and len(env.embeddings[0]) == 256
    assert [a.outcome for a in env.attempts] == ["error", "success"]
    assert env.usage.prompt_tokens > 0 and env.cost > 0
    again = await router.embed("emb", ["one", "two"])
    assert again.cache_hit and again.embeddings == env.embeddings and again.cost == 0
    assert [(r.kind, r.cache_hit) for r in records] == [("embedding", False), ("embedding", True)]
    with pytest.raises(Exception, match="capability:embedding"):
        await router.embed("gpt-4o-mini", "not an embedding model")
    await router.aclose()


# -- the sync facade ---------------------------------------------------------------------


def test_sync_facade_complete_and_stream() -> None:
    router = sim_router({"monthly": 10.0})
    records = recorded(router)
    env = router.complete_sync("cheap", "hello", max_tokens=50)
    assert env.model == "cheap" and env.content
    chunks = list(router.stream_sync("cheap", "hello", max_tokens=50))
    assert chunks and chunks[-1].finish_reason == "stop"
    vec = router.embed_sync("simulator/text-embedding-3-small", "x")
    assert vec.embeddings is not None and len(vec.embeddings) == 1
    assert [r.kind for r in records] == ["chat", "stream", "embedding"]
    assert router.ledger.spent() == pytest.approx(sum(r.cost for r in records))
    router.close()


# -- lifecycle ----------------------------------------------------------------------------


async def test_aclose_closes_every_part_it_owns(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake)
    await router.complete("a", "hi")
    closed: list[str] = []
    limiter_close = router.limiter.close

    async def spy() -> None:
        closed.append("limiter")
        await limiter_close()

    router.limiter.close = spy  # type: ignore[method-assign]
    session = router.sessions.get()
    await router.aclose()
    assert closed == ["limiter"] and session.closed
    with pytest.raises(AttributeError, match="read-only"):
        router.cooldown = router.cooldown  # type: ignore[misc]


async def test_tier_ceiling_lowering_max_tokens_is_a_warning(fake: FakeProviderThread) -> None:
    router, _ = make_router(fake, tiers={"fast": {"models": ["a"], "max_tokens": 256}})
    env = await router.complete("tier:fast", "hi", max_tokens=5000)
    assert "tier:fast: max_tokens 5000 lowered to the tier's 256" in env.warnings
    assert fake.requests_to("/v1/chat/completions")[0].body["max_tokens"] == 256
    quiet = await router.complete("tier:fast", "hi", max_tokens=100)
    assert not any("lowered" in w for w in quiet.warnings)
    await router.aclose()


async def test_cascade_orders_by_price_unless_as_listed(fake: FakeProviderThread) -> None:
    # routerkit's prices: c1 $3 + $15 per 1M tokens, a $1 + $2: a is the cheaper.
    routes = {
        "by-price": {"strategy": "cascade", "models": ["c1", "a"]},
        "listed": {"strategy": "cascade", "models": ["c1", "a"], "order": "as_listed"},
    }
    router, _ = make_router(fake, routes=routes)
    assert [c.info.id for c in router.resolve("by-price").candidates] == ["a", "c1"]
    assert [c.info.id for c in router.resolve("listed").candidates] == ["c1", "a"]
    await router.aclose()
