"""Input resolution over a real store (spec B.2-B.4, B.7, A.7.1), without Docker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from xnatsim.cs.backend import Bind, build_run_spec
from xnatsim.cs.model import normalize
from xnatsim.cs.resolution import apply_overlay, resolve
from xnatsim.cs.sample import add_sessions
from xnatsim.cs.templates import ResolutionError
from xnatsim.cs.xnatobjects import StoreLoader
from xnatsim.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = Store(tmp_path / "data")
    yield st
    st.close()


@pytest.fixture
def sessions(store: Store) -> list[str]:
    return add_sessions(store, "RES", 2)


def _command(doc: dict[str, Any]) -> dict[str, Any]:
    return normalize(doc)


def _resolve(store: Store, command: dict[str, Any], wrapper: str, params: dict[str, str],
             config: dict[str, Any] | None = None) -> Any:
    cmd, wrap = apply_overlay(command, wrapper, config)
    return resolve(cmd, wrap, params, StoreLoader(store))


PROBE: dict[str, Any] = {
    "name": "probe", "image": "repo/probe:1", "command-line": "run --label '#LABEL#' #FLAG# #MODE# --scan=#SCAN#",
    "mounts": [{"name": "in", "path": "/input"}, {"name": "out", "path": "/output", "writable": True}],
    "environment-variables": {"PROBE_LABEL": "#LABEL#", "PROBE_SESSION": "#session#"},
    "inputs": [
        {"name": "label", "replacement-key": "#LABEL#", "required": True},
        {"name": "flag", "type": "boolean", "replacement-key": "#FLAG#", "true-value": "--verbose",
         "false-value": "--quiet", "default-value": "false"},
        {"name": "mode", "replacement-key": "#MODE#", "command-line-flag": "--mode", "command-line-separator": "="},
        {"name": "scan-id", "replacement-key": "#SCAN#"},
    ],
    "outputs": [{"name": "report", "mount": "out", "path": "reports"}],
    "xnat": [{
        "name": "probe-session", "contexts": ["xnat:imageSessionData"],
        "external-inputs": [{"name": "session", "type": "Session", "provides-files-for-command-mount": "in"}],
        "derived-inputs": [
            {"name": "session-label", "type": "string", "derived-from-wrapper-input": "session",
             "derived-from-xnat-object-property": "label", "provides-value-for-command-input": "label"},
            {"name": "scan", "type": "Scan", "derived-from-wrapper-input": "session",
             "matcher": "@.scan-type == 'T1w'"},
            {"name": "scan-number", "type": "string", "derived-from-wrapper-input": "scan",
             "derived-from-xnat-object-property": "id", "provides-value-for-command-input": "scan-id"},
        ],
        "output-handlers": [{"name": "h", "accepts-command-output": "report", "as-a-child-of": "session",
                             "label": "OUT_#LABEL#"}],
    }],
}


def test_probe_resolution(store: Store, sessions: list[str]) -> None:
    command = _command(PROBE)
    uri = f"/archive/experiments/{sessions[0]}"
    res = _resolve(store, command, "probe-session", {"session": uri, "flag": "TRUE", "mode": "fast"})
    label = store.get_experiment(sessions[0]).label  # type: ignore[union-attr]
    assert res.command_line == f"run --label '{label}' --verbose --mode=fast --scan=1"
    assert res.environment == {"PROBE_LABEL": label, "PROBE_SESSION": uri}  # wrapper keys in env: raw map
    mounts = {m.name: m for m in res.mounts}
    assert mounts["in"].read_only
    assert mounts["in"].source == str(store.session_dir(store.get_experiment(sessions[0])))  # type: ignore[arg-type]
    assert mounts["out"].source is None
    assert not mounts["out"].read_only
    (out,) = res.outputs
    assert (out.label, out.path, out.parent_uri) == (f"OUT_{label}", "reports", uri)


def test_boolean_false_value_and_missing_boolean(store: Store, sessions: list[str]) -> None:
    res = _resolve(store, _command(PROBE), "probe-session", {"session": f"/archive/experiments/{sessions[0]}"})
    assert "--quiet" in res.command_line
    assert "--mode" not in res.command_line  # blank value drops the flag


def test_wrapper_keys_are_not_substituted_in_the_command_line(store: Store, sessions: list[str]) -> None:
    doc = json.loads(json.dumps(PROBE))
    doc["command-line"] = "run #session# #LABEL#"
    res = _resolve(store, _command(doc), "probe-session", {"session": f"/archive/experiments/{sessions[0]}"})
    assert res.command_line.startswith("run #session# ")


def test_session_by_accession_id_and_unknown(store: Store, sessions: list[str]) -> None:
    res = _resolve(store, _command(PROBE), "probe-session", {"session": sessions[1]})
    assert res.wrapper_values["session"] == f"/archive/experiments/{sessions[1]}"
    with pytest.raises(ResolutionError, match="Missing values for required input"):
        _resolve(store, _command(PROBE), "probe-session", {"session": "/archive/experiments/NOPE"})


def test_an_object_of_another_type_gives_no_value(store: Store, sessions: list[str]) -> None:
    """A project URI (or id) is not a Session; nor is a session a Project: the input stays unresolved."""
    for value in ("/archive/projects/RES", "RES", f"/archive/experiments/{sessions[0]}/scans/1"):
        with pytest.raises(ResolutionError, match=r"Missing values for required inputs: session,"):
            _resolve(store, _command(PROBE), "probe-session", {"session": value})
    project_cmd = {**PROBE, "xnat": [{"name": "on-project", "external-inputs": [
        {"name": "project", "type": "Project", "provides-files-for-command-mount": "in"}]}]}
    res = _resolve(store, _command(project_cmd), "on-project", {"project": "/archive/projects/RES", "label": "x"})
    assert res.wrapper_values["project"] == "/archive/projects/RES"
    with pytest.raises(ResolutionError, match="Missing values for required input"):
        _resolve(store, _command(project_cmd), "on-project",
                 {"project": f"/archive/experiments/{sessions[0]}", "label": "x"})


@pytest.mark.parametrize(("bad", "found"), [("a;b", ";"), ("x && y", "&&"), ("f(x)", "("), ("`id`", "`"),
                                            ("a || b", "||")])
def test_illegal_values_refused(store: Store, sessions: list[str], bad: str, found: str) -> None:
    with pytest.raises(ResolutionError) as refused:
        _resolve(store, _command(PROBE), "probe-session",
                 {"session": f"/archive/experiments/{sessions[0]}", "mode": bad})
    assert str(refused.value) == f'Input "mode" has a value containing illegal string "{found}".'


def test_a_number_input_is_not_checked_as_xnat_does(store: Store, sessions: list[str]) -> None:
    """XNAT 3.7.3 stores a ``number`` command input and resolves it like a string: no numeric check
    (``resolveCommandInput`` converts only booleans), so a non-numeric value reaches the command
    line, split into tokens in exec form; only the illegal-substring guard applies. xnatsim does
    the same, so the product must defend itself (issue 8 item 1)."""
    doc = json.loads(json.dumps(PROBE))
    doc["inputs"].append({"name": "workers", "type": "number", "replacement-key": "#WORKERS#",
                          "command-line-flag": "--workers", "default-value": "8"})
    doc["command-line"] += " #WORKERS#"
    session = f"/archive/experiments/{sessions[0]}"
    res = _resolve(store, _command(doc), "probe-session", {"session": session})
    assert res.command_line.endswith(" --workers 8")
    hostile = "8 --xnat-host http://127.0.0.1:9"
    res = _resolve(store, _command(doc), "probe-session", {"session": session, "workers": hostile})
    assert res.command_line.endswith(f" --workers {hostile}")
    spec = build_run_spec(_command(doc), command_line=res.command_line, environment={}, binds=[])
    assert spec.command[-4:] == ["--workers", "8", "--xnat-host", "http://127.0.0.1:9"]
    assert _resolve(store, _command(doc), "probe-session", {"session": session, "workers": "many"}).command_values[
        "workers"] == "many"
    with pytest.raises(ResolutionError, match='Input "workers" has a value containing illegal string'):
        _resolve(store, _command(doc), "probe-session", {"session": session, "workers": "8;id"})


def test_xnat_messages_for_missing_and_unresolvable_inputs(store: Store, sessions: list[str]) -> None:
    session = f"/archive/experiments/{sessions[0]}"
    doc = json.loads(json.dumps(PROBE))
    doc["inputs"].append({"name": "needed", "replacement-key": "#NEEDED#", "required": True})
    with pytest.raises(ResolutionError) as one:
        _resolve(store, _command(doc), "probe-session", {"session": session})
    assert str(one.value) == "Missing values for required input: needed."
    doc = json.loads(json.dumps(PROBE))
    doc["xnat"][0]["derived-inputs"][1]["matcher"] = "@.scan-type == 'FLAIR'"  # no scan matches
    with pytest.raises(ResolutionError) as none:
        _resolve(store, _command(doc), "probe-session", {"session": session})
    assert str(none.value) == ('Input "scan" could not be resolved for this item. You might check the JSONPath '
                               "matchers in command.json and confirm that this item has Scan data.")


def test_illegal_substring_from_archive_data(store: Store, sessions: list[str]) -> None:
    exp = store.get_experiment(sessions[0])
    assert exp is not None
    store.put_experiment(exp.project, exp.subject_id, exp.id, None, {}, label="S_(copy)")
    with pytest.raises(ResolutionError, match=r"illegal string \"\(\""):
        _resolve(store, _command(PROBE), "probe-session", {"session": f"/archive/experiments/{sessions[0]}"})


def test_matcher_and_overlay(store: Store, sessions: list[str]) -> None:
    doc = json.loads(json.dumps(PROBE))
    doc["xnat"][0]["external-inputs"][0]["matcher"] = "'CT' in @.modalities-in-study"
    with pytest.raises(ResolutionError, match="session"):
        _resolve(store, _command(doc), "probe-session", {"session": f"/archive/experiments/{sessions[0]}"})
    config = {"inputs": {"session": {"matcher": "'MR' in @.modalities-in-study"}, "mode": {"default-value": "slow"}},
              "outputs": {"h": {"label": "CONFIGURED"}}}
    res = _resolve(store, _command(doc), "probe-session", {"session": f"/archive/experiments/{sessions[0]}"}, config)
    assert "--mode=slow" in res.command_line
    assert res.outputs[0].label == "CONFIGURED"


def test_derived_scan_ambiguity_fails_when_required(store: Store, sessions: list[str]) -> None:
    store.put_scan(sessions[0], "2", "xnat:mrScanData", {"type": "T1w"})
    with pytest.raises(ResolutionError) as ambiguous:
        _resolve(store, _command(PROBE), "probe-session", {"session": f"/archive/experiments/{sessions[0]}"})
    assert str(ambiguous.value) == ('Input "scan"  does not have a unique, resolved value and multiple = true '
                                    "is not set in command.json.")
    res = _resolve(store, _command(PROBE), "probe-session",
                   {"session": f"/archive/experiments/{sessions[0]}", "scan": "2"})  # a value picks one
    assert res.command_line.endswith("--scan=2")


def test_multiple_derived_values(store: Store, sessions: list[str]) -> None:
    store.put_scan(sessions[0], "2", "xnat:mrScanData", {"type": "T2w"})
    doc = {
        "name": "multi", "image": "r/m:1", "command-line": "go #SCANS#",
        "inputs": [{"name": "scans", "replacement-key": "#SCANS#", "command-line-flag": "--scan",
                    "command-line-separator": "=", "multiple-delimiter": "flag"}],
        "xnat": [{"name": "w", "contexts": ["xnat:imageSessionData"],
                  "external-inputs": [{"name": "session", "type": "Session"}],
                  "derived-inputs": [{"name": "scan-ids", "type": "Scan", "derived-from-wrapper-input": "session",
                                      "derived-from-xnat-object-property": "id", "multiple": True,
                                      "provides-value-for-command-input": "scans"}]}],
    }
    res = _resolve(store, _command(doc), "w", {"session": f"/archive/experiments/{sessions[0]}"})
    assert res.command_line == "go --scan=1 --scan=2"


def test_dcm2niix_reference_command(store: Store, sessions: list[str], reference_dir: Path) -> None:
    doc = json.loads((reference_dir / "command-json-examples" / "NrgXnat__docker-images__dcm2niix__command.json").read_text())
    command = _command(doc)
    res = _resolve(store, command, "dcm2niix-scan", {"scan": f"/archive/experiments/{sessions[0]}/scans/1",
                                                     "bids": "true"})
    assert res.command_line == "dcm2niix -b y  -o /output /input"
    mounts = {m.name: m for m in res.mounts}
    assert mounts["dicom-in"].read_only
    assert mounts["dicom-in"].source.endswith("/SCANS/1/DICOM")  # type: ignore[union-attr]
    assert res.outputs[0].parent_uri == f"/archive/experiments/{sessions[0]}/scans/1"
    with pytest.raises(ResolutionError):  # a Scan has no id lookup: it must be a URI
        _resolve(store, command, "dcm2niix-scan", {"scan": "1"})


def test_run_spec_exec_and_shell_form() -> None:
    command = normalize({**PROBE, "reserve-memory": 128, "limit-memory": 256, "limit-cpu": 0.5})
    spec = build_run_spec(command, command_line="run --label 'a b' ''", environment={"A": "1"},
                          binds=[Bind("/h/in", "/input", True)], user="4242", network_mode="host")
    kwargs = spec.create_kwargs()
    assert kwargs["command"] == ["run", "--label", "a b"]
    assert "entrypoint" not in kwargs
    assert kwargs["volumes"] == {"/h/in": {"bind": "/input", "mode": "ro"}}
    assert (kwargs["mem_reservation"], kwargs["mem_limit"], kwargs["nano_cpus"]) == (128 << 20, 256 << 20, 500_000_000)
    assert (kwargs["user"], kwargs["network_mode"]) == ("4242", "host")
    shell = build_run_spec({**command, "override-entrypoint": True}, command_line="echo $X > /output/x",
                           environment={}, binds=[])
    assert shell.entrypoint == [""]
    assert shell.command == ["/bin/sh", "-c", "echo $X > /output/x"]
