"""``x-request-id`` on every answer, and 404/405 in each ingress's own error shape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from polyroute.server.request_id import RequestIdMiddleware
from tests.fakeprovider import FakeProviderThread
from tests.integration.gatewaykit import GatewayServer
from tests.integration.routerkit import ENV
from tests.integration.test_gateway_openai import gateway_config
from tests.spec import validate_against_spec

OWN_ID = re.compile(r"^req_[0-9a-f]{24}$")
USER = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def gw(fake_provider: FakeProviderThread) -> Iterator[GatewayServer]:
    with GatewayServer(gateway_config(fake_provider), ENV) as server:
        yield server


def _get(gw: GatewayServer, path: str, **kw: Any) -> httpx.Response:
    return httpx.get(gw.url + path, timeout=10, **kw)


def _post(gw: GatewayServer, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, timeout=10, **kw)


# ---------------------------------------------------------------- x-request-id


def test_every_kind_of_answer_has_an_id(gw: GatewayServer, fake: FakeProviderThread) -> None:
    answers = [
        _post(gw, "/v1/chat/completions", {"model": "ab", "messages": USER}),
        _post(gw, "/v1/chat/completions", {"model": "nope", "messages": USER}),  # 404 route
        _post(gw, "/v1/chat/completions", {"model": "ab"}),  # 400
        _post(gw, "/v1/messages", {"model": "ab", "max_tokens": 5, "messages": USER}),
        _get(gw, "/v1/models"),
        _get(gw, "/healthz"),
        _get(gw, "/"),  # the dashboard
        _get(gw, "/no/such/path"),  # 404
        _get(gw, "/v1/chat/completions"),  # 405
    ]
    ids = [r.headers["x-request-id"] for r in answers]
    assert all(OWN_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)  # one per request
    assert [r.status_code for r in answers] == [200, 404, 400, 200, 200, 200, 200, 404, 405]
    assert all(len(r.headers.get_list("x-request-id")) == 1 for r in answers)


def test_streams_have_an_id_and_are_not_buffered(
    gw: GatewayServer, fake: FakeProviderThread
) -> None:
    body = {"model": "ab", "messages": USER, "stream": True}
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=10) as r:
        assert OWN_ID.match(r.headers["x-request-id"])
        assert r.headers["x-polyroute-upstream-request-id"].startswith("req_")
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and len(events) > 2

    claude = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    with claude.messages.with_streaming_response.create(
        model="ab", max_tokens=20, messages=USER, stream=True
    ) as resp:
        assert OWN_ID.match(resp.headers["x-request-id"])
        assert "message_stop" in "".join(resp.iter_text())


def test_a_client_id_is_kept(gw: GatewayServer) -> None:
    mine = "trace-7f3a:span/01"
    r = _post(
        gw,
        "/v1/chat/completions",
        {"model": "ab", "messages": USER},
        headers={"x-request-id": mine},
    )
    assert r.headers["x-request-id"] == mine
    oa = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    raw = oa.chat.completions.with_raw_response.create(
        model="ab", messages=USER, extra_headers={"x-request-id": "abc-123"}
    )
    assert raw.headers["x-request-id"] == "abc-123"
    # Not echoed: too long, or with characters that do not belong in a header token.
    for bad in ("x" * 300, "two words"):
        r = _get(gw, "/healthz", headers={"x-request-id": bad})
        assert OWN_ID.match(r.headers["x-request-id"])


def test_upstream_request_id_is_the_providers(gw: GatewayServer, fake: FakeProviderThread) -> None:
    r = _post(gw, "/v1/chat/completions", {"model": "ab", "messages": USER})
    upstream = r.headers["x-polyroute-upstream-request-id"]
    assert re.fullmatch(r"req_\d+", upstream)  # the fake's request-id header, relayed
    assert upstream != r.headers["x-request-id"]
    claude = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    raw = claude.messages.with_raw_response.create(model="c1", max_tokens=20, messages=USER)
    assert re.fullmatch(r"req_\d+", raw.headers["x-polyroute-upstream-request-id"])
    # No provider behind an answer: no upstream id.
    assert "x-polyroute-upstream-request-id" not in _get(gw, "/v1/models").headers
    bad = _post(gw, "/v1/chat/completions", {"model": "nope", "messages": USER})
    assert "x-polyroute-upstream-request-id" not in bad.headers


def test_unexpected_errors_have_an_id_too(
    fake: FakeProviderThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GatewayServer(gateway_config(fake), ENV) as server:

        def broken(*args: Any, **kw: Any) -> Any:
            raise RuntimeError("boom")

        monkeypatch.setattr(server.gateway, "check_key", broken)
        r = _get(server, "/v1/models", headers={"x-request-id": "trace-500"})
        assert r.status_code == 500
        assert r.headers["x-request-id"] == "trace-500"
        assert r.json()["error"]["message"] == "internal error"


async def test_middleware_passes_body_messages_through_untouched() -> None:
    sent: list[dict[str, Any]] = []
    body_parts = [b"a", b"b", b""]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, part in enumerate(body_parts):
            more = i < len(body_parts) - 1
            await send({"type": "http.response.body", "body": part, "more_body": more})
        assert headers == [(b"content-type", b"text/plain")]  # the app's list is not mutated

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "headers": [(b"x-request-id", b"given")]}
    await RequestIdMiddleware(app)(scope, receive, send)
    assert sent[0]["headers"] == [(b"content-type", b"text/plain"), (b"x-request-id", b"given")]
    assert [m["body"] for m in sent[1:]] == body_parts  # one message per part, as sent
    assert scope["polyroute.request_id"] == "given"

    lifespan: list[Any] = []

    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        lifespan.append(scope["type"])

    await RequestIdMiddleware(lifespan_app)({"type": "lifespan"}, receive, send)
    assert lifespan == ["lifespan"]


# ---------------------------------------------------------------- 404 / 405


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("POST", "/v1/chat/complete"),
        ("GET", "/nothing/here"),
        ("DELETE", "/api/v1/nope"),
    ],
)
def test_unknown_paths_answer_openai_404(gw: GatewayServer, method: str, path: str) -> None:
    r = httpx.request(method, gw.url + path, timeout=10)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["code"] == "unknown_url"
    assert err["param"] is None
    assert err["message"].startswith(f"Unknown request URL: {method} {path}.")
    validate_against_spec(r.json(), "ErrorResponse")
    assert OWN_ID.match(r.headers["x-request-id"])


@pytest.mark.parametrize("path", ["/v1/messages/nope", "/v1/messages/batches", "/v1/messages/a/b"])
def test_unknown_paths_under_messages_answer_anthropic_404(gw: GatewayServer, path: str) -> None:
    r = httpx.post(gw.url + path, json={}, timeout=10)
    assert r.status_code == 404
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert path in body["error"]["message"]
    assert set(body) == {"type", "error"}


def test_wrong_method_is_405_in_each_shape(gw: GatewayServer) -> None:
    r = _get(gw, "/v1/chat/completions")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["code"] == "method_not_allowed"
    assert "GET /v1/chat/completions" in err["message"]
    validate_against_spec(r.json(), "ErrorResponse")

    r = httpx.delete(gw.url + "/v1/models", timeout=10)
    assert r.status_code == 405 and "GET" in r.headers["allow"]

    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        r = _get(gw, path)
        assert r.status_code == 405 and r.headers["allow"] == "POST"
        body = r.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


def test_sdks_raise_not_found_for_unknown_urls(gw: GatewayServer) -> None:
    oa = openai.OpenAI(base_url=gw.url + "/v1/typo", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError) as oe:
        oa.chat.completions.create(model="ab", messages=USER)  # type: ignore[arg-type]
    assert oe.value.code == "unknown_url"
    claude = anthropic.Anthropic(base_url=gw.url + "/v1/messages", api_key="x", max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as ae:
        claude.messages.create(model="ab", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert ae.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
