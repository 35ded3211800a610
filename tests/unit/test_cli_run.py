"""`polyroute run` and `polyroute runs` on the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polyroute.cli import app

PIPE = """
name: blog
default_model: simulator/gpt-4o
steps:
  outline: {model: simulator/gpt-4o-mini, prompt: "Outline a post about {content}"}
  draft: {prompt: "Write the post from: {outputs[outline]}", temperature: 0.8}
"""


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "POLYROUTE_CONFIG", "AI_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")


def test_run_shows_steps_and_stores_the_run(tmp_path: Path) -> None:
    (tmp_path / "pipe.yaml").write_text(PIPE)
    (tmp_path / "in.json").write_text('"drum machines"')
    r = CliRunner().invoke(app, ["run", "pipe.yaml", "--input", "in.json"])
    assert r.exit_code == 0, r.output
    assert "outline" in r.output and "simulator/gpt-4o-mini" in r.output
    assert "2 steps" in r.output
    listed = CliRunner().invoke(app, ["runs", "--json"])
    rows = json.loads(listed.output)
    assert rows[0]["pipeline"] == "blog" and rows[0]["steps"] == 2
    one = CliRunner().invoke(app, ["runs", "--id", rows[0]["run_id"]])
    assert json.loads(one.output)["steps"][1]["model"] == "simulator/gpt-4o"


def test_run_json_and_no_store(tmp_path: Path) -> None:
    (tmp_path / "pipe.yaml").write_text(PIPE)
    r = CliRunner().invoke(app, ["run", "pipe.yaml", "--text", "bells", "--json", "--no-store"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.output)
    assert [s["step_name"] for s in run["steps"]] == ["outline", "draft"]
    assert run["total_cost"] == pytest.approx(sum(s["cost"] for s in run["steps"]))
    assert not (tmp_path / "polyroute.db").exists()


def test_run_reports_config_errors(tmp_path: Path) -> None:
    (tmp_path / "pipe.yaml").write_text(PIPE.replace("temperature: 0.8", "temperature: 9"))
    r = CliRunner().invoke(app, ["run", "pipe.yaml", "--text", "x"])
    assert r.exit_code == 2
    assert "pipelines.blog.steps.draft.temperature" in r.output
