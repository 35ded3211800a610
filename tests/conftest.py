"""Shared fixtures.

* ``fake_provider`` (session): one fake LLM provider for the whole run, served from a
  background thread so it works from any event loop and from synchronous tests.
* ``fake``: the same server, reset (no queued faults, no recorded requests, no latency).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakeprovider import FakeProviderThread


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProviderThread]:
    with FakeProviderThread() as server:
        yield server


@pytest.fixture
def fake(fake_provider: FakeProviderThread) -> FakeProviderThread:
    fake_provider.reset()
    return fake_provider
