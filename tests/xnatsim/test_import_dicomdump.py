"""The DICOM dump service over the demo project: XNAT's row shape, src forms, fields and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from xnatsim.dicomhdr import COLUMNS
from xnatsim.testing import Server, running_server

DUMP = "/data/services/dicomdump"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("dump"), seed="demo", fetch_schemas=False) as srv:
        yield srv


def dump(server: Server, **params: Any) -> requests.Response:
    return requests.get(server.url + DUMP, params=params, auth=(server.user, server.password), timeout=30)


def values(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {r["tag1"]: r["value"] for r in response.json()["ResultSet"]["Result"] if not r["tag2"]}


def test_scan_dump_shape_and_values(server: Server) -> None:
    response = dump(server, src="/archive/projects/DEMO/experiments/DEMO_001_MR1/scans/2", format="json")
    body = response.json()["ResultSet"]
    rows = body["Result"]
    assert body["totalRecords"] == str(len(rows))
    assert len(rows) > 30
    assert all(list(r) == list(COLUMNS) and all(isinstance(v, str) for v in r.values()) for r in rows)
    found = values(response)
    assert found["(0010,0010)"] == "DEMO_001"
    assert found["(0010,0020)"] == "DEMO_001_MR1"
    assert found["(0020,0011)"] == "2"
    assert found["(0008,103E)"] == "T1w_MPRAGE_sag_1mm"
    assert found["(0008,0020)"] == "20230214"
    assert found["(0002,0010)"] == "1.2.840.10008.1.2.1"  # file meta rows first, as dcm4che2 reads them
    assert "(7FE0,0010)" not in found  # pixel data is never dumped
    descriptions = {r["tag1"]: r["desc"] for r in rows}
    assert descriptions["(0010,0010)"] == "Patient's Name"
    assert {r["vr"] for r in rows} >= {"PN", "LO", "DA", "UI", "US", "IS", "CS"}


def test_src_forms(server: Server) -> None:
    session = values(dump(server, src="/archive/projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR1"))
    assert session["(0020,0011)"] == "1"  # the first scan with DICOM
    by_id = server.store.get_experiment("DEMO_001_MR1", "DEMO")
    assert by_id is not None
    same = values(dump(server, src=f"/archive/projects/DEMO/experiments/{by_id.id}/scans/3"))
    assert same["(0020,0011)"] == "3"
    name = "3-2.dcm"
    one = values(dump(server, src="/archive/projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR1/scans/3/"
                                  f"resources/DICOM/files/{name}"))
    assert one["(0020,0013)"] == "2"
    pet = values(dump(server, src="/archive/projects/DEMO/experiments/DEMO_006_PET1/scans/2"))
    assert pet["(0008,0060)"] == "PT"
    assert pet["(0008,0016)"] == "1.2.840.10008.5.1.4.1.1.128"


def test_fields_filter(server: Server) -> None:
    response = requests.get(server.url + DUMP, auth=(server.user, server.password), timeout=30, params=[
        ("src", "/archive/projects/DEMO/experiments/DEMO_002_MR1/scans/2"),
        ("field", "PatientName"), ("field", "00200011")])
    assert values(response) == {"(0010,0010)": "DEMO_002", "(0020,0011)": "2"}


@pytest.mark.parametrize(("params", "status"), [
    ({}, 400),
    ({"src": "/archive/projects/DEMO/experiments/DEMO_001_MR1", "field": "NotATag"}, 400),
    ({"src": "/archive/projects/DEMO/experiments/NO_SUCH_SESSION"}, 400),
    ({"src": "/archive/projects/NOPE/experiments/DEMO_001_MR1"}, 400),
])
def test_errors(server: Server, params: dict[str, str], status: int) -> None:
    assert dump(server, **params).status_code == status


@pytest.mark.parametrize("src", [
    "/archive/projects/DEMO/experiments/DEMO_005_MR2",  # no scans
    "/archive/projects/DEMO/experiments/DEMO_003_MR1/scans/4",  # a scan without files
    "/archive/projects/DEMO/experiments/DEMO_001_MR1/scans/99",
    "/data/experiments/DEMO_001_MR1",  # not an /archive or /prearchive src: XNAT answers an empty table
])
def test_empty_tables(server: Server, src: str) -> None:
    response = dump(server, src=src)
    assert response.status_code == 200
    assert response.json()["ResultSet"]["Result"] == []


def test_formats_and_auth(server: Server) -> None:
    src = "/archive/projects/DEMO/experiments/DEMO_001_MR1/scans/2"
    csv_text = dump(server, src=src, format="csv").text
    assert csv_text.splitlines()[0] == ",".join(COLUMNS)
    assert dump(server, src=src, format="xml").text.startswith("<?xml")
    anonymous = requests.get(server.url + DUMP, params={"src": src}, timeout=30)
    assert anonymous.status_code == 401
