"""``xnatnode validate-command-json FILE...``: check command JSON the way XNAT will.

Exit status: 0 when every file is accepted; 1 when any document has an error (with ``--strict``,
also a warning); 2 when a file cannot be read or is not JSON (checked first, it wins over 1).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass
from typing import Any, Literal

from xnatnode.settings import load_settings

NAME = "validate-command-json"
HELP = "Check Container Service command JSON files with XNAT's own rules and known traps."

_EPILOG = """\
Files holding a JSON array are read as the value of an image's org.nrg.commands label; files
holding one object as the body of POST /xapi/commands (change with --route).
Errors are XNAT's own validation messages; warnings (W-...) are documents XNAT accepts but that
fail or misbehave at launch.
exit status: 0 all accepted, 1 an error (or a warning with --strict), 2 unreadable or not JSON."""


@dataclass(frozen=True)
class Options:
    """validate-command-json's flags."""

    files: list[str]
    route: Literal["auto", "post", "label", "update"]
    image: str | None
    strict: bool
    json: bool
    quiet: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("files", nargs="+", metavar="FILE", help="command JSON files")
    parser.add_argument(
        "--route",
        choices=("auto", "post", "label", "update"),
        default="auto",
        help="how XNAT receives the JSON: POST /xapi/commands (post), the image label (label), "
        "POST /xapi/commands/{id} (update); auto: label for an array, post for an object",
    )
    parser.add_argument(
        "--image",
        metavar="NAME",
        help="the image name XNAT is given with the JSON (the pull name for a label, ?image= for "
        "POST); it replaces each command's image",
    )
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument("--json", action="store_true", help="print one JSON report on stdout")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only files with problems, no warnings"
    )


def _print_text(path: str, report: Any, strict: bool, quiet: bool) -> None:
    errors, warnings = report.errors, report.warnings
    if quiet and not errors and not (strict and warnings):
        return
    if errors or (strict and warnings):
        status = "REJECTED" if errors else "FAILED (--strict)"
    else:
        status = "OK"
    counts = f"{len(errors)} error(s), {len(warnings)} warning(s)"
    print(f"{path}: {status}, {counts}, {report.commands} command(s)")
    shown = report.findings if not quiet else errors
    for finding in shown:
        where = finding.location or "(top level)"
        message = finding.message.replace("\n", "\n      ")
        print(f"  {finding.severity} {finding.code} at {where}:\n      {message}")


def run(args: argparse.Namespace) -> int:
    from xnatnode.commandjson import UnreadableDocument, validate_file

    options = load_settings(args, Options).command
    for stream in (sys.stdout, sys.stderr):
        # File names and JSON strings may hold what the terminal's encoding cannot show.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    status = 0
    unreadable = False
    results: list[dict[str, Any]] = []
    for path in options.files:
        try:
            report = validate_file(path, route=options.route, image=options.image)
        except (UnreadableDocument, RecursionError, MemoryError, ValueError) as exc:
            # Whatever a hostile file does to the checker, it is reported and the rest checked.
            reason = str(exc) if isinstance(exc, UnreadableDocument) else (
                f"{path}: cannot be checked: {type(exc).__name__}: {exc}"
            )
            unreadable = True
            results.append({"path": path, "ok": False, "unreadable": reason})
            if not options.json:
                print(f"{path}: UNREADABLE: {' '.join(reason.split())}", file=sys.stderr)
            continue
        failed = bool(report.errors) or (options.strict and bool(report.warnings))
        if failed:
            status = 1
        results.append({"path": path, **report.to_dict(), "ok": not failed})
        if not options.json:
            _print_text(path, report, options.strict, options.quiet)
    if unreadable:
        status = 2
    if options.json:
        json.dump({"ok": status == 0, "files": results}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return status
