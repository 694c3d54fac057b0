"""xnatsim's DICOM C-STORE receiver: routing, idle-time building, archiving, conflicts, settings.

Senders: pynetdicom (for per-object statuses) and clients nobody here wrote: pynetdicom's own
``storescu`` app and dcmtk's ``storescu`` (skipped when dcmtk is not installed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from xnatsim.testing import Api, Server

from tests.dicom_receiver import receiver_fixtures
from xnatsim import synth

IDLE = 0.6
server, api, port = receiver_fixtures(IDLE, "scp")


def write_session(folder: Path, labels: synth.DicomLabels, series: dict[str, int],
                  edit: Callable[[Any], None] | None = None) -> list[Path]:
    """Files for ``{scan id: count}`` of ``labels``'s session (``edit`` changes each dataset)."""
    import io

    import pydicom

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for scan_id, count in series.items():
        for k in range(1, count + 1):
            data = synth.dicom_bytes(replace(labels, scan_id=scan_id, series_description=f"S{scan_id}", instance=k))
            path = folder / f"{labels.session}-{scan_id}-{k}.dcm"
            if edit is None:
                path.write_bytes(data)
            else:
                ds = pydicom.dcmread(io.BytesIO(data))
                edit(ds)
                ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def send(port: int, paths: list[Path], *, called: str = "XNAT") -> list[int]:
    """C-STORE each file over one association; the DIMSE status of each (-1 = none)."""
    import pydicom
    from pynetdicom import AE

    datasets = [pydicom.dcmread(p) for p in paths]
    ae = AE(ae_title="TESTSCU")
    ae.dimse_timeout = 30  # a generous bound: a loaded machine answers late, not never
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established
    out = []
    for ds in datasets:
        if not assoc.is_established:  # the receiver dropped the association
            out.append(-1)
            continue
        status = assoc.send_c_store(ds)
        out.append(int(status.Status) if status else -1)
    if assoc.is_established:
        assoc.release()
    return out


