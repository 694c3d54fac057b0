"""nifti-import with bad input: every kind gets a clear per-file outcome or a clear run error with
a meaningful exit status, and nothing half-written (no session for refused files, no file
replaced). Also 5% injected 5xx plus dropped connections, and a run killed mid-way and resumed."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from xnatnode.cli import main
from xnatsim.testing import Api, Server, running_server

from tests.nifti_batches import bids_batch, run_import, write_image, write_sidecar
from tests.xnat_env import point_xnatnode_at


def by_source(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["source"]: f for f in report["files"]}


def labels(api: Api, project: str) -> set[str]:
    rows = api.get(f"/data/projects/{project}/experiments", params={"format": "json"}).json()["ResultSet"]["Result"]
    return {r["label"] for r in rows}


def test_bad_files_each_get_a_reason_and_the_good_ones_go_in(env: Server, api: Api, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    project = api.new_project("NB")
    root = tmp_path / "batch"
    anat = root / "sub-01" / "anat"
    good = write_image(anat / "sub-01_T1w.nii.gz")
    raw = write_image(tmp_path / "raw.nii", (8, 8, 4)).read_bytes()
    (anat / "sub-01_T2w.nii").write_bytes(b"")                                   # zero bytes
    (anat / "sub-01_FLAIR.nii").write_bytes(raw[:-200])                          # truncated
    (anat / "sub-01_PDw.nii.gz").write_bytes(good.read_bytes()[:100])           # truncated gzip
    (anat / "sub-01_T2starw.nii").write_text("this is not an image\n" * 40)    # not NIfTI
    (anat / "sub-01_inplaneT1.nii").write_bytes(raw[:344] + b"ni1\x00" + raw[348:])  # hdr/img pair
    write_image(anat / "sub-01_MTR.nii", (2, 2, 2, 2, 2))                       # 5D
    write_image(anat / "sub-01_UNIT1.nii", (4, 4))                               # 2D
    write_image(anat / "sub-01_T1map.nii.gz", seed=3)
    (anat / "sub-01_T1map.json").write_text("{not json")                         # bad sidecar
    write_image(root / "sub-02" / "anat" / "sub-01_T1w.nii.gz")                 # folder/name disagree
    write_image(root / "sub-01" / "eeg" / "sub-01_task-x_eeg.nii.gz")            # not MR/PET/CT
    write_sidecar(root / "task-rest_bold.json", RepetitionTime=2)                # inherited sidecar
    secret = tmp_path / "secret.nii"
    secret.write_bytes(raw)
    os.symlink(secret, anat / "sub-01_angio.nii")                                # link out of the source
    fifo = anat / "sub-01_pipe.nii"
    os.mkfifo(fifo)                                                              # not a regular file
    status, report = run_import(tmp_path / "out", project, "--source", str(root))
    assert status == 6
    rows = by_source(report)
    expected = {
        "sub-01/anat/sub-01_T2w.nii": ("rejected", "empty file"),
        "sub-01/anat/sub-01_FLAIR.nii": ("rejected", "truncated"),
        "sub-01/anat/sub-01_PDw.nii.gz": ("rejected", "truncated gzip"),
        "sub-01/anat/sub-01_T2starw.nii": ("rejected", "not a NIfTI image"),
        "sub-01/anat/sub-01_inplaneT1.nii": ("rejected", ".hdr/.img pair"),
        "sub-01/anat/sub-01_MTR.nii": ("rejected", "5D image"),
        "sub-01/anat/sub-01_UNIT1.nii": ("rejected", "2D image"),
        "sub-01/anat/sub-01_T1map.json": ("rejected", "not valid JSON"),
        "sub-02/anat/sub-01_T1w.nii.gz": ("ignored", "not a BIDS image name"),
        "sub-01/eeg/sub-01_task-x_eeg.nii.gz": ("ignored", "not MR, PET or CT"),
        "task-rest_bold.json": ("ignored", "not an image or a sidecar"),
        "sub-01/anat/sub-01_angio.nii": ("rejected", "link points outside the source"),
        "sub-01/anat/sub-01_pipe.nii": ("rejected", "not a regular file"),
        "sub-01/anat/sub-01_T1w.nii.gz": ("imported", "MD5 verified"),
        "sub-01/anat/sub-01_T1map.nii.gz": ("imported", "MD5 verified"),
    }
    for source, (outcome, reason) in expected.items():
        assert rows[source]["outcome"] == outcome, (source, rows[source])
        assert reason in rows[source]["reason"], (source, rows[source])
    assert labels(api, project) == {"01_mr"}
    assert report["totals"]["rejected"] == 10
    # XNAT uploads no report of a failed (exit 6) job: each rejected file is named in the log
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for source, (outcome, _) in expected.items():
        if outcome == "rejected":
            assert any(line.startswith(f"rejected: {source}: {rows[source]['reason']}") for line in logged), source


def test_hostile_zip_members_are_refused(env: Server, api: Api, tmp_path: Path) -> None:
    project = api.new_project("NZ")
    image = write_image(tmp_path / "img.nii.gz").read_bytes()
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("sub-01/anat/sub-01_T1w.nii.gz", image)
        archive.writestr("../sub-01/anat/sub-01_T2w.nii.gz", image)
        archive.writestr("/sub-01/anat/sub-01_PDw.nii.gz", image)
        archive.writestr("sub-01/anat/sub-01_FLAIR.nii.gz", image)
        archive.writestr("sub-01/anat//sub-01_FLAIR.nii.gz", image)
        link = zipfile.ZipInfo("sub-01/anat/sub-01_angio.nii.gz")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "../../../../etc/passwd")
    status, report = run_import(tmp_path / "out", project, "--source", str(path))
    assert status == 6
    rows = by_source(report)
    assert "escapes the archive root" in rows["../sub-01/anat/sub-01_T2w.nii.gz"]["reason"]
    assert "escapes the archive root" in rows["/sub-01/anat/sub-01_PDw.nii.gz"]["reason"]
    assert rows["sub-01/anat/sub-01_FLAIR.nii.gz"]["reason"].startswith("duplicate path")
    assert rows["sub-01/anat/sub-01_angio.nii.gz"]["reason"] == "link points outside the source"
    assert rows["sub-01/anat/sub-01_T1w.nii.gz"]["outcome"] == "imported"


def test_bad_labels_and_conflicts_are_reported_not_written(env: Server, api: Api, tmp_path: Path) -> None:
    project = api.new_project("NL")
    # an existing session whose label the batch reuses under another subject
    assert api.put(f"/data/projects/{project}/subjects/OTHER/experiments/S3_mr",
                   params={"xsiType": "xnat:mrSessionData"}).status_code == 201
    root = tmp_path / "batch"
    for name in ("a", "b", "c", "d", "e", "f"):
        write_image(root / f"{name}.nii.gz", seed=ord(name))
    long = "x" * 256
    mapping = ("source,subject,session,scan\n"
               "a.nii.gz,sub 01,sub 01_mr,\n"           # spaces
               "b.nii.gz,S2,S2_ménage,\n"               # unicode
               f"c.nii.gz,S4,{long},\n"                 # over 255 characters
               "d.nii.gz,S3,S3_mr,\n"                   # session exists under OTHER
               "e.nii.gz,S5,S5_mr,1 2\n"                # bad scan ID
               "f.nii.gz,S6,S6_mr,\n"
               "f.nii.gz,S6,S6_mr,\n")                  # duplicate row
    (root / "map.csv").write_text(mapping)
    status, report = run_import(tmp_path / "out", project, "--source", str(root), "--mapping", "map.csv")
    assert status == 6
    rows = by_source(report)
    assert rows["a.nii.gz"]["outcome"] == "rejected"
    assert "XNAT would use 'sub_01'" in rows["a.nii.gz"]["reason"]
    assert "S2_m_nage" in rows["b.nii.gz"]["reason"]
    assert "at most 255" in rows["c.nii.gz"]["reason"]
    assert rows["d.nii.gz"]["outcome"] == "conflict"
    assert "under subject OTHER" in rows["d.nii.gz"]["reason"]
    assert rows["e.nii.gz"]["outcome"] == "rejected"
    assert rows["f.nii.gz"]["outcome"] == "imported"
    assert any("duplicate of line 7" in p for p in report["problems"])
    assert labels(api, project) == {"S3_mr", "S6_mr"}
    s3 = api.get(f"/data/projects/{project}/experiments/S3_mr", params={"format": "json"}).json()
    assert s3["items"][0]["data_fields"]["subject_ID"] != "S3"  # not re-parented


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--curl"], 2, "--curl prints the plan of a dry run"),
    (["--session-label", "{sub}_{visit}"], 2, "unknown or bad field"),
    (["--source", "/no/such/folder"], 2, "does not exist"),
    (["--mapping", "missing.csv"], 2, "neither in the source nor a readable file"),
    (["--session", "NOPE"], 5, "session NOPE does not exist"),
])
def test_run_errors_have_clear_messages_and_statuses(
        env: Server, api: Api, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        args: list[str], code: int, message: str) -> None:
    project = api.new_project("NE")
    bids_batch(tmp_path / "batch", subjects=("01",), sessions=(None,))
    if "--source" not in args:
        args = ["--source", str(tmp_path / "batch"), *args]
    status, _ = run_import(tmp_path / "out", project, *args)
    assert status == code
    assert message in caplog.text
    assert labels(api, project) == set()


def test_mapping_without_required_columns_and_unknown_project(env: Server, api: Api, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    project = api.new_project("NM")
    root = tmp_path / "batch"
    write_image(root / "a.nii.gz")
    (root / "map.csv").write_text("file;subject\na.nii.gz;S1\n")
    assert run_import(tmp_path / "o1", project, "--source", str(root), "--mapping", "map.csv")[0] == 2
    assert "lacks the required column(s) source, session" in caplog.text
    (root / "map2.csv").write_text("source,subject,session,scantype\na.nii.gz,S1,S1_mr,T1w\n")
    caplog.clear()
    assert run_import(tmp_path / "o4", project, "--source", str(root), "--mapping", "map2.csv")[0] == 0
    assert "map2.csv: unknown column(s) ignored: scantype" in caplog.text  # in the log, not only the report
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_import(tmp_path / "o5", project, "--source", str(empty))[0] == 0
    assert f"nothing imported from {empty}: The source holds no files" in caplog.text
    assert "Nothing was imported" in (tmp_path / "o5" / "import-report.html").read_text()  # not "All 0 files"
    loose = tmp_path / "loose"
    write_image(loose / "scan1.nii.gz")  # not a BIDS name, and no mapping: ignored
    assert run_import(tmp_path / "o6", project, "--source", str(loose))[0] == 0
    assert f"nothing imported from {loose}: 1 file ignored" in caplog.text
    assert "ignored: scan1.nii.gz: not a BIDS image name" in caplog.text
    page = (tmp_path / "o6" / "import-report.html").read_text()
    assert 'class="verdict lvl-warning"' in page
    assert "All 0 files" not in page
    assert run_import(tmp_path / "o2", "NO_SUCH_PROJECT", "--source", str(root))[0] == 5
    assert "project NO_SUCH_PROJECT not found (or not visible to this user)" in caplog.text
    assert run_import(tmp_path / "o3", project, "--resource", "NO_SUCH_RESOURCE")[0] == 5
    assert f"resource NO_SUCH_RESOURCE of project {project} not found" in caplog.text


def test_unreachable_xnat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("XNAT_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("XNAT_USER", "u")
    monkeypatch.setenv("XNAT_PASS", "p")
    write_image(tmp_path / "batch" / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    status = main(["nifti-import", "--project", "P", "--source", str(tmp_path / "batch"),
                   "--output", str(tmp_path / "out"), "--retries", "0"])
    assert status == 3
    assert "cannot reach XNAT" in caplog.text
    assert "connection refused" in caplog.text
    assert not (tmp_path / "out" / "import-report.json").exists()


def _state(api: Api, project: str) -> dict[str, dict[tuple[str, str, str], str]]:
    result = {}
    rows = api.get(f"/data/projects/{project}/experiments", params={"format": "json"}).json()["ResultSet"]["Result"]
    for row in rows:
        files = api.get(f"/data/experiments/{row['ID']}/scans/ALL/files",
                        params={"format": "json"}).json()["ResultSet"]["Result"]
        result[row["label"]] = {(f["URI"].split("/scans/")[1].split("/")[0], f["collection"], f["Name"]): f["digest"]
                                for f in files}
    return result


def test_injected_5xx_and_dropped_connections_end_in_the_right_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bids_batch(tmp_path / "batch", subjects=("01", "02", "03"))
    with running_server(tmp_path / "clean") as clean, running_server(tmp_path / "faulty") as faulty:
        results = {}
        for server in (clean, faulty):
            api = Api(server)
            project = "FAULTS"
            api.put(f"/data/projects/{project}", params={"xsiType": "xnat:projectData"})
            point_xnatnode_at(server, monkeypatch)
            if server is faulty:
                server.set_faults(fail_rate=0.05, drop_every=17, seed=7)
            status, report = run_import(tmp_path / f"out-{id(server)}", project, "--source", str(tmp_path / "batch"),
                                        "--retries", "6")
            server.set_faults(fail_rate=0, drop_every=0)
            assert status == 0, report
            results[id(server)] = _state(api, project)
        stats = faulty.stats()
        assert stats["failed"] + stats["dropped"] > 0
        assert results[id(clean)] == results[id(faulty)]
        assert len(results[id(faulty)]) == 3


def test_killed_mid_way_and_resumed(tmp_path: Path) -> None:
    bids_batch(tmp_path / "batch", subjects=("01", "02", "03", "04"), sessions=("v1", "v2"))
    with running_server(tmp_path / "data", latency_ms=40) as server:
        api = Api(server)
        api.put("/data/projects/KILL", params={"xsiType": "xnat:projectData"})
        env = {**os.environ, "XNAT_HOST": server.url, "XNAT_USER": server.user, "XNAT_PASS": server.password}
        command = [sys.executable, "-m", "xnatnode", "nifti-import", "--project", "KILL", "--source",
                   str(tmp_path / "batch"), "--workers", "2"]
        process = subprocess.Popen([*command, "--output", str(tmp_path / "o1")], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while Counter(server.stats()["routes"])[
                "PUT /data/projects/{project}/subjects/{subject}/experiments/{experiment}/scans/{scan}/resources/{resource}/files/{path:path}"] < 10:
            assert process.poll() is None, "the import finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        half = _state(api, "KILL")
        assert 0 < sum(len(f) for f in half.values()) < 88
        server.set_faults(latency_ms=0)
        resumed = subprocess.run([*command, "--output", str(tmp_path / "o2")], env=env, capture_output=True,
                                 text=True, timeout=300, check=False)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        report = json.loads((tmp_path / "o2" / "import-report.json").read_text())
        counts = Counter(f["outcome"] for f in report["files"])
        assert counts["imported"] + counts["skipped"] == 88
        assert counts["skipped"] > 0
        final = _state(api, "KILL")
        assert len(final) == 8
        assert sum(len(f) for f in final.values()) == 88  # nothing duplicated, nothing lost
        md5 = {f["source"].rsplit("/", 1)[1]: f["md5"] for f in report["files"] if f["md5"]}
        assert all(md5[name] == digest for files in final.values() for (_, _, name), digest in files.items())
        # the scans of each session are the same IDs a clean run gives
        assert set(final["01_v1_mr"]) == {
            ("1", "NIFTI", "sub-01_ses-v1_T1w.nii.gz"), ("1", "BIDS", "sub-01_ses-v1_T1w.json"),
            ("2", "NIFTI", "sub-01_ses-v1_task-rest_run-1_bold.nii.gz"),
            ("2", "BIDS", "sub-01_ses-v1_task-rest_run-1_bold.json"),
            ("2", "BIDS", "sub-01_ses-v1_task-rest_run-1_events.tsv"),
            ("3", "NIFTI", "sub-01_ses-v1_task-rest_run-2_bold.nii.gz"),
            ("3", "BIDS", "sub-01_ses-v1_task-rest_run-2_bold.json"),
            ("3", "BIDS", "sub-01_ses-v1_task-rest_run-2_events.tsv"),
            ("4", "NIFTI", "sub-01_ses-v1_dwi.nii.gz"), ("4", "BIDS", "sub-01_ses-v1_dwi.bval"),
            ("4", "BIDS", "sub-01_ses-v1_dwi.bvec")}
