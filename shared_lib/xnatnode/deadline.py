"""The run's overall deadline (``--deadline``/``XNATNODE_DEADLINE``).

A slow or stalled server must not keep a job, and the alias token it holds, alive forever. The
:class:`~xnatnode.runtime.Run` starts one :class:`Deadline`; the connection checks it before every
attempt, never sleeps past it and cuts a request that is still running when it comes (see
:mod:`xnatnode.client`); the run stops local work at it too. Passing it ends the run with exit 3
(``UNREACHABLE``: the server did not answer in time) and a message saying which limit it was.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

from xnatnode.errors import Unreachable


class DeadlineExceeded(Unreachable):
    """The run's deadline passed (exit 3)."""


class Deadline:
    """A point in time (monotonic clock) after which the run stops; ``None`` seconds: never."""

    def __init__(self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"a deadline must be a positive number of seconds, not {seconds}")
        self.seconds = seconds
        self._clock = clock
        self.at = math.inf if seconds is None else clock() + seconds
        self._on_expire: set[Callable[[], None]] = set()
        self._lock = threading.Lock()

    def remaining(self) -> float:
        """Seconds left (``inf`` without a deadline, 0 once passed)."""
        return max(0.0, self.at - self._clock())

    def expired(self) -> bool:
        return self._clock() >= self.at

    def error(self, doing: str) -> DeadlineExceeded:
        """The error that ends a run whose deadline passed while ``doing``."""
        limit = f"{self.seconds:g} s" if self.seconds is not None else "its"
        return DeadlineExceeded(
            f"the run's deadline ({limit}) passed while {doing}: XNAT answered too slowly or not "
            "at all; raise --deadline (XNATNODE_DEADLINE) if the work really takes this long"
        )

    def expire(self) -> None:
        """End the time now (a run being stopped): requests in flight are cut (see
        :meth:`watching`), other work stops at its next check."""
        self.at = -math.inf
        with self._lock:
            waiting = list(self._on_expire)
        for cut in waiting:
            cut()

    @contextlib.contextmanager
    def watching(self, cut: Callable[[], None]) -> Iterator[None]:
        """Call ``cut`` if :meth:`expire` is called while the block runs."""
        with self._lock:
            self._on_expire.add(cut)
        try:
            yield
        finally:
            with self._lock:
                self._on_expire.discard(cut)

    def check(self, doing: str) -> None:
        """Raise :class:`DeadlineExceeded` if the deadline has passed."""
        if self.expired():
            raise self.error(doing)


#: A deadline that never passes (connections made outside a run).
NEVER = Deadline(None)
