"""``xnatnode register``: add the commands of command JSON files to an XNAT, by ``POST /xapi/commands``.

How Kubernetes sites add commands: there XNAT cannot list images or read their
``org.nrg.commands`` label, so each command is POSTed as JSON (Docker and Swarm sites may do the
same instead of pulling the image through XNAT). Each file is first checked with XNAT's own rules
(:mod:`xnatnode.commandjson`): a file XNAT would refuse stops the run before anything is sent.

The connection is the commands' own (:mod:`xnatnode.client`): ``--xnat-host`` or ``XNAT_HOST``;
the user and password from ``XNAT_USER``/``XNAT_PASS`` or the netrc file, else prompted for on a
terminal, never a flag; ``--ca-bundle``/``--insecure`` for TLS; every message redacted.
A command XNAT already holds (same name, image and version) is reported and skipped.

Exit status: 0 every command registered or already there; 1 a command refused by XNAT, or a file
failed the check; 2 bad arguments or unreadable files; 3 XNAT unreachable; 4 credentials refused
or no permission (registering needs the Container Manager role, site admin before XNAT 1.9.2).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnatnode.settings import add_connection_arguments, load_settings

if TYPE_CHECKING:
    from xnatnode.client import Connection
    from xnatnode.settings import ConnectionSettings

NAME = "register"
HELP = "Add the commands of command JSON files to XNAT (POST /xapi/commands), as Kubernetes sites must."

#: XNAT's answer when the same name, image and version is already registered.
_DUPLICATE = "duplicates a command already in the database"


@dataclass(frozen=True)
class Options:
    """register's own flags."""

    files: list[Path]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="*", type=Path, metavar="FILE",
        help="command JSON files: an array (an image label's value) or one command "
        "(default: command-json/*.json)",
    )
    add_connection_arguments(parser)


def _files(options: Options) -> list[Path]:
    files = list(options.files) or sorted(Path("command-json").glob("*.json"))
    if not files:
        raise FileNotFoundError("no command JSON files given, and none in ./command-json/")
    return files


def _commands(files: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Every command of every file, after XNAT's rules accepted each file (else ValueError)."""
    import json

    from xnatnode.commandjson import validate_file

    out: list[tuple[Path, dict[str, Any]]] = []
    problems: list[str] = []
    for path in files:
        report = validate_file(path, route="post")  # UnreadableDocument: exit 2
        problems += [f"{path}: {e.code} at {e.location or '/'}: {e.message}" for e in report.errors]
        doc = json.loads(path.read_text("utf-8"))
        out += [(path, command) for command in (doc if isinstance(doc, list) else [doc])]
    if problems:
        raise ValueError("\n".join(problems))
    return out


def _connect(settings: ConnectionSettings) -> Connection:
    """The commands' connection; on a terminal, asks for what the environment and netrc lack."""
    import getpass
    import os

    from xnatnode.client import connect, connect_with
    from xnatnode.credentials import ENV_HOST, ENV_PASS, ENV_USER
    from xnatnode.errors import ConfigError

    try:
        return connect_with(settings)
    except ConfigError:
        host = settings.host or os.environ.get(ENV_HOST)
        if os.environ.get(ENV_PASS) or not sys.stdin.isatty() or not host:
            raise
    user = settings.user or os.environ.get(ENV_USER) or input(f"XNAT user for {host}: ")
    password = getpass.getpass(f"Password for {user} at {host}: ")
    return connect(host, user, password, verify=settings.verify, timeout=settings.timeout,
                   retry=settings.retry, netrc_file=settings.netrc)


def run(args: argparse.Namespace) -> int:
    import json

    from xnatnode.commandjson import UnreadableDocument
    from xnatnode.errors import Forbidden, XnatError
    from xnatnode.redact import redact
    from xnatnode.runtime import ExitCode, exit_code_for

    def fail(message: str, status: int) -> int:
        print(f"xnatnode register: error: {redact(message)}", file=sys.stderr)
        return status

    settings = load_settings(args, Options)
    assert settings.connection is not None  # add_arguments adds the connection flags
    try:
        commands = _commands(_files(settings.command))
    except (FileNotFoundError, UnreadableDocument) as exc:
        return fail(str(exc), ExitCode.USAGE)
    except ValueError as exc:
        return fail(f"XNAT would refuse these commands, nothing was sent:\n{exc}", ExitCode.FAILED)
    refused = 0
    try:
        with _connect(settings.connection) as conn:
            for path, command in commands:
                label = f"{command.get('name')} {command.get('version')} ({command.get('image')})"
                try:
                    response = conn.post(
                        "/xapi/commands", data=json.dumps(command).encode(),
                        headers={"Content-Type": "application/json"},
                    )
                except XnatError as exc:
                    if exc.status == 400 and _DUPLICATE in str(exc):
                        print(f"already registered {label}: XNAT keeps its copy (raise the "
                              "version to register a changed command)")
                        continue
                    if exc.status is None or exc.status in (401, 403) or exc.status >= 500:
                        raise
                    refused += 1
                    print(redact(f"{path}: {label} not registered: {exc}"), file=sys.stderr)
                    continue
                print(f"registered {label}: id {response.text.strip()}")
    except XnatError as exc:  # ConfigError included
        hint = ""
        if isinstance(exc, Forbidden):
            hint = " (registering commands needs the Container Manager role, site admin before XNAT 1.9.2)"
        return fail(f"{exc}{hint}", exit_code_for(exc))
    return ExitCode.FAILED if refused else ExitCode.OK
