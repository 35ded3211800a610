"""Routing decisions as structured logs, and no key in them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from polyroute import Router
from polyroute.logs import JsonFormatter, TextFormatter, setup


@pytest.fixture
def captured() -> io.StringIO:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("polyroute")
    old = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    yield buf
    logger.handlers[:], logger.level, logger.propagate = old[0], old[1], old[2]


async def test_selection_decisions_are_json_lines(captured: io.StringIO) -> None:
    cfg = {
        "providers": {
            "down": {
                "type": "simulator",
                "simulator": {"failure_rate": 1.0, "error_kinds": ["timeout"]},
            }
        },
        "routes": {"r": {"models": ["down/gpt-4o", "simulator/gpt-4o"]}},
        "policies": {"retry": {"max_attempts": 1}},
    }
    router = Router.from_config(cfg, environ={"OPENAI_API_KEY": "sk-secret-never-logged"})
    await router.complete("r", "hi")
    lines = [json.loads(x) for x in captured.getvalue().splitlines()]
    msgs = [(x["msg"], x.get("candidate")) for x in lines]
    assert ("candidate chosen", "down/gpt-4o") in msgs
    assert ("candidate failed, falling back", "down/gpt-4o") in msgs
    assert ("candidate chosen", "simulator/gpt-4o") in msgs
    failed = next(x for x in lines if x["msg"] == "candidate failed, falling back")
    assert failed["route"] == "r" and failed["trigger"] == "timeout"
    assert "sk-secret-never-logged" not in captured.getvalue()
    await router.aclose()


def test_text_formatter_appends_fields() -> None:
    rec = logging.LogRecord("polyroute.router", logging.INFO, "", 0, "candidate skipped", (), None)
    rec.route = "tier:fast"
    rec.reason = "cooldown"
    assert TextFormatter().format(rec).endswith("route=tier:fast reason=cooldown")


def test_setup_configures_only_the_polyroute_logger(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("polyroute")
    root_handlers = logging.getLogger().handlers[:]
    old = (logger.handlers[:], logger.level, logger.propagate)
    try:
        setup("info", "json")
        assert logger.level == logging.INFO and logger.propagate is False
        [handler] = logger.handlers
        assert isinstance(handler.formatter, JsonFormatter)
        logging.getLogger("polyroute.router").info("routed", extra={"route": "tier:fast"})
        logging.getLogger("polyroute.router").debug("below the level")
        [line] = capsys.readouterr().err.splitlines()
        record = json.loads(line)
        assert record["msg"] == "routed" and record["route"] == "tier:fast"
        assert record["level"] == "info" and record["logger"] == "polyroute.router"

        setup("warning", "text")  # called again: the handler is replaced, not added
        [handler] = logger.handlers
        assert isinstance(handler.formatter, TextFormatter) and logger.level == logging.WARNING
        assert logging.getLogger().handlers == root_handlers
    finally:
        logger.handlers[:], logger.level, logger.propagate = old[0], old[1], old[2]
