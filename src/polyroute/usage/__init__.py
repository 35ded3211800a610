"""Usage telemetry: one record per finished call, stored through SQLAlchemy
(SQLite by default, PostgreSQL by URL), summarised into seed 003's metrics and
alerts.

``UsageStore`` is imported on first use: SQLAlchemy loads only when a store is
built, so ``import polyroute`` stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyroute.usage.alerts import Alert, AlertLog, AlertThresholds, evaluate
from polyroute.usage.errors import UsageStoreError

if TYPE_CHECKING:
    from polyroute.usage.store import UsageStore

__all__ = [
    "Alert",
    "AlertLog",
    "AlertThresholds",
    "UsageStore",
    "UsageStoreError",
    "evaluate",
]


def __getattr__(name: str) -> Any:
    if name == "UsageStore":
        from polyroute.usage.store import UsageStore

        return UsageStore
    raise AttributeError(name)
