"""Template substitution, command-line value rendering and the exec-form tokenizer (spec B.3-B.5)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from xnatsim.cs.jsonpath import JsonPathError, evaluate_path

__all__ = [
    "ILLEGAL_SUBSTRINGS",
    "ResolutionError",
    "find_illegal",
    "render_multiple",
    "render_value",
    "resolve_carets",
    "shell_split",
    "substitute",
]

#: Values containing any of these make XNAT refuse the launch (B.2, ``checkForIllegalInputValue``).
ILLEGAL_SUBSTRINGS: tuple[str, ...] = (";", "&&", "||", "`", "(")

_CARET = re.compile(r"\^(wrapper:)?(.+)\^")


class ResolutionError(ValueError):
    """Command resolution failed; the launch ends as ``Failed (Command resolution)``."""


def find_illegal(value: str) -> str | None:
    """The first illegal substring in ``value``, or None."""
    for bad in ILLEGAL_SUBSTRINGS:
        if bad in value:
            return bad
    return None


def resolve_carets(
    text: str, command: Mapping[str, Any], wrapper: Mapping[str, Any] | None = None
) -> str:
    """Evaluate at most one ``^…^`` JSONPath span per line against the command (or wrapper) JSON."""
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        m = _CARET.search(line)
        if m is None:
            out.append(line)
            continue
        document: Any = wrapper if m.group(1) and wrapper is not None else command
        try:
            found = evaluate_path(m.group(2), document)
        except JsonPathError as exc:
            raise ResolutionError(f"invalid JSONPath {m.group(2)!r}: {exc}") from exc
        if len(found) > 1:
            raise ResolutionError(f"JSONPath {m.group(2)!r} gives {len(found)} results, not one")
        if not found:
            out.append(line)
            continue
        value = found[0]
        rendered = value if isinstance(value, str) else json.dumps(value)
        out.append(line[: m.start()] + rendered + line[m.end() :])
    return "\n".join(out)


def substitute(template: str | None, values: Mapping[str, str]) -> str | None:
    """Replace every key by its value: plain, case-sensitive substring replacement (B.3).

    XNAT iterates a hash map, so the order is unspecified; we use insertion order. Keys missing
    from the map stay in the text literally.
    """
    if template is None:
        return None
    for key, value in values.items():
        if key:
            template = template.replace(key, value)
    return template


def render_value(
    value: str | None,
    *,
    flag: str | None,
    separator: str | None,
    delimiter: str | None = None,
    select_many: bool = False,
) -> str:
    """A command input's command-line text for a single value (B.4)."""
    if value is None or not value.strip():
        return ""
    if select_many and value.lstrip().startswith("["):
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if isinstance(items, list):
            return render_multiple([str(i) for i in items], flag, separator, delimiter)
    if not flag:
        return value
    return flag + (" " if separator is None else separator) + value


def render_multiple(
    values: Sequence[str], flag: str | None, separator: str | None, delimiter: str | None
) -> str:
    """A multiple value ``[a, b, c]`` on the command line, per ``multiple-delimiter`` (B.4)."""
    if not values:
        return ""
    flag_part = flag if flag and flag.strip() else " "
    sep_part = separator if separator and separator.strip() else " "
    prefix = flag_part + sep_part
    if not prefix.strip():
        prefix = ""
    if delimiter == "flag":
        return " ".join(prefix + v for v in values)
    if delimiter == "comma":
        return prefix + ",".join(values)
    if delimiter == "quoted-space":
        return prefix + "'" + " ".join(values) + "'"
    return prefix + " ".join(values)


def shell_split(line: str | None) -> list[str]:
    """Tokenize like the plugin's ``ShellSplitter`` (exec form, B.5).

    Splits on whitespace; single and double quotes group (and are removed; adjacent parts
    concatenate); a backslash escapes the next character except inside single quotes; an
    unterminated quote runs to the end; an empty quoted string yields no argument.
    """
    if line is None:
        raise ResolutionError("the command has no command-line")
    tokens: list[str] = []
    current: list[str] = []
    quote = ""
    escaped = False
    for ch in line:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            if ch == quote:
                quote = ""
            else:
                current.append(ch)
        elif ch in "'\"":
            quote = ch
        elif ch.isspace():
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        tokens.append("".join(current))
    return tokens