def wait_for(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def prearchive_rows(api: Api, project: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = api.get(f"/data/prearchive/projects/{project}").json()["ResultSet"]["Result"]
    return rows


def scans(server: Server, project: str, session: str) -> dict[str, str] | None:
    exp = server.store.get_experiment(session, project)
    if exp is None:
        return None
    return {s.id: s.fields.get("frames", "") for s in server.store.list_scans(exp.id)}


def test_routes_by_comments_builds_after_idle_and_auto_archives(server: Server, api: Api, port: int,
                                                                 tmp_path: Path) -> None:
    project = api.new_project("SCP")  # a new project has prearchive code 4: auto-archive
    labels = synth.DicomLabels(project, "S1", "S1_MR1", "1", "", "MR", "2024-01-02")
    paths = write_session(tmp_path, labels, {"1": 3, "2": 2})
    assert send(port, paths) == [0] * 5
    # receiving until idle; on a slow machine the builder may already have made it READY (and be
    # archiving it) or have archived it
    rows = prearchive_rows(api, project)
    assert {(r["name"], r["status"]) for r in rows} <= {("S1_MR1", "RECEIVING"), ("S1_MR1", "READY")}
    # a loaded machine may pause longer than IDLE between two objects: the session is then built and
    # archived in parts, the later ones appended (prearchive code 4), so wait for the whole of it
    wait_for(lambda: scans(server, project, "S1_MR1") == {"1": "3", "2": "2"})
    wait_for(lambda: prearchive_rows(api, project) == [])  # the entry goes once the session is archived
    exp = server.store.get_experiment("S1_MR1", project)
    assert exp is not None
    assert exp.subject_label == "S1"
    assert exp.fields["UID"] == synth.uid(project, "S1_MR1")


def test_manual_project_keeps_session_in_prearchive_and_unknown_project_is_unassigned(
        server: Server, api: Api, port: int, tmp_path: Path) -> None:
    project = api.new_project("MAN")
    assert api.put(f"/data/projects/{project}/prearchive_code/0").status_code == 200
    send(port, write_session(tmp_path / "a", synth.DicomLabels(project, "M1", "M1_MR1", "1", ""), {"1": 2}))
    send(port, write_session(tmp_path / "b", synth.DicomLabels("NOSUCHPROJ", "U1", "U1_MR1", "1", ""), {"1": 1}))
    row = wait_for(lambda: [r for r in prearchive_rows(api, project) if r["status"] == "READY"])[0]
    assert (row["name"], row["subject"], row["SOURCE"]) == ("M1_MR1", "M1", "TESTSCU")
    assert scans(server, project, "M1_MR1") is None
    unassigned = wait_for(lambda: [r for r in prearchive_rows(api, "Unassigned") if r["name"] == "U1_MR1"
                                   and r["status"] == "READY"])
    assert unassigned[0]["project"] == "Unassigned"
    archived = api.post("/data/services/archive", params={"src": row["url"]})
    assert archived.status_code == 200, archived.text
    assert scans(server, project, "M1_MR1") == {"1": "2"}


def test_routing_order_and_label_cleaning(server: Server, api: Api, port: int, tmp_path: Path) -> None:
    project = api.new_project("ORD")

    def no_comments(ds: Any) -> None:
        del ds.PatientComments
        ds.StudyDescription = project
        ds.PatientName = "Doe^Jane"
        ds.PatientID = "ID 7.1"

    send(port, write_session(tmp_path / "a", synth.DicomLabels("X", "X", "ORD_A", "1", ""), {"1": 1}, no_comments))
    assert wait_for(lambda: scans(server, project, "ID_7_1")) == {"1": "1"}
    assert server.store.get_experiment("ID_7_1", project).subject_label == "Doe_Jane"  # type: ignore[union-attr]

    def study_comments(ds: Any) -> None:  # an unknown project in PatientComments falls through
        ds.PatientComments = "Project:NOPE Subject:CS1 Session:CS1_MR1"
        ds.StudyComments = f"project: {project}; AA:true"
        ds.StudyDescription = "not a project"

    send(port, write_session(tmp_path / "b", synth.DicomLabels("X", "X", "ORD_B", "1", ""), {"1": 1}, study_comments))
    assert wait_for(lambda: scans(server, project, "CS1_MR1")) == {"1": "1"}


def test_site_project_rules_come_first(server: Server, api: Api, port: int, tmp_path: Path) -> None:
    project = api.new_project("RUL")
    rule = "(0008,0080):SITE-(\\w+)"
    assert api.put("/data/config/dicom/projectRules", params={"inbody": "true"}, data=rule).status_code in (200, 201)
    server.app.state["dicomscp"].invalidate_rules()  # type: ignore[union-attr]  # XNAT caches rules a few seconds
    try:
        def institution(ds: Any) -> None:
            ds.InstitutionName = f"SITE-{project}"

        send(port, write_session(tmp_path, synth.DicomLabels("NOPE", "R1", "R1_MR1", "1", ""), {"1": 1}, institution))
        assert wait_for(lambda: scans(server, project, "R1_MR1")) == {"1": "1"}
    finally:
        api.put("/data/config/dicom/projectRules", params={"inbody": "true"}, data="")
        server.app.state["dicomscp"].invalidate_rules()  # type: ignore[union-attr]


def test_conflict_with_another_uid_stays_in_prearchive_with_xnats_reason(server: Server, api: Api, port: int,
                                                                         tmp_path: Path) -> None:
    project = api.new_project("CON")
    labels = synth.DicomLabels(project, "C1", "C1_MR1", "1", "", "MR")
    send(port, write_session(tmp_path / "a", labels, {"1": 1}))
    wait_for(lambda: scans(server, project, "C1_MR1"))

    def other_study(ds: Any) -> None:
        ds.StudyInstanceUID = synth.uid("another", "study")

    send(port, write_session(tmp_path / "b", labels, {"2": 1}, other_study))
    row = wait_for(lambda: [r for r in prearchive_rows(api, project) if r["status"] == "CONFLICT"])[0]
    reason = api.get("/data" + row["url"] + "/logs/last").text
    assert reason == "Invalid modification of session UID via archive process."
    assert scans(server, project, "C1_MR1") == {"1": "1"}


def test_resending_the_same_objects_changes_nothing(server: Server, api: Api, port: int, tmp_path: Path) -> None:
    project = api.new_project("RES")
    paths = write_session(tmp_path, synth.DicomLabels(project, "R", "R_MR1", "1", ""), {"1": 2, "2": 1})
    send(port, paths[:2])
    wait_for(lambda: scans(server, project, "R_MR1"))
    send(port, paths)  # the first two again, plus the missing one: merged (prearchive code 4 = append)
    assert wait_for(lambda: scans(server, project, "R_MR1") == {"1": "2", "2": "1"})


def test_refused_objects_and_dropped_associations(server: Server, api: Api, port: int, tmp_path: Path) -> None:
    project = api.new_project("BAD")

    def no_study_uid(ds: Any) -> None:
        del ds.StudyInstanceUID

    bad = write_session(tmp_path / "bad", synth.DicomLabels(project, "B", "B_MR1", "1", ""), {"1": 1}, no_study_uid)
    assert send(port, bad) == [0xC000]
    good = write_session(tmp_path / "good", synth.DicomLabels(project, "G", "G_MR1", "1", ""), {"1": 4})
    assert api.post("/xnatsim/dicomscp/faults", json={"refuse_every": 2}).status_code == 200
    try:
        statuses = send(port, good)
    finally:
        api.post("/xnatsim/dicomscp/faults", json={"refuse_every": 0})
    assert sorted(statuses) == [0, 0, 0xA700, 0xA700]
    assert api.post("/xnatsim/dicomscp/faults", json={"abort_after": 1}).status_code == 200
    try:
        dropped = send(port, good)
    finally:
        api.post("/xnatsim/dicomscp/faults", json={"abort_after": 0})
    assert dropped[0] == 0
    assert -1 in dropped[1:]
    assert wait_for(lambda: scans(server, project, "G_MR1"))
    # every association above has ended, and with it its count of objects (kept per association
    # for abort_after): a long-running receiver keeps none of them
    assert server.app is not None
    assert wait_for(lambda: not server.app.state["dicomscp"]._counts, timeout=10)  # type: ignore[union-attr]


def test_unknown_called_ae_is_rejected(port: int, tmp_path: Path) -> None:
    from pynetdicom import AE

    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="NOTXNAT")
    assert assoc.is_rejected


def test_settings_api(server: Server, api: Api, port: int, tmp_path: Path) -> None:
    created = api.post("/xapi/dicomscp", json={"aeTitle": "DA", "port": 0, "directArchive": True})
    assert created.status_code == 200, created.text
    second = created.json()
    assert second["port"] > 0
    assert second["anonymizationEnabled"] is True
    assert api.get(f"/xapi/dicomscp/title/DA/{second['port']}").json()["id"] == second["id"]
    assert api.get("/xapi/dicomscp/identifiers").json()
    duplicate = api.post("/xapi/dicomscp", json={"aeTitle": "DA", "port": second["port"]})
    assert duplicate.status_code == 400
    assert api.post("/xapi/dicomscp", json={"aeTitle": "", "port": 1}).status_code == 400
    # a direct-archive receiver archives even for a manual project
    project = api.new_project("DIR")
    api.put(f"/data/projects/{project}/prearchive_code/0")
    assert send(second["port"], write_session(tmp_path, synth.DicomLabels(project, "D", "D_MR1", "1", ""),
                                              {"1": 2}), called="DA") == [0, 0]
    assert prearchive_rows(api, project) == []  # direct-archive sessions are not listed
    assert wait_for(lambda: scans(server, project, "D_MR1")) == {"1": "2"}
    assert api.put(f"/xapi/dicomscp/{second['id']}/enabled/false").json()["enabled"] is False
    assert api.get(f"/xapi/dicomscp/{second['id']}/enabled").json() is False
    assert api.delete(f"/xapi/dicomscp/{second['id']}").status_code == 200
    assert api.get(f"/xapi/dicomscp/{second['id']}").status_code == 404
    server.store.add_user("scpuser", "pw") if not server.store.user_exists("scpuser") else None
    import requests

    forbidden = requests.post(server.url + "/xapi/dicomscp", json={"aeTitle": "X", "port": 0}, auth=("scpuser", "pw"),
                              timeout=30)
    assert forbidden.status_code == 403


def test_third_party_senders(server: Server, api: Api, port: int, tmp_path: Path) -> None:
    """pynetdicom's storescu app and dcmtk's storescu send folders; sessions land where XNAT puts them."""
    project = api.new_project("TP")
    folder = tmp_path / "pynetdicom"
    write_session(folder / "deep", synth.DicomLabels(project, "P1", "P1_MR1", "1", ""), {"1": 3, "4": 2})
    subprocess.run([sys.executable, "-m", "pynetdicom", "storescu", "127.0.0.1", str(port), str(folder), "-r",
                    "-aec", "XNAT", "-aet", "PYNETDICOM", "-cx"], check=True, capture_output=True, timeout=120)
    assert wait_for(lambda: scans(server, project, "P1_MR1")) == {"1": "3", "4": "2"}
    if shutil.which("storescu") is None:
        pytest.skip("dcmtk's storescu is not installed (apt-get install dcmtk)")
    folder = tmp_path / "dcmtk"
    write_session(folder / "deep", synth.DicomLabels(project, "D1", "D1_CT1", "1", "", "CT"), {"2": 4})
    done = subprocess.run(["storescu", "-aet", "DCMTK", "-aec", "XNAT", "+sd", "+r", "127.0.0.1", str(port),
                           str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: scans(server, project, "D1_CT1")) == {"2": "4"}
    exp = server.store.get_experiment("D1_CT1", project)
    assert exp is not None
    assert exp.xsi_type == "xnat:ctSessionData"
