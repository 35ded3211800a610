"""No key material in any log line or answer, whatever fails.

Drives a gateway through the failures that carry the most text — a provider
401 that echoes the key, a missing credential, bad requests, a broken stream,
a reload with a bad config — with every logger at DEBUG, then scans what was
logged and answered for the provider keys and the gateway keys.
"""

from __future__ import annotations

import logging

import httpx2 as httpx
import pytest

from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ANTHROPIC_KEY, ENV, OPENAI_KEY
from tests.integration.test_gateway_openai import gateway_config

GATEWAY_KEY = "gw-user-key-SECRET-4242"
ADMIN_KEY = "gw-admin-key-SECRET-4343"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, GATEWAY_KEY, ADMIN_KEY)


def test_failures_never_log_or_answer_a_key(
    fake: FakeProviderThread, caplog: pytest.LogCaptureFixture
) -> None:
    env = {**ENV, "POLYROUTE_API_KEYS": GATEWAY_KEY, "POLYROUTE_ADMIN_KEYS": ADMIN_KEY}
    cfg = gateway_config(fake)
    cfg["models"]["nokey"] = {"provider": "openai", "model": "gpt-4o-mini"}
    cfg["routes"]["nokey-a"] = {"models": ["nokey", "a"]}
    answers: list[str] = []
    user = {"Authorization": f"Bearer {GATEWAY_KEY}"}
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    chat = "/v1/chat/completions"
    with caplog.at_level(logging.DEBUG), GatewayServer(cfg, env) as gw:

        def post(path: str, body: object, headers: dict[str, str] = user) -> None:
            r = httpx.post(gw.url + path, json=body, headers=headers, timeout=10)
            answers.append(r.text + repr(dict(r.headers)))

        msgs = [{"role": "user", "content": "hi"}]
        # The provider answers 401 and echoes the key it got (as some do).
        fake.script(
            "model-a",
            [{"kind": "status", "status": 401, "message": f"Incorrect API key {OPENAI_KEY}"}] * 2,
        )
        post(chat, {"model": "ab", "messages": msgs})
        post(chat, {"model": "nokey-a", "messages": msgs})  # missing OPENAI_API_KEY
        post(chat, {"model": "a", "messages": "not a list"})
        post(chat, {"model": "a", "messages": msgs}, headers={"Authorization": "Bearer wrong"})
        fake.script("model-a", [{"kind": "stream_cut", "after_chunks": 1}])
        post(chat, {"model": "a", "messages": msgs, "stream": True})
        fake.script("claude-c1", [{"kind": "status", "status": 401}])
        post("/v1/messages", {"model": "c1", "max_tokens": 5, "messages": msgs})
        post("/api/v1/tasks/text", {"provider": "nope"}, headers=admin)
        answers.append(httpx.get(gw.url + "/metrics", headers=user).text)
    logged = "\n".join(
        f"{r.getMessage()} {r.args!r} {r.__dict__!r} {r.exc_text or ''}" for r in caplog.records
    )
    assert caplog.records, "the scenarios above must have logged something"
    for secret in SECRETS:
        assert secret not in logged, f"a key reached the logs: {secret[:8]}..."
        assert all(secret not in a for a in answers), f"a key reached an answer: {secret[:8]}..."
