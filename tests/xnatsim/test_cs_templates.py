"""Command-line rendering (spec B.3-B.5): substitution, flags, booleans, multiple values, tokenizer."""

from __future__ import annotations

import pytest
from xnatsim.cs.templates import (
    ResolutionError,
    find_illegal,
    render_multiple,
    render_value,
    resolve_carets,
    shell_split,
    substitute,
)


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ("a b  c", ["a", "b", "c"]),
        ("--label 'my label'", ["--label", "my label"]),
        ('--label "my label"', ["--label", "my label"]),
        ("pre'quoted part'post", ["prequoted partpost"]),  # adjacent parts concatenate
        ("a '' b", ["a", "b"]),  # an empty quoted string yields no argument
        ('a "" b', ["a", "b"]),
        (r"a\ b c", ["a b", "c"]),  # backslash escapes outside single quotes
        (r"'a\ b'", [r"a\ b"]),  # but not inside them
        (r'"a \"q\" b"', ['a "q" b']),
        ("'unterminated quote runs on", ["unterminated quote runs on"]),
        ("$XNAT_HOST *.dcm > out", ["$XNAT_HOST", "*.dcm", ">", "out"]),  # no shell features
        ("", []),
    ],
)
def test_shell_split(line: str, argv: list[str]) -> None:
    assert shell_split(line) == argv


def test_missing_command_line_fails() -> None:
    with pytest.raises(ResolutionError):
        shell_split(None)


@pytest.mark.parametrize(
    ("value", "flag", "sep", "expected"),
    [
        ("v", None, None, "v"),
        ("v", "--in", None, "--in v"),  # null separator is a space
        ("v", "--in", "=", "--in=v"),
        ("v", "--in", "", "--inv"),  # an explicit "" separator glues
        ("", "--in", None, ""),  # a blank value drops the flag too
        (None, "--in", None, ""),
        ("  ", "--in", None, ""),
    ],
)
def test_render_value(value: str | None, flag: str | None, sep: str | None, expected: str) -> None:
    assert render_value(value, flag=flag, separator=sep) == expected


def test_select_many_json_array_renders_multiple() -> None:
    assert render_value('["a", "b"]', flag="--x", separator=None, delimiter="comma", select_many=True) == "--x a,b"


@pytest.mark.parametrize(
    ("delimiter", "expected"),
    [
        ("flag", "--scan=1 --scan=2 --scan=3"),  # the plugin docs' example
        ("comma", "--scan=1,2,3"),
        ("quoted-space", "--scan='1 2 3'"),
        ("space", "--scan=1 2 3"),
        (None, "--scan=1 2 3"),
    ],
)
def test_render_multiple(delimiter: str | None, expected: str) -> None:
    assert render_multiple(["1", "2", "3"], "--scan", "=", delimiter) == expected


def test_render_multiple_without_flag_and_empty() -> None:
    assert render_multiple(["a", "b"], None, None, "space") == "a b"
    assert render_multiple([], "--x", None, "flag") == ""


def test_substitute_is_plain_replacement() -> None:
    assert substitute("run #A# #B# #C#", {"#A#": "1", "#B#": "two words"}) == "run 1 two words #C#"
    # a key that is a substring of literal text corrupts it, as in XNAT
    assert substitute("/input input", {"input": "X"}) == "/X X"
    assert substitute(None, {"#A#": "1"}) is None


def test_caret_jsonpath_spans() -> None:
    command = {"inputs": [{"name": "a", "default-value": "7"}], "name": "cmd"}
    assert resolve_carets("x ^$.inputs[0].default-value^ y", command) == "x 7 y"
    assert resolve_carets("no match ^$.nothing^", command) == "no match ^$.nothing^"
    assert resolve_carets("^wrapper:$.name^", command, {"name": "w"}) == "w"
    with pytest.raises(ResolutionError):
        resolve_carets("^$.inputs[*].name^", {"inputs": [{"name": "a"}, {"name": "b"}]})  # two results


@pytest.mark.parametrize("value", ["a;b", "a && b", "a || b", "a`b`", "$(id)", "f(x)"])
def test_illegal_substrings(value: str) -> None:
    assert find_illegal(value) is not None


@pytest.mark.parametrize("value", ["a|b", "a&b", "a > b", "$HOME", "*.dcm", "x)"])
def test_substrings_the_guard_lets_through(value: str) -> None:
    assert find_illegal(value) is None
