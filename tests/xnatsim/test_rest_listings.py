"""Listings: ResultSet shape, columns=, xsiType and field filters, limit/offset, scan xpath rows
(xnat-rest-spec §0.2, §5.1)."""

from __future__ import annotations

import json

import pytest
from xnatsim.testing import Api

SCAN_COLUMNS = ("ID,label,subject_label,xnat:mrSessionData/subject_id,xnat:mrScanData/ID,xnat:mrScanData/type,"
                "xnat:mrScanData/series_description,xnat:mrScanData/quality")


@pytest.fixture(scope="module")
def project(api: Api) -> str:
    p = api.new_project("LST")
    for s in range(3):
        for kind, xsi in (("MR", "xnat:mrSessionData"), ("PET", "xnat:petSessionData")):
            label = f"S{s}_{kind}"
            eid = api.put(f"/data/projects/{p}/subjects/S{s}/experiments/{label}",
                          params={"xsiType": xsi, "date": f"2024-01-0{s + 1}"}).text
            if kind == "MR" and s < 2:
                for n in range(1, 4):
                    api.put(f"/data/experiments/{eid}/scans/{n}", params={
                        "xsiType": "xnat:mrScanData", "type": f"T{n}", "series_description": f"series {n}",
                        "quality": "usable" if n != 2 else "unusable"})
            if kind == "PET":
                api.put(f"/data/experiments/{eid}/scans/1", params={"xsiType": "xnat:petScanData", "type": "PET"})
    return p


def rows(api: Api, path: str, **params: str) -> list[dict[str, str]]:
    response = api.get(path, params={"format": "json", **params})
    assert response.status_code == 200, response.text
    result: list[dict[str, str]] = response.json()["ResultSet"]["Result"]
    return result


def test_resultset_bytes_and_string_values(api: Api, project: str) -> None:
    raw = api.get(f"/data/projects/{project}/experiments", params={"format": "json"}).text
    assert raw.startswith('{"ResultSet":{"Result":[{')
    assert raw.endswith('}], "totalRecords": "6"}}')
    body = json.loads(raw)["ResultSet"]
    assert body["totalRecords"] == "6"
    for row in body["Result"]:
        assert set(row) == {"ID", "project", "date", "xsiType", "label", "insert_date", "URI"}
        assert all(isinstance(v, str) for v in row.values())
        assert row["URI"] == f"/data/experiments/{row['ID']}"
    site = api.get("/data/experiments", params={"format": "json", "project": project}).text
    assert site.endswith(', "totalRecords": "6","title": "Matching experiments"}}')


def test_columns_and_filters(api: Api, project: str) -> None:
    found = rows(api, "/data/experiments", project=project, xsiType="xnat:mrSessionData",
                 columns="ID,label,subject_label,date")
    assert [r["label"] for r in found] == ["S0_MR", "S1_MR", "S2_MR"]
    assert list(found[0]) == ["ID", "label", "subject_label", "date", "URI"]
    assert [r["label"] for r in rows(api, f"/data/projects/{project}/experiments", label="S1_*")] == ["S1_MR", "S1_PET"]
    assert [r["label"] for r in rows(api, f"/data/projects/{project}/experiments", label="S0_MR,S2_PET")] == [
        "S0_MR", "S2_PET"]
    assert [r["date"] for r in rows(api, f"/data/projects/{project}/experiments", date="01/02/2024",
                                    columns="date")] == ["2024-01-02", "2024-01-02"]
    ranged = rows(api, f"/data/projects/{project}/experiments", date="01/01/2024-01/02/2024")
    assert len(ranged) == 4
    assert rows(api, f"/data/projects/{project}/experiments", columns="nonsense,label")[0].keys() == {
        "ID", "label", "URI"}
    assert api.get("/data/experiments", params={"xsiType": "xnat:noSuchData"}).status_code == 400
    by_subject = rows(api, f"/data/projects/{project}/subjects/S0/experiments", columns="ID,label,xsiType")
    assert sorted(r["xsiType"] for r in by_subject) == ["xnat:mrSessionData", "xnat:petSessionData"]


