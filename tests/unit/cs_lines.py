"""A command JSON's line as the Container Service renders and splits it for a launch."""

from __future__ import annotations

from typing import Any

from xnatsim.cs.templates import render_value, shell_split, substitute


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
