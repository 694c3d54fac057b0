"""``POST /data/search`` with xdat:bundle documents (xnat-rest-spec §9) and xnatpy's query()."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from xnatsim.testing import Api, Server

XDAT = 'xmlns:xdat="http://nrg.wustl.edu/security"'


def bundle(root: str, fields: list[tuple[str, str]], where: str = "") -> str:
    parts = [f"<xdat:bundle {XDAT}><xdat:root_element_name>{root}</xdat:root_element_name>"]
    for i, (element, field_id) in enumerate(fields):
        parts.append(f"<xdat:search_field><xdat:element_name>{element}</xdat:element_name><xdat:field_ID>{field_id}"
                     f"</xdat:field_ID><xdat:sequence>{i}</xdat:sequence><xdat:type>string</xdat:type>"
                     "<xdat:header>h</xdat:header></xdat:search_field>")
    parts.append(f'<xdat:search_where method="AND">{where}</xdat:search_where></xdat:bundle>')
    return "".join(parts)


def criteria(field: str, op: str, value: str) -> str:
    return (f'<xdat:criteria override_value_formatting="0"><xdat:schema_field>{field}</xdat:schema_field>'
            f"<xdat:comparison_type>{op}</xdat:comparison_type><xdat:value>{value}</xdat:value></xdat:criteria>")


@pytest.fixture(scope="module")
def project(api: Api) -> str:
    p = api.new_project("SRCH")
    for i, gender in enumerate(("female", "male", "female")):
        api.put(f"/data/projects/{p}/subjects/S{i}", params={"gender": gender})
        eid = api.put(f"/data/projects/{p}/subjects/S{i}/experiments/S{i}_MR",
                      params={"xsiType": "xnat:mrSessionData", "date": f"2024-02-0{i + 1}"}).text
        for n in range(1, i + 1):
            api.put(f"/data/experiments/{eid}/scans/{n}", params={"xsiType": "xnat:mrScanData", "type": f"T{n}"})
    return p


def test_xpath_fields_and_criteria_as_xnatpy_sends_them(api: Api, project: str) -> None:
    doc = bundle("xnat:mrSessionData", [("xnat:mrSessionData", "xnat:mrSessionData/ID"),
                                        ("xnat:mrSessionData", "xnat:mrSessionData/project"),
                                        ("xnat:mrSessionData", "xnat:mrSessionData/subject_ID")],
                 criteria("xnat:mrSessionData/project", "=", project)
                 + criteria("xnat:mrSessionData/label", "LIKE", "%1_MR"))
    r = api.post("/data/search", params={"format": "csv"}, data=doc)
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 1
    assert set(rows[0]) == {"session_id", "project", "subject_id"}
    assert rows[0]["project"] == project


def test_display_fields_other_elements_and_child_sets(api: Api, project: str) -> None:
    where = (criteria("xnat:mrSessionData/project", "=", project)
             + '<xdat:child_set method="OR">' + criteria("xnat:subjectData/label", "=", "S0")
             + criteria("xnat:subjectData/label", "=", "S2") + "</xdat:child_set>")
    doc = bundle("xnat:mrSessionData", [("xnat:mrSessionData", "LABEL"), ("xnat:subjectData", "GENDER_TEXT"),
                                        ("xnat:mrScanData", "xnat:mrScanData/type")], where)
    body = api.post("/data/search", params={"format": "json"}, data=doc).json()["ResultSet"]
    assert [c["key"] for c in body["Columns"]] == ["label", "xnat_subjectdata_gender_text", "xnat_mrscandata_type"]
    found = [(r["label"], r["xnat_subjectdata_gender_text"], r["xnat_mrscandata_type"]) for r in body["Result"]]
    assert found == [("S0_MR", "female", ""), ("S2_MR", "female", "T1"), ("S2_MR", "female", "T2")]
    assert body["totalRecords"] == "3"


def test_recorded_bundle_runs(api: Api, project: str, reference_dir: Path) -> None:
    doc = (reference_dir / "xnat-fixtures/xnat-rest-tests/search/mrsession_search.xml").read_bytes()
    body = api.post("/data/search", params={"format": "json"}, data=doc).json()["ResultSet"]
    assert "label" in {c["key"] for c in body["Columns"]}
    assert {f"S{i}_MR" for i in range(3)} <= {r["label"] for r in body["Result"]}


def test_bad_bundles(api: Api) -> None:
    assert api.post("/data/search", data=b"<not xml").status_code == 400
    assert api.post("/data/search", data=bundle("xnat:nothingData", [])).status_code == 400
    bad = bundle("xnat:mrSessionData", [], criteria("xnat:mrSessionData/label", "~~", "x"))
    assert api.post("/data/search", data=bad).status_code == 400


def test_xnatpy_query(xnatsim_server: Server, project: str) -> None:
    xnat = pytest.importorskip("xnat")
    schemas = xnatsim_server.app.state["schemas"] if xnatsim_server.app else None
    if schemas is None or not {"xnat", "xdat"} <= schemas.real:
        pytest.skip("XNAT's schemas are not cached (offline)")
    with xnat.connect(xnatsim_server.url, user="admin", password="admin", loglevel="ERROR") as session:
        mr = session.classes.MrSessionData
        found = mr.query().filter(mr.label == "S1_MR").filter(mr.project == project).all()
        assert [e.label for e in found] == ["S1_MR"]
        subject = session.classes.SubjectData
        assert [s.label for s in subject.query().filter(subject.label == "S2").all() if s.project == project] == ["S2"]
