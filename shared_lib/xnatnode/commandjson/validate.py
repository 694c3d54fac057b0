"""Entry points: validate a command document (object, label array, JSON text or file)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from xnatnode.commandjson.findings import Finding, Report, error, pointer, warning
from xnatnode.commandjson.model import Command, Route
from xnatnode.commandjson.reader import read_command
from xnatnode.commandjson.traps import duplicate_warnings, trap_warnings
from xnatnode.commandjson.xnat_errors import xnat_errors

RouteChoice = Route | Literal["auto"]


class UnreadableDocument(ValueError):
    """The file cannot be read or is not JSON (nothing XNAT could even try to parse)."""


def _check_command(
    raw: object, loc: str, route: Route, image: str | None
) -> tuple[Command | None, list[Finding]]:
    cmd, read_findings = read_command(raw, loc, route, image)
    if cmd is None:
        return None, read_findings
    return cmd, [*xnat_errors(cmd), *read_findings, *trap_warnings(cmd)]


def validate_document(
    doc: object, route: RouteChoice = "auto", image: str | None = None
) -> Report:
    """Validate a parsed document: one command object, or the array an image label carries.

    ``route`` says how the document reaches XNAT (see :data:`~xnatnode.commandjson.model.Route`);
    ``auto`` means ``label`` for an array and ``post`` for an object. ``image`` is the image name
    XNAT is given with the JSON (pull name, or ``?image=``): it replaces each command's ``image``.
    """
    report = Report()
    if isinstance(doc, list):
        effective: Route = "label" if route == "auto" else route
        commands: list[Command] = []
        if not doc:
            report.findings.append(
                warning("W-EMPTY-LABEL", "the array holds no command: XNAT adds nothing.", "")
            )
        for index, raw in enumerate(doc):
            cmd, findings = _check_command(raw, f"/{index}", effective, image)
            report.findings.extend(findings)
            if cmd is not None:
                commands.append(cmd)
        report.commands = len(doc)
        report.findings.extend(duplicate_warnings(commands))
        return report
    if route == "label":
        report.findings.append(
            error(
                "E-LABEL-NOT-ARRAY",
                "The org.nrg.commands label must hold a JSON array of commands: XNAT fails to "
                "parse a single object (it only logs the error and adds no command).",
                "",
                source="xnatnode",
            )
        )
        return report
    report.commands = 1
    _, findings = _check_command(doc, "", "post" if route == "auto" else route, image)
    report.findings.extend(findings)
    return report


#: Largest command file read (the largest real command JSON is a few hundred KiB): a bigger one,
#: or a device such as /dev/zero, is refused instead of filling the memory.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> None:
    raise UnreadableDocument(f"{name} is not JSON (XNAT's parser refuses it; write a number)")


def _lone_surrogate(doc: object) -> str | None:
    """Where a string (or key) of ``doc`` holds a lone UTF-16 surrogate, as a JSON Pointer.

    Python's parser turns a ``\\ud800`` escape without its pair into a lone surrogate, which is no
    Unicode character: it cannot be printed as UTF-8 nor stored by XNAT's database. Walked with
    an explicit stack, so that a deep document cannot exhaust the recursion limit.
    """
    stack: list[tuple[object, str]] = [(doc, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return where or "/"
        elif isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    return where or "/"
                stack.append((item, pointer(where, key)))
        elif isinstance(value, list):
            stack.extend((item, pointer(where, index)) for index, item in enumerate(value))
    return None


def _parse_json(text: str, origin: str) -> tuple[Any, list[str]]:
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    def bad(reason: str) -> UnreadableDocument:
        return UnreadableDocument(f"{origin}: not valid JSON: {reason}")

    try:
        doc = json.loads(text, object_pairs_hook=pairs, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise bad(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnreadableDocument as exc:
        raise bad(str(exc)) from None
    except RecursionError:
        raise bad("arrays or objects nested too deeply (about 1,000 levels or more)") from None
    except ValueError as exc:  # an integer beyond Python's digit limit (int_max_str_digits)
        raise bad(f"a number is too long ({str(exc).split(';')[0]})") from None
    # Only a \uD800-\uDFFF escape makes a lone surrogate: most documents skip the walk.
    where = _lone_surrogate(doc) if _SURROGATE_ESCAPE.search(text) else None
    if where is not None:
        raise bad(f"a lone UTF-16 surrogate escape (no Unicode character) in the string at {where}")
    return doc, duplicates


def validate_text(
    text: str, route: RouteChoice = "auto", image: str | None = None, origin: str = "<text>"
) -> Report:
    """Validate JSON text (a command file, or the value of an ``org.nrg.commands`` label).

    Raises :class:`UnreadableDocument` when ``text`` is not JSON.
    """
    doc, duplicates = _parse_json(text, origin)
    report = validate_document(doc, route, image)
    for key in dict.fromkeys(duplicates):
        report.findings.append(
            warning(
                "W-DUPLICATE-JSON-KEY",
                f'key "{key}" appears twice in one object: XNAT keeps the last value.',
                "",
            )
        )
    return report


def validate_file(
    path: str | Path, route: RouteChoice = "auto", image: str | None = None
) -> Report:
    """Validate a JSON file; raises :class:`UnreadableDocument` if it is unreadable or not JSON."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise UnreadableDocument(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise UnreadableDocument(
            f"{path}: larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB: not a command file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None
    return validate_text(text, route, image, origin=str(path))
