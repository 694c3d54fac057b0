"""The client's one watchdog thread: alarms fire in time order, cancelled ones never, on one thread."""

from __future__ import annotations

import threading
import time

from xnatnode.client import _Watchdog


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
