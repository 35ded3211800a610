"""``polyroute usage``: the usage store as tables in the terminal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from polyroute.usage.alerts import AlertThresholds
from polyroute.usage.monitor import window_view
from polyroute.usage.queries import group_names
from polyroute.usage.tables import DEFAULT_TABLE, redact
from polyroute.usage.window import iso, parse_time

_LEVEL_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def usage_report(
    store_url: str,
    since: str = "24h",
    by: Sequence[str] = ("model",),
    *,
    until: str | None = None,
    thresholds: AlertThresholds | None = None,
    table: str = DEFAULT_TABLE,
) -> dict[str, Any]:
    """Totals, grouped rows and alerts for a window, as plain data (``--json``)."""
    from polyroute.usage.store import UsageStore

    now = time.time()
    lo = parse_time(since, now)
    hi = parse_time(until, now) if until else now
    names = group_names(by)
    t = thresholds or AlertThresholds()
    # Read only: no writer thread, no spool directory.
    store = UsageStore(store_url, table=table, spool=False)

    async def go() -> dict[str, Any]:
        totals, by_tier, alerts = await window_view(store, t, lo, hi)
        rows = await store.summary(lo, hi, names) if names else []
        return {
            "store": redact(store_url),
            "since": iso(lo),
            "until": iso(hi),
            "by": names,
            "totals": totals,
            "rows": rows,
            "by_tier": by_tier,
            "alerts": [a.to_dict() for a in alerts],
        }

    try:
        return asyncio.run(go())
    finally:
        store.engine.dispose()


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:,.4f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def _secs(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


_COLUMNS: tuple[tuple[str, str], ...] = (
    ("calls", "count"),
    ("errors", "errors"),
    ("tokens in", "tokens_in"),
    ("tokens out", "tokens_out"),
    ("cost", "cost"),
    ("$/call", "cost_per_request"),
    ("saved", "saved_cost"),
    ("p50", "latency_p50"),
    ("p95", "latency_p95"),
    ("p99", "latency_p99"),
    ("cache hit", "cache_hit_rate"),
    ("fallback", "fallback_rate"),
)


def _cell(key: str, v: Any) -> str:
    if key in ("cost", "cost_per_request", "saved_cost"):
        return _money(v)
    if key.startswith("latency_"):
        return _secs(v)
    if key.endswith("_rate"):
        return _pct(v)
    return f"{v:,}" if isinstance(v, int) else str(v)


def _table(title: str, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> Table:
    t = Table(title=title, title_justify="left")
    for k in keys:
        t.add_column(k)
    for label, _ in _COLUMNS:
        t.add_column(label, justify="right")
    for r in rows:
        group = [escape(str(r[k])) if r.get(k) is not None else "(none)" for k in keys]
        t.add_row(*group, *(_cell(key, r.get(key)) for _, key in _COLUMNS))
    return t


def render_usage(
    store_url: str,
    since: str,
    by: Sequence[str],
    console: Console,
    *,
    until: str | None = None,
    thresholds: AlertThresholds | None = None,
    table: str = DEFAULT_TABLE,
) -> dict[str, Any]:
    """Print totals, one row per group and the window's alerts; returns the data."""
    data = usage_report(store_url, since, by, until=until, thresholds=thresholds, table=table)
    window = f"{data['since']} → {data['until']}"
    console.print(f"[dim]{escape(data['store'])} · {window}[/dim]")
    totals = data["totals"]
    if not totals["count"]:
        console.print("no calls recorded in this window")
        return data
    console.print(_table("totals", [totals], []))
    if data["by"]:
        console.print(_table("by " + ", ".join(data["by"]), data["rows"], data["by"]))
    if data["by"] != ["tier"]:  # seed 003 reads cost per request by tier
        console.print(_table("by tier", data["by_tier"], ["tier"]))
    if data["alerts"]:
        t = Table(title="alerts", title_justify="left")
        for col in ("level", "metric", "group", "value", "threshold", "message"):
            t.add_column(col)
        for a in data["alerts"]:
            style = _LEVEL_STYLE.get(a["level"], "")
            t.add_row(
                f"[{style}]{a['level']}[/{style}]",
                a["metric"],
                a["group"] or "-",
                f"{a['value']:.4g}",
                f"{a['threshold']:g}",
                escape(a["message"]),
            )
        console.print(t)
    else:
        console.print("[green]no alerts[/green]")
    return data
