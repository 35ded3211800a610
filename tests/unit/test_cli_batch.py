"""`polyroute batch`: JSON lines in, results out, exit status reflects failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polyroute.cli import app


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "POLYROUTE_CONFIG", "AI_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def test_batch_writes_results_in_order(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "first"}\n\n{"prompt": "second", "route": "tier:fast"}\n')
    out = tmp_path / "out.jsonl"
    r = CliRunner().invoke(app, ["batch", str(src), "--out", str(out), "--concurrency", "2"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert "first" in rows[0]["content"] and rows[1]["route"] == "tier:fast"
    assert "2 ok, 0 failed" in r.output


def test_batch_failure_sets_exit_status(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "x", "route": "no-such-route"}\n')
    r = CliRunner().invoke(app, ["batch", str(src)])
    assert r.exit_code == 1
    assert "unknown route" in r.output
