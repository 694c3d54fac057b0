"""``python -m xnatsim containers``: container history, one container, its logs."""

from __future__ import annotations

import argparse
import sys

NAME = "containers"
HELP = "list containers (history and statuses), show one, or print its logs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from xnatsim.cs.cli_common import add_connection_arguments

    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="every container with its status")
    listing.add_argument("--project")
    add_connection_arguments(listing)
    show = sub.add_parser("show", help="one container's record (JSON, XNAT_PASS masked)")
    show.add_argument("id")
    add_connection_arguments(show)
    logs = sub.add_parser("logs", help="a container's stdout (or --stderr)")
    logs.add_argument("id")
    logs.add_argument("--stderr", action="store_true")
    add_connection_arguments(logs)


def run(args: argparse.Namespace) -> int:
    from xnatsim.cs.cli_common import CLIError, connect, print_json

    try:
        with connect(args) as client:
            if args.action == "list":
                path = f"/xapi/projects/{args.project}/containers" if args.project else "/xapi/containers"
                for c in client.request("GET", path):
                    print(f"{c['id']}\t{c['status']}\twrapper {c['wrapper-id']}\t{c.get('project') or '-'}\t"
                          f"{c['docker-image']}\t{c.get('command-line') or ''}")
            elif args.action == "show":
                print_json(client.request("GET", f"/xapi/containers/{args.id}"))
            else:
                stream = "stderr" if args.stderr else "stdout"
                sys.stdout.write(str(client.request("GET", f"/xapi/containers/{args.id}/logs/{stream}")))
            return 0
    except CLIError as exc:
        print(exc, file=sys.stderr)
        return exc.status
