"""What nifti-import needs of xnatsim: scan parameters (incl. ``parameters/addParam[name=…]``) and
custom ``fields/field[name=…]`` read back as XNAT serves them (JSON children, well-formed XML),
the upload duplicates reply and ``overwrite``, 409 on an existing resource, ``Last-Modified``."""

from __future__ import annotations

import email.utils
import io
import xml.etree.ElementTree as ET
import zipfile

from xnatsim.testing import Api

NS = {"xnat": "http://nrg.wustl.edu/xnat"}


def _scan(api: Api) -> tuple[str, str]:
    p = api.new_project("PAR")
    base = f"/data/projects/{p}/subjects/S/experiments/MR1"
    assert api.put(base, params={"xsiType": "xnat:mrSessionData"}).status_code == 201
    return p, base + "/scans/1"


def test_scan_parameters_and_add_params_read_back(api: Api) -> None:
    _, scan = _scan(api)
    params = {"xsiType": "xnat:mrScanData", "type": "T1w", "xnat:mrScanData/parameters/tr": "2300",
              "xnat:mrScanData/parameters/voxelRes/x": "1.5",
              "xnat:mrScanData/parameters/addParam[name=nifti_orientation]/addField": "RAS",
              "xnat:mrScanData/parameters/addParam[name=Shape]/addField": "8x8x4"}
    assert api.put(scan, params=params).status_code == 200
    item = api.get(scan, params={"format": "json"}).json()["items"][0]
    assert item["data_fields"]["parameters/tr"] == 2300
    assert item["data_fields"]["parameters/voxelRes/x"] == 1.5
    assert not any("addParam" in key for key in item["data_fields"])
    (child,) = [c for c in item["children"] if c["field"] == "parameters/addParam"]
    assert {i["meta"]["xsi:type"] for i in child["items"]} == {"xnat:addField"}
    assert {i["data_fields"]["name"]: i["data_fields"]["addField"] for i in child["items"]} == {
        "nifti_orientation": "RAS", "Shape": "8x8x4"}
    root = ET.fromstring(api.get(scan, params={"format": "xml"}).content)
    parameters = root.find("xnat:parameters", NS)
    assert parameters is not None
    assert parameters.findtext("xnat:tr", namespaces=NS) == "2300"
    assert {e.get("name"): e.text for e in parameters.findall("xnat:addParam", NS)} == {
        "nifti_orientation": "RAS", "Shape": "8x8x4"}
    # the session document carries the scan with the same, well-formed parameters
    session = ET.fromstring(api.get(scan.rsplit("/scans", 1)[0], params={"format": "xml"}).content)
    assert len(session.findall(".//xnat:scan/xnat:parameters/xnat:addParam", NS)) == 2


def test_custom_fields_are_well_formed_xml(api: Api) -> None:
    p, scan = _scan(api)
    session = scan.rsplit("/scans", 1)[0]
    r = api.put(session, params={"xnat:mrSessionData/fields/field[name=Site]/field": "A & B"})
    assert r.status_code == 200
    root = ET.fromstring(api.get(session, params={"format": "xml"}).content)
    assert [(e.get("name"), e.text) for e in root.findall("xnat:fields/xnat:field", NS)] == [("site", "A & B")]
    subject = f"/data/projects/{p}/subjects/S"
    api.put(subject, params={"xnat:subjectData/fields/field[name=arm]/field": "x"})
    item = api.get(subject, params={"format": "json"}).json()["items"][0]
    (child,) = [c for c in item["children"] if c["field"] == "fields/field"]
    assert child["items"][0]["meta"]["xsi:type"] == "xnat:subjectData_field"
    assert ET.fromstring(api.get(subject, params={"format": "xml"}).content).find(
        "xnat:fields/xnat:field", NS).get("name") == "arm"


def test_upload_duplicates_overwrite_conflict_and_last_modified(api: Api) -> None:
    _, scan = _scan(api)
    api.put(scan, params={"xsiType": "xnat:mrScanData"})
    files = scan + "/resources/NIFTI/files"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.nii", b"one")
        z.writestr("b.json", b"{}")
    r = api.put(files + "/batch.zip", params={"extract": "true"}, data=archive.getvalue())
    assert (r.status_code, r.text) == (200, "")
    again = api.put(files + "/batch.zip", params={"extract": "true"}, data=archive.getvalue())
    assert again.status_code == 200
    assert sorted(again.json()["duplicates"]) == ["a.nii", "b.json"]
    changed = api.put(files + "/a.nii", data=b"two")
    assert changed.json() == {"duplicates": ["a.nii"]}
    assert api.get(files + "/a.nii").content == b"one"  # not replaced without overwrite
    assert api.put(files + "/a.nii", params={"overwrite": "true"}, data=b"two").status_code == 200
    download = api.get(files + "/a.nii")
    assert download.content == b"two"
    modified = email.utils.parsedate_to_datetime(download.headers["Last-Modified"])
    assert modified.tzinfo is not None
    assert modified.year >= 2024
    assert api.put(scan + "/resources/NIFTI").status_code == 409
