"""xnatnode.client's keep-alive pool against xnatsim: as many threads as ``--workers`` allows
reuse their connections (no "Connection pool is full", no reconnect per request)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from xnatnode.client import Connection
from xnatnode.credentials import Credentials
from xnatnode.settings import MAX_WORKERS
from xnatsim.testing import Server, running_server

ROUNDS = 3


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An xnatsim whose answers take 100 ms: a round of requests from every thread overlaps."""
    with running_server(tmp_path_factory.mktemp("xnatsim"), latency_ms=100) as server:
        yield server


def test_the_most_workers_reuse_their_connections(slow_server: Server, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    httpd: Any = slow_server._httpd
    accepted: list[object] = []
    serve = httpd.process_request

    def count(request: object, client_address: object) -> None:
        accepted.append(client_address)  # one call per TCP connection the server accepts
        serve(request, client_address)

    monkeypatch.setattr(httpd, "process_request", count)
    conn = Connection(Credentials(slow_server.url, slow_server.user, slow_server.password))
    together = threading.Barrier(MAX_WORKERS)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(ROUNDS):
                together.wait(timeout=60)
                conn.get_json("/data/projects")
        except BaseException as exc:
            failures.append(exc)

    caplog.set_level(logging.WARNING, logger="urllib3")
    threads = [threading.Thread(target=work) for _ in range(MAX_WORKERS)]
    with conn:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not failures
    assert conn.request_count == MAX_WORKERS * ROUNDS
    assert len(accepted) <= MAX_WORKERS, f"{len(accepted)} connections for {MAX_WORKERS} threads"
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
