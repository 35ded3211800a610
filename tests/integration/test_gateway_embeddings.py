"""``POST /v1/embeddings`` through the gateway with the official openai SDK."""

from __future__ import annotations

import httpx2 as httpx
import openai
import pytest

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV, fake_config


def embedding_config(fake: FakeProviderThread) -> dict[str, object]:
    cfg = fake_config(fake, policies={"retry": {"max_attempts": 1}})
    for name in ("e1", "e2"):
        cfg["models"][name] = {
            "provider": "fake-openai",
            "model": f"embed-{name}",
            "price": {"input": 0.02},
            "capabilities": ["embedding"],
        }
    cfg["routes"]["emb"] = {"models": ["e1", "e2"]}
    return cfg


def test_embeddings_through_the_sdk_with_fallback(fake: FakeProviderThread) -> None:
    with GatewayServer(embedding_config(fake), ENV) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
        # The SDK asks for base64 by default and decodes it: the floats must survive.
        out = client.embeddings.create(model="emb", input=["hello", "world"])
        assert [d.index for d in out.data] == [0, 1]
        assert len(out.data[0].embedding) == 8 and out.usage.prompt_tokens > 0
        floats = client.embeddings.create(model="emb", input="hello", encoding_format="float")
        assert floats.data[0].embedding == pytest.approx(out.data[0].embedding, rel=1e-6)
        sent = [r.body for r in fake.requests_to("/v1/embeddings")]
        assert sent[0]["model"] == "embed-e1" and sent[0]["input"] == ["hello", "world"]
        fake.script("embed-e1", [{"kind": "status", "status": 503}])
        raw = client.embeddings.with_raw_response.create(model="emb", input="again")
        assert raw.headers["x-polyroute-model"] == "e2"
        assert raw.headers["x-polyroute-attempts"] == "2"
        bad = httpx.post(gw.url + "/v1/embeddings", json={"model": "emb", "input": []})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "input"
        chat_only = httpx.post(gw.url + "/v1/embeddings", json={"model": "a", "input": "x"})
        assert chat_only.status_code >= 400 and "embedding" in chat_only.text
