"""Every example runs end to end in its own process, with no provider key.

The environment is the test's minus every ``*_API_KEY``, so the examples must
run on the simulator alone; the working directory is a temporary one, so they
must not depend on it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COST = r"\$\d+\.\d{6}"


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PATH"] = os.environ.get("PATH", "")
    # A stray config in the environment would change what the examples run on.
    for var in ("POLYROUTE_CONFIG", "AI_PROVIDER"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name / "run.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def row(out: str, first: str) -> str:
    """The output line starting with ``first`` (table rows start with their name)."""
    found = [ln for ln in out.splitlines() if ln.split()[:1] == [first]]
    assert found, f"no line starting with {first!r} in:\n{out}"
    return found[0]


def assert_simulated_and_costed(line: str) -> None:
    assert "simulator" in line and re.search(COST, line), line


def test_marketing(tmp_path: Path) -> None:
    out = run_example("marketing", cwd=tmp_path)
    assert "pipeline marketing: ok, 7 steps" in out
    steps = {
        "seo_keywords": "simulator/gpt-4o-mini",
        "marketing_brief": "simulator/gpt-4o",
        "article_generation": "simulator/gpt-5.1",
        "seo_optimization": "simulator/gpt-4o",
        "suggested_links": "simulator/gpt-4o-mini",
        "content_formatting": "simulator/gpt-4o-mini",
        "design_kit": "simulator/gpt-4o-mini",
    }
    for step, model in steps.items():
        line = row(out, step)
        assert line.split()[1] == model, line
        assert_simulated_and_costed(line)
        assert re.search(r"\d+\.\d{3}s$", line), line
    assert re.search(COST, row(out, "total"))


def test_landing(tmp_path: Path) -> None:
    out = run_example("landing", cwd=tmp_path)
    assert "product type: landing" in out
    assert "style refiner mode: full_mimic" in out
    expected = {
        "classifier": "light-1",
        "writer": "fast-1",  # the landing pool
        "expander": "mid-1",
        "validator": "stable-1",
        "style_refiner": "aesthetic-1",  # has vision, so full_mimic keeps the images
    }
    for role, model in expected.items():
        line = row(out, role)
        assert f"{model} (simulator/" in line, line
        assert_simulated_and_costed(line)


def test_landing_for_a_flow_product(tmp_path: Path) -> None:
    out = run_example("landing", "--product", "booking", cwd=tmp_path)
    assert "product type: booking" in out
    assert "stable-1 (simulator/gpt-4o)" in row(out, "writer")  # flow apps: stable writer


def test_prompt_workflow(tmp_path: Path) -> None:
    out = run_example("prompt_workflow", cwd=tmp_path)
    assert "workflow: ok" in out
    for model in ("gpt-4o", "claude-sonnet-4-20250514", "gemini-2.0-flash"):
        card = row(out, f"simulator/{model}")
        assert re.search(COST, card) and "retries=0" in card, card
    assert re.search(
        r"fallback \(verdict step\): flaky/gpt-4o \(\w+.*-> simulator/gpt-4o-mini", out
    )
    for step in ("draft", "compare", "verdict"):
        assert_simulated_and_costed(row(out, step))


def test_drums(tmp_path: Path) -> None:
    out = run_example("drums", cwd=tmp_path)
    for stage in ("classify", "answer", "section[0]", "section[3]", "combine", "generate"):
        assert_simulated_and_costed(row(out, stage))
    assert "tier:fast" in row(out, "classify") and "tier:advanced" in row(out, "combine")
    assert "tier:fast" in row(out, "check[1]")  # pattern 4 validates on the fast tier
    assert re.search(r"converged: (True|False) after [123] round", out)
    assert "analysis #2: simulator/" in out and "cache_hit=True" in out
    assert re.search(rf"total cost: {COST}", out)


def test_social(tmp_path: Path) -> None:
    out = run_example("social", cwd=tmp_path)
    expected = {
        "task:text": ("simulator/claude-3-5-sonnet-20241022", "simulator/gpt-4o-mini"),
        "task:image": ("simulator/dall-e-3", "simulator/dall-e-2"),
        "task:video-slides": ("simulator/gemini-2.0-flash", "simulator/gpt-4.1"),
        "task:agent": ("simulator/claude-sonnet-4-20250514", "simulator/gpt-4.1"),
    }
    for task, (model, fallback) in expected.items():
        line = row(out, task)
        assert line.split()[1] == model and f"fallback: {fallback}" in line, line
        assert_simulated_and_costed(line)
    assert "https://simulator.polyroute.invalid/dall-e-3/" in row(out, "task:image")


@pytest.mark.parametrize("name", ["marketing", "drums", "landing", "social", "prompt_workflow"])
def test_scripts_import_without_running(name: str) -> None:
    """``main`` is only called under ``__main__``: importing a script has no effect."""
    script = str(EXAMPLES / name / "run.py")
    code = (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('ex', {script!r})\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(mod)\n"
        "assert callable(mod.main)\n"
        "print('imported')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "imported\n"
