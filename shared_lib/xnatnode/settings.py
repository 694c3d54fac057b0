"""One typed settings object per run, built once from the flags and their environment variables.

A flag that may also come from the environment declares its variable beside it, with
:func:`flag` (as xnatpy's click CLI does with ``envvar=``); ``--help`` shows the variable. A value
comes from the command line, else the variable, else the default; a bad value in a variable is a
usage error (exit 2) that names the variable. Nothing else reads the flags: commands and library
code get a frozen :class:`Settings` and never look into ``argparse.Namespace``.

How a command declares its flags and gets its settings (modules keep ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args)``; see :mod:`xnatnode.commands.project_summary`)::

    @dataclass(frozen=True)
    class Options:                       # the command's own flags, one field per flag dest
        project: str
        workers: int

    def add_arguments(parser):
        flag(parser, "--project", type=project_id, required=True, help="XNAT project ID")
        flag(parser, "--workers", env="XNATNODE_WORKERS", type=IntRange(1, MAX_WORKERS), default=8,
             help="REST requests in flight at most")
        add_connection_arguments(parser)  # XNAT connection, --timeout, --retries (+ env vars)
        add_runtime_arguments(parser)     # --input, --output, --log-level, --deadline (+ env)

    def run(args):
        settings = load_settings(args, Options)      # Settings[Options], built once
        with Run(NAME, settings) as run, run.connect() as conn:
            ... settings.command.project ...        # typed; run.input_dir, run.output_dir
        return int(run.exit_code)

Every numeric flag is typed and range-checked (:func:`positive_float`, :class:`IntRange`):
``nan``, ``inf`` and out-of-range values are refused before any work, because a Container Service
input of type ``number`` reaches the command line unchecked.

The connection's place and credentials come from the environment when the Container Service
launched the job (see :func:`xnatnode.credentials.launched_by_xnat`): the connection flags
(``--xnat-host``, ``--xnat-user``, ``--netrc``, ``--ca-bundle``, ``--insecure``) are then refused,
so that no launch value can send the job's token anywhere but ``XNAT_HOST``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from xnatnode.credentials import ENV_PASS, ENV_USER

ENV_INPUT = "XNATNODE_INPUT"
ENV_OUTPUT = "XNATNODE_OUTPUT"
ENV_LOG_LEVEL = "XNATNODE_LOG_LEVEL"
ENV_DEADLINE = "XNATNODE_DEADLINE"
ENV_TIMEOUT = "XNATNODE_TIMEOUT"
ENV_RETRIES = "XNATNODE_RETRIES"

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_TIMEOUT = 30.0
#: The least a download's body must bring within each ``--timeout`` window, or the attempt is
#: stalled (64 KiB per 30 s by default, about 2 KiB/s): a rule on progress, not on the whole time.
STALL_BYTES = 64 * 1024
DEFAULT_RETRIES = 5
#: Six hours: far beyond a healthy run of the largest project, short of a forgotten job.
DEFAULT_DEADLINE = 6 * 3600.0
DEFAULT_BACKOFF = 0.5
#: Longest wait between two attempts, whatever the back-off or Retry-After says.
MAX_DELAY = 30.0
#: The most threads a command may run against XNAT at once (every ``--workers`` flag's upper
#: bound); the connection keeps that many keep-alive connections (:mod:`xnatnode.client`).
MAX_WORKERS = 32

#: Flags that choose where the connection goes or whose credentials it uses.
CONNECTION_FLAGS = {
    "xnat_host": "--xnat-host",
    "xnat_user": "--xnat-user",
    "netrc": "--netrc",
    "ca_bundle": "--ca-bundle",
    "insecure": "--insecure",
}


# --------------------------------------------------------------------------- argument types


def positive_float(text: str) -> float:
    """An argparse type: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


@dataclass(frozen=True)
class IntRange:
    """An argparse type: a whole number from ``low`` to ``high`` (:func:`flag` shows the range)."""

    low: int
    high: int

    def __call__(self, text: str) -> int:
        stripped = text.strip()
        if not (stripped.isascii() and stripped.lstrip("+-").isdigit()) or len(stripped) > 12:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
        value = int(stripped)
        if not self.low <= value <= self.high:
            raise argparse.ArgumentTypeError(f"must be {self.low} to {self.high}: {text!r}")
        return value


