"""Projects, subjects, experiments, scans: creation semantics, aliases, documents, deletes
(xnat-rest-spec §3-§6, §0.6, §12)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from xnatsim.testing import Api, Server

MR = {"xsiType": "xnat:mrSessionData"}


def test_project_put_needs_contents_then_creates_and_lists(api: Api) -> None:
    assert api.put("/data/projects/BARE_PUT").status_code == 417
    r = api.put("/data/archive/projects/PX_A", params={"xsiType": "xnat:projectData", "req_format": "qs",
                                                       "xnat:projectData/name": "Project A",
                                                       "description": "about A"})
    assert (r.status_code, r.text) == (200, "")
    row = next(r for r in api.get("/data/projects").json()["ResultSet"]["Result"] if r["ID"] == "PX_A")
    assert row == {"ID": "PX_A", "secondary_ID": "PX_A", "name": "Project A", "description": "about A",
                   "pi_firstname": "", "pi_lastname": "", "URI": "/data/projects/PX_A"}
    item = api.get("/REST/projects/PX_A", params={"format": "json"}).json()["items"][0]
    assert item["meta"]["xsi:type"] == "xnat:projectData"
    assert item["data_fields"]["name"] == "Project A"
    assert api.put("/data/projects/bad.id", params={"xsiType": "xnat:projectData"}).status_code == 417
    clash = api.put("/data/projects/PX_B", params={"xsiType": "xnat:projectData", "name": "Project A"})
    assert clash.status_code == 409
    assert api.get("/data/projects/NOPE_X").status_code == 404


def test_deleted_project_id_is_never_reused(api: Api) -> None:
    api.put("/data/projects/PX_DEL", params={"xsiType": "xnat:projectData"})
    api.put("/data/projects/PX_DEL/subjects/S1")
    assert api.delete("/data/projects/PX_DEL", params={"removeFiles": "true"}).status_code == 200
    assert api.get("/data/projects/PX_DEL").status_code == 404
    again = api.put("/data/projects/PX_DEL", params={"xsiType": "xnat:projectData"})
    assert again.status_code == 403
    assert "previously deleted" in again.text


def test_subject_put_201_then_200_with_id_and_fields(api: Api) -> None:
    p = api.new_project()
    r = api.put(f"/data/projects/{p}/subjects/S1", params={"gender": "female", "yob": "1980", "group": "ctl"})
    assert r.status_code == 201
    sid = r.text
    assert re.fullmatch(r"XNATSIM_S\d{5}", sid)
    again = api.put(f"/data/archive/projects/{p}/subjects/S1", params={
        "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/handedness": "left"})
    assert (again.status_code, again.text) == (200, sid)
    item = api.get(f"/data/projects/{p}/subjects/{sid}", params={"format": "json"}).json()["items"][0]
    assert item["data_fields"]["label"] == "S1"
    assert item["data_fields"]["group"] == "ctl"
    demo = next(c for c in item["children"] if c["field"] == "demographics")["items"][0]["data_fields"]
    assert demo == {"gender": "female", "yob": 1980, "handedness": "left"}
    rows = api.get(f"/data/projects/{p}/subjects", params={"columns": "ID,label,gender,yob"}).json()
    assert rows["ResultSet"]["Result"] == [{"ID": sid, "label": "S1", "gender": "female", "yob": "1980",
                                            "URI": f"/data/subjects/{sid}"}]
    assert api.put(f"/data/projects/{p}/subjects/S1", params={"gender": "robot"}).status_code == 400
    assert api.get(f"/data/subjects/{sid}", params={"format": "json"}).status_code == 200


def test_session_put_creates_subject_and_ids_are_never_reused(api: Api) -> None:
    p = api.new_project()
    r = api.put(f"/data/projects/{p}/subjects/NEWSUBJ/experiments/E1", params={**MR, "date": "01/02/2024"})
    assert r.status_code == 201
    eid = r.text
    subjects = api.get(f"/data/projects/{p}/subjects").json()["ResultSet"]["Result"]
    assert [s["label"] for s in subjects] == ["NEWSUBJ"]
    item = api.get(f"/data/experiments/{eid}", params={"format": "json"}).json()["items"][0]
    assert item["data_fields"]["date"] == "2024-01-02"
    assert item["data_fields"]["subject_ID"] == subjects[0]["ID"]
    assert item["meta"]["xsi:type"] == "xnat:mrSessionData"
    # same label in the project (even through another subject URL) is an update of the same experiment
    same = api.put(f"/data/projects/{p}/experiments/E1", params={"xnat:mrSessionData/note": "hello"})
    assert (same.status_code, same.text) == (200, eid)
    assert api.delete(f"/data/projects/{p}/experiments/E1", params={"removeFiles": "true"}).status_code == 200
    fresh = api.put(f"/data/projects/{p}/subjects/NEWSUBJ/experiments/E1", params=MR)
    assert fresh.status_code == 201
    assert fresh.text != eid
    assert int(fresh.text[-5:]) > int(eid[-5:])


def test_experiment_routes_and_errors(api: Api) -> None:
    p = api.new_project()
    assert api.put(f"/data/projects/{p}/subjects/S/experiments/E").status_code == 417
    assert api.put(f"/data/projects/{p}/subjects/S/experiments/E", params={"xsiType": "xnat:fooData"}).status_code == 400
    assert api.put(f"/data/projects/{p}/experiments/E", params=MR).status_code == 422
    created = api.put(f"/data/projects/{p}/experiments/PET1", params={"xsiType": "xnat:petSessionData",
                                                                     "subject_ID": "S9"})
    assert created.status_code == 201
    eid = created.text
    for path in (f"/data/projects/{p}/experiments/PET1", f"/data/archive/experiments/{eid}",
                 f"/data/projects/{p}/subjects/S9/experiments/PET1"):
        assert api.get(path, params={"format": "json"}).json()["items"][0]["data_fields"]["ID"] == eid
    assert api.get(f"/data/projects/{p}/experiments/NOPE").status_code == 404
    other = api.put(f"/data/projects/{p}/subjects/S9/experiments/CT1", params={"xsiType": "xnat:ctSessionData"})
    assert api.put(f"/data/experiments/{other.text}", params={"label": "PET1"}).status_code == 409
    assert api.put(f"/data/experiments/{other.text}", params={"label": "CT2"}).status_code == 200
    assert api.get(f"/data/projects/{p}/experiments/CT2", params={"format": "json"}).status_code == 200
    assert api.put(f"/data/experiments/{eid}", params={"xsiType": "xnat:ctSessionData"}).status_code == 409
    assert api.put(f"/data/experiments/{eid}", params={"date": "yesterday"}).status_code == 400
    for bad in ({"date": "2020-13-45"}, {"date": "02/30/2021"}, {"time": "25:61:00"}, {"time": "12:60"}):
        assert api.put(f"/data/experiments/{eid}", params=bad).status_code == 400, bad
    assert api.put(f"/data/experiments/{eid}", params={"date": "02/29/2024", "time": "23:59:59"}).status_code == 200
    fields = api.get(f"/data/experiments/{eid}", params={"format": "json"}).json()["items"][0]["data_fields"]
    assert (fields["date"], fields["time"]) == ("2024-02-29", "23:59:59")
    # a subject assessor that is not a session
    sv = api.put(f"/data/projects/{p}/subjects/S9/experiments/VARS", params={"xsiType": "xnat:subjectVariablesData"})
    assert sv.status_code == 201


def test_scans_put_get_list_delete(api: Api, xnatsim_server: Server) -> None:
    p = api.new_project()
    eid = api.put(f"/data/projects/{p}/subjects/S/experiments/MR1", params=MR).text
    base = f"/data/archive/projects/{p}/subjects/S/experiments/{eid}/scans"
    assert api.put(base + "/1").status_code == 417
    r = api.put(base + "/1", params={"xsiType": "xnat:mrScanData", "req_format": "qs", "xnat:mrScanData/type": "T1",
                                     "xnat:mrScanData/id": "1", "xnat:mrScanData/series_description": "t1 mprage",
                                     "xnat:mrScanData/parameters/tr": "2300"})
    assert (r.status_code, r.text) == (200, "")
    assert api.put(base + "/2", params={"xsiType": "xnat:mrScanData", "type": "DWI", "quality": "usable"}).text == ""
    assert api.put(base + "/10", params={"xsiType": "xnat:mrScanData", "type": "T2"}).status_code == 200
    assert api.put(base + "/1", params={"xsiType": "xnat:ctScanData"}).status_code == 409
    assert api.put(base + "/3", params={"xsiType": "xnat:mrSessionData"}).status_code == 400
    body = api.get(f"/data/experiments/{eid}/scans").json()["ResultSet"]
    assert body["totalRecords"] == "3"
    assert [row["ID"] for row in body["Result"]] == ["1", "2", "10"]
    first = body["Result"][0]
    assert set(first) == {"xnat_imagescandata_id", "ID", "type", "quality", "xsiType", "note", "series_description",
                          "URI"}
    assert first["URI"] == f"/data/experiments/{eid}/scans/1"
    assert first["series_description"] == "t1 mprage"
    item = api.get(base + "/1", params={"format": "json"}).json()["items"][0]
    assert item["data_fields"]["parameters/tr"] == 2300
    assert item["data_fields"]["type"] == "T1"
    assert api.get(f"/data/projects/{p}/experiments/{eid}/scans").status_code == 404  # no such XNAT route
    assert api.delete(base + "/2").status_code == 200
    assert api.get(base + "/2", params={"format": "json"}).status_code == 404


def test_xml_documents(api: Api) -> None:
    p = api.new_project()
    eid = api.put(f"/data/projects/{p}/subjects/S/experiments/MR1", params={**MR, "date": "2024-03-04"}).text
    api.put(f"/data/experiments/{eid}/scans/1", params={"xsiType": "xnat:mrScanData", "type": "T1"})
    r = api.get(f"/data/experiments/{eid}", params={"format": "xml"})
    assert r.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<xnat:MRSession')
    root = ET.fromstring(r.content)
    page = api.get(f"/data/experiments/{eid}")  # XNAT's default for one object is its web page
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.text.startswith("<!DOCTYPE")
    ns = {"xnat": "http://nrg.wustl.edu/xnat"}
    assert root.get("label") == "MR1"
    assert root.findtext("xnat:date", namespaces=ns) == "2024-03-04"
    assert root.find("xnat:scans/xnat:scan", ns).get("ID") == "1"  # type: ignore[union-attr]


@pytest.mark.parametrize("prefix", ["/data/", "/data/archive/", "/REST/"])
def test_aliases_reach_the_same_routes(api: Api, prefix: str) -> None:
    r = api.get(prefix + "projects", params={"format": "json"})
    assert r.status_code == 200
    assert "ResultSet" in r.json()


def test_image_assessors(api: Api) -> None:
    p = api.new_project()
    eid = api.put(f"/data/projects/{p}/subjects/S/experiments/MR1", params=MR).text
    r = api.put(f"/data/experiments/{eid}/assessors/MR1_QC", params={"xsiType": "xnat:qcAssessmentData"})
    assert r.status_code == 201
    aid = r.text
    rows = api.get(f"/data/experiments/{eid}/assessors").json()["ResultSet"]["Result"]
    assert [(row["ID"], row["xsiType"]) for row in rows] == [(aid, "xnat:qcAssessmentData")]
    listed = api.get(f"/data/projects/{p}/experiments").json()["ResultSet"]["Result"]
    assert [row["ID"] for row in listed] == [eid]  # project listings hold subject assessors only
    site = api.get("/data/experiments", params={"xsiType": "xnat:qcAssessmentData", "project": p}).json()
    assert site["ResultSet"]["Result"][0]["session_ID"] == eid
    item = api.get(f"/data/experiments/{eid}/assessors/{aid}", params={"format": "json"}).json()["items"][0]
    assert item["data_fields"]["imageSession_ID"] == eid
    recons = api.get(f"/data/experiments/{eid}/reconstructions").json()["ResultSet"]
    assert (recons["Result"], recons["totalRecords"]) == ([], "0")
    assert api.delete(f"/data/experiments/{eid}").status_code == 200
    assert api.get(f"/data/experiments/{aid}").status_code == 404


def test_project_settings_by_path(api: Api, xnatsim_server: Server) -> None:
    p = api.new_project("SET")
    assert api.get(f"/data/projects/{p}/prearchive_code").text == "4"  # XNAT's initArcProject default
    assert api.put(f"/data/projects/{p}/prearchive_code/0").status_code == 200
    assert api.get(f"/data/projects/{p}/prearchive_code").text == "0"
    assert api.put(f"/data/projects/{p}/prearchive_code/4").status_code == 200
    project = xnatsim_server.store.get_project(p)
    assert project is not None
    assert project.fields["prearchive_code"] == "4"
    assert api.put(f"/data/projects/{p}/prearchive_code/7").status_code == 400
    assert api.put(f"/data/projects/{p}/accessibility/public").status_code == 200
    assert api.get(f"/data/projects/{p}/accessibility").text == "public"


def test_renaming_a_session_moves_only_its_own_files(api: Api, xnatsim_server: Server) -> None:
    """Labels differing only in case or by ``_`` stay apart when one of them is renamed."""
    p = api.new_project("REN")
    for label in ("MR_1", "mr_1", "MRx1"):
        assert api.put(f"/data/projects/{p}/subjects/S/experiments/{label}", params=MR).status_code == 201
        assert api.put(f"/data/projects/{p}/subjects/S/experiments/{label}/resources/R/files/{label}.txt",
                       data=label.encode()).status_code == 200
    assert api.put(f"/data/projects/{p}/subjects/S/experiments/mr_1", params={"label": "renamed"}).status_code == 200
    archive = xnatsim_server.store.archive_dir / p / "arc001"
    for label, name in (("MR_1", "MR_1"), ("renamed", "mr_1"), ("MRx1", "MRx1")):
        r = api.get(f"/data/projects/{p}/subjects/S/experiments/{label}/resources/R/files/{name}.txt")
        assert (r.status_code, r.content) == (200, name.encode())
        assert (archive / label / "RESOURCES" / "R" / f"{name}.txt").read_bytes() == name.encode()
    assert not (archive / "mr_1").exists()
