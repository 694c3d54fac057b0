"""The ``python -m xnatsim`` command line: one subcommand per module in :data:`COMMAND_MODULES`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``
and keeps heavy imports inside ``run``. To add a subcommand, write the module anywhere in the
``xnatsim`` package and add its dotted name here (one line).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from xnatsim import __version__

#: Fully qualified command modules, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "xnatsim.commands.serve",
    "xnatsim.commands.fetch_schemas",
    "xnatsim.commands.seed",
    "xnatsim.cs.cli_images",
    "xnatsim.cs.cli_commands",
    "xnatsim.cs.cli_enable",
    "xnatsim.cs.cli_launch",
    "xnatsim.cs.cli_containers",
    "xnatsim.events.cli_events",
    "xnatsim.cs.cli_demo",
    "xnatsim.commands.demo_dicom_upload",
)


def _load(name: str) -> ModuleType:
    return importlib.import_module(name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xnatsim",
        description="A local stand-in for XNAT's REST API, Container Service and Event Service.",
    )
    parser.add_argument("--version", action="version", version=f"xnatsim {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        module = _load(module_name)
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=str(args.log_level).upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = args._run(args)
    return status
