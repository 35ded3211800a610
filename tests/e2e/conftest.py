"""Browser fixtures for the dashboard's end-to-end tests.

Headless Chromium is Debian's ``chromium`` package driven by Playwright with
``executable_path`` (``playwright install`` is never needed).  Override the
binary with ``POLYROUTE_CHROMIUM``.  Screenshots go to
``test-output/screenshots/`` at the repository root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str | None:
    """The Chromium binary to drive, or None when there is none."""
    given = os.environ.get("POLYROUTE_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium")
    return found


@dataclass
class Console:
    """Console errors and uncaught page errors seen by one page."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        def on_console(message: Any) -> None:
            if message.type == "error":
                self.errors.append(f"{message.text} ({message.location.get('url', '')})")

        def on_error(error: Any) -> None:
            self.errors.append(f"uncaught: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_error)

    def take(self) -> list[str]:
        out, self.errors = self.errors, []
        return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: the sync API runs its own event loop in this
    # thread while started, which would collide with pytest-asyncio's loop in
    # the async tests of later modules.
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    assert path is not None  # the test modules skip before this
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
