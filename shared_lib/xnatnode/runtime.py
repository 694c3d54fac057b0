"""The container contract every command follows.

* Input and output directories: ``--input`` (default ``$XNATNODE_INPUT`` or ``/input``, where the
  Container Service mounts the archive read-only) and ``--output`` (default ``$XNATNODE_OUTPUT`` or
  ``/output``, whose files XNAT uploads when the job succeeds). The output directory is created if
  missing.
* Log lines for the CS log viewer (see :mod:`xnatnode.logs`), on stderr, never showing a secret.
* Exit codes (:class:`ExitCode`): XNAT marks a job failed on any non-zero code and then uploads
  nothing, so ``PARTIAL`` is non-zero too.
* A run record ``<output>/xnatnode-run.json``: command, version, arguments (secrets removed),
  start and end times, status, exit code, request count, error message, and the command's own
  ``run.record`` entries.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import time
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

from xnatnode import __version__
from xnatnode.errors import ConfigError, Forbidden, NotFound, Unauthorized, Unreachable, XnatError
from xnatnode.logs import LEVELS, Progress, remove_logging, setup_logging
from xnatnode.redact import MASK, redact, redact_data

if TYPE_CHECKING:
    from xnatnode.client import Connection

ENV_INPUT = "XNATNODE_INPUT"
ENV_OUTPUT = "XNATNODE_OUTPUT"
ENV_LOG_LEVEL = "XNATNODE_LOG_LEVEL"
RUN_RECORD = "xnatnode-run.json"
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


class UsageError(Exception):
    """Bad input from the user (a flag, a mapping file, a project ID): exit status ``USAGE``."""


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


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--input``, ``--output`` and ``--log-level``."""
    group = parser.add_argument_group("container")
    group.add_argument(
        "--input", metavar="DIR", type=Path, default=Path(os.environ.get(ENV_INPUT) or "/input"),
        help=f"mounted input directory (default: ${ENV_INPUT} or /input)",
    )
    group.add_argument(
        "--output", metavar="DIR", type=Path,
        default=Path(os.environ.get(ENV_OUTPUT) or "/output"),
        help=f"output directory, created if missing (default: ${ENV_OUTPUT} or /output)",
    )
    group.add_argument(
        "--log-level", choices=LEVELS, type=str.upper,
        default=(os.environ.get(ENV_LOG_LEVEL) or "INFO").upper(),
        help=f"log detail (default: ${ENV_LOG_LEVEL} or INFO)",
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """``value`` as JSON data (paths and other objects as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def safe_arguments(args: argparse.Namespace | None) -> dict[str, Any]:
    """The parsed arguments fit for a report: no private (``_``) entries, no secrets."""
    if args is None:
        return {}
    result: dict[str, Any] = {}
    for name, value in sorted(vars(args).items()):
        if name.startswith("_") or callable(value):
            continue
        result[name] = MASK if _SECRET_NAME.search(name) and value else _plain(value)
    return dict(redact_data(result))


def _unwritable(directory: Path) -> str | None:
    """Why no file can be created in ``directory`` (a read-only mount, its owner), or None."""
    probe = directory / f".xnatnode-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


class Run:
    """One execution of a command: logging, directories, exit code and the run record.

    Use as ``with Run(name, args) as run: ...`` and ``return run.exit_code``. An exception
    leaving the block is logged (one line; a traceback only for unexpected ones) and becomes
    the exit code; it does not propagate (``KeyboardInterrupt``/``SystemExit`` do).
    """

    def __init__(
        self,
        command: str,
        args: argparse.Namespace | None = None,
        *,
        input_dir: Path | str | None = None,
        output_dir: Path | str | None = None,
        log_level: str | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.command = command
        self.args = args
        self.input_dir = Path(input_dir or getattr(args, "input", None)
                              or os.environ.get(ENV_INPUT) or "/input")
        self.output_dir = Path(output_dir or getattr(args, "output", None)
                               or os.environ.get(ENV_OUTPUT) or "/output")
        self.log_level = (log_level or getattr(args, "log_level", None)
                          or os.environ.get(ENV_LOG_LEVEL) or "INFO").upper()
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

    @property
    def record_path(self) -> Path:
        """Where the run record is written."""
        return self.output_dir / RUN_RECORD

    def progress(self, name: str, total: int | None = None, *, interval: float = 5.0) -> Progress:
        """A :class:`~xnatnode.logs.Progress` that logs through this run."""
        return Progress(name, total, self.log, interval=interval)

    def __enter__(self) -> Self:
        self._handler = setup_logging(self.log_level, self._stream)
        self.started = _now()
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
        self.log.info("xnatnode %s %s: input %s, output %s",
                      __version__, self.command, self.input_dir, self.output_dir)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        suppress = False
        if exc is None:
            pass
        elif isinstance(exc, Exception):
            suppress = True
            self.exit_code = exit_code_for(exc)
            self.error = redact(str(exc) or type(exc).__name__)
            if isinstance(exc, XnatError | UsageError):
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
        self.finished = _now()
        elapsed = time.monotonic() - self._clock_start
        try:
            self.write_record(elapsed)
        except OSError as exc_write:
            self.log.warning("cannot write the run record %s: %s", self.record_path,
                             exc_write.strerror)
        requests_part = ""
        if self.connection is not None:
            requests_part = f", {self.connection.request_count} XNAT requests"
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
            "arguments": safe_arguments(self.args),
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
        """Write ``<output>/xnatnode-run.json`` (atomically) and return its path."""
        path = self.record_path
        partial = path.with_name(path.name + ".part")
        partial.write_text(json.dumps(self.record_data(elapsed), indent=2, sort_keys=False) + "\n",
                           encoding="utf-8")
        partial.replace(path)
        return path
