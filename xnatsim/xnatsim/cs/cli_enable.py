"""``python -m xnatsim enable``: enable (or disable) a wrapper on the site and on projects."""

from __future__ import annotations

import argparse
import sys
from typing import Any

NAME = "enable"
HELP = "enable or disable a wrapper on the site and (with --project) on projects"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from xnatsim.cs.cli_common import add_connection_arguments

    parser.add_argument("wrapper", help="wrapper id, or wrapper name")
    parser.add_argument("--project", action="append", default=[], help="also on this project (repeatable)")
    parser.add_argument("--disable", action="store_true", help="disable instead (projects only, when given)")
    add_connection_arguments(parser)


def find_wrapper(client: object, ref: str) -> tuple[int, dict[str, Any]]:
    """(wrapper id, command) for a wrapper id or name."""
    from xnatsim.cs.cli_common import Client, CLIError

    assert isinstance(client, Client)
    for command in client.request("GET", "/xapi/commands"):
        for wrapper in command["xnat"]:
            if str(wrapper["id"]) == ref or wrapper["name"] == ref:
                return int(wrapper["id"]), command
    raise CLIError(f"no wrapper {ref!r}; add its image or command first", 2)


def run(args: argparse.Namespace) -> int:
    from xnatsim.cs.cli_common import CLIError, connect

    state = "disabled" if args.disable else "enabled"
    try:
        with connect(args) as client:
            wid, _command = find_wrapper(client, args.wrapper)
            if not (args.disable and args.project):
                client.request("PUT", f"/xapi/wrappers/{wid}/{state}")
                print(f"wrapper {wid}: {state} on the site")
            for project in args.project:
                client.request("PUT", f"/xapi/projects/{project}/wrappers/{wid}/{state}")
                print(f"wrapper {wid}: {state} on project {project}")
            return 0
    except CLIError as exc:
        print(exc, file=sys.stderr)
        return exc.status
