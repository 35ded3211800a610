"""Seed 003 "Batch Processing: group multiple pattern requests into single API call".

Through the providers' own batch APIs (OpenAI Batch, Anthropic Message Batches),
polled on the router's clock, one envelope per request in order, half price, one
usage record each labelled with the batch.
"""

from __future__ import annotations

from typing import Any

from polyroute import ManualClock, ProviderError, Router
from tests.fakeprovider import FakeProviderThread
from tests.integration.routerkit import ENV, fake_config, make_router

REQUESTS = [{"prompt": "groove one"}, {"prompt": "groove two"}, {"prompt": "groove three"}]


async def test_openai_batch_api_serves_every_request_at_half_price(
    fake: FakeProviderThread,
) -> None:
    cfg = fake_config(fake)
    cfg["providers"]["fake-openai"]["batch_discount"] = 0.5  # as the openai preset says
    clock = ManualClock()
    router = Router.from_config(cfg, environ=ENV, clock=clock)
    records: list[Any] = []
    router.observers.append(records.append)
    fake.batch_polls = 2  # in progress twice, then completed
    fake.script(
        "model-a", [{"kind": "content", "content": "one"}, {"kind": "status", "status": 500}]
    )
    out = await router.provider_batch("a", REQUESTS, poll_interval=30)
    assert [type(r).__name__ for r in out] == ["Envelope", "ServerError", "Envelope"]
    first = out[0]
    assert not isinstance(first, Exception) and first.content == "one"
    full = router.catalog.lookup("a").cost(first.usage)
    assert full > 0 and first.cost == round(full * 0.5, 10)  # the provider's batch price
    assert clock.sleeps == [30, 30]  # polled on the injected clock
    assert len(fake.requests_to("/v1/files")) == 1 and len(fake.requests_to("/v1/batches")) == 1
    assert [r.labels.get("batch", "")[:6] for r in records] == ["batch_"] * 3
    assert isinstance(out[1], ProviderError) and out[1].status == 500
    await router.aclose()


async def test_anthropic_message_batches(fake: FakeProviderThread) -> None:
    router, clock = make_router(fake)
    fake.batch_polls = 1
    out = await router.provider_batch("c1", REQUESTS, poll_interval=10)
    texts = [r.content for r in out if not isinstance(r, Exception)]
    assert len(texts) == 3 and all(t and t.startswith("fake reply from claude-c1") for t in texts)
    assert texts[1].endswith("groove two")  # in order
    assert clock.sleeps == [10]
    [sent] = fake.requests_to("/v1/messages/batches")
    assert [r["custom_id"] for r in sent.body["requests"]] == ["req-0", "req-1", "req-2"]
    await router.aclose()


async def test_a_provider_without_a_batch_api_runs_the_calls() -> None:
    router = Router.from_config({}, environ={})
    out = await router.provider_batch("simulator/gpt-4o-mini", REQUESTS)
    assert len(out) == 3 and all(not isinstance(r, Exception) for r in out)
    await router.aclose()
