"""Fixtures shared by the kit's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ccskit.loop import LoopThread
from fake_ccs import FakeCcs


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCcs]:
    """A tiny local CCS server (real WebSockets) on a loop thread of its own, per module."""
    host = LoopThread("fake-ccs")
    server = FakeCcs()
    host.run(server.start(), 5)
    yield server
    host.run(server.stop(), 5)
