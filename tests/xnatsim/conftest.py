"""Fixtures for tests that talk to xnatsim over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from xnatsim.testing import Api, Server, running_server


@pytest.fixture(scope="session")
def xnatsim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One in-process xnatsim for the whole session, on a fresh data folder (user admin/admin)."""
    data: Path = tmp_path_factory.mktemp("xnatsim-data")
    with running_server(data) as server:
        yield server


@pytest.fixture(scope="session")
def xnatsim_url(xnatsim_server: Server) -> str:
    """Base URL of the session's xnatsim (``http://127.0.0.1:<port>``)."""
    return xnatsim_server.url


@pytest.fixture(scope="session")
def api(xnatsim_server: Server) -> Api:
    """Plain HTTP access to the session's xnatsim as admin (``api.get("/data/projects")``)."""
    return Api(xnatsim_server)


@pytest.fixture(scope="module")
def http(server: Server) -> requests.Session:
    """``requests`` logged in as admin (Basic auth) to the module's own ``server`` fixture."""
    return server.session()
