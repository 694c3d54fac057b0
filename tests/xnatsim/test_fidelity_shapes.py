"""Plain HTTP written from the spec: xnatsim's answers have the shape of recorded real XNAT answers.

Shapes (keys, columns, value types, byte-level table framing) are compared with the files in
``../shared/reference/xnat-fixtures`` (see its INDEX.md for what is real-server material).
Known deviations are ``xfail(strict=True)`` so fixing them shows up.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from xnatsim.testing import Server, running_server

from xnatsim import synth

FIX = "xnat-fixtures"
PROJECT = "SHAPE"
XNAT_NS = "{http://nrg.wustl.edu/xnat}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("shapes"), seed="demo", fetch_schemas=False) as srv:
        srv.store.put_project(PROJECT, {"prearchive_code": "0"}, user="admin")  # keep imports in the prearchive
        yield srv


def _zip(labels: synth.DicomLabels) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("1.dcm", synth.dicom_bytes(labels))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def imported(server: Server, http: requests.Session) -> str:
    """A session that went the real way: import → prearchive → archive. Returns its archive URI."""
    labels = synth.DicomLabels(PROJECT, "SH1", "SH1_MR1", "1", "T1w", "MR", "2024-06-07")
    pre = http.post(server.url + "/data/services/import", data=_zip(labels), params={"project": PROJECT},
                    headers={"Content-Type": "application/zip"}, timeout=60)
    assert pre.status_code == 200, pre.text
    done = http.post(server.url + "/data/services/archive", params={"src": pre.text.strip()}, timeout=60)
    assert done.status_code == 200, done.text
    return done.text.strip()


def _types(mapping: dict[str, Any]) -> dict[str, str]:
    return {k: type(v).__name__ for k, v in mapping.items()}


def test_build_info_shape(server: Server, http: requests.Session, reference_dir: Path) -> None:
    recorded = json.loads((reference_dir / FIX / "xnatpy-ais/xapi_siteConfig_buildInfo_1.7.5.6.json").read_text())
    ours = http.get(server.url + "/xapi/siteConfig/buildInfo", timeout=30).json()
    assert set(ours) == set(recorded)
    assert _types(ours) == _types(recorded)  # every value a string, timestamps included


def test_experiment_item_shape(http: requests.Session, server: Server, imported: str, reference_dir: Path) -> None:
    recorded = json.loads((reference_dir / FIX / "xnatpy-tests/experiment_item_mrsession.json").read_text())
    rec_item = recorded["items"][0]
    ours = http.get(server.url + imported, params={"format": "json"}, timeout=30).json()
    item = ours["items"][0]
    assert set(item) == set(rec_item) == {"children", "meta", "data_fields"}
    assert _types(item["meta"]) == _types(rec_item["meta"])
    date_shape = r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} [A-Z]+ \d{4}"
    assert re.fullmatch(date_shape, rec_item["meta"]["start_date"])
    assert re.fullmatch(date_shape, item["meta"]["start_date"])
    fields = item["data_fields"]
    missing = set(rec_item["data_fields"]) - set(fields)
    assert missing == set(), f"fields a real imported MR session has: {sorted(missing)}"
    common = set(rec_item["data_fields"])
    assert {k: type(fields[k]).__name__ for k in common} == dict.fromkeys(common, "str")
    assert fields["ID"] == fields["id"]
    assert fields["session_type"] == PROJECT  # StudyDescription, as XNAT's session builder maps it


def test_prearchive_row_shape(server: Server, http: requests.Session, reference_dir: Path) -> None:
    recorded = json.loads((reference_dir / FIX / "xnatpy-tests/prearchive_projects.json").read_text())
    rec_rows = recorded["ResultSet"]["Result"]
    labels = synth.DicomLabels(PROJECT, "SH2", "SH2_MR1", "1", "T1w", "MR", "2024-06-08", time="081500.250")
    uri = http.post(server.url + "/data/services/import", data=_zip(labels), params={"project": PROJECT},
                    headers={"Content-Type": "application/zip"}, timeout=60).text.strip()
    body = http.get(server.url + f"/data/prearchive/projects/{PROJECT}", timeout=30).json()
    rows = [r for r in body["ResultSet"]["Result"] if r["name"] == "SH2_MR1"]
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == set(rec_rows[0])
    assert _types(row) == _types(rec_rows[0])
    ready = next(r for r in rec_rows if r["status"] == "READY")
    for key, shape in (("timestamp", r"\d{8}_\d{9}"), ("uploaded", r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+"),
                       ("lastmod", r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+"), ("scan_date", r"\d{4}-\d\d-\d\d"),
                       ("scan_time", r"\d\d:\d\d:\d\d(\.\d+)?"), ("url", r"/prearchive/projects/[^/]+/\d{8}_\d{9}/.+")):
        assert re.fullmatch(shape, ready[key]), key
        assert re.fullmatch(shape, row[key]), (key, row[key])
    assert row["autoarchive"] == ready["autoarchive"] == "Manual"
    assert "/data" + row["url"] == uri
    http.delete(server.url + uri, timeout=30)


def test_project_listing_row_and_framing(server: Server, http: requests.Session) -> None:
    response = http.get(server.url + "/data/archive/projects", params={"format": "json"}, timeout=30)
    # the recorded real row (spec §3.1), key order aside
    row = next(r for r in response.json()["ResultSet"]["Result"] if r["ID"] == "DEMO")
    assert set(row) == {"pi_firstname", "secondary_ID", "pi_lastname", "name", "description", "ID", "URI"}
    assert row["URI"] == "/data/projects/DEMO"
    assert re.search(r'\}\], "totalRecords": "\d+"\}\}$', response.text)


def test_token_issue_shape(server: Server, http: requests.Session) -> None:
    token = http.get(server.url + "/data/services/tokens/issue", timeout=30).json()
    # key order and types as recorded from a production XNAT (spec §1)
    assert list(token) == ["secret", "estimatedExpirationTime", "alias", "xdatUserId", "singleUse", "id",
                           "disabled", "created", "enabled", "timestamp"]
    assert _types(token) == {"secret": "str", "estimatedExpirationTime": "int", "alias": "str",
                             "xdatUserId": "str", "singleUse": "bool", "id": "int", "disabled": "int",
                             "created": "int", "enabled": "bool", "timestamp": "int"}
    assert len(token["secret"]) == 64
    assert token["estimatedExpirationTime"] - token["created"] == 48 * 3600 * 1000


def test_import_and_dump_framing(server: Server, http: requests.Session, imported: str) -> None:
    labels = synth.DicomLabels(PROJECT, "SH3", "SH3_MR1", "1", "T1w", "MR", "2024-06-09")
    response = http.post(server.url + "/data/services/import", data=_zip(labels),
                         params={"dest": f"/archive/projects/{PROJECT}"},
                         headers={"Content-Type": "application/zip"}, timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert re.fullmatch(r"/data/archive/projects/SHAPE/subjects/SH3/experiments/SH3_MR1\s*", response.text)
    dump = http.get(server.url + "/data/services/dicomdump",
                    params={"src": imported.replace("/data", "", 1), "format": "json"}, timeout=30)
    assert dump.headers["Content-Type"].startswith("application/json")
    assert re.fullmatch(r'\{"ResultSet":\{"Result":\[\{.*\}\], "totalRecords": "\d+"\}\}', dump.text, re.DOTALL)


def _session_xml(server: Server, http: requests.Session) -> ET.Element:
    text = http.get(server.url + "/data/projects/DEMO/experiments/DEMO_001_MR1", params={"format": "xml"},
                    timeout=30).text
    return ET.fromstring(text)


def test_session_xml_root(server: Server, http: requests.Session, reference_dir: Path) -> None:
    recorded = ET.parse(reference_dir / FIX / "pyxnat/sess.xml").getroot()
    ours = _session_xml(server, http)
    assert ours.tag == recorded.tag == f"{XNAT_NS}MRSession"
    for attribute in ("UID", "label", "project"):
        assert attribute in recorded.attrib
        assert attribute in ours.attrib


def test_session_xml_attributes(server: Server, http: requests.Session, reference_dir: Path) -> None:
    recorded = ET.parse(reference_dir / FIX / "pyxnat/sess.xml").getroot()
    ours = _session_xml(server, http)
    assert "modality" in recorded.attrib
    assert "modality" in ours.attrib
    scanner = ours.find(f"{XNAT_NS}scanner")
    assert recorded.find(f"{XNAT_NS}scanner") is not None
    assert scanner is not None
    assert "manufacturer" in scanner.attrib


def test_session_xml_child_order(server: Server, http: requests.Session, reference_dir: Path) -> None:
    recorded = [c.tag for c in ET.parse(reference_dir / FIX / "pyxnat/sess.xml").getroot()]
    ours = [c.tag for c in _session_xml(server, http)]
    shared = [t for t in recorded if t in ours]
    assert len(shared) >= 4
    assert [t for t in ours if t in shared] == shared


def test_bulk_scan_listing_rows(server: Server, http: requests.Session) -> None:
    """Spec §5.1: scan xpath columns give one row per (session, scan), scan-less sessions once, keys lower-cased."""
    response = http.get(server.url + "/data/experiments", timeout=60, params={
        "project": "DEMO", "xsiType": "xnat:mrSessionData", "format": "json",
        "columns": "ID,label,subject_label,xnat:mrScanData/ID,xnat:mrScanData/type"})
    rows = response.json()["ResultSet"]["Result"]
    store = server.store
    sessions = store.list_experiments(project="DEMO", xsi_type="xnat:mrSessionData")
    expected = sum(max(1, len(store.list_scans(e.id))) for e in sessions)
    assert len(rows) == expected
    assert {"ID", "label", "subject_label", "xnat:mrscandata/id", "xnat:mrscandata/type", "URI"} <= set(rows[0])
    empty = [r for r in rows if r["label"] == "DEMO_005_MR2"]
    assert [(r["xnat:mrscandata/id"], r["xnat:mrscandata/type"]) for r in empty] == [("", "")]
    assert all(isinstance(v, str) for r in rows for v in r.values())