def log_level(text: str) -> str:
    """An argparse type: one of :data:`LEVELS`, any case."""
    value = text.strip().upper()
    if value not in LEVELS:
        raise argparse.ArgumentTypeError(f"not one of {', '.join(LEVELS)}: {text!r}")
    return value


# --------------------------------------------------------------------------- declaring flags


def flag(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *names: str,
    env: str | None = None,
    type: Callable[[str], Any] | None = None,
    default: Any = None,
    help: str,
    environ: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> argparse.Action:
    """Add a flag whose default comes from the environment variable ``env`` when it is set.

    The variable's text goes through ``type`` as a command-line value would; a bad one makes
    :class:`SettingsParser` fail with a message naming the variable (exit 2), unless the flag
    itself is given. ``--help`` shows the range of an :class:`IntRange`, the variable and the
    default.
    """
    shown = help
    notes = [f"{type.low}-{type.high}"] if isinstance(type, IntRange) else []
    if default is not None and not isinstance(default, bool):
        notes.append(f"default: {default:g}" if isinstance(default, float) else f"default: {default}")
    if env is not None:
        shown += f" [env {env}]"
    if notes:
        shown += f" ({'; '.join(notes)})"
    raw = (os.environ if environ is None else environ).get(env) if env is not None else None
    if raw:
        try:
            default = type(raw) if type is not None else raw
        except (argparse.ArgumentTypeError, ValueError) as exc:
            default = _BadEnvironment(f"environment variable {env}: {exc}")
        if (kwargs.get("choices") is not None and not isinstance(default, _BadEnvironment)
                and default not in kwargs["choices"]):
            default = _BadEnvironment(f"environment variable {env}: {raw!r} is not one of "
                                      f"{', '.join(map(str, kwargs['choices']))}")
    if type is not None:
        kwargs["type"] = type
    return parser.add_argument(*names, default=default, help=shown, **kwargs)


@dataclass(frozen=True)
class _BadEnvironment:
    """The default of a flag whose environment variable holds a bad value."""

    message: str


class SettingsParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reports a bad environment variable like a bad flag (exit 2)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        for value in vars(parsed).values():
            if isinstance(value, _BadEnvironment):
                self.error(value.message)
        return parsed, extras


# --------------------------------------------------------------------------- the shared groups


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The XNAT connection flags. Passwords come only from ``XNAT_PASS`` or netrc."""
    group = parser.add_argument_group(
        "XNAT connection",
        f"Credentials come from {ENV_USER}/{ENV_PASS} (set by the Container Service: an alias "
        "token) or from the netrc file; a password is never a command-line flag. Inside a "
        "Container Service job (XNAT_HOST, XNAT_USER and XNAT_PASS all set) the connection "
        "comes from the environment only: --xnat-host, --xnat-user, --netrc, --ca-bundle and "
        "--insecure are refused (TLS trust then comes from REQUESTS_CA_BUNDLE).",
    )
    flag(group, "--xnat-host", metavar="URL", help="XNAT base URL (default: $XNAT_HOST)")
    flag(group, "--xnat-user", metavar="USER",
         help=f"user or alias token (default: ${ENV_USER}, else the netrc login)")
    tls = group.add_mutually_exclusive_group()
    flag(tls, "--ca-bundle", metavar="FILE",
         help="PEM file of CA certificates to verify XNAT's TLS certificate with")
    flag(tls, "--insecure", action="store_true",
         help="do not verify XNAT's TLS certificate (not recommended)")
    flag(group, "--timeout", metavar="SECONDS", env=ENV_TIMEOUT, type=positive_float,
         default=DEFAULT_TIMEOUT,
         help="deadline of one request: connecting and receiving the whole answer; a download "
         f"until its headers, then at least {STALL_BYTES // 1024} KiB per SECONDS or it is stalled")
    flag(group, "--retries", metavar="N", env=ENV_RETRIES, type=IntRange(0, 20),
         default=DEFAULT_RETRIES,
         help="retries of a failed read (500, 502-504, dropped or truncated answers), with "
         f"back-off from {DEFAULT_BACKOFF:g} s doubling up to {MAX_DELAY:g} s")
    flag(group, "--netrc", metavar="FILE",
         help="netrc file with the password (default: $NETRC, else ~/.netrc)")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """``--input``, ``--output``, ``--log-level`` and ``--deadline``."""
    group = parser.add_argument_group("container")
    flag(group, "--input", metavar="DIR", env=ENV_INPUT, type=Path, default=Path("/input"),
         help="mounted input directory")
    flag(group, "--output", metavar="DIR", env=ENV_OUTPUT, type=Path, default=Path("/output"),
         help="output directory, created if missing")
    flag(group, "--log-level", metavar="LEVEL", env=ENV_LOG_LEVEL, type=log_level, default="INFO",
         help=f"log detail: {', '.join(LEVELS)}")
    flag(group, "--deadline", metavar="SECONDS", env=ENV_DEADLINE, type=positive_float,
         default=DEFAULT_DEADLINE,
         help="the whole run's time limit; past it the run stops with exit 3")


# --------------------------------------------------------------------------- the settings


@dataclass(frozen=True)
class RetrySettings:
    """How failed idempotent requests are repeated: at most ``retries`` more attempts, waiting
    ``backoff * 2**n`` (plus up to 10% jitter, at most ``max_delay``) before attempt ``n + 1``.
    The total wait is bounded by ``retries * max_delay`` and by the run's deadline."""

    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    max_delay: float = MAX_DELAY


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to reach XNAT. ``None`` values come from the environment or netrc."""

    host: str | None = None
    user: str | None = None
    netrc: Path | None = None
    ca_bundle: Path | None = None
    insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    retry: RetrySettings = RetrySettings()
    #: The connection flags given on the command line (refused in a Container Service job).
    given: tuple[str, ...] = ()

    @property
    def verify(self) -> bool | str:
        """What TLS trusts: nothing checked (``--insecure``), the ``--ca-bundle`` file, or True
        (the system's store, or ``REQUESTS_CA_BUNDLE``)."""
        if self.insecure:
            return False
        return True if self.ca_bundle is None else str(self.ca_bundle)


@dataclass(frozen=True)
class RuntimeSettings:
    """The container contract: directories, log detail and the whole run's time limit."""

    input_dir: Path = Path("/input")
    output_dir: Path = Path("/output")
    log_level: str = "INFO"
    deadline: float = DEFAULT_DEADLINE


CommandOptions = TypeVar("CommandOptions")


@dataclass(frozen=True)
class Settings(Generic[CommandOptions]):
    """Everything a run was told: the command's own options, the container contract and the
    connection (``None`` for commands that do not talk to XNAT)."""

    command: CommandOptions
    runtime: RuntimeSettings = RuntimeSettings()
    connection: ConnectionSettings | None = None
    #: The parsed flags as given (for the run record, which masks secrets).
    arguments: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class NoOptions:
    """The options of a command without flags of its own."""


def load_settings(args: argparse.Namespace, options: type[CommandOptions]) -> Settings[CommandOptions]:
    """Build the run's :class:`Settings` from parsed flags: ``options`` (a dataclass) gets the
    values of the flags named like its fields."""
    values = {k: v for k, v in vars(args).items() if not k.startswith("_") and not callable(v)}
    wanted = {f.name for f in dataclasses.fields(options)}  # type: ignore[arg-type]
    missing = wanted - set(values)
    if missing:
        raise TypeError(f"{options.__name__}: no flag for {', '.join(sorted(missing))}")
    command = options(**{name: values[name] for name in wanted})
    runtime = RuntimeSettings(
        input_dir=Path(values.get("input") or RuntimeSettings.input_dir),
        output_dir=Path(values.get("output") or RuntimeSettings.output_dir),
        log_level=str(values.get("log_level") or "INFO"),
        deadline=float(values.get("deadline") or DEFAULT_DEADLINE),
    )
    connection = None
    if "xnat_host" in values:
        connection = ConnectionSettings(
            host=values.get("xnat_host"),
            user=values.get("xnat_user"),
            netrc=Path(values["netrc"]) if values.get("netrc") else None,
            ca_bundle=Path(values["ca_bundle"]) if values.get("ca_bundle") else None,
            insecure=bool(values.get("insecure")),
            timeout=float(values.get("timeout") or DEFAULT_TIMEOUT),
            retry=RetrySettings(retries=int(values.get("retries", DEFAULT_RETRIES))),
            given=tuple(flag_name for dest, flag_name in CONNECTION_FLAGS.items()
                        if values.get(dest)),
        )
    return Settings(command=command, runtime=runtime, connection=connection, arguments=values)