def test_limit_offset_and_sort(api: Api, project: str) -> None:
    all_rows = rows(api, f"/data/projects/{project}/experiments", columns="label", sortBy="label")
    assert [r["label"] for r in all_rows] == sorted(r["label"] for r in all_rows)
    page = rows(api, f"/data/projects/{project}/experiments", columns="label", sortBy="label", limit="2", offset="2")
    assert page == all_rows[2:4]
    desc = rows(api, f"/data/projects/{project}/experiments", columns="label", sortBy="label", sortOrder="DESC")
    assert desc == all_rows[::-1]
    assert api.get(f"/data/projects/{project}/experiments", params={"limit": "x"}).status_code == 400
    huge = "9" * 30  # beyond SQLite's integers: all rows, or none past the end
    assert rows(api, f"/data/projects/{project}/experiments", columns="label", sortBy="label", limit=huge) == all_rows
    assert rows(api, f"/data/projects/{project}/experiments", columns="label", offset=huge) == []


def test_scan_xpath_columns_give_one_row_per_scan(api: Api, project: str) -> None:
    found = rows(api, "/data/experiments", project=project, xsiType="xnat:mrSessionData", columns=SCAN_COLUMNS)
    keys = {"ID", "label", "subject_label", "xnat:mrsessiondata/subject_id", "xnat:mrscandata/id",
            "xnat:mrscandata/type", "xnat:mrscandata/series_description", "xnat:mrscandata/quality", "URI"}
    assert all(set(r) == keys for r in found)
    pairs = [(r["label"], r["xnat:mrscandata/id"], r["xnat:mrscandata/type"]) for r in found]
    assert pairs == [("S0_MR", "1", "T1"), ("S0_MR", "2", "T2"), ("S0_MR", "3", "T3"),
                     ("S1_MR", "1", "T1"), ("S1_MR", "2", "T2"), ("S1_MR", "3", "T3"),
                     ("S2_MR", "", "")]  # a session without scans appears once, with empty scan columns
    assert found[1]["xnat:mrscandata/quality"] == "unusable"
    same = rows(api, f"/data/projects/{project}/experiments", xsiType="xnat:mrSessionData", columns=SCAN_COLUMNS)
    assert same == found
    # a scan-type filter joins only that type: PET scans are not MR scans
    pet = rows(api, "/data/experiments", project=project, columns="ID,label,xnat:mrScanData/ID",
               xsiType="xnat:petSessionData")
    assert {r["xnat:mrscandata/id"] for r in pet} == {""}
    generic = rows(api, "/data/experiments", project=project, columns="label,xnat:imageScanData/type",
                   xsiType="xnat:petSessionData")
    assert {r["xnat:imagescandata/type"] for r in generic} == {"PET"}
    unusable = rows(api, "/data/experiments", project=project, columns="label,xnat:mrScanData/ID",
                    **{"xnat:mrScanData/quality": "unusable"})
    assert [(r["label"], r["xnat:mrscandata/id"]) for r in unusable] == [("S0_MR", "2"), ("S1_MR", "2")]


def test_xml_and_csv_tables(api: Api, project: str) -> None:
    xml = api.get(f"/data/projects/{project}/experiments", params={"format": "xml", "columns": "label"}).text
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<ResultSet totalRecords="6"')
    csv_text = api.get(f"/data/projects/{project}/experiments", params={"format": "csv", "columns": "label"}).text
    lines = csv_text.strip().splitlines()
    assert lines[0] == "ID,label,URI"
    assert len(lines) == 7


def test_site_listings(api: Api, project: str) -> None:
    subjects = rows(api, "/data/archive/subjects", columns="ID,URI,label")
    assert {"S0", "S1", "S2"} <= {r["label"] for r in subjects}
    projects = rows(api, "/data/archive/projects", columns="ID,URI,name")
    assert project in {r["ID"] for r in projects}
    assert api.get("/data/projects/NOPE/experiments").status_code == 404
