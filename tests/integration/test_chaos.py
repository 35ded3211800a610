"""The chaos run at CI size: faults at a steady rate; nothing lost, every call recorded.

Full size: ``python bench/chaos.py --rate 200 --duration 300``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_chaos_run_loses_nothing_and_records_everything() -> None:
    path = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"
    spec = importlib.util.spec_from_file_location("polyroute_bench_chaos", path)
    assert spec is not None and spec.loader is not None
    chaos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chaos)
    report = chaos.run_chaos(rate=40, duration=6, stream_share=0.3, seed=7)
    assert report["sent"] == 240
    assert report["lost"] == 0, report
    assert report["usage_records"] == report["sent"], report
