"""Entry points: validate a command document (object, label array, JSON text or file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from xnatnode.commandjson.findings import Finding, Report, error, warning
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


def _parse_json(text: str, origin: str) -> tuple[Any, list[str]]:
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs), duplicates
    except json.JSONDecodeError as exc:
        raise UnreadableDocument(
            f"{origin}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


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
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UnreadableDocument(f"{path}: cannot read: {reason}") from None
    return validate_text(text, route, image, origin=str(path))
