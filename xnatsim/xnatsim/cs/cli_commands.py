"""``python -m xnatsim commands``: validate command JSON offline, add, list or delete commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "commands"
HELP = "validate command JSON as XNAT does (offline), or add / list / delete commands"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from xnatsim.cs.cli_common import add_connection_arguments

    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("validate", help="XNAT's create-time validation of a command file (no server)")
    check.add_argument("file", type=Path, help="a command JSON object, or a label's JSON array")
    check.add_argument("--image", help="the image name (as ?image= or the label route would set it)")
    add = sub.add_parser("add", help="POST a command file to /xapi/commands")
    add.add_argument("file", type=Path)
    add.add_argument("--image", help="override the command's image (?image=)")
    add_connection_arguments(add)
    listing = sub.add_parser("list", help="commands and their wrappers")
    add_connection_arguments(listing)
    delete = sub.add_parser("delete", help="delete a command by id")
    delete.add_argument("id", type=int)
    add_connection_arguments(delete)


def _load(path: Path) -> list[dict[str, object]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from exc
    return doc if isinstance(doc, list) else [doc]


def run(args: argparse.Namespace) -> int:
    from xnatsim.cs.cli_common import CLIError, connect

    if args.action == "validate":
        from xnatsim.cs.model import normalize
        from xnatsim.cs.validation import validate

        status = 0
        for doc in _load(args.file):
            errors = validate(normalize(doc, image=args.image))
            name = doc.get("name")
            if errors:
                status = 1
                print(f"{name}: INVALID", *errors, sep="\n  ")
            else:
                print(f"{name}: valid")
        return status
    try:
        with connect(args) as client:
            if args.action == "list":
                for command in client.request("GET", "/xapi/commands"):
                    print(f"{command['id']}\t{command['name']}\t{command.get('version')}\t{command['image']}")
                    for wrapper in command["xnat"]:
                        print(f"\twrapper {wrapper['id']}\t{wrapper['name']}\t{','.join(wrapper['contexts'])}")
                return 0
            if args.action == "delete":
                client.request("DELETE", f"/xapi/commands/{args.id}")
                print(f"deleted command {args.id}")
                return 0
            for doc in _load(args.file):
                query = {"image": args.image} if args.image else None
                new_id = client.request("POST", "/xapi/commands", body=doc, query=query)
                print(f"{doc.get('name')}: command id {new_id}")
            return 0
    except CLIError as exc:
        print(exc, file=sys.stderr)
        return exc.status
