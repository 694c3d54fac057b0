"""Every command's numeric settings: typed and range-checked on the command line, and, for a
command that talks to XNAT, ``--retries`` settable from its command JSON with the library's
default (issue 8 item 7)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from cs_lines import command_params, commands, launch_argv, subparsers
from xnatnode.settings import DEFAULT_RETRIES, IntRange, positive_float


def _subcommand(command: dict[str, Any]) -> str:
    return str(command["command-line"].split()[0])


def _range(kind: Callable[..., Any] | None) -> tuple[float, float] | None:
    """The bounds a settings type accepts, or None if it is not one of the range-checked types."""
    if kind is positive_float:
        return (0.0, float("inf"))
    if isinstance(kind, IntRange):
        return (kind.low, kind.high)
    return None


@pytest.mark.parametrize("command", command_params())
def test_retries_is_a_launch_input_with_the_library_default(command: dict[str, Any]) -> None:
    sub = subparsers()[_subcommand(command)]
    assert any("--retries" in a.option_strings for a in sub._actions), "no connection flags"
    item = next((i for i in command["inputs"] if i["name"] == "retries"), None)
    assert item is not None, f"{command['name']}: no 'retries' input (issue 8 item 7)"
    assert (item["type"], item["command-line-flag"], item.get("command-line-separator")) == (
        "number", "--retries", "=")
    assert item["default-value"] == str(DEFAULT_RETRIES), "the JSON default is the library's"
    assert f"'{item['replacement-key']}'" in command["command-line"], "quoted: one argument"
    required = {i["name"]: "X" for i in command["inputs"] if i.get("required")}
    args = sub.parse_args(launch_argv(command, required)[1:])
    assert args.retries == DEFAULT_RETRIES
    args = sub.parse_args(launch_argv(command, {**required, "retries": "0"})[1:])
    assert args.retries == 0


@pytest.mark.parametrize("name", sorted(subparsers()))
def test_every_numeric_flag_is_typed_and_range_checked(name: str) -> None:
    for action in subparsers()[name]._actions:
        if action.type in (int, float):
            pytest.fail(f"{name} {action.option_strings}: type={action.type.__name__}, "
                        "use settings.IntRange or settings.positive_float")
        numeric = isinstance(action.default, int | float) and not isinstance(action.default, bool)
        if numeric and action.option_strings:
            assert _range(action.type) is not None, (name, action.option_strings, action.type)


def _number_inputs() -> list[Any]:
    return [
        pytest.param(command, item, id=f"{command['name']}:{item['name']}")
        for _, command in commands()
        for item in command["inputs"]
        if item["type"] == "number"
    ]


@pytest.mark.parametrize(("command", "item"), _number_inputs())
def test_number_inputs_reach_range_checked_flags(command: dict[str, Any], item: dict[str, Any]) -> None:
    """A launch value goes through the flag's type; a range the description gives is the type's."""
    sub = subparsers()[_subcommand(command)]
    action = next(a for a in sub._actions if item["command-line-flag"] in a.option_strings)
    bounds = _range(action.type)
    assert bounds is not None, (item["name"], action.type)
    stated = re.search(r"\((\d+)-(\d+)\)", item.get("description", ""))
    if stated:
        assert (int(stated[1]), int(stated[2])) == bounds, item["description"]
    if "default-value" in item:
        assert action.type is not None
        assert action.type(item["default-value"]) == action.default
