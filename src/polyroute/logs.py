"""Structured logs: every routing decision is a log record whose ``extra`` fields
(route, candidate, reason, trigger, retries, ...) become JSON keys.

``polyroute serve --log-format json`` (or ``POLYROUTE_LOG_FORMAT=json``) prints one
JSON object per line; ``text`` prints the message followed by ``key=value`` pairs.
No record carries a provider key: the router logs names, never credentials.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

# Attributes every LogRecord has; anything else was passed in ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
    "taskName",
}


def extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **extras(record),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        fields = " ".join(f"{k}={v}" for k, v in extras(record).items())
        if fields:
            line += "  " + fields
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(level: str = "warning", fmt: str = "text") -> None:
    """Configure the ``polyroute`` loggers (not the root logger: an embedding app keeps its own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger = logging.getLogger("polyroute")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
