"""Every command JSON's line, with a hostile launch value in each user-settable input, rendered
and split by xnatsim's copy of XNAT's rules (B.4 values, B.5 ShellSplitter): the value stays one
argument, so it cannot add flags such as ``--xnat-host`` (issue 8 item 1)."""

from __future__ import annotations

from typing import Any

import pytest
from cs_lines import command_params
from xnatnode.commandjson import read_command, validate_document
from xnatnode.commandjson.traps import user_settable_inputs
from xnatsim.cs.templates import render_value, shell_split, substitute

HOSTILE = "8 --xnat-host http://127.0.0.1:9"


@pytest.mark.parametrize("command", command_params())
def test_a_launch_value_with_spaces_stays_one_argument(command: dict[str, Any]) -> None:
    codes = validate_document(command, route="post").codes()
    assert "W-UNQUOTED-LAUNCH-VALUE" not in codes
    model, _ = read_command(command)
    assert model is not None
    settable = {item.name for item in user_settable_inputs(model)}
    for item in command["inputs"]:
        if item["name"] not in settable:
            continue
        values = {
            other.get("replacement-key") or f"#{other['name']}#": render_value(
                HOSTILE if other is item else (other.get("default-value") or "X"),
                flag=other.get("command-line-flag"),
                separator=other.get("command-line-separator"),
            )
            for other in command["inputs"]
        }
        words = shell_split(substitute(command["command-line"], values))
        assert "--xnat-host" not in words, (item["name"], words)
