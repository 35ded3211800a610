"""A finished call (``CallRecord``) as one flat usage row.

The labels that reports group by most (pipeline, step, role, task, tier,
product type, API key id) get their own indexed-friendly columns; any other
label stays in the JSON ``labels`` column, still groupable through JSON
extraction.  Attempts are kept whole as JSON so a failed call can be explained
later (model, trigger, retries, provider request id of every candidate).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from polyroute.types import Attempt, CallRecord, Usage

LABEL_COLUMNS: tuple[str, ...] = (
    "pipeline",
    "step",
    "role",
    "task",
    "tier",
    "product_type",
    "api_key",
)
# Columns a summary may group by, besides ``labels.<name>`` for any other label.
GROUP_COLUMNS: tuple[str, ...] = (
    "model",
    "provider",
    "route",
    "kind",
    "status",
    "error_kind",
    *LABEL_COLUMNS,
)
# Short names the CLI and API accept (``--by key``).
GROUP_ALIASES: dict[str, str] = {"key": "api_key", "product": "product_type", "error": "error_kind"}

TierOf = Callable[[str], str | None]

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def error_kind(rec: CallRecord) -> str | None:
    """Why a call failed, in the fallback-trigger vocabulary when there is one.

    The last failed attempt's trigger (``rate_limit``, ``timeout``...) says more
    than the exception class a route raises once every candidate is gone.
    """
    explicit = getattr(rec, "error_kind", None)  # if CallRecord grows the field, it wins
    if isinstance(explicit, str) and explicit:
        return explicit
    if rec.status == "ok":
        return None
    for a in reversed(rec.attempts):
        if a.outcome == "error" and a.trigger:
            return a.trigger
    name = rec.status.removesuffix("Error") or rec.status
    return _CAMEL.sub("_", name).lower()


def costs(rec: CallRecord) -> tuple[float, float]:
    """(cost paid, cost the cache saved).  A hit pays nothing (``cost`` 0) and
    saves what the stored answer cost when it was made."""
    return float(rec.cost), float(rec.saved_cost)


_FIELDS = frozenset(f.name for f in dataclasses.fields(CallRecord))
_ATTEMPT_NAMES = tuple(f.name for f in dataclasses.fields(Attempt))
_ATTEMPT_FIELDS = frozenset(_ATTEMPT_NAMES)


def to_row(record_id: str, rec: CallRecord, tier_of: TierOf | None = None) -> dict[str, Any]:
    labels = dict(rec.labels)
    known = {name: _label(labels.pop(name, None)) for name in LABEL_COLUMNS}
    if known["tier"] is None and tier_of is not None and rec.model:
        # A call through a role or step route has no tier label; the answering
        # model's catalog tier still lets cost per request be read by tier.
        known["tier"] = tier_of(rec.model)
    cost, saved = costs(rec)
    return {
        "id": record_id,
        "time": float(rec.time),
        "kind": rec.kind,
        "route": rec.route,
        "model": rec.model,
        "provider": rec.provider,
        "status": rec.status,
        "error_kind": error_kind(rec),
        "error": rec.error[:500] if rec.error else None,
        **known,
        "labels": {k: str(v) for k, v in labels.items()} or None,
        "tokens_in": int(rec.usage.prompt_tokens),
        "tokens_out": int(rec.usage.completion_tokens),
        "cost": cost,
        "saved_cost": saved,
        "latency": float(rec.latency),
        "ttft": None if rec.ttft is None else float(rec.ttft),
        "retries": int(rec.retries),
        "fallbacks": int(rec.fallbacks),
        "cache_hit": bool(rec.cache_hit),
        "request_id": rec.request_id,
        "attempts": [_attempt(a) for a in rec.attempts] or None,
    }


def _attempt(a: Attempt) -> dict[str, Any]:
    # By hand: dataclasses.asdict (Attempt.to_dict) deep-copies and costs ~4x more.
    d = {name: getattr(a, name) for name in _ATTEMPT_NAMES}
    d["retried"] = list(a.retried)
    return d


def _label(v: object) -> str | None:
    return None if v is None else str(v)[:200]


def from_json(data: Mapping[str, Any]) -> CallRecord:
    """Rebuild a record from its spooled JSON form (``orjson.dumps(record)``).

    Unknown keys are dropped, so a spool written by a newer or older version
    (a field added to or removed from ``CallRecord``) still replays.
    """
    kw = {k: v for k, v in data.items() if k in _FIELDS}
    usage = kw.get("usage") or {}
    kw["usage"] = Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
    kw["attempts"] = [
        Attempt(**{k: v for k, v in a.items() if k in _ATTEMPT_FIELDS})
        for a in kw.get("attempts") or []
    ]
    return CallRecord(**kw)
