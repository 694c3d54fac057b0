"""``python -m xnatsim`` commands of the Container Service and Event Service (no Docker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from xnatsim.cli import main

COMMAND = {
    "name": "cli-probe", "version": "1", "image": "xnatsim-test/none:1", "command-line": "run #MODE#",
    "inputs": [{"name": "mode", "replacement-key": "#MODE#"}],
    "xnat": [{"name": "cli-session", "contexts": ["xnat:imageSessionData"],
              "external-inputs": [{"name": "session", "type": "Session"}]}],
}


def test_validate_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps([COMMAND]))
    assert main(["commands", "validate", str(good)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**COMMAND, "inputs": [{"name": "two words"}]}))
    assert main(["commands", "validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "cli-probe: valid" in out
    assert "Command input 'two words' name should contain only alphanumeric, _ and -" in out


def test_add_enable_launch_subscribe_on_a_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from xnatsim.cs.sample import add_sessions
    from xnatsim.store import Store

    data = tmp_path / "data"
    store = Store(data)
    session = add_sessions(store, "CLI", 1)[0]
    store.close()
    command_file = tmp_path / "command.json"
    command_file.write_text(json.dumps(COMMAND))
    assert main(["commands", "add", str(command_file), "--data", str(data)]) == 0
    assert main(["commands", "list", "--data", str(data)]) == 0
    assert "wrapper 1\tcli-session" in capsys.readouterr().out
    assert main(["enable", "cli-session", "--project", "CLI", "--data", str(data)]) == 0
    assert "enabled on project CLI" in capsys.readouterr().out
    # a value the injection guard refuses: the launch is queued, then fails resolution (no container)
    status = main(["launch", "cli-session", f"/archive/experiments/{session}", "--project", "CLI",
                   "--param", "mode=a;b", "--data", str(data)])
    assert status == 1
    out = capsys.readouterr().out
    assert "Failed (Command resolution)" in out
    assert 'illegal string ";"' in out
    assert main(["containers", "list", "--data", str(data)]) == 0
    assert "Failed (Command resolution)" in capsys.readouterr().out
    assert main(["events", "subscribe", "cli-session", "--project", "CLI", "--filter", "'MR' in @.modalities-in-study",
                 "--data", str(data)]) == 0
    assert main(["events", "list", "--data", str(data)]) == 0
    assert "'MR' in @.modalities-in-study" in capsys.readouterr().out
    assert main(["enable", "nope", "--data", str(data)]) == 2
