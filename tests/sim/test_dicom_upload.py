"""dicom-upload against xnatsim (REST + C-STORE receiver): both ways, re-runs, kill and resume,
a receiver that drops associations and refuses objects, and bad inputs each with a clear per-row
outcome and nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dicom_data as dd
import pytest
from xnatnode.cli import main
from xnatsim.testing import Api, Server

from tests.dicom_receiver import receiver_fixtures
from tests.xnat_env import point_xnatnode_at
from tests.zips import zip_folder

IDLE = 0.5
server, api, port = receiver_fixtures(IDLE, "du-sim")


@pytest.fixture
def env(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    return point_xnatnode_at(server, monkeypatch)


def upload(root: Path, out: Path, port: int, *extra: str, via: str = "cstore", csv: str = "map.csv") -> int:
    return main(["dicom-upload", "--csv", csv, "--source-root", str(root), "--via", via, "--dicom-port", str(port),
                 "--output", str(out), "--verify-timeout", "20", *extra])


def report(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "upload-report.json").read_text())
    return data


def outcomes(out: Path) -> dict[str, tuple[str, str]]:
    return {r["session"]: (r["outcome"], r["reason"]) for r in report(out)["rows"]}


def received(server: Server) -> int:
    assert server.app is not None
    count: int = server.app.state["dicomscp"].received
    return count


def scans(server: Server, project: str, session: str) -> dict[str, int]:
    exp = server.store.get_experiment(session, project)
    assert exp is not None, f"{session} not archived"
    return {s.id: int(s.fields.get("frames", "0")) for s in server.store.list_scans(exp.id)}


@pytest.mark.parametrize("via", ["cstore", "import"])
def test_both_ways_verified_then_a_rerun_sends_nothing(env: Server, api: Api, port: int, tmp_path: Path,
                                                       via: str) -> None:
    project = api.new_project("DU")
    root = tmp_path / "deep"
    dd.session(root / "pat1" / "mr", "STUDY_A", "PAT1", {"1": 3, "2": 2})
    dd.session(root / "pat2", "STUDY_B", "PAT2", {"5": 2}, modality="CT", syntax=dd.IMPLICIT)
    dd.session(root / "pat3", "STUDY_C", "PAT3", {"7": 2}, syntax=dd.RLE)
    dd.session(root / "pat4", "STUDY_D", "PAT4", {"3": 2}, syntax=dd.BIG_ENDIAN)
    zip_folder(root / "pat4", root / "pat4.zip")
    dd.write_csv(root / "map.csv", [("pat1/mr", project, "S1", "S1_MR1"), ("pat2", project, "S2", "S2_CT1"),
                                    ("pat3", project, "S3", "S3_MR1"), ("pat4.zip", project, "S4", "S4_MR1")])
    out = tmp_path / "out"
    assert upload(root, out, port, via=via) == 0, (out / "upload-report.csv").read_text()
    data = report(out)
    assert data["schema_version"] == "1.0"
    assert data["totals"]["verified"] == 4
    assert {r["session"]: r["objects_archived"] for r in data["rows"]} == {
        "S1_MR1": 5, "S2_CT1": 2, "S3_MR1": 2, "S4_MR1": 2}
    assert scans(env, project, "S1_MR1") == {"1": 3, "2": 2}
    assert env.store.get_experiment("S2_CT1", project).xsi_type == "xnat:ctSessionData"  # type: ignore[union-attr]
    for name in ("upload-report.csv", "upload-report.html", "upload-state.json"):
        assert (out / name).is_file()
    from xnatnode.reports import page_problems

    assert page_problems((out / "upload-report.html").read_text()) == []
    before = received(env)
    env.reset_stats()
    assert upload(root, out, port, via=via) == 0
    assert received(env) == before  # nothing sent again
    assert env.stats()["routes"].get("POST /data/services/import", 0) == 0
    assert {o for o, _ in outcomes(out).values()} == {"verified"}


def test_dry_run_sends_nothing_and_shows_the_plan(env: Server, api: Api, port: int, tmp_path: Path) -> None:
    project = api.new_project("DRY")
    root = tmp_path / "deep"
    dd.session(root / "a", "STUDY_DRY", "P", {"1": 2, "4": 1})
    (root / "a" / "readme.txt").write_text("not dicom")
    dd.write_csv(root / "map.csv", [("a", project, "S", "S_MR1")])
    before = received(env)
    assert upload(root, tmp_path / "out", port, "--dry-run") == 0
    row = report(tmp_path / "out")["rows"][0]
    assert received(env) == before
    assert env.store.get_experiment("S_MR1", project) is None
    assert row["outcome"] == "planned"
    assert row["expected_files_per_scan"] == {"1": 2, "4": 1}
    assert [(f["file"], f["reason"][:9]) for f in row["skipped_files"]] == [("readme.txt", "not DICOM")]
    assert row["transfer_syntaxes"] == {"1.2.840.10008.1.2.1": 3}
    assert [s["scan"] for s in row["series"]] == ["1", "4"]


def test_killed_half_way_and_resumed_loses_and_duplicates_nothing(env: Server, api: Api, port: int,
                                                                   tmp_path: Path) -> None:
    project = api.new_project("KILL")
    root = tmp_path / "deep"
    dd.session(root / "big", "STUDY_KILL", "K", {"1": 60, "2": 60})
    dd.write_csv(root / "map.csv", [("big", project, "K", "K_MR1")])
    out = tmp_path / "out"
    api.post("/xnatsim/dicomscp/faults", json={"delay_ms": 30})
    try:
        cmd = [sys.executable, "-m", "xnatnode", "dicom-upload", "--csv", "map.csv", "--source-root", str(root),
               "--dicom-port", str(port), "--output", str(out), "--workers", "1", "--verify-timeout", "20"]
        process = subprocess.Popen(cmd, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        state = out / "upload-state.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if state.exists() and any(e["stored"] for e in json.loads(state.read_text())["rows"].values()):
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        api.post("/xnatsim/dicomscp/faults", json={"delay_ms": 0})
    stored_before = sum(len(e["stored"]) for e in json.loads(state.read_text())["rows"].values())
    assert 0 < stored_before < 120
    first_run = received(env)
    assert upload(root, out, port, "--workers", "1") == 0, (out / "upload-report.csv").read_text()
    resent = received(env) - first_run
    assert resent <= 120 - stored_before  # only what the state did not record as stored
    assert scans(env, project, "K_MR1") == {"1": 60, "2": 60}


def test_receiver_dropping_associations_and_refusing_objects(env: Server, api: Api, port: int, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    project = api.new_project("FLT")
    root = tmp_path / "deep"
    dd.session(root / "drop", "STUDY_DROP", "D", {"1": 6})
    dd.session(root / "private", "STUDY_PRIV", "Q", {"1": 2, "2": 1},
               edit=lambda ds: setattr(ds, "SOPClassUID", dd.UNKNOWN_PRIVATE) if ds.SeriesNumber == 2 else None)
    dd.write_csv(root / "map.csv", [("drop", project, "D", "D_MR1"), ("private", project, "Q", "Q_MR1")])
    out = tmp_path / "out"
    api.post("/xnatsim/dicomscp/faults", json={"abort_after": 2, "refuse_every": 5})
    try:
        code = upload(root, out, port, "--workers", "1")
    finally:
        api.post("/xnatsim/dicomscp/faults", json={"abort_after": 0, "refuse_every": 0})
    rows = {r["session"]: r for r in report(out)["rows"]}
    assert rows["D_MR1"]["outcome"] == "verified"  # dropped and 0xA700 answers were retried
    assert scans(env, project, "D_MR1") == {"1": 6}
    private = rows["Q_MR1"]
    assert code == 6
    assert private["outcome"] == "incomplete"
    assert private["objects_refused"] == 1
    assert "refused" in private["refused_objects"][0]["reason"]
    assert scans(env, project, "Q_MR1") == {"1": 2}
    # XNAT uploads no report of a failed job: the log names the row that fell short, and why
    assert f"line 3 (private) -> {project}/Q/Q_MR1: incomplete: {private['reason']}" in caplog.text
    assert "D_MR1: verified" not in caplog.text


def test_receiver_unreachable(env: Server, api: Api, tmp_path: Path) -> None:
    project = api.new_project("UNR")
    root = tmp_path / "deep"
    dd.session(root / "a", "STUDY_UNR", "U", {"1": 1})
    dd.write_csv(root / "map.csv", [("a", project, "U", "U_MR1")])
    assert upload(root, tmp_path / "out", 1) == 3
    outcome, reason = outcomes(tmp_path / "out")["U_MR1"]
    assert outcome == "not-sent"
    assert "did not answer (connection refused: nothing listens on that port)" in reason
    assert "or send with --via import" in reason  # what to do next
    assert json.loads((tmp_path / "out" / "xnatnode-run.json").read_text())["error"] == reason


def test_missing_csv_is_named_as_missing(env: Server, port: int, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """Inside a job (env sets XNAT_HOST/USER/PASS) a missing CSV is reported as missing, not as
    lying outside the batch."""
    assert upload(tmp_path, tmp_path / "out", port, csv="nothere.csv") == 2
    assert f"CSV map nothere.csv not found (looked in the current folder and in {tmp_path})" in caplog.text
    (tmp_path / "batch").mkdir()
    outside = tmp_path / "map.csv"
    dd.write_csv(outside, [("a", "P", "S", "S_MR1")])
    assert upload(tmp_path / "batch", tmp_path / "out", port, csv=str(outside)) == 2
    assert "the CSV must be a file of the mounted batch" in caplog.text
    assert upload(tmp_path, tmp_path / "out", port, "--dicom-host", "127.0.0.1") == 2
    assert "--dicom-host refused" in caplog.text
    assert "Running by hand? Leave XNAT_PASS unset" in caplog.text


def test_bad_inputs_each_a_clear_row_outcome(env: Server, api: Api, port: int, tmp_path: Path) -> None:
    project = api.new_project("BADIN")
    root = tmp_path / "deep"
    dd.session(root / "ok_with_junk", "STUDY_OK", "OK", {"1": 2})
    (root / "ok_with_junk" / "notes.txt").write_text("a note")  # 1 non-DICOM file
    good = (root / "ok_with_junk" / "1_0001.dcm").read_bytes()
    (root / "ok_with_junk" / "cut.dcm").write_bytes(good[: len(good) - 100])  # 2 truncated file
    dd.session(root / "no_comments", "STUDY_NC", "NC", {"1": 2},
               edit=lambda ds: delattr(ds, "PatientComments"))  # 3 no PatientComments: set in memory
    dd.session(root / "two_studies", "STUDY_T1", "T", {"1": 1})  # 4 two studies in one row
    dd.session(root / "two_studies" / "more", "STUDY_T2", "T", {"2": 1})
    dd.session(root / "spaces", "STUDY_SP", "SP", {"1": 1})
    dd.session(root / "uid_clash", "STUDY_CLASH", "C", {"1": 1})
    dd.session(root / "empty_of_dicom", "STUDY_E", "E", {})
    (root / "empty_of_dicom" / "x.txt").write_text("x")
    (root / "not_a_zip.zip").write_bytes(b"PK\x03\x04 broken")
    (root / "plain.txt").write_text("plain")
    outside = tmp_path / "outside"
    dd.session(outside, "STUDY_OUT", "O", {"1": 1})
    (root / "link_out").symlink_to(outside)
    dd.session(root / "no_sop", "STUDY_NS", "NS", {"1": 1, "2": 1},
               edit=lambda ds: delattr(ds, "SOPInstanceUID") if ds.SeriesNumber == 2 else None)
    # the session C_MR1 exists with another StudyInstanceUID
    dd.session(tmp_path / "first", "STUDY_FIRST", "C", {"1": 1})
    dd.write_csv(tmp_path / "first.csv", [("first", project, "C", "C_MR1")])
    assert upload(tmp_path, tmp_path / "out0", port, csv=str(tmp_path / "first.csv")) == 0
    rows = [
        ("ok_with_junk", project, "OK", "OK_MR1"),
        ("no_comments", project, "NC", "NC_MR1"),
        ("two_studies", project, "T", "T_MR1"),
        ("spaces", project, "with space", "SP_MR1"),  # 5 label with a space
        ("spaces", project, "SP", "séance_1"),  # 6 label with unicode
        ("uid_clash", project, "C", "C_MR1"),  # 7 session exists with another UID
        ("missing_folder", project, "M", "M_MR1"),  # 8 missing source
        ("ok_with_junk", project, "OK", "OK_MR1"),  # 9 the same session twice
        ("ok_with_junk", "NOSUCHPROJECT", "OK", "OK_MR2"),  # 10 unknown project
        ("empty_of_dicom", project, "E", "E_MR1"),  # 11 no DICOM at all
        ("not_a_zip.zip", project, "Z", "Z_MR1"),  # 12 corrupt zip
        ("plain.txt", project, "PT", "PT_MR1"),  # 13 neither folder nor zip
        ("link_out", project, "O", "O_MR1"),  # 14 a link out of the mount
        ("../outside", project, "O", "O_MR2"),  # 15 a path out of the mount
        ("no_sop", project, "NS", "NS_MR1"),  # 16 an object without SOPInstanceUID
        ("", project, "X", "X_MR1"),  # 17 no source
    ]
    dd.write_csv(root / "map.csv", rows, sep=";", bom=True, crlf=True)  # 18 BOM, ';' and CRLF
    out = tmp_path / "out"
    assert upload(root, out, port) == 6
    got = {(r["line"], r["session"]): (r["outcome"], r["reason"], r) for r in report(out)["rows"]}
    by_line = {line: value for (line, _), value in got.items()}
    assert len(by_line) == len(rows)
    ok = by_line[2]
    assert ok[0] == "verified"
    assert {s["file"]: s["reason"] for s in ok[2]["skipped_files"]}["notes.txt"].startswith("not DICOM")
    assert "truncated" in {s["file"]: s["reason"] for s in ok[2]["skipped_files"]}["cut.dcm"]
    expected = {
        3: ("verified", ""), 4: ("conflict", "2 studies"), 5: ("bad-row", "illegal subject"),
        6: ("bad-row", "illegal session"), 7: ("conflict", "StudyInstanceUID"), 8: ("bad-row", "does not exist"),
        9: ("bad-row", "same session as line 2"), 10: ("bad-row", "NOSUCHPROJECT"), 11: ("bad-row", "no DICOM"),
        12: ("bad-row", "zip"), 13: ("bad-row", "neither a folder nor a zip"), 14: ("bad-row", "outside"),
        15: ("bad-row", "outside"), 16: ("verified", ""), 17: ("bad-row", "no source"),
    }
    assert {line: (by_line[line][0], fragment in by_line[line][1]) for line, (_, fragment) in expected.items()} == {
        line: (outcome, True) for line, (outcome, _) in expected.items()}
    assert "SOPInstanceUID" in by_line[16][2]["skipped_files"][0]["reason"]
    assert scans(env, project, "C_MR1") == {"1": 1}  # the clash sent nothing
    assert (out / "upload-report.html").read_text().count("<tr") >= len(rows)
    assert "Files not sent" in (out / "upload-report.html").read_text()


def test_project_restriction_skips_rows_for_another_project(env: Server, api: Api, port: int,
                                                            tmp_path: Path) -> None:
    """--project A (what the project-context wrapper passes): the row for project B is a bad row
    and nothing reaches B; the row with an empty project cell goes to A; the others are verified."""
    here, other = api.new_project("CTXA"), api.new_project("CTXB")
    root = tmp_path / "deep"
    dd.session(root / "a", "STUDY_CTX_A", "CA", {"1": 2})
    dd.session(root / "b", "STUDY_CTX_B", "CB", {"1": 2})
    dd.session(root / "c", "STUDY_CTX_C", "CC", {"1": 1})
    dd.write_csv(root / "map.csv", [("a", here, "CA", "CA_MR1"), ("b", other, "CB", "CB_MR1"),
                                    ("c", "", "CC", "CC_MR1")])
    before = received(env)
    out = tmp_path / "out"
    assert upload(root, out, port, "--project", here) == 6
    got = outcomes(out)
    assert got["CA_MR1"] == ("verified", "")
    assert got["CC_MR1"] == ("verified", "")
    outcome, reason = got["CB_MR1"]
    assert outcome == "bad-row"
    assert f"for project '{other}'" in reason
    assert f"restricted to project {here}" in reason
    assert report(out)["settings"]["project"] == here
    assert {r["session"]: r["project"] for r in report(out)["rows"]}["CC_MR1"] == here
    assert received(env) - before == 3  # a and c only
    assert scans(env, here, "CC_MR1") == {"1": 1}
    assert env.store.get_experiment("CB_MR1", other) is None
    assert api.get(f"/data/prearchive/projects/{other}").json()["ResultSet"]["Result"] == []


def test_csv_without_required_columns_is_a_usage_error(env: Server, port: int, tmp_path: Path) -> None:
    (tmp_path / "map.csv").write_text("folder,project\na,b\n")
    assert upload(tmp_path, tmp_path / "out", port) == 2


def test_csv_with_a_header_only_warns_rather_than_all_verified(env: Server, port: int, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "map.csv").write_text("source,project,subject,session\n")
    assert upload(tmp_path, tmp_path / "out", port) == 0
    assert "CSV map map.csv has no rows: nothing to send" in caplog.text
    assert report(tmp_path / "out")["totals"]["rows"] == 0
    page = (tmp_path / "out" / "upload-report.html").read_text()
    assert "The CSV has no rows" in page
    assert "All 0 rows verified" not in page


def test_overwrite_none_refuses_adding_to_an_existing_session(env: Server, api: Api, port: int,
                                                              tmp_path: Path) -> None:
    project = api.new_project("OWN")
    root = tmp_path / "deep"
    dd.session(root / "part", "STUDY_OWN", "W", {"1": 2})
    dd.session(root / "whole", "STUDY_OWN", "W", {"1": 2, "2": 2})
    dd.write_csv(root / "first.csv", [("part", project, "W", "W_MR1")])
    dd.write_csv(root / "map.csv", [("whole", project, "W", "W_MR1")])
    assert upload(root, tmp_path / "o1", port, csv="first.csv") == 0
    assert upload(root, tmp_path / "o2", port, "--overwrite", "none", via="import") == 6
    assert outcomes(tmp_path / "o2")["W_MR1"][0] == "conflict"
    assert upload(root, tmp_path / "o3", port, via="import") == 0  # append adds scan 2 only
    assert scans(env, project, "W_MR1") == {"1": 2, "2": 2}


def test_manual_project_leaves_the_session_in_the_prearchive(env: Server, api: Api, port: int,
                                                            tmp_path: Path) -> None:
    project = api.new_project("MANU")
    api.put(f"/data/projects/{project}/prearchive_code/0")
    root = tmp_path / "deep"
    dd.session(root / "a", "STUDY_MANU", "M", {"1": 1})
    dd.write_csv(root / "map.csv", [("a", project, "M", "M_MR1")])
    for via in ("cstore", "import"):
        out = tmp_path / via
        assert upload(root, out, port, via=via) == 6
        outcome, reason = outcomes(out)["M_MR1"]
        assert outcome == "prearchived", reason
        assert "prearchive" in reason


def test_library_use(env: Server, api: Api, port: int, tmp_path: Path) -> None:
    """The modules without the CLI: scan a source, send it, read the DIMSE statuses."""
    from xnatnode.cstore import Sender, Target, echo
    from xnatnode.dicom import scan_source

    project = api.new_project("LIB")
    dd.session(tmp_path / "s", "STUDY_LIB", "L", {"1": 3})
    scan = scan_source(tmp_path / "s")
    assert scan.expected_scans() == {"1": 3}
    target = Target("127.0.0.1", port)
    echo(target)
    results = Sender(target, workers=2, batch_size=2).send(scan, scan.objects, (project, "L", "L_MR1"))
    assert [r.status for r in results] == [0, 0, 0]
    deadline = time.monotonic() + 20
    while env.store.get_experiment("L_MR1", project) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert scans(env, project, "L_MR1") == {"1": 3}
    assert (tmp_path / "s" / "1_0001.dcm").read_bytes() == dd.encode(dd.dataset(
        dd.synth.DicomLabels("DEEPSTORE", "L", "STUDY_LIB", "1", "series 1", "MR", "2023-05-06", 1)))


def test_import_retries_when_xnat_answers_503(env: Server, api: Api, port: int, tmp_path: Path) -> None:
    project = api.new_project("RETRY")
    root = tmp_path / "deep"
    for k in range(3):
        dd.session(root / f"s{k}", f"STUDY_RETRY{k}", f"R{k}", {"1": 2})
    dd.write_csv(root / "map.csv", [(f"s{k}", project, f"R{k}", f"R{k}_MR1") for k in range(3)])
    env.set_faults(fail_every=3)
    try:
        code = upload(root, tmp_path / "out", port, "--retries", "4", via="import")
    finally:
        env.set_faults(fail_every=0)
    assert code == 0, outcomes(tmp_path / "out")
    assert all(scans(env, project, f"R{k}_MR1") == {"1": 2} for k in range(3))


def test_session_stopped_in_the_prearchive_is_reported_with_xnats_reason(env: Server, api: Api, port: int,
                                                                        tmp_path: Path) -> None:
    project = api.new_project("PRECON")
    root = tmp_path / "deep"
    dd.session(root / "first", "STUDY_PRECON", "S", {"1": 1})
    dd.session(root / "more", "STUDY_PRECON", "S", {"1": 1, "2": 1})
    dd.write_csv(root / "first.csv", [("first", project, "S1", "X_MR1")])
    dd.write_csv(root / "map.csv", [("more", project, "S2", "X_MR1")])  # same session, another subject
    assert upload(root, tmp_path / "o1", port, csv="first.csv") == 0
    assert upload(root, tmp_path / "o2", port) == 6
    outcome, reason = outcomes(tmp_path / "o2")["X_MR1"]
    assert outcome == "conflict"
    assert "left in the prearchive (CONFLICT)" in reason
    assert "Invalid modification of session subject via archive process." in reason
