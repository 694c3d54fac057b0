"""A command JSON's line as the Container Service renders and splits it for a launch, and the CLI
parsers the line must reach."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from xnatnode.cli import build_parser
from xnatsim.cs.templates import render_value, shell_split, substitute

COMMAND_JSON_DIR = Path(__file__).resolve().parents[2] / "command-json"


def only_command(path: Path) -> dict[str, Any]:
    """The one command of a command JSON file (an array, as the org.nrg.commands label carries it,
    spec A.10)."""
    doc = json.loads(path.read_text("utf-8"))
    assert isinstance(doc, list), "the org.nrg.commands label carries a JSON array (spec A.10)"
    assert len(doc) == 1
    command: dict[str, Any] = doc[0]
    assert isinstance(command, dict)
    return command


def commands() -> list[tuple[str, dict[str, Any]]]:
    """Every command of every file in ``command-json/``, with its file's stem."""
    return [
        (path.stem, command)
        for path in sorted(COMMAND_JSON_DIR.glob("*.json"))
        for command in json.loads(path.read_text("utf-8"))
    ]


def command_params() -> list[Any]:
    """:func:`commands` as pytest parameters named ``<file>:<command>``."""
    return [pytest.param(command, id=f"{stem}:{command['name']}") for stem, command in commands()]


def subparsers() -> dict[str, argparse.ArgumentParser]:
    """The CLI's subcommand parsers by command name."""
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def known_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string ``parser`` accepts (``--project``, ``-h`` …)."""
    return {opt for action in parser._actions for opt in action.option_strings}


def launch_argv(command: dict[str, Any], values: dict[str, str]) -> list[str]:
    """The argv of ``command`` launched with ``values`` (input name -> text; the rest at their
    defaults), by xnatsim's copy of XNAT's rules: booleans by their true/false-value, the others
    flag + separator + value in place of the key, then split like XNAT's ShellSplitter."""
    rendered = {}
    for i in command["inputs"]:
        value = values.get(i["name"], i.get("default-value", ""))
        if i["type"] == "boolean":
            rendered[i["replacement-key"]] = i["true-value"] if value == "true" else i["false-value"]
        else:
            rendered[i["replacement-key"]] = render_value(value, flag=i.get("command-line-flag"),
                                                          separator=i.get("command-line-separator"))
    words: list[str] = shell_split(substitute(command["command-line"], rendered))
    return words
