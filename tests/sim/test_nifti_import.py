"""nifti-import against xnatsim with real NIfTI written by nibabel: BIDS and CSV batches, folder,
zip and resource sources, session context, dry run with curl lines, a re-run that writes nothing,
--overwrite, and the request bound (at most 3 per scan plus a constant per session)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from xnatnode.reports import page_problems
from xnatsim.testing import Api, Server

from tests.nifti_batches import bids_batch, run_import, write_image
from tests.zips import zip_folder

WRITES = ("PUT", "POST", "DELETE")


def outcomes(report: dict[str, Any]) -> Counter[str]:
    return Counter(f["outcome"] for f in report["files"])


def writes(server: Server) -> int:
    return sum(n for route, n in server.stats()["routes"].items() if route.split(" ")[0] in WRITES)


def scans_of(api: Api, project: str, label: str) -> dict[str, dict[str, Any]]:
    doc = api.get(f"/data/projects/{project}/experiments/{label}", params={"format": "json"}).json()
    (child,) = [c for c in doc["items"][0]["children"] if c["field"] == "scans/scan"]
    return {item["data_fields"]["ID"]: item for item in child["items"]}


def files_of(api: Api, project: str, label: str) -> dict[tuple[str, str, str], str]:
    eid = api.get(f"/data/projects/{project}/experiments/{label}", params={"format": "json"}).json()[
        "items"][0]["data_fields"]["ID"]
    rows = api.get(f"/data/experiments/{eid}/scans/ALL/files", params={"format": "json"}).json()["ResultSet"]["Result"]
    return {(r["URI"].split("/scans/")[1].split("/")[0], r["collection"], r["Name"]): r["digest"] for r in rows}


def test_bids_batch_imports_then_a_rerun_writes_nothing(env: Server, api: Api, tmp_path: Path) -> None:
    project = api.new_project("NI")
    bids_batch(tmp_path / "batch")
    env.reset_stats()
    status, report = run_import(tmp_path / "out1", project, "--source", str(tmp_path / "batch"))
    assert status == 0, report
    assert outcomes(report) == {"imported": 22, "ignored": 1}
    assert report["schema_version"] == "1.0"
    assert report["totals"]["imported"] == 22
    # request bound: per session 1 PUT + 1 verification; per scan <= 3 (scan, NIFTI zip, BIDS zip)
    routes = env.stats()["routes"]
    scans, sessions = 8, 2
    assert writes(env) <= 3 * scans + sessions
    assert sum(routes.values()) <= 3 * scans + 2 * sessions + 1
    listing = api.get(f"/data/projects/{project}/experiments", params={
        "format": "json", "columns": "ID,label,subject_label,xsiType"}).json()["ResultSet"]["Result"]
    assert {(r["label"], r["subject_label"], r["xsiType"]) for r in listing} == {
        ("01_v1_mr", "01", "xnat:mrSessionData"), ("02_v1_mr", "02", "xnat:mrSessionData")}
    scans_found = scans_of(api, project, "01_v1_mr")
    assert {k: v["data_fields"]["type"] for k, v in scans_found.items()} == {
        "1": "T1w", "2": "task-rest_run-1_bold", "3": "task-rest_run-2_bold", "4": "dwi"}
    t1 = scans_found["1"]["data_fields"]
    assert (t1["parameters/tr"], t1["parameters/te"], t1["parameters/ti"]) == (2300, 2.93, 900)
    assert t1["parameters/voxelRes/z"] == 2.0
    assert (t1["series_description"], t1["modality"], t1["frames"]) == ("MPRAGE 1mm", "MR", 1)
    assert scans_found["2"]["data_fields"]["series_description"] == "rest run 1"  # ProtocolName
    assert scans_found["4"]["data_fields"]["series_description"] == "sub-01_ses-v1_dwi"  # file stem
    params = {i["data_fields"]["name"]: i["data_fields"]["addField"] for c in scans_found["2"]["children"]
              if c["field"] == "parameters/addParam" for i in c["items"]}
    assert params["nifti_shape"] == "6x6x4x5"
    assert params["nifti_orientation"] == "RAS"
    stored = files_of(api, project, "01_v1_mr")
    by_source = {f["source"]: f for f in report["files"]}
    t1_row = by_source["sub-01/ses-v1/anat/sub-01_ses-v1_T1w.nii.gz"]
    assert stored[("1", "NIFTI", "sub-01_ses-v1_T1w.nii.gz")] == t1_row["md5"]
    assert ("4", "BIDS", "sub-01_ses-v1_dwi.bval") in stored
    assert ("2", "BIDS", "sub-01_ses-v1_task-rest_run-1_events.tsv") in stored
    assert len(stored) == 11
    out = tmp_path / "out1"
    assert {p.name for p in out.iterdir()} >= {"import-report.json", "import-report.csv", "import-report.html",
                                               "xnatnode-run.json"}
    assert (out / "import-report.csv").read_text().splitlines()[0] == \
        "source,outcome,reason,subject,session,scan,resource,bytes,md5"
    html = (out / "import-report.html").read_text()
    assert page_problems(html) == []
    assert "All 22 files are in XNAT" in html

    env.reset_stats()
    status, again = run_import(tmp_path / "out2", project, "--source", str(tmp_path / "batch"))
    assert status == 0
    assert outcomes(again) == {"skipped": 22, "ignored": 1}
    assert writes(env) == 0
    assert sum(env.stats()["routes"].values()) == 1 + 2 * sessions  # sessions; scans + files per session
    assert files_of(api, project, "01_v1_mr") == stored


def test_dry_run_prints_the_plan_and_curl_lines_and_writes_nothing(
        env: Server, api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = api.new_project("NID")
    bids_batch(tmp_path / "batch", subjects=("01",), sessions=(None,))
    env.reset_stats()
    status, report = run_import(tmp_path / "out", project, "--source", str(tmp_path / "batch"),
                                "--dry-run", "--curl")
    assert status == 0
    assert writes(env) == 0
    assert outcomes(report) == {"create": 11, "ignore": 1}
    printed = capsys.readouterr().out
    assert "# create   sub-01/anat/sub-01_T1w.nii.gz -> 01/01_mr scan 1 NIFTI" in printed
    curls = [line for line in printed.splitlines() if line.startswith("curl ")]
    assert len(curls) == 1 + 4 + 11  # session, scans, files
    assert all('-u "$XNAT_USER:$XNAT_PASS"' in line for line in curls)
    assert env.password not in printed
    assert f"@{tmp_path / 'batch'}/sub-01/anat/sub-01_T1w.nii.gz" in printed
    assert api.get(f"/data/projects/{project}/experiments", params={"format": "json"}).json()[
        "ResultSet"]["Result"] == []


def test_zip_with_csv_mapping(env: Server, api: Api, tmp_path: Path) -> None:
    project = api.new_project("NIC")
    folder = tmp_path / "legacy"
    write_image(folder / "pat1" / "t1.nii.gz")
    write_image(folder / "pat1" / "fmri.nii", (4, 4, 4, 3))
    (folder / "pat1" / "fmri.json").write_text(json.dumps({"RepetitionTime": 1.5}))
    write_image(folder / "pat2" / "scans" / "a.nii.gz", seed=3)
    write_image(folder / "pat2" / "scans" / "b.nii.gz", seed=4)
    write_image(folder / "pat3" / "pet.nii.gz", seed=5)
    (folder / "notes.txt").write_text("not mapped")
    mapping = ("\ufeffsource;subject;session;scan;scan_type;series_description;modality;date\r\n"
               "pat1/t1.nii.gz;P001;P001_base_mr;11;T1;Sagittal T1;MR;2021-03-04\r\n"
               "pat1/fmri.nii;P001;P001_base_mr;12;rest;;MR;2021-03-04\r\n"
               "pat2/scans;P002;P002_base_mr;;;;;20210305\r\n"
               "pat3/pet.nii.gz;P003;P003_base_pet;1;FDG;;PT;\r\n"
               "pat9/missing.nii;P009;P009_x;;;;;\r\n")
    (folder / "map.csv").write_text(mapping, encoding="utf-8")
    batch = zip_folder(folder, tmp_path / "batch.zip")
    status, report = run_import(tmp_path / "out", project, "--source", str(batch), "--mapping", "map.csv")
    assert status == 6  # the row naming a missing file
    by_source = {f["source"]: f for f in report["files"]}
    assert by_source["pat9/missing.nii"]["outcome"] == "rejected"
    assert "no such file or folder" in by_source["pat9/missing.nii"]["reason"]
    assert by_source["notes.txt"]["outcome"] == "ignored"
    assert "map.csv" not in by_source
    assert {by_source[p]["scan"] for p in ("pat1/t1.nii.gz", "pat1/fmri.nii")} == {"11", "12"}
    assert by_source["pat1/fmri.json"]["resource"] == "BIDS"
    base = scans_of(api, project, "P001_base_mr")
    assert base["11"]["data_fields"]["type"] == "T1"
    assert base["11"]["data_fields"]["series_description"] == "Sagittal T1"
    assert base["12"]["data_fields"]["parameters/tr"] == 1500
    session = api.get(f"/data/projects/{project}/experiments/P001_base_mr", params={"format": "json"}).json()
    assert session["items"][0]["data_fields"]["date"] == "2021-03-04"
    assert {v["data_fields"]["type"] for v in scans_of(api, project, "P002_base_mr").values()} == {"a", "b"}
    pet = api.get(f"/data/projects/{project}/experiments/P003_base_pet", params={"format": "json"}).json()
    assert pet["items"][0]["meta"]["xsi:type"] == "xnat:petSessionData"
    assert scans_of(api, project, "P003_base_pet")["1"]["data_fields"]["modality"] == "PT"


def test_session_context_and_resource_source(env: Server, api: Api, tmp_path: Path) -> None:
    project = api.new_project("NIS")
    session_url = f"/data/projects/{project}/subjects/SUBJ/experiments/SUBJ_mr"
    assert api.put(session_url, params={"xsiType": "xnat:mrSessionData"}).status_code == 201
    assert api.put(session_url + "/scans/1", params={"xsiType": "xnat:mrScanData", "type": "DICOM T1"}).status_code == 200
    folder = tmp_path / "upload"
    write_image(folder / "T2 axial.nii.gz")
    write_image(folder / "deep" / "flair.nii", seed=2)
    zipped = zip_folder(folder, tmp_path / "upload.zip")
    r = api.put(session_url + "/resources/NIFTI_UPLOAD/files/upload.zip", params={"extract": "true"},
                data=zipped.read_bytes())
    assert r.status_code == 200
    status, report = run_import(tmp_path / "out", project, "--session", "SUBJ_mr", "--resource", "NIFTI_UPLOAD")
    assert status == 0, report
    assert outcomes(report) == {"imported": 2}
    scans = scans_of(api, project, "SUBJ_mr")
    assert {k: v["data_fields"]["type"] for k, v in scans.items()} == {"1": "DICOM T1", "2": "T2 axial", "3": "flair"}
    status, again = run_import(tmp_path / "out2", project, "--session", "SUBJ_mr", "--resource", "NIFTI_UPLOAD")
    assert (status, outcomes(again)) == (0, {"skipped": 2})


def test_project_resource_source_and_overwrite(env: Server, api: Api, tmp_path: Path) -> None:
    project = api.new_project("NIO")
    bids_batch(tmp_path / "batch", subjects=("01",), sessions=(None,), gz=False)
    zipped = zip_folder(tmp_path / "batch", tmp_path / "batch.zip")
    api.put(f"/data/projects/{project}/resources/NIFTI_UPLOAD/files/batch.zip", params={"extract": "true"},
            data=zipped.read_bytes())
    status, report = run_import(tmp_path / "out", project, "--resource", "NIFTI_UPLOAD")
    assert (status, outcomes(report)) == (0, {"imported": 11, "ignored": 1})
    # the same name with other content: a conflict, unless --overwrite
    write_image(tmp_path / "batch" / "sub-01" / "anat" / "sub-01_T1w.nii", seed=42)
    status, report = run_import(tmp_path / "out2", project, "--source", str(tmp_path / "batch"))
    assert status == 6
    assert outcomes(report) == {"conflict": 1, "skipped": 10, "ignored": 1}
    before = files_of(api, project, "01_mr")
    status, report = run_import(tmp_path / "out3", project, "--source", str(tmp_path / "batch"), "--overwrite")
    assert (status, outcomes(report)) == (0, {"imported": 1, "skipped": 10, "ignored": 1})
    after = files_of(api, project, "01_mr")
    assert after[("1", "NIFTI", "sub-01_T1w.nii")] != before[("1", "NIFTI", "sub-01_T1w.nii")]
    assert len(after) == len(before)
