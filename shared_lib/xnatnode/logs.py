"""Log lines made for the Container Service log viewer.

XNAT stores a job's stdout and stderr as text files and shows them as they are, so each event is
one line: ``2026-11-24T06:40:00Z INFO message``. There are no carriage-return progress bars:
:class:`Progress` logs ``name: done/total (pct%)`` at most every few seconds and once at the end.
Every line passes through :func:`xnatnode.redact.redact`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import IO, Self

from xnatnode.redact import RedactingFormatter

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Loggers that are chatty at INFO; shown only when the run's level is DEBUG.
NOISY = ("urllib3", "xnatnode.xnatpy", "docker")
#: Items of one kind named in the log before the rest are only counted (the report lists them all).
ITEMS_LOGGED = 20


class LineFormatter(RedactingFormatter):
    """``<UTC time> <LEVEL> <message>`` on one line; a traceback follows as ``  | `` lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # Another handler may have cached its own rendering of the traceback: make ours.
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = " / ".join(
            part.strip() for part in record.message.replace("\r", "\n").splitlines() if part.strip()
        )
        return super().formatMessage(record)

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        text = super().formatException(ei)
        return "\n".join("  | " + line for line in text.splitlines())

    def formatStack(self, stack_info: str) -> str:
        return "\n".join("  | " + line for line in stack_info.splitlines())


class _LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`setup_logging` installs; remembers the levels it changed."""

    saved_levels: dict[str, int]


def setup_logging(level: str | int = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (default stderr) as one redacted line; return the handler.

    :func:`remove_logging` undoes it (handler and logger levels).
    """
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    handler = _LineHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(LineFormatter())
    root = logging.getLogger()
    handler.saved_levels = {"": root.level}
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY:
        noisy = logging.getLogger(name)
        handler.saved_levels[name] = noisy.level
        noisy.setLevel(logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING)
    return handler


def remove_logging(handler: logging.Handler) -> None:
    """Undo :func:`setup_logging`."""
    logging.getLogger().removeHandler(handler)
    handler.close()
    for name, level in getattr(handler, "saved_levels", {}).items():
        logging.getLogger(name or None).setLevel(level)


def log_items(logger: logging.Logger, level: int, lines: Sequence[str], *, where: str,
              limit: int = ITEMS_LOGGED) -> None:
    """Log each of ``lines`` (at most ``limit``), then one line counting the rest and saying
    ``where`` all of them are. XNAT uploads no outputs of a failed job, so what went wrong must be
    readable in the job's log too."""
    for line in lines[:limit]:
        logger.log(level, "%s", line)
    if len(lines) > limit:
        logger.log(level, "... and %d more (all in %s)", len(lines) - limit, where)


class Progress:
    """Counts work and logs ``name: done/total (pct%)`` at most every ``interval`` seconds.

    The line for the last item (``done == total``) is always logged, as is :meth:`finish`'s.
    Safe to advance from several threads.
    """

    def __init__(
        self,
        name: str,
        total: int | None,
        logger: logging.Logger,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self.interval = interval
        self._log = logger
        self._clock = clock
        self._last = clock()
        self._logged_done: int | None = None
        self._lock = threading.Lock()

    def line(self) -> str:
        """The progress line as it would be logged now."""
        if self.total:
            percent = 100 * self.done // self.total
            return f"{self.name}: {self.done}/{self.total} ({percent}%)"
        if self.total == 0:
            return f"{self.name}: {self.done}/0"
        return f"{self.name}: {self.done}"

    def advance(self, k: int = 1) -> None:
        """Count ``k`` more items done; log if the interval has passed or the end is reached."""
        with self._lock:
            self.done += k
            now = self._clock()
            at_end = self.total is not None and self.done >= self.total
            if (at_end and self._logged_done != self.done) or now - self._last >= self.interval:
                self._emit(now)

    def finish(self) -> None:
        """Log the final count, unless it was just logged."""
        with self._lock:
            if self._logged_done != self.done:
                self._emit(self._clock())

    def _emit(self, now: float) -> None:
        self._log.info("%s", self.line())
        self._last = now
        self._logged_done = self.done

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()
