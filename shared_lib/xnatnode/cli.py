"""The ``xnatnode`` command line: one subcommand per module in :mod:`xnatnode.commands`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``
and keeps heavy imports inside ``run`` so that ``xnatnode --version`` and argument errors stay fast.
``run`` turns ``args`` into its typed settings once (:func:`xnatnode.settings.load_settings`).
"""

from __future__ import annotations

import sys

from xnatnode import __version__

# ``xnatnode --version`` imports nothing but this module and the package: ``typing`` (with the
# ``re``, ``enum`` and ``functools`` it imports) would cost more than the rest of the answer, so
# the flag is the constant that type checkers read as true (the idiom the typing docs give), and
# argparse and importlib are imported where the parser is built.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from types import ModuleType

#: What ``xnatnode --version`` prints.
VERSION = f"xnatnode {__version__}"

#: Command modules, in the order ``xnatnode --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    # what the images run, then the tools that install and check them
    "project_summary",
    "nifti_import",
    "label_validation",
    "dicom_upload",
    "subscribe",
    "register",
    "validate_command_json",
    "images",
)


def _load(name: str) -> ModuleType:
    import importlib

    return importlib.import_module(f"xnatnode.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The full parser: the single source of truth for every flag a command JSON may use."""
    from xnatnode.settings import SettingsParser

    parser = SettingsParser(
        prog="xnatnode",
        description="Container Service commands that look after the data of an XNAT node.",
    )
    parser.add_argument("--version", action="version", version=VERSION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        module = _load(module_name)
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xnatnode`` console script; returns the process exit status.

    ``xnatnode --version`` alone answers before any command module is imported: it is how a
    site checks an image, and it should cost no more than starting Python."""
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:
        print(VERSION)
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = args._run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
