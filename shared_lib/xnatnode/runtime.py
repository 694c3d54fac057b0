"""The container contract every command follows.

* Settings: one :class:`~xnatnode.settings.Settings` per run (see :mod:`xnatnode.settings`).
* Input and output directories: ``--input`` (default ``$XNATNODE_INPUT`` or ``/input``, where the
  Container Service mounts the archive read-only) and ``--output`` (default ``$XNATNODE_OUTPUT`` or
  ``/output``, whose files XNAT uploads when the job succeeds). The output directory is created if
  missing. Every output file is written with :mod:`xnatnode.safefiles`.
* Log lines for the CS log viewer (see :mod:`xnatnode.logs`), on stderr, never showing a secret.
* Exit codes (:class:`ExitCode`): XNAT marks a job failed on any non-zero code and then uploads
  nothing, so ``PARTIAL`` is non-zero too.
* Time: the run stops at its deadline (``--deadline``, :mod:`xnatnode.deadline`) with exit 3.
* Signals: SIGTERM (``docker stop``, a Container Service kill) ends the run with a log line, the
  run record (status ``terminated``) and exit 143 (128 + 15, the shell's convention).
* A full disk ends the run with one clear line and exit 1; temporary files are removed, and the
  run record is still written if it fits (otherwise stderr says why it is missing).
* A run record ``<output>/xnatnode-run.json``: command, version, arguments (secrets removed),
  start and end times, status, exit code, request count, error message, and the command's own
  ``run.record`` entries.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping
from enum import IntEnum
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

from xnatnode import __version__
from xnatnode.deadline import Deadline
from xnatnode.errors import ConfigError, Forbidden, NotFound, Unauthorized, Unreachable, XnatError
from xnatnode.logs import Progress, remove_logging, setup_logging
from xnatnode.redact import MASK, redact, redact_data
from xnatnode.safefiles import open_output, write_text
from xnatnode.settings import (
    DEFAULT_DEADLINE,
    ENV_INPUT,
    ENV_LOG_LEVEL,
    ENV_OUTPUT,
    NoOptions,
    Settings,
)
from xnatnode.stamps import utc_timestamp

if TYPE_CHECKING:
    from xnatnode.client import Connection

RUN_RECORD = "xnatnode-run.json"
#: errno values of a full disk or quota (EFBIG: the file-size limit).
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Argument names whose values never go into a run record.
_SECRET_NAME = re.compile(r"pass|secret|token|credential|auth", re.IGNORECASE)


class ExitCode(IntEnum):
    """Process exit statuses of every ``xnatnode`` command."""

    OK = 0  #: done, nothing wrong
    FAILED = 1  #: an unexpected error (a bug, a full disk, an XNAT error other than below)
    USAGE = 2  #: bad arguments or settings (also argparse's status)
    UNREACHABLE = 3  #: XNAT could not be reached (host, network, TLS, 502-504)
    AUTH = 4  #: credentials refused (401) or permission denied (403)
    NOT_FOUND = 5  #: a named project, session or resource does not exist (404)
    PARTIAL = 6  #: the command finished but some items failed (see the report)
    TERMINATED = 143  #: stopped by SIGTERM (``docker stop``, a Container Service kill): 128 + 15


class UsageError(Exception):
    """Bad input from the user (a flag, a mapping file, a project ID): exit status ``USAGE``."""


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread by :class:`Run`'s handler)."""


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that failed for lack of space (or quota, or a size limit)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit status for an exception that ended a run."""
    if isinstance(exc, Unreachable):
        return ExitCode.UNREACHABLE
    if isinstance(exc, Unauthorized | Forbidden):
        return ExitCode.AUTH
    if isinstance(exc, NotFound):
        return ExitCode.NOT_FOUND
    if isinstance(exc, ConfigError | UsageError):
        return ExitCode.USAGE
    return ExitCode.FAILED


def _plain(value: Any) -> Any:
    """``value`` as JSON data (paths and other objects as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def safe_arguments(arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parsed arguments fit for a report: no private (``_``) entries, no secrets."""
    if arguments is None:
        return {}
    result: dict[str, Any] = {}
    for name, value in sorted(arguments.items()):
        if name.startswith("_") or callable(value):
            continue
        result[name] = MASK if _SECRET_NAME.search(name) and value else _plain(value)
    return dict(redact_data(result))


def _unwritable(directory: Path) -> str | None:
    """Why no file can be created in ``directory`` (a read-only mount, its owner), or None."""
    try:
        with open_output(directory / ".xnatnode-probe", "wb"):
            raise _Probed
    except _Probed:
        return None  # a temporary file was created (and is removed again): writable
    except OSError as exc:
        return exc.strerror or type(exc).__name__


class _Probed(Exception):
    """Ends a write probe before its file is renamed into place."""


class Run:
    """One execution of a command: logging, directories, deadline, signals, exit code and the
    run record.

    Use as ``with Run(name, settings) as run, run.connect() as conn: ...`` and
    ``return int(run.exit_code)``. An exception leaving the block is logged (one line; a
    traceback only for unexpected ones) and becomes the exit code; it does not propagate
    (``KeyboardInterrupt``/``SystemExit`` do). The explicit ``input_dir``/``output_dir``/
    ``log_level`` arguments override the settings (tests, library use).
    """

    def __init__(
        self,
        command: str,
        settings: Settings[Any] | None = None,
        *,
        input_dir: Path | str | None = None,
        output_dir: Path | str | None = None,
        log_level: str | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.command = command
        self.settings: Settings[Any] = settings or Settings(command=NoOptions())
        runtime = self.settings.runtime
        plain = settings is None
        self.input_dir = Path(input_dir or (plain and os.environ.get(ENV_INPUT))
                              or runtime.input_dir)
        self.output_dir = Path(output_dir or (plain and os.environ.get(ENV_OUTPUT))
                               or runtime.output_dir)
        self.log_level = (log_level or (plain and os.environ.get(ENV_LOG_LEVEL))
                          or runtime.log_level).upper()
        self.deadline = Deadline(runtime.deadline or DEFAULT_DEADLINE)
        self.log = logging.getLogger(f"xnatnode.{command}")
        self.record: dict[str, Any] = {}
        self.connection: Connection | None = None
        self.exit_code: ExitCode = ExitCode.OK
        self.error: str | None = None
        self.started: str | None = None
        self.finished: str | None = None
        self._stream = stream
        self._handler: logging.Handler | None = None
        self._clock_start = 0.0
        self._saved_signals: dict[int, Any] = {}

    @property
    def record_path(self) -> Path:
        """Where the run record is written."""
        return self.output_dir / RUN_RECORD

    def progress(self, name: str, total: int | None = None, *, interval: float = 5.0) -> Progress:
        """A :class:`~xnatnode.logs.Progress` that logs through this run."""
        return Progress(name, total, self.log, interval=interval)

    def connect(self) -> Connection:
        """The XNAT connection of this run's settings, bound to its deadline (and counted in
        the run record)."""
        from xnatnode.client import connect_with  # requests: only for commands that connect

        if self.settings.connection is None:
            raise ConfigError(f"{self.command} has no XNAT connection flags")
        self.connection = connect_with(self.settings.connection, deadline=self.deadline)
        return self.connection

    def __enter__(self) -> Self:
        self._handler = setup_logging(self.log_level, self._stream)
        self.started = utc_timestamp()
        self._clock_start = time.monotonic()
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.log.error(
                "cannot create the output directory %s (%s): mount one or pass --output DIR",
                self.output_dir, exc.strerror,
            )
            self._teardown()
            raise SystemExit(ExitCode.USAGE) from None
        problem = _unwritable(self.output_dir)
        if problem is not None:
            # Found now, not after the work: nothing (not even the run record) could be saved.
            self.log.error(
                "the output directory %s is not writable by uid %d (%s): mount a writable "
                "folder there (created by that user, not by Docker) or pass --output DIR; in "
                "XNAT, set the Container Service's container user to the XNAT (Tomcat) user's "
                "uid:gid, which owns the output folders",
                self.output_dir, os.getuid(), problem,
            )
            self._teardown()
            raise SystemExit(ExitCode.USAGE)
        self._install_signals()
        self.log.info("xnatnode %s %s: input %s, output %s",
                      __version__, self.command, self.input_dir, self.output_dir)
        return self

    def _install_signals(self) -> None:
        """SIGTERM -> :class:`Terminated`; the deadline -> its error (by SIGALRM), in
        the main thread (elsewhere, as in tests run from threads, neither is installed)."""
        if threading.current_thread() is not threading.main_thread():
            return

        def on_term(signum: int, frame: FrameType | None) -> None:
            self.deadline.expire()  # worker threads stop at their next request
            raise Terminated

        def on_alarm(signum: int, frame: FrameType | None) -> None:
            raise self.deadline.error(f"{self.command} was still at work")

        self._saved_signals[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_term)
        if self.deadline.seconds is not None:
            self._saved_signals[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.deadline.seconds)

    def _restore_signals(self) -> None:
        if signal.SIGALRM in self._saved_signals:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in self._saved_signals.items():
            signal.signal(signum, handler)
        self._saved_signals.clear()

    def _not_an_xnat(self) -> str | None:
        """After a 404, whether the host itself is wrong rather than the object: one probe,
        ``GET /data/JSESSION``, which every XNAT answers (200 with Basic auth). A 404 there too
        means XNAT_HOST is not the root of an XNAT, usually a missing or extra context path
        (``https://host/xnat``); the 404 alone would read as "project not found"."""
        if self.connection is None:
            return None
        try:
            self.connection.get("/data/JSESSION")
        except NotFound:
            return (f"{self.connection.host} does not answer as an XNAT (GET /data/JSESSION: 404 too): "
                    "check its context path, e.g. https://host/xnat or https://host")
        except Exception:  # any other answer says nothing about the path
            return None
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._restore_signals()
        suppress = False
        if exc is None:
            pass
        elif isinstance(exc, Terminated):
            suppress = True
            self.exit_code = ExitCode.TERMINATED
            self.error = "terminated by SIGTERM (docker stop or a Container Service kill)"
            self.log.error("%s: stopping; outputs are incomplete", self.error)
        elif isinstance(exc, Exception):
            suppress = True
            self.exit_code = exit_code_for(exc)
            self.error = redact(str(exc) or type(exc).__name__)
            if disk_full(exc):
                assert isinstance(exc, OSError)
                self.error = redact(f"no space left to write {exc.filename or 'an output file'} "
                                    f"({exc.strerror}): free space on the output volume")
                self.log.error("%s", self.error)
            elif isinstance(exc, XnatError | UsageError):
                if isinstance(exc, NotFound) and (hint := self._not_an_xnat()):
                    self.error = f"{self.error.rstrip('.')}; {hint}"
                self.log.error("%s", self.error)
            else:
                self.log.error("%s: %s", type(exc).__name__, self.error, exc_info=exc)
        elif isinstance(exc, KeyboardInterrupt):
            self.exit_code = ExitCode.FAILED
            self.error = "interrupted"
            self.log.error("interrupted")
        elif isinstance(exc, SystemExit):
            try:
                self.exit_code = ExitCode(int(exc.code or 0))
            except ValueError:
                self.exit_code = ExitCode.FAILED
        self.finished = utc_timestamp()
        elapsed = time.monotonic() - self._clock_start
        try:
            self.write_record(elapsed)
        except OSError as exc_write:
            why = f"cannot write the run record {self.record_path}: {exc_write.strerror}"
            self.log.warning("%s", why)
            if self._stream is not None and self._stream is not sys.stderr:
                print(f"xnatnode: {why}", file=sys.stderr)
        requests_part = ""
        if self.connection is not None:
            # imported at the end only, so that start-up imports nothing of the reports
            from xnatnode.reports.svg import quantity

            requests_part = f", {quantity(self.connection.request_count, 'XNAT request')}"
        self.log.info("%s: %s (exit %d) in %.1f s%s", self.command, self.exit_code.name.lower(),
                      int(self.exit_code), elapsed, requests_part)
        self._teardown()
        return suppress

    def _teardown(self) -> None:
        if self._handler is not None:
            remove_logging(self._handler)
            self._handler = None

    def record_data(self, elapsed: float | None = None) -> dict[str, Any]:
        """The run record as JSON data (secrets masked)."""
        data: dict[str, Any] = {}
        for key, value in self.record.items():
            data[str(key)] = _plain(value)
        core: dict[str, Any] = {
            "command": self.command,
            "version": __version__,
            "arguments": safe_arguments(self.settings.arguments),
            "started": self.started,
            "finished": self.finished,
            "duration_s": None if elapsed is None else round(elapsed, 3),
            "status": self.exit_code.name.lower(),
            "exit_code": int(self.exit_code),
            "xnat_host": None if self.connection is None else self.connection.host,
            "request_count": None if self.connection is None else self.connection.request_count,
            "error": self.error,
        }
        clashes = sorted(set(data) & set(core))
        if clashes:
            self.log.warning("run.record keys %s are reserved and were ignored", ", ".join(clashes))
        data.update(core)
        return dict(redact_data(data))

    def write_record(self, elapsed: float | None = None) -> Path:
        """Write ``<output>/xnatnode-run.json`` (safely, :mod:`xnatnode.safefiles`)."""
        text = json.dumps(self.record_data(elapsed), indent=2, sort_keys=False) + "\n"
        return write_text(self.record_path, text)
