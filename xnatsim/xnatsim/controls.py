"""Test and benchmark controls: injected latency and faults, request counters and a request log.

Requests under ``/xnatsim/`` (the control API itself) are neither counted nor faulted.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from typing import Any, Literal

Decision = Literal["ok", "fail", "drop"]

#: how many recent requests the log keeps
LOG_SIZE = 2000


class Controls:
    """Thread-safe fault settings and counters of one server."""

    def __init__(self, latency_ms: float = 0.0, fail_rate: float = 0.0, fail_every: int = 0,
                 drop_every: int = 0, fail_status: int = 503) -> None:
        self._lock = threading.Lock()
        self.latency_ms = latency_ms
        self.fail_rate = fail_rate
        self.fail_every = fail_every
        self.drop_every = drop_every
        self.fail_status = fail_status
        self._rng = random.Random()
        self._seen = 0
        self.reset_stats()

    # -- faults ---------------------------------------------------------------------

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return {"latency_ms": self.latency_ms, "fail_rate": self.fail_rate, "fail_every": self.fail_every,
                    "drop_every": self.drop_every, "fail_status": self.fail_status}

    def set_faults(self, values: dict[str, Any]) -> dict[str, Any]:
        """Change some settings (keys as in :meth:`faults`; ``seed`` seeds ``fail_rate``'s RNG)."""
        kinds: dict[str, type] = {"latency_ms": float, "fail_rate": float, "fail_every": int,
                                  "drop_every": int, "fail_status": int}
        unknown = set(values) - set(kinds) - {"seed"}
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        parsed: dict[str, Any] = {}
        for key, value in values.items():
            if key == "seed":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number")
            number = kinds[key](value)
            if number < 0 or (key == "fail_rate" and number > 1):
                raise ValueError(f"{key} out of range: {value}")
            if key == "fail_status" and not 500 <= number <= 599:
                raise ValueError("fail_status must be a 5xx status")
            parsed[key] = number
        with self._lock:
            for key, number in parsed.items():
                setattr(self, key, number)
            if "seed" in values:
                self._rng.seed(values["seed"])
            self._seen = 0
        return self.faults()

    def before_request(self, route: str) -> Decision:
        """Count the request, sleep the latency, and decide whether to answer, fail or drop it."""
        with self._lock:
            self._seen += 1
            seen = self._seen
            latency = self.latency_ms
            drop = self.drop_every > 0 and seen % self.drop_every == 0
            fail = (self.fail_every > 0 and seen % self.fail_every == 0) or (
                self.fail_rate > 0 and self._rng.random() < self.fail_rate)
            self.requests += 1
            self.routes[route] += 1
            if drop:
                self.dropped += 1
            elif fail:
                self.failed += 1
        if latency > 0:
            time.sleep(latency / 1000.0)
        return "drop" if drop else "fail" if fail else "ok"

    def refused(self, method: str, path: str, route: str, status: int) -> None:
        """Count a request answered before it reached the route table (``Expect: 100-continue`` → 413)."""
        with self._lock:
            self.requests += 1
            self.routes[route] += 1
        self.after_request(method, path, route, status, 0.0)

    # -- stats ----------------------------------------------------------------------

    def after_request(self, method: str, path: str, route: str, status: int, seconds: float) -> None:
        """Record the outcome (called before the reply is sent; ``status`` 0 = dropped, not in ``statuses``)."""
        with self._lock:
            if status:
                self.statuses[str(status)] += 1
            self.log.append({"method": method, "path": path, "route": route, "status": status,
                             "ms": round(seconds * 1000, 3), "t": round(time.time(), 3)})

    def reset_stats(self) -> None:
        with self._lock:
            self.requests = 0
            self.failed = 0
            self.dropped = 0
            self.routes: collections.Counter[str] = collections.Counter()
            self.statuses: collections.Counter[str] = collections.Counter()
            self.log: collections.deque[dict[str, Any]] = collections.deque(maxlen=LOG_SIZE)
            self.since = time.time()

    def stats(self, *, with_log: bool = False) -> dict[str, Any]:
        """``requests`` (total), ``routes`` (per ``METHOD pattern``), ``statuses``, faults counts."""
        with self._lock:
            result: dict[str, Any] = {
                "requests": self.requests, "failed": self.failed, "dropped": self.dropped,
                "routes": dict(self.routes), "statuses": dict(self.statuses), "since": self.since,
            }
            if with_log:
                result["log"] = list(self.log)
        return result
