"""``python -m xnatsim images``: add Docker images (their ``org.nrg.commands`` label), list or delete them."""

from __future__ import annotations

import argparse
import sys

NAME = "images"
HELP = "add local Docker images to the Container Service (reads org.nrg.commands), list or delete them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from xnatsim.cs.cli_common import add_connection_arguments

    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="save the commands an image's label carries (POST /xapi/docker/images/save)")
    add.add_argument("image", nargs="+", help="image name with tag, as XNAT will store it")
    add_connection_arguments(add)
    listing = sub.add_parser("list", help="images with their commands")
    add_connection_arguments(listing)
    delete = sub.add_parser("delete", help="remove an image from the engine and its commands "
                                           "(DELETE /xapi/docker/images/{id})")
    delete.add_argument("image", help="image name with tag, or image id")
    delete.add_argument("--force", action="store_true", help="also when containers use it or it has other tags")
    add_connection_arguments(delete)


def run(args: argparse.Namespace) -> int:
    from xnatsim.cs.cli_common import CLIError, connect

    try:
        with connect(args) as client:
            if args.action == "list":
                for summary in client.request("GET", "/xapi/docker/image-summaries"):
                    names = ", ".join(f"{c['name']} (id {c['id']})" for c in summary["commands"])
                    print(f"{summary['names'][0]}: {names}")
                return 0
            if args.action == "delete":
                from urllib.parse import quote

                client.request("DELETE", f"/xapi/docker/images/{quote(args.image, safe='')}",
                               query={"force": "true"} if args.force else None)
                print(f"{args.image}: removed, with its commands")
                return 0
            status = 0
            for image in args.image:
                saved = client.request("POST", "/xapi/docker/images/save", query={"image": image})
                if not saved:
                    print(f"{image}: no command saved (no valid org.nrg.commands label, or all duplicates)",
                          file=sys.stderr)
                    status = 1
                for command in saved:
                    wrappers = ", ".join(f"{w['name']} (wrapper id {w['id']})" for w in command["xnat"])
                    print(f"{image}: command {command['name']} (id {command['id']}): {wrappers}")
            return status
    except CLIError as exc:
        print(exc, file=sys.stderr)
        return exc.status
