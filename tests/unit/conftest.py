"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_http import FakeServer


@pytest.fixture
def srv() -> Iterator[FakeServer]:
    """A scripted HTTP server on 127.0.0.1 with no routes yet (the xnatpy and TLS client tests
    define their own ``srv``)."""
    with FakeServer() as server:
        yield server
