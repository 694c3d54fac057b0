"""``xnatnode validate-command-json``: output text and exit status (0 ok, 1 errors, 2 unreadable)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from xnatnode.cli import main

BAD_DIR = Path(__file__).parent / "bad_command_json"
GOOD = BAD_DIR / "good.json"
BAD = BAD_DIR / "bad-names.json"
NOT_JSON = BAD_DIR / "not-json.json"
SINGLE = BAD_DIR / "single-object-label.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["validate-command-json", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_good_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, str(GOOD))
    assert status == 0
    assert out.startswith(f"{GOOD}: OK, 0 error(s), 0 warning(s), 1 command(s)")
    assert err == ""


def test_bad_file_prints_xnat_texts(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, str(GOOD), str(BAD))
    assert status == 1
    assert f"{BAD}: REJECTED, 2 error(s)" in out
    assert "error E-INPUT-NAME-CHARS at /0/inputs/0/name:" in out
    assert (
        'Command "bad-names" - Command input "session id" name should contain only '
        "alphanumeric, _ and - characters." in out
    )
    assert "when type = Resource, label cannot be blank." in out


def test_unreadable_files_exit_2_and_win_over_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, err = run(capsys, str(BAD), str(NOT_JSON), str(tmp_path / "missing.json"))
    assert status == 2
    assert f"{NOT_JSON}: UNREADABLE: {NOT_JSON}: not valid JSON:" in err
    assert "line 2 column 1" in err
    assert "missing.json: cannot read: No such file or directory" in err
    assert "REJECTED" in out  # the readable file is still reported


def test_strict_turns_warnings_into_failure(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = json.loads(GOOD.read_text())
    doc["image"] = "xnatnode/good:latest"
    path = tmp_path / "latest.json"
    path.write_text(json.dumps(doc))
    status, out, _ = run(capsys, str(path))
    assert status == 0
    assert "warning W-IMAGE-LATEST at /image:" in out
    status, out, _ = run(capsys, "--strict", str(path))
    assert status == 1
    assert "FAILED (--strict), 0 error(s), 1 warning(s)" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--json", str(GOOD), str(BAD), str(NOT_JSON))
    assert status == 2
    assert err == ""
    report = json.loads(out)
    assert report["ok"] is False
    good, bad, unreadable = report["files"]
    assert good == {"path": str(GOOD), "ok": True, "commands": 1, "errors": [], "warnings": []}
    assert [e["code"] for e in bad["errors"]] == ["E-INPUT-NAME-CHARS", "E-HANDLER-LABEL-BLANK"]
    assert bad["errors"][0]["source"] == "xnat"
    assert bad["errors"][0]["location"] == "/0/inputs/0/name"
    assert "not valid JSON" in unreadable["unreadable"]


def test_route_label_rejects_a_single_object(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--route", "label", str(SINGLE))
    assert status == 1
    assert "E-LABEL-NOT-ARRAY" in out
    status, _, _ = run(capsys, str(SINGLE))  # auto: an object is a POST body
    assert status == 0


def test_image_replaces_the_label_image(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "label.json"
    path.write_text(json.dumps([json.loads(GOOD.read_text())]))
    status, out, _ = run(capsys, "--image", "xnatnode/good", str(path))
    assert status == 0
    assert 'image "xnatnode/good" has no tag: XNAT registers it as "xnatnode/good:latest"' in out


def test_quiet_prints_only_problems(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "-q", str(GOOD), str(BAD))
    assert status == 1
    assert str(GOOD) not in out
    assert str(BAD) in out


def test_usage_error_is_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate-command-json"])
    assert exc.value.code == 2


def test_console_script_exit_status() -> None:
    """The same through a real process (as build.sh calls it)."""
    result = subprocess.run(
        [sys.executable, "-m", "xnatnode", "validate-command-json", str(BAD)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "E-HANDLER-LABEL-BLANK" in result.stdout


# --- hostile files: one line each, exit 2, and the files after them still checked ---------------


def _good_with(field: str, raw_value: str) -> str:
    """good.json's command with ``field`` set to ``raw_value`` (JSON text inserted verbatim)."""
    text = json.dumps(json.loads(GOOD.read_text()) | {field: "@@"})
    return text.replace('"@@"', raw_value)


HOSTILE = {
    "deep.json": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "long-integer.json": (_good_with("reserve-memory", "9" * 5000), "a number is too long"),
    "nan.json": (_good_with("limit-cpu", "NaN"), "NaN is not JSON"),
    "infinity.json": (_good_with("limit-cpu", "-Infinity"), "-Infinity is not JSON"),
    "surrogate.json": (_good_with("name", '"probe\\ud800"'), "lone UTF-16 surrogate"),
    "not-utf8.json": (None, "not UTF-8 text"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_file_gets_one_line_and_exit_2_and_the_rest_are_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    content, reason = HOSTILE[name]
    path = tmp_path / name
    if content is None:
        path.write_bytes(b'[{"name": "caf\xe9"}]')
    else:
        path.write_text(content, encoding="utf-8")
    status, out, err = run(capsys, str(path), str(GOOD))
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{path}: UNREADABLE: ")
    assert reason in lines[0]
    assert f"{GOOD}: OK" in out


def test_a_surrogate_in_an_input_name_is_reported_not_raised(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = json.loads(GOOD.read_text())
    doc["inputs"] = [{"name": "bad@@", "type": "string"}]
    path = tmp_path / "input-name.json"
    path.write_text(json.dumps(doc).replace("@@", "\\udc80"))
    status, out, _ = run(capsys, "--json", str(path), str(GOOD))
    assert status == 2
    bad, good = json.loads(out)["files"]
    assert bad["unreadable"].endswith(
        "lone UTF-16 surrogate escape (no Unicode character) in the string at /inputs/0/name"
    )
    assert good["ok"] is True


def test_an_endless_device_is_refused_not_read(capsys: pytest.CaptureFixture[str]) -> None:
    zero = Path("/dev/zero")
    if not zero.exists():
        pytest.skip("no /dev/zero here")
    status, out, err = run(capsys, str(zero), str(GOOD))
    assert status == 2
    assert err.strip() == "/dev/zero: UNREADABLE: /dev/zero: larger than 16 MiB: not a command file"
    assert f"{GOOD}: OK" in out
