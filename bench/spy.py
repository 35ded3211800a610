"""Where a gateway process spends its CPU under load: py-spy, summarised.

``record(pid, seconds, out)`` samples a running process with
``py-spy record --format raw --nonblocking`` (collapsed stacks, the target is
not paused); ``summarize(path)`` turns the stacks into the top frames by self
time (the function on top of the stack) and by inclusive time (anywhere on the
stack), as shares of all samples.

``python bench/spy.py --pid PID --seconds 10`` or ``python bench/spy.py FILE``
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def record(
    pid: int,
    seconds: float,
    out: Path,
    rate: int = 250,
    core: str | None = "0",
    nonblocking: bool = False,
) -> Path:
    """Sample ``pid``.  Blocking mode (the default) pauses the target for each
    sample, which slows it a little but gives consistent stacks; nonblocking
    stacks can be torn and misattribute self time."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy not installed (pip install py-spy)")
    argv = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    # --gil: only the thread holding the GIL, i.e. Python work; threads parked on a
    # queue (the usage writer, executor workers) would otherwise count as busy.
    argv += ["--rate", str(rate), "--format", "raw", "--gil", "-o", str(out)]
    if nonblocking:
        argv.append("--nonblocking")
    if core is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", core, *argv]
    subprocess.run(argv, check=True, capture_output=True, timeout=seconds + 60)
    return out


def _line(frame: str) -> str:
    """``func (file:line)`` as py-spy printed it, paths shortened."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{_short(frame)[:-1]}:{m.group('line')})" if m.group("line") else _short(frame)


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def _package(frame: str) -> str:
    """The top-level package of a frame (py-spy prints paths relative to sys.path)."""
    m = _FRAME.match(frame.strip())
    path = m.group("file") if m else frame
    for marker in ("site-packages/", "/src/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    top = path.split("/", 1)[0].removesuffix(".py")
    if top in sys.stdlib_module_names:
        return f"{top} (stdlib)"
    return top or "other"


# Leaves that mean "parked", in case a sample of a waiting thread slips through.
_IDLE = (
    "_worker (concurrent/futures/thread.py",
    "Condition.wait (threading.py",
    "Event.wait (threading.py",
    "Queue.get (queue.py",
    "select (selectors.py",
)


def _idle(leaf: str) -> bool:
    return leaf.strip().startswith(_IDLE)


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    pkg_self: Counter[str] = Counter()
    line_self: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames or _idle(frames[-1]):
            continue
        total += count
        self_c[_short(frames[-1])] += count
        pkg_self[_package(frames[-1])] += count
        line_self[_line(frames[-1])] += count
        for f in {_short(f) for f in frames}:
            incl[f] += count

    def share(c: Counter[str], k: int) -> list[tuple[str, float]]:
        return [(f, round(100.0 * n / total, 1)) for f, n in c.most_common(k)] if total else []

    return {
        "samples": total,
        "self": share(self_c, top),
        "inclusive": share(incl, top * 2),
        "by_package_self": share(pkg_self, 15),
        "self_lines": share(line_self, top),
    }


def render(summary: dict[str, Any], top: int = 20) -> str:
    lines = [f"samples: {summary['samples']}", "", "top self time (% of samples):"]
    lines += [f"  {pct:5.1f}%  {f}" for f, pct in summary["self"][:top]]
    lines += ["", "top self lines:"]
    lines += [f"  {pct:5.1f}%  {f}" for f, pct in summary.get("self_lines", [])[:top]]
    lines += ["", "top inclusive time:"]
    lines += [f"  {pct:5.1f}%  {f}" for f, pct in summary["inclusive"][: top * 2]]
    lines += ["", "self time by package:"]
    lines += [f"  {pct:5.1f}%  {f}" for f, pct in summary["by_package_self"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", nargs="?", help="a raw (collapsed) py-spy file to summarise")
    p.add_argument("--pid", type=int)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--out", default="profile.raw")
    a = p.parse_args(argv)
    path = Path(a.file) if a.file else record(a.pid, a.seconds, Path(a.out))
    print(render(summarize(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
