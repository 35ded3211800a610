"""Reading the usage table: grouped summaries with latency percentiles, recent
calls, month-to-date cost.  Plain synchronous functions over an ``Engine``;
``UsageStore`` runs them on a worker thread.

Percentiles are ``percentile_cont`` (linear interpolation between the two
nearest ranks).  PostgreSQL computes them itself; elsewhere (SQLite) a window
query ranks latencies per group and returns only the two rows around each
percentile's position, so a day of traffic is not pulled into Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    Subquery,
    Table,
    and_,
    case,
    cast,
    func,
    or_,
    select,
    true,
)

from polyroute.usage.records import GROUP_ALIASES, GROUP_COLUMNS

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
_LABEL = re.compile(r"labels\.([A-Za-z_][A-Za-z0-9_.-]{0,63})")


class GroupByError(ValueError):
    def __init__(self, name: str) -> None:
        allowed = ", ".join((*GROUP_COLUMNS, *GROUP_ALIASES, "labels.<name>"))
        super().__init__(f"cannot group by {name!r}; allowed: {allowed}")
        self.name = name


def group_names(names: Sequence[str]) -> list[str]:
    """Canonical group names (aliases resolved, duplicates dropped); raises GroupByError."""
    out: list[str] = []
    for raw in names:
        name = GROUP_ALIASES.get(raw.strip(), raw.strip())
        if not name:
            continue
        if name not in GROUP_COLUMNS and not _LABEL.fullmatch(name):
            raise GroupByError(raw)
        if name not in out:
            out.append(name)
    return out


def column_for(t: Table, name: str) -> ColumnElement[Any]:
    m = _LABEL.fullmatch(name)
    if m:
        label: ColumnElement[Any] = t.c.labels[m.group(1)].as_string()
        return label
    return t.c[name]


def _window(t: Table, since: float | None, until: float | None) -> ColumnElement[bool]:
    conds: list[ColumnElement[bool]] = []
    if since is not None:
        conds.append(t.c.time >= since)
    if until is not None:
        conds.append(t.c.time < until)
    return and_(true(), *conds)


def _source(t: Table, names: Sequence[str], since: float | None, until: float | None) -> Subquery:
    """The window's rows with each group key as a plain column ``g0``, ``g1``...

    Grouping by the subquery's columns instead of by the expressions keeps
    PostgreSQL happy: ``labels ->> $1`` in SELECT and ``labels ->> $2`` in
    GROUP BY are different expressions to it.
    """
    keys = [column_for(t, n).label(f"g{i}") for i, n in enumerate(names)]
    return select(*t.c, *keys).where(_window(t, since, until)).subquery()


def _aggregates(src: Subquery) -> list[ColumnElement[Any]]:
    c = src.c

    def n_if(cond: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    def total(col: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(col), 0)

    return [
        func.count().label("count"),
        n_if(c.status != "ok").label("errors"),
        total(c.tokens_in).label("tokens_in"),
        total(c.tokens_out).label("tokens_out"),
        total(c.cost).label("cost"),
        total(c.saved_cost).label("saved_cost"),
        func.avg(c.latency).label("latency_avg"),
        func.max(c.latency).label("latency_max"),
        func.avg(c.ttft).label("ttft_avg"),
        n_if(c.cache_hit == true()).label("cache_hits"),
        n_if(c.fallbacks > 0).label("fallback_requests"),
        total(c.fallbacks).label("fallbacks"),
        total(c.retries).label("retries"),
    ]


def summary(
    conn: Connection,
    t: Table,
    since: float | None,
    until: float | None,
    group_by: Sequence[str],
) -> list[dict[str, Any]]:
    names = group_names(group_by)
    src = _source(t, names, since, until)
    gcols = [src.c[f"g{i}"] for i in range(len(names))]
    postgres = conn.dialect.name == "postgresql"
    cols = [*(g.label(n) for g, n in zip(gcols, names, strict=True)), *_aggregates(src)]
    if postgres:
        cols += [
            func.percentile_cont(p).within_group(src.c.latency).label(f"latency_{name}")
            for name, p in PERCENTILES
        ]
    q = select(*cols)
    if gcols:
        q = q.group_by(*gcols)
    rows = [_plain(r._mapping) for r in conn.execute(q)]
    rows = [r for r in rows if r["count"]]
    if not postgres and rows:
        pct = _ranked_percentiles(conn, _source(t, names, since, until), len(names))
        for r in rows:
            r.update(pct.get(tuple(r[n] for n in names), {}))
    out = [_finish(r) for r in rows]
    out.sort(key=lambda r: (-r["cost"], -r["count"], [str(r[n]) for n in names]))
    return out


def _ranked_percentiles(
    conn: Connection, src: Subquery, groups: int
) -> dict[tuple[Any, ...], dict[str, float]]:
    gcols = [src.c[f"g{i}"] for i in range(groups)]
    part = gcols or None
    sub = select(
        *gcols,
        src.c.latency.label("lat"),
        func.row_number().over(partition_by=part, order_by=src.c.latency).label("rn"),
        func.count().over(partition_by=part).label("n"),
    ).subquery()
    wanted: list[ColumnElement[bool]] = []
    for _, p in PERCENTILES:
        # CAST truncates like Python's int(); both sides compute (n-1)*p in IEEE
        # doubles, so they agree on which two ranks to fetch.
        base = cast((sub.c.n - 1) * p, Integer)
        wanted += [sub.c.rn == base + 1, sub.c.rn == base + 2]
    outer = [sub.c[f"g{i}"] for i in range(groups)]
    q: Select[Any] = select(*outer, sub.c.rn, sub.c.n, sub.c.lat).where(or_(*wanted))
    ranks: dict[tuple[Any, ...], tuple[int, dict[int, float]]] = {}
    for row in conn.execute(q):
        key = tuple(row[:groups])
        rn, n, lat = row[groups], row[groups + 1], row[groups + 2]
        ranks.setdefault(key, (int(n), {}))[1][int(rn)] = float(lat)
    return {
        key: {f"latency_{name}": interpolate(n, at, p) for name, p in PERCENTILES}
        for key, (n, at) in ranks.items()
    }


def interpolate(n: int, at: Mapping[int, float], p: float) -> float:
    """percentile_cont over ``n`` sorted values, given the 1-based ranks it needs."""
    pos = (n - 1) * p
    lo = int(pos)
    v_lo = at[lo + 1]
    v_hi = at.get(lo + 2, v_lo)
    return v_lo + (v_hi - v_lo) * (pos - lo)


def percentile(values: Sequence[float], p: float) -> float:
    """The same definition over a plain list (tests, in-memory snapshots)."""
    s = sorted(values)
    return interpolate(len(s), {i + 1: v for i, v in enumerate(s)}, p)


_COUNTS = (
    "errors",
    "tokens_in",
    "tokens_out",
    "cache_hits",
    "fallback_requests",
    "fallbacks",
    "retries",
)
_OPTIONAL_FLOATS = (
    "latency_avg",
    "latency_max",
    "ttft_avg",
    *(f"latency_{k}" for k, _ in PERCENTILES),
)


def _finish(r: dict[str, Any]) -> dict[str, Any]:
    n = int(r["count"])
    for k in _COUNTS:
        r[k] = int(r[k])
    for k in ("cost", "saved_cost"):
        r[k] = float(r[k])
    for k in _OPTIONAL_FLOATS:
        r[k] = None if r.get(k) is None else float(r[k])
    r["count"] = n
    r["error_rate"] = r["errors"] / n
    r["cost_per_request"] = r["cost"] / n
    r["cache_hit_rate"] = r["cache_hits"] / n
    r["fallback_rate"] = r["fallback_requests"] / n
    return r


def empty_totals() -> dict[str, Any]:
    base: dict[str, Any] = {"count": 0, **{k: 0 for k in _COUNTS}, "cost": 0.0}
    base["saved_cost"] = 0.0
    for k in _OPTIONAL_FLOATS:
        base[k] = None
    base.update(error_rate=None, cost_per_request=None, cache_hit_rate=None, fallback_rate=None)
    return base


def recent(
    conn: Connection, t: Table, limit: int, filters: Mapping[str, str]
) -> list[dict[str, Any]]:
    q = select(t)
    for name, value in filters.items():
        q = q.where(column_for(t, group_names([name])[0]) == value)
    q = q.order_by(t.c.time.desc(), t.c.id.desc()).limit(limit)
    return [_plain(r._mapping) for r in conn.execute(q)]


def _plain(m: Mapping[Any, Any]) -> dict[str, Any]:
    # Column names come back as SQLAlchemy's ``quoted_name`` (a str subclass),
    # which orjson refuses as a dict key.
    return {str(k): v for k, v in m.items()}


def cost_since(conn: Connection, t: Table, since: float, api_key: str | None) -> float:
    q = select(func.coalesce(func.sum(t.c.cost), 0.0)).where(t.c.time >= since)
    if api_key is not None:
        q = q.where(t.c.api_key == api_key)
    return float(conn.execute(q).scalar_one())


def cost_by_key_since(conn: Connection, t: Table, since: float) -> dict[str, float]:
    q = (
        select(t.c.api_key, func.coalesce(func.sum(t.c.cost), 0.0))
        .where(t.c.time >= since, t.c.api_key.is_not(None))
        .group_by(t.c.api_key)
    )
    return {str(k): float(v) for k, v in conn.execute(q)}
