"""Usage and alerts over HTTP (seed 003's metrics).

``GET /api/v1/usage?since=24h&until=...&by=model,tier`` → totals and one row
per group; ``GET /api/v1/alerts?since=1h`` → the window's alerts and the
thresholds they were judged by; ``GET /api/v1/calls?limit=50&model=...`` →
the latest calls with their attempts.  The store lives on
``app.state.usage_store``; thresholds come from ``app.state.alert_thresholds``
or the config's ``usage.alerts``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from polyroute.server.errors import RequestError
from polyroute.server.http import authorize, gateway_of, json_response
from polyroute.usage.alerts import AlertThresholds
from polyroute.usage.window import iso, parse_time

if TYPE_CHECKING:
    from polyroute.usage.store import UsageStore

MAX_LIMIT = 1000


def _store(request: Request) -> UsageStore:
    store: UsageStore | None = getattr(request.app.state, "usage_store", None)
    if store is None:
        raise RequestError("usage recording is not enabled", status=404, code="usage_disabled")
    return store


def _thresholds(request: Request) -> AlertThresholds:
    """``app.state.alert_thresholds`` if set, else the current config's
    ``usage.alerts`` (so a reload applies), else the seed's defaults."""
    t = getattr(request.app.state, "alert_thresholds", None)
    if t is None:
        t = getattr(gateway_of(request).router.config.usage, "alerts", None)
    return t if isinstance(t, AlertThresholds) else AlertThresholds()


def _window(request: Request, default_since: str) -> tuple[float, float]:
    now = time.time()
    q = request.query_params
    try:
        since = parse_time(q.get("since") or default_since, now)
    except ValueError as exc:
        raise RequestError(str(exc), param="since") from None
    try:
        until = parse_time(q["until"], now) if q.get("until") else now
    except ValueError as exc:
        raise RequestError(str(exc), param="until") from None
    if until <= since:
        raise RequestError("'until' must be after 'since'", param="until")
    return since, until


def _group_by(request: Request) -> list[str]:
    from polyroute.usage.queries import GroupByError, group_names

    raw = request.query_params.get("by") or ""
    try:
        return group_names([p for p in raw.split(",") if p.strip()])
    except GroupByError as exc:
        raise RequestError(str(exc), param="by") from None


async def usage(request: Request) -> Response:
    authorize(request)
    store = _store(request)
    since, until = _window(request, "24h")
    by = _group_by(request)
    totals = await store.totals(since, until)
    rows = await store.summary(since, until, by) if by else []
    return json_response(
        {"since": iso(since), "until": iso(until), "by": by, "totals": totals, "rows": rows}
    )


async def alerts(request: Request) -> Response:
    from polyroute.usage.monitor import window_view

    authorize(request)
    store = _store(request)
    since, until = _window(request, "1h")
    thresholds = _thresholds(request)
    totals, by_tier, found = await window_view(store, thresholds, since, until)
    return json_response(
        {
            "since": iso(since),
            "until": iso(until),
            "thresholds": thresholds.model_dump(),
            "alerts": [a.to_dict() for a in found],
            "totals": totals,
            "by_tier": by_tier,
        }
    )


async def recent_calls(request: Request) -> Response:
    from polyroute.usage.queries import GroupByError

    authorize(request)
    store = _store(request)
    q = request.query_params
    raw = q.get("limit") or "50"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise RequestError(f"'limit' must be an integer from 1 to {MAX_LIMIT}", param="limit")
    filters = {k: v for k, v in q.items() if k != "limit"}
    try:
        calls = await store.recent(int(raw), filters)
    except GroupByError as exc:
        raise RequestError(f"unknown filter: {exc}", param=exc.name) from None
    return json_response({"calls": calls})
