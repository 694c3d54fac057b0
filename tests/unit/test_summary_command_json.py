"""command-json/project-summary.json: valid for XNAT, consistent with the CLI and the version."""

from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Any

import pytest
from cs_lines import COMMAND_JSON_DIR, known_flags, launch_argv, only_command, subparsers
from xnatnode import __version__
from xnatnode.cli import build_parser
from xnatnode.images import image_name
from xnatnode.settings import DEFAULT_RETRIES

COMMAND_JSON = COMMAND_JSON_DIR / "project-summary.json"


@pytest.fixture(scope="module")
def command() -> dict[str, Any]:
    return only_command(COMMAND_JSON)


def test_image_and_version_follow_the_package(command: dict[str, Any]) -> None:
    assert command["image"] == image_name("project-summary")
    assert command["version"] == __version__


def test_flags_exist_in_the_cli(command: dict[str, Any]) -> None:
    sub = subparsers()["project-summary"]
    known = known_flags(sub)
    line = shlex.split(command["command-line"])
    assert line[0] == "project-summary"
    flags = {tok for tok in line if tok.startswith("--")}
    flags |= {i["command-line-flag"] for i in command["inputs"] if i.get("command-line-flag")}
    assert flags, "no flags found"
    assert flags <= known, f"flags unknown to the CLI: {sorted(flags - known)}"
    for i in command["inputs"]:
        if i.get("select-values"):
            action = next(a for a in sub._actions if i["command-line-flag"] in a.option_strings)
            assert set(i["select-values"]) == set(action.choices or ())


def test_rendered_default_line_parses(command: dict[str, Any]) -> None:
    """The command line with every input at its default (project filled in) is accepted."""
    args = build_parser().parse_args(launch_argv(command, {"project-id": "PRJ"}))
    assert (args.command, args.project, args.sizes, args.workers) == ("project-summary", "PRJ", "auto", 8)
    assert args.retries == DEFAULT_RETRIES
    assert (str(args.input), str(args.output)) == ("/input", "/output")


@pytest.mark.parametrize("name", ["workers", "retries", "sizes"])
def test_a_value_with_spaces_stays_one_argument_and_is_refused(
    command: dict[str, Any], name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 8: XNAT splits values on spaces; quoted keys keep a value one argument, typed."""
    argv = launch_argv(command, {"project-id": "PRJ", name: "8 --xnat-host http://127.0.0.1:9"})
    assert "--xnat-host" not in argv
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_every_user_settable_input_is_quoted_on_the_command_line(command: dict[str, Any]) -> None:
    for i in command["inputs"]:
        assert f"'{i['replacement-key']}'" in command["command-line"], i["name"]
        assert i.get("command-line-separator") == "=", "a quoted '--flag value' is one argument"


def test_container_contract(command: dict[str, Any]) -> None:
    text = COMMAND_JSON.read_text("utf-8")
    assert "XNAT_PASS" not in text
    assert "XNAT_USER" not in text
    assert command["override-entrypoint"] is False
    assert command["reserve-memory"] <= command["limit-memory"]
    wrapper = command["xnat"][0]
    assert wrapper["contexts"] == ["xnat:projectData"]
    mount = wrapper["external-inputs"][0]["provides-files-for-command-mount"]
    assert {m["name"]: m["path"] for m in command["mounts"]}[mount] == "/input"
    handler = wrapper["output-handlers"][0]
    assert (handler["type"], handler["label"], handler["as-a-child-of"]) == ("Resource", "SUMMARY", "project")


def test_passes_the_strict_validator() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "xnatnode", "validate-command-json", "--strict", str(COMMAND_JSON)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
