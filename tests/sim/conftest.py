"""Fixtures of the nifti-import tests against xnatsim (other modules here bring their own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from xnatsim.testing import Api, Server, running_server

from tests.xnat_env import point_xnatnode_at


@pytest.fixture(scope="module")
def nifti_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An in-process xnatsim for one test module."""
    with running_server(tmp_path_factory.mktemp("xnatsim")) as server:
        yield server


@pytest.fixture(scope="module")
def api(nifti_server: Server) -> Api:
    return Api(nifti_server)


@pytest.fixture
def env(nifti_server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The server, with XNAT_HOST/XNAT_USER/XNAT_PASS pointing at it for ``xnatnode``."""
    return point_xnatnode_at(nifti_server, monkeypatch)
