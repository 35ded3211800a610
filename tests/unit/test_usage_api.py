"""GET /api/v1/usage, /api/v1/alerts, /api/v1/calls handlers, and the terminal report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from polyroute.server import usage_api
from polyroute.server.errors import RequestError
from polyroute.server.gateway import Gateway
from polyroute.types import Usage
from polyroute.usage.alerts import AlertThresholds
from polyroute.usage.report import render_usage, usage_report
from polyroute.usage.store import UsageStore
from tests.unit.test_usage_store import rec, store_at


def make_app(store: UsageStore | None, environ: dict[str, str] | None = None) -> Starlette:
    app = Starlette()
    app.state.gateway = Gateway(data={}, environ=environ or {})
    app.state.usage_store = store
    app.state.alert_thresholds = AlertThresholds(min_requests=2)
    return app


def request(app: Starlette, query: str = "", headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": query.encode()}
    return Request({**scope, "headers": raw, "app": app})


def body(resp: Response) -> Any:
    return orjson.loads(bytes(resp.body))


@pytest.fixture
async def filled(tmp_path: Path) -> Any:
    store = store_at(tmp_path)
    store.record(rec(model="gpt-4o", cost=0.75, labels={"tier": "expert", "api_key": "key_x"}))
    store.record(rec(model="gpt-4o", cost=0.75, labels={"tier": "expert", "api_key": "key_x"}))
    store.record(rec(cost=0.5, labels={"tier": "fast"}, usage=Usage(5, 5)))
    store.record(rec(status="RouteExhaustedError", cost=0.0, attempts=[]))
    await store.flush()
    yield store
    await store.close()


async def test_usage_totals_and_groups(filled: UsageStore) -> None:
    app = make_app(filled)
    data = body(await usage_api.usage(request(app, "since=1h&by=model,key")))
    assert data["by"] == ["model", "api_key"]
    assert data["totals"]["count"] == 4 and data["totals"]["cost"] == 2.0
    assert data["totals"]["errors"] == 1
    first = data["rows"][0]
    assert (first["model"], first["api_key"], first["count"]) == ("gpt-4o", "key_x", 2)
    assert data["since"].endswith("Z") and data["until"] > data["since"]
    plain = body(await usage_api.usage(request(app)))  # default window 24h, no groups
    assert plain["rows"] == [] and plain["totals"]["count"] == 4


@pytest.mark.parametrize(
    ("query", "param"),
    [("by=colour", "by"), ("since=yesterdayish", "since"), ("since=1h&until=2h", "until")],
)
async def test_usage_bad_params_name_the_field(filled: UsageStore, query: str, param: str) -> None:
    with pytest.raises(RequestError) as info:
        await usage_api.usage(request(make_app(filled), query))
    assert info.value.param == param and info.value.status == 400


async def test_alerts_endpoint(filled: UsageStore) -> None:
    data = body(await usage_api.alerts(request(make_app(filled), "since=1h")))
    assert data["thresholds"]["min_requests"] == 2
    assert [(a["level"], a["group"]) for a in data["alerts"]] == [
        ("critical", "tier=expert"),  # $0.75 a call
        ("warning", "tier=fast"),  # $0.50 over two calls
        ("info", None),  # no cache hits
    ]
    assert {r["tier"] for r in data["by_tier"]} == {"expert", "fast"}


async def test_recent_calls_with_filters_and_limit(filled: UsageStore) -> None:
    app = make_app(filled)
    calls = body(await usage_api.recent_calls(request(app, "limit=2")))["calls"]
    assert len(calls) == 2 and "attempts" in calls[0]
    only = body(await usage_api.recent_calls(request(app, "model=gpt-4o&tier=expert")))["calls"]
    assert len(only) == 2 and {c["api_key"] for c in only} == {"key_x"}
    for q, param in (("limit=0", "limit"), ("limit=x", "limit"), ("colour=red", "colour")):
        with pytest.raises(RequestError) as info:
            await usage_api.recent_calls(request(app, q))
        assert info.value.param == param


async def test_keys_and_a_missing_store(filled: UsageStore) -> None:
    locked = make_app(filled, {"POLYROUTE_API_KEYS": "k1"})
    with pytest.raises(RequestError) as info:
        await usage_api.usage(request(locked))
    assert info.value.status == 401
    ok = await usage_api.usage(request(locked, headers={"Authorization": "Bearer k1"}))
    assert ok.status_code == 200
    with pytest.raises(RequestError) as info:
        await usage_api.alerts(request(make_app(None)))
    assert info.value.status == 404


def test_terminal_report(tmp_path: Path, filled: UsageStore) -> None:
    url = filled.url
    console = Console(record=True, width=200)
    data = render_usage(url, "1h", ["tier"], console, thresholds=AlertThresholds(min_requests=2))
    out = console.export_text()
    assert "by tier" in out and "expert" in out and "$1.5000" in out
    assert "critical" in out and "cost per request $0.7500 > $0.50" in out
    assert data["totals"]["count"] == 4
    empty = Console(record=True, width=200)
    render_usage(f"sqlite:///{tmp_path / 'nothing.db'}", "1h", ["model"], empty)
    assert "no calls recorded" in empty.export_text()
    assert usage_report(url, "1h", ["key"])["rows"][0]["api_key"] == "key_x"
