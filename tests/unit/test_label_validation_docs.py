"""label-validation's command JSON and README against the code: one source of truth for flags,
rules, image name and version."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cs_lines import COMMAND_JSON_DIR, known_flags, only_command, subparsers
from xnatnode import __version__
from xnatnode.images import image_name
from xnatnode.labelcheck.rules import RULES

REPO = Path(__file__).resolve().parents[2]
COMMAND_JSON = COMMAND_JSON_DIR / "label-validation.json"


@pytest.fixture(scope="module")
def command() -> dict[str, Any]:
    return only_command(COMMAND_JSON)


def test_image_version_and_flags(command: dict[str, Any]) -> None:
    assert command["image"] == image_name("label-validation")
    assert command["version"] == __version__
    sub = subparsers()["label-validation"]
    known = known_flags(sub)
    line = shlex.split(command["command-line"])
    assert line[0] == "label-validation"
    flags = {t for t in line if t.startswith("--")} | {i["command-line-flag"] for i in command["inputs"]}
    assert flags <= known, sorted(flags - known)
    fail_on = next(a for a in sub._actions if "--fail-on" in a.option_strings)
    select = next(i for i in command["inputs"] if i["name"] == "fail-on")
    assert set(select["select-values"]) == set(fail_on.choices or ())
    for i in command["inputs"]:
        assert f"'{i['replacement-key']}'" in command["command-line"], i["name"]
        assert i["command-line-separator"] == "="


def test_wrappers(command: dict[str, Any]) -> None:
    by_name = {w["name"]: w for w in command["xnat"]}
    assert set(by_name) == {"label-validation-session", "label-validation-project"}
    assert by_name["label-validation-session"]["contexts"] == ["xnat:imageSessionData"]
    assert by_name["label-validation-project"]["contexts"] == ["xnat:projectData"]
    for wrapper in by_name.values():
        (handler,) = wrapper["output-handlers"]
        assert (handler["type"], handler["label"]) == ("Resource", "LABEL_CHECK")
        assert wrapper["external-inputs"][0]["provides-files-for-command-mount"] == "archive"
    text = COMMAND_JSON.read_text("utf-8")
    assert "XNAT_PASS" not in text
    assert command["override-entrypoint"] is False


def test_passes_the_strict_validator() -> None:
    proc = subprocess.run([sys.executable, "-m", "xnatnode", "validate-command-json", "--strict",
                           str(COMMAND_JSON)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_lists_every_rule_with_its_default() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme[readme.index("### label-validation"):readme.index("## The simulator")]
    rows = dict(re.findall(r"^\| ((?:`[a-z-]+`(?:, )?)+) \| (error|warning) \|", section, re.MULTILINE))
    documented = {code.strip("`"): level for codes, level in rows.items() for code in codes.split(", ")}
    assert documented == {code: rule.severity for code, rule in RULES.items()}
