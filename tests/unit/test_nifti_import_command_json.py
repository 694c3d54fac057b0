"""command-json/nifti-import.json: valid for XNAT, consistent with the CLI and the version, two
wrappers (project and session context) with the batch resource mounted read-only at /input."""

from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Any

import pytest
from cs_lines import COMMAND_JSON_DIR, known_flags, launch_argv, only_command, subparsers
from xnatnode import __version__
from xnatnode.cli import build_parser
from xnatnode.settings import DEFAULT_RETRIES

COMMAND_JSON = COMMAND_JSON_DIR / "nifti-import.json"


@pytest.fixture(scope="module")
def command() -> dict[str, Any]:
    return only_command(COMMAND_JSON)


def test_image_and_version_follow_the_package(command: dict[str, Any]) -> None:
    assert command["image"] == f"xnatnode/nifti-import:{__version__}"
    assert command["version"] == __version__


def test_flags_exist_in_the_cli(command: dict[str, Any]) -> None:
    known = known_flags(subparsers()["nifti-import"])
    flags = {tok for tok in shlex.split(command["command-line"]) if tok.startswith("--")}
    flags |= {i["command-line-flag"] for i in command["inputs"] if i.get("command-line-flag")}
    flags |= {i["true-value"] for i in command["inputs"] if i["type"] == "boolean"}
    assert flags <= known, sorted(flags - known)


def test_rendered_lines_parse(command: dict[str, Any]) -> None:
    args = build_parser().parse_args(launch_argv(command, {"project-id": "PRJ"}))  # empty inputs vanish
    assert (args.command, args.project, args.session, args.mapping) == ("nifti-import", "PRJ", None, None)
    assert (args.subject_label, args.session_label) == ("{sub}", "{sub}_{ses}_{modality}")
    assert (args.overwrite, args.dry_run, args.workers, args.retries) == (False, False, 16, DEFAULT_RETRIES)
    assert (str(args.input), str(args.output), args.source, args.resource) == ("/input", "/output", None, None)
    args = build_parser().parse_args(launch_argv(command, {
        "project-id": "PRJ", "session-label": "S_mr", "mapping": "map.csv", "overwrite": "true",
        "dry-run": "true", "subject-template": "{sub} x"}))
    assert (args.session, args.mapping, args.overwrite, args.dry_run) == ("S_mr", "map.csv", True, True)
    assert args.subject_label == "{sub} x"  # a value with a space stays one argument


def test_wrappers(command: dict[str, Any]) -> None:
    text = COMMAND_JSON.read_text("utf-8")
    assert "XNAT_PASS" not in text
    assert command["override-entrypoint"] is False
    mounts = {m["name"]: m for m in command["mounts"]}
    assert (mounts["batch"]["path"], mounts["batch"]["writable"]) == ("/input", False)
    wrappers = {w["name"]: w for w in command["xnat"]}
    assert set(wrappers) == {"nifti-import-project", "nifti-import-session"}
    for name, context, parent in (("nifti-import-project", "xnat:projectData", "project"),
                                  ("nifti-import-session", "xnat:imageSessionData", "session")):
        wrapper = wrappers[name]
        assert wrapper["contexts"] == [context]
        batch = next(i for i in wrapper["derived-inputs"] if i["name"] == "batch")
        assert (batch["type"], batch["default-value"], batch["provides-files-for-command-mount"]) == (
            "Resource", "NIFTI_UPLOAD", "batch")
        handler = wrapper["output-handlers"][0]
        assert (handler["type"], handler["label"], handler["as-a-child-of"]) == ("Resource", "IMPORT_REPORT", parent)


def test_passes_the_strict_validator() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "xnatnode", "validate-command-json", "--strict", str(COMMAND_JSON)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
