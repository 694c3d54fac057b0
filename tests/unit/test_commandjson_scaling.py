"""validate-command-json's work grows linearly with the number of inputs (issue 8 item 10).

Counted, not timed: the Python lines the validator executes for N and 4N inputs. Linear work
gives a ratio near 4, work that compares every input with every other near 16. The wall times
are in benchmarks/validate_command_json.md.
"""

from __future__ import annotations

import json
import sys
from types import FrameType
from typing import Any

from xnatnode.commandjson import validate_text
from xnatnode.commandjson.substrings import KeyIndex


def _document(n: int, bracketed: bool) -> str:
    """A command with ``n`` inputs, each fed by a derived wrapper input and used on the line."""
    keys = [f"#IN{i}#" if bracketed else f"IN{i}X" for i in range(n)]
    command: dict[str, Any] = {
        "name": "many", "version": "1.0", "image": "xnatnode/many:1.0",
        "command-line": "probe " + " ".join(keys),
        "inputs": [
            {"name": f"in{i}", "replacement-key": key, "command-line-flag": f"--in{i}"}
            for i, key in enumerate(keys)
        ],
        "xnat": [{
            "name": "many", "description": "many inputs", "contexts": ["xnat:imageSessionData"],
            "external-inputs": [{"name": "session", "type": "Session"}],
            "derived-inputs": [
                {"name": f"d{i}", "derived-from-wrapper-input": "session", "user-settable": False,
                 "derived-from-xnat-object-property": "label", "matcher": f"@.label == 'X{i}'",
                 "provides-value-for-command-input": f"in{i}"}
                for i in range(n)
            ],
        }],
    }  # fmt: skip
    return json.dumps(command)


def _lines_executed(text: str) -> int:
    count = 0

    def tracer(frame: FrameType, event: str, _arg: object) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        validate_text(text, route="post")
    finally:
        sys.settrace(None)
    return count


def test_work_grows_linearly_with_the_number_of_inputs() -> None:
    for bracketed in (True, False):
        small = _lines_executed(_document(100, bracketed))
        large = _lines_executed(_document(400, bracketed))
        assert large / small < 6, (bracketed, small, large)


def test_key_index_finds_every_occurrence_and_only_those() -> None:
    index = KeyIndex(["#A#", "#AB#", "B", ""])
    text = "x#A#y#AB#B"
    assert sorted(index.occurrences(text)) == [("#A#", 1), ("#AB#", 5), ("B", 7), ("B", 9)]
    assert index.found_in("nothing here") == set()
    assert KeyIndex([]).found_in("#A#") == set()
    assert KeyIndex(["a-b", "]x", "^"]).found_in("a-b ]x ^") == {"a-b", "]x", "^"}
