"""Test controls: request counters and log, injected latency, 5xx answers and dropped connections."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

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


def test_stats_hold_a_request_before_its_reply_is_read(server: Server) -> None:
    """A request is in the counts and the log before its reply goes out, so a client reading
    /xnatsim/stats right after its last call never misses it (here: a reply not yet read)."""
    api = Api(server)
    api.put("/data/projects/C2", params={"xsiType": "xnat:projectData"})
    api.put("/data/projects/C2/resources/R/files/big.bin", data=b"\x01" * (48 * 1024**2))
    server.reset_stats()
    auth = (server.user, server.password)
    with requests.get(server.url + "/data/projects/C2/resources/R/files/big.bin", auth=auth, stream=True,
                      timeout=30) as pending:
        assert pending.status_code == 200
        stats = server.stats(with_log=True)  # the server is still blocked sending the 48 MB body
        assert stats["requests"] == 1
        assert stats["statuses"] == {"200": 1}
        assert [entry["path"] for entry in stats["log"]] == ["/data/projects/C2/resources/R/files/big.bin"]
        assert len(pending.content) == 48 * 1024**2
    for _ in range(50):
        server.reset_stats()
        api.get("/data/projects")
        stats = server.stats(with_log=True)
        assert (stats["requests"], stats["statuses"], len(stats["log"])) == (1, {"200": 1}, 1)


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
    stats = server.stats(with_log=True)
    assert (stats["requests"], stats["dropped"], stats["statuses"]) == (3, 1, {"200": 2})
    assert [entry["status"] for entry in stats["log"]] == [200, 0, 200]


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


def test_idle_and_stalled_connections_are_closed(tmp_path: Path) -> None:
    """A client that connects and sends nothing, or stops half way through a body, loses its
    connection after ``idle_timeout`` instead of holding a server thread for ever."""
    with running_server(tmp_path, fetch_schemas=False, idle_timeout=0.5) as server:
        parts = urlsplit(server.url)
        address = (parts.hostname or "127.0.0.1", parts.port or 80)
        Api(server).put("/data/projects/X", params={"xsiType": "xnat:projectData"})
        for opening in (b"", b"PUT /data/projects/X/resources/R/files/a.bin HTTP/1.1\r\nHost: x\r\n"
                             b"Authorization: Basic YWRtaW46YWRtaW4=\r\nContent-Length: 100\r\n\r\nonly10byte"):
            with socket.create_connection(address, timeout=10) as sock:
                sock.sendall(opening)
                started = time.perf_counter()
                received = b""
                while chunk := sock.recv(65536):  # the stalled upload gets a 408 first
                    received += chunk
                assert time.perf_counter() - started < 5
                assert received.startswith(b"HTTP/1.1 408") if opening else received == b""
        assert Api(server).get("/data/projects/X/resources/R/files/a.bin").status_code == 404
        assert not list(server.store.tmp_dir.iterdir())
