"""``xnatnode images``: the image tags a build makes, from the one image-name rule.

Prints one line per command image, ``NAME<TAB>TAG<TAB>COMMAND_JSON``, after checking that every
folder of ``containers/`` has its ``command-json/<name>.json`` (and, in a full build, the reverse)
and that each command's ``image`` is the tag the build gives it; ``--tag NAME`` prints one tag.
build.sh reads this; a person can too. Exit status: 0, or 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from xnatnode.settings import load_settings

NAME = "images"
HELP = "List the image tags a build makes (containers/ paired with command-json/), checked."


@dataclass(frozen=True)
class Options:
    """images' flags."""

    names: list[str]
    containers: Path
    command_json: Path
    tag: str | None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="IMAGE",
                        help="only these image folders (default: every folder of --containers)")
    parser.add_argument("--containers", type=Path, default=Path("containers"), metavar="DIR",
                        help="image folders (default: containers)")
    parser.add_argument("--command-json", type=Path, default=Path("command-json"), metavar="DIR",
                        help="command JSON files (default: command-json)")
    parser.add_argument("--tag", metavar="NAME",
                        help="print only the tag of image NAME (e.g. base) and check nothing")


def run(args: argparse.Namespace) -> int:
    from xnatnode.images import PlanError, image_name, plan

    options = load_settings(args, Options).command
    if options.tag:
        print(image_name(options.tag))
        return 0
    for folder in (options.containers, options.command_json):
        if not folder.is_dir():
            print(f"xnatnode images: no such directory: {folder}", file=sys.stderr)
            return 1
    try:
        images = plan(options.containers, options.command_json, options.names)
    except PlanError as exc:
        for problem in exc.problems:
            print(f"xnatnode images: {problem}", file=sys.stderr)
        return 1
    for image in images:
        print(f"{image.name}\t{image.tag}\t{image.command_json}")
    return 0
