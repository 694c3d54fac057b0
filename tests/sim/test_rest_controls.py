"""Test controls: request counters and log, injected latency, 5xx answers and dropped connections."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from xnatsim.testing import Api, Server, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path, fetch_schemas=False) as srv:
        yield srv


def test_stats_count_requests_per_route_and_reset(server: Server) -> None:
    api = Api(server)
    assert server.stats()["requests"] == 0
    api.put("/data/projects/C1", params={"xsiType": "xnat:projectData"})
    api.get("/data/projects")
    api.get("/data/archive/projects")
    api.get("/data/projects/C1/subjects/NOPE")
    stats = server.stats(with_log=True)
    assert stats["requests"] == 4
    assert stats["routes"]["GET /data/projects"] == 2
    assert stats["routes"]["PUT /data/projects/{project}"] == 1
    assert stats["statuses"] == {"200": 3, "404": 1}
    assert [entry["path"] for entry in stats["log"]] == ["/data/projects/C1", "/data/projects",
                                                         "/data/archive/projects", "/data/projects/C1/subjects/NOPE"]
    server.reset_stats()
    assert server.stats()["requests"] == 0
    assert server.stats()["routes"] == {}


def test_fail_every_and_fail_rate(server: Server) -> None:
    api = Api(server)
    server.set_faults(fail_every=3)
    statuses = [api.get("/data/projects").status_code for _ in range(6)]
    assert statuses == [200, 200, 503, 200, 200, 503]
    server.set_faults(fail_every=0, fail_rate=1.0, fail_status=500)
    assert api.get("/data/projects").status_code == 500
    server.set_faults(fail_rate=0.0)
    assert api.get("/data/projects").status_code == 200
    assert server.stats()["failed"] == 3


def test_drop_every_closes_without_reply(server: Server) -> None:
    server.set_faults(drop_every=2)
    auth = (server.user, server.password)
    assert requests.get(server.url + "/data/projects", auth=auth, timeout=10).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/data/projects", auth=auth, timeout=10)
    assert requests.get(server.url + "/data/projects", auth=auth, timeout=10).status_code == 200
    assert server.stats()["dropped"] == 1


def test_latency(server: Server) -> None:
    api = Api(server)
    server.set_faults(latency_ms=150)
    started = time.perf_counter()
    assert api.get("/data/projects").status_code == 200
    assert time.perf_counter() - started >= 0.15
    assert server.set_faults(latency_ms=0)["latency_ms"] == 0
    assert requests.get(server.url + "/xnatsim/faults", timeout=10).json()["latency_ms"] == 0


def test_subprocess_server_and_restart_keeps_data(tmp_path: Path) -> None:
    with running_server(tmp_path, in_process=False, fetch_schemas=False, fail_every=2) as server:
        api = Api(server)
        assert api.put("/data/projects/KEEP", params={"xsiType": "xnat:projectData"}).status_code == 200
        assert api.put("/data/projects/KEEP/resources/R/files/f.txt", data=b"kept").status_code == 503
        assert api.put("/data/projects/KEEP/resources/R/files/f.txt", data=b"kept").status_code == 200
        assert server.stats()["requests"] == 3
    with running_server(tmp_path, fetch_schemas=False) as again:
        api = Api(again)
        assert api.get("/data/projects/KEEP/resources/R/files/f.txt").content == b"kept"


@pytest.mark.parametrize(("args", "message"), [
    (["--fail-rate", "3"], "--fail-rate"),
    (["--fail-status", "404"], "--fail-status"),
    (["--seed", "no-such-seed"], "no-such-seed"),
])
def test_serve_refuses_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "xnatsim", "serve", "--port", "0", "--no-fetch-schemas",
                           "--data", str(tmp_path / "data"), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert message in done.stderr


def test_token_secrets_stay_out_of_the_request_log(server: Server) -> None:
    token = server.store.issue_token("admin")
    requests.get(f"{server.url}/data/services/tokens/validate/{token['alias']}/{token['secret']}",
                 auth=(server.user, server.password), timeout=10)
    logged = server.stats(with_log=True)["log"]
    assert token["secret"] not in str(logged)
    assert logged[-1]["path"].endswith(f"{token['alias']}/******")
