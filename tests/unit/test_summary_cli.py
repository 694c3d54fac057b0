"""``xnatnode project-summary`` argument handling and failures that need no server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from xnatnode.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "argv",
    [
        ["project-summary"],  # --project missing
        ["project-summary", "--project", "a;b"],
        ["project-summary", "--project", "P", "--sizes", "disk"],
        ["project-summary", "--project", "P", "--workers", "0"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "project-summary" in capsys.readouterr().err


def test_unreachable_xnat_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNAT_USER", "someone")
    monkeypatch.setenv("XNAT_PASS", "s3cret-value")
    code = main([
        "project-summary", "--project", "P", "--xnat-host", f"http://127.0.0.1:{_free_port()}",
        "--retries", "0", "--timeout", "2", "--output", str(tmp_path), "--input", str(tmp_path / "none"),
    ])
    assert code == 3
    record = json.loads((tmp_path / "xnatnode-run.json").read_text("utf-8"))
    assert record["status"] == "unreachable"
    assert "s3cret-value" not in (tmp_path / "xnatnode-run.json").read_text("utf-8")
    assert not (tmp_path / "summary.json").exists()


def test_mount_mode_without_input_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNAT_USER", "someone")
    monkeypatch.setenv("XNAT_PASS", "x")
    code = main([
        "project-summary", "--project", "P", "--sizes", "mount", "--xnat-host", "http://127.0.0.1:9",
        "--output", str(tmp_path), "--input", str(tmp_path / "absent"),
    ])
    assert code == 2
