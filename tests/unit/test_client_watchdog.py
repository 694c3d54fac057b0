"""The client's one watchdog thread: alarms fire in time order, cancelled ones never, on one thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fake_http import FakeServer, Reply, Trickle
from xnatnode.client import _Watchdog, connect


def test_alarms_fire_in_order_and_cancelled_ones_never() -> None:
    dog = _Watchdog()
    fired: list[tuple[str, str]] = []
    done = threading.Event()

    def alarm(name: str) -> None:
        fired.append((name, threading.current_thread().name))
        if name == "last":
            done.set()

    now = time.monotonic()
    dog.schedule(now + 0.30, lambda: alarm("last"))
    dog.schedule(now + 0.10, lambda: alarm("second"))
    dog.schedule(now + 0.05, lambda: alarm("cancelled")).cancelled = True
    dog.schedule(now - 1.0, lambda: alarm("first"))  # already due: fires at once
    assert done.wait(5)
    assert [name for name, _ in fired] == ["first", "second", "last"]
    assert {thread for _, thread in fired} == {"xnatnode-watchdog"}
    started = threading.active_count()
    for _ in range(200):  # a request's alarm costs no thread of its own
        dog.schedule(time.monotonic() + 60, lambda: alarm("never")).cancelled = True
    assert threading.active_count() == started


@pytest.mark.timeout(30)
def test_a_download_starts_no_thread_its_stall_check_is_the_watchdogs(
    srv: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stall rule of a download (64 KiB per time-out window) is an alarm of the shared
    watchdog, re-armed at each window's end, not a watcher thread per download."""
    blob = bytes(range(256)) * 1024
    srv.route("GET", "/data/files/a.zip", Trickle(0.1, 32 * 1024, Reply(200, blob)))
    srv.route("GET", "/data/projects", Reply(200, b"{}"))
    conn = connect(srv.url, "alice", "pw", timeout=0.5, retries=0)
    conn.get("/data/projects").close()  # the watchdog is running from here on
    started: list[str] = []
    start = threading.Thread.start

    def record(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", record)
    with conn:
        # 256 KiB over ~0.8 s: more than one window, each with its 64 KiB
        assert conn.download("/data/files/a.zip", tmp_path / "a.zip").read_bytes() == blob
    assert [name for name in started if name.startswith("xnatnode")] == []
