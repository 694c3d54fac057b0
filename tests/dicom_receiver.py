"""xnatsim with its DICOM C-STORE receiver, as module-scoped fixtures for the test modules that send
DICOM to it (the simulator's own tests and dicom-upload's)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from xnatsim.testing import Api, Server, running_server


def receiver_fixtures(idle: float, folder: str) -> tuple[Any, Any, Any]:
    """Module-scoped ``server``, ``api`` and ``port`` fixtures: an in-process xnatsim (data in a
    fresh ``folder``) whose C-STORE receiver (AE title XNAT) listens on a free 127.0.0.1 port and
    builds a session ``idle`` seconds after its last object.

    Bind them at module level under those names: ``server, api, port = receiver_fixtures(0.5, "scp")``.
    """

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
        with running_server(tmp_path_factory.mktemp(folder), fetch_schemas=False, dicom_port=0,
                            session_idle_seconds=idle) as srv:
            yield srv

    @pytest.fixture(scope="module")
    def api(server: Server) -> Api:
        return Api(server)

    @pytest.fixture(scope="module")
    def port(api: Api) -> int:
        receivers = api.get("/xapi/dicomscp").json()
        assert receivers[0]["aeTitle"] == "XNAT"
        return int(receivers[0]["port"])

    return server, api, port
