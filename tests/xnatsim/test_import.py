"""The import service and the prearchive over HTTP: routing, destinations, overwrite, errors, events."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests
from xnatsim.store import Parent
from xnatsim.testing import Server, running_server

from tests.zips import streamed_zip
from xnatsim import synth

PROJECT = "IMP"
OTHER = "IMP2"


def dicom_zip(labels: synth.DicomLabels, series: dict[str, str], per_series: int = 2,
              extra: dict[str, bytes] | None = None) -> bytes:
    """A zip of ``per_series`` DICOM instances for each ``{scan id: series description}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for scan_id, description in series.items():
            for k in range(1, per_series + 1):
                one = replace(labels, scan_id=scan_id, series_description=description, instance=k)
                archive.writestr(f"study/{scan_id}/{k}.dcm", synth.dicom_bytes(one))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("import"), fetch_schemas=False) as srv:
        # new projects auto-archive (prearchive_code 4, as XNAT's initArcProject sets it); PROJECT keeps
        # what it receives in the prearchive
        srv.store.put_project(PROJECT, {"prearchive_code": "0"}, user="admin")
        srv.store.put_project(OTHER, {}, user="admin")
        yield srv


@pytest.fixture
def events(server: Server) -> Iterator[list[tuple[str, str, dict[str, Any], int]]]:
    """Store events seen during a test, each with the number of scans the session had at that moment."""
    seen: list[tuple[str, str, dict[str, Any], int]] = []

    def listener(event: str, xsi_type: str, obj: dict[str, Any]) -> None:
        scans = len(server.store.list_scans(obj["id"])) if obj.get("kind") == "experiment" else -1
        seen.append((event, xsi_type, obj, scans))

    server.store.add_listener(listener)
    yield seen
    server.store.remove_listener(listener)


def assert_digests_describe_the_files(server: Server, exp: Any) -> None:
    """Every archived file's catalog size and MD5 (hashed on the way in, not re-read) are the file's own."""
    store = server.store
    checked = 0
    for scan in store.list_scans(exp.id):
        for resource in store.list_resources(Parent("scan", exp.project, exp.subject_id, exp.id, scan.pk)):
            for entry in store.list_files(resource.id):
                data = (store.resource_dir(resource) / entry.path).read_bytes()
                assert (entry.size, entry.md5) == (len(data), hashlib.md5(data).hexdigest())
                checked += 1
    assert checked


def post(http: requests.Session, server: Server, body: bytes, **params: str) -> requests.Response:
    return http.post(server.url + "/data/services/import", params=params, data=body,
                     headers={"Content-Type": "application/zip"}, timeout=60)


def test_archive_routed_from_headers(server: Server, http: requests.Session,
                                     events: list[tuple[str, str, dict[str, Any], int]]) -> None:
    labels = synth.DicomLabels(PROJECT, "SUBJ1", "SUBJ1_MR1", "1", "", "MR", "2024-05-06")
    body = dicom_zip(labels, {"1": "localizer", "3": "T1w MPRAGE"}, per_series=3)
    response = post(http, server, body, **{"dest": "/archive", "import-handler": "DICOM-zip"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text.strip() == f"/data/archive/projects/{PROJECT}/subjects/SUBJ1/experiments/SUBJ1_MR1"
    store = server.store
    exp = store.get_experiment("SUBJ1_MR1", PROJECT)
    assert exp is not None
    assert exp.xsi_type == "xnat:mrSessionData"
    assert exp.subject_label == "SUBJ1"
    assert exp.fields["date"] == "2024-05-06"
    assert exp.fields["dcmPatientId"] == "SUBJ1_MR1"
    scans = store.list_scans(exp.id)
    assert [(s.id, s.xsi_type, s.fields["series_description"], s.fields["frames"]) for s in scans] == [
        ("1", "xnat:mrScanData", "localizer", "3"), ("3", "xnat:mrScanData", "T1w MPRAGE", "3")]
    resource = store.list_resources(Parent("scan", PROJECT, exp.subject_id, exp.id, scans[1].pk))[0]
    assert (resource.label, resource.format, resource.file_count) == ("DICOM", "DICOM", 3)
    names = [f.name for f in store.list_files(resource.id)]
    assert all(n.startswith(synth.uid(PROJECT, "SUBJ1_MR1") + "-3-") and n.endswith(".dcm") for n in names)
    assert_digests_describe_the_files(server, exp)
    created = [e for e in events if e[0] == "created" and e[2].get("kind") == "experiment"]
    assert len(created) == 1
    assert created[0][1] == "xnat:mrSessionData"
    assert created[0][3] == 2, "the listener must see the finished session (both scans)"
    # the archived session answers the REST routes xnatpy follows
    info = http.get(server.url + response.text.strip(), params={"format": "json"}, timeout=30)
    assert info.status_code == 200


def test_explicit_labels_win_and_header_labels_are_cleaned(server: Server, http: requests.Session) -> None:
    labels = synth.DicomLabels("NOPE", "Doe^John", "ID.42", "2", "T2", "MR", "2024-01-01")
    body = dicom_zip(labels, {"2": "T2"})
    ok = post(http, server, body, dest=f"/archive/projects/{OTHER}")
    assert ok.status_code == 200, ok.text
    # "Subject:Doe^John Session:ID.42": XNAT's assignment value is [\w-]*, so the text stops at ^ and .
    assert ok.text.strip().endswith(f"/projects/{OTHER}/subjects/Doe/experiments/ID")
    explicit = post(http, server, body, dest="/archive", PROJECT_ID=OTHER, SUBJECT_ID="S9", EXPT_LABEL="S9_X")
    assert explicit.status_code == 200, explicit.text
    assert explicit.text.strip().endswith(f"/projects/{OTHER}/subjects/S9/experiments/S9_X")
    short = post(http, server, body, dest=f"/archive/projects/{OTHER}/subjects/S8/experiments/S8_Y")
    assert short.text.strip().endswith("/subjects/S8/experiments/S8_Y")


def test_routing_by_study_description(server: Server, http: requests.Session) -> None:
    labels = synth.DicomLabels(OTHER, "SD1", "SD1_CT1", "1", "head", "CT", "2023-03-03")
    raw = synth.dicom_bytes(labels)
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(raw))
    del ds.PatientComments  # no "Project:" text: StudyDescription (= OTHER) routes it
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.dcm", out.getvalue())
    response = post(http, server, buffer.getvalue(), dest="/archive")
    assert response.status_code == 200, response.text
    exp = server.store.get_experiment("SD1_CT1", OTHER)
    assert exp is not None
    assert exp.xsi_type == "xnat:ctSessionData"


def test_overwrite_modes(server: Server, http: requests.Session) -> None:
    labels = synth.DicomLabels(PROJECT, "OW", "OW_MR1", "1", "", "MR", "2024-02-02")
    first = dicom_zip(labels, {"1": "a"})
    assert post(http, server, first, dest="/archive").status_code == 200
    again = post(http, server, first, dest="/archive")
    assert again.status_code == 409
    assert "Session already exists, retry with overwrite enabled" in again.text
    more = dicom_zip(labels, {"2": "b"})
    assert post(http, server, more, dest="/archive", overwrite="append").status_code == 200
    exp = server.store.get_experiment("OW_MR1", PROJECT)
    assert exp is not None
    assert [s.id for s in server.store.list_scans(exp.id)] == ["1", "2"]
    assert post(http, server, more, dest="/archive", overwrite="delete").status_code == 200
    exp2 = server.store.get_experiment("OW_MR1", PROJECT)
    assert exp2 is not None
    assert exp2.id != exp.id
    assert [s.id for s in server.store.list_scans(exp2.id)] == ["2"]
    # XNAT reads any other value (true, sometimes) as append
    assert post(http, server, dicom_zip(labels, {"3": "c"}), dest="/archive", overwrite="true").status_code == 200
    assert [s.id for s in server.store.list_scans(exp2.id)] == ["2", "3"]


def test_formats_tar_gz_multipart_and_single_file(server: Server, http: requests.Session) -> None:
    labels = synth.DicomLabels(PROJECT, "FMT", "FMT_MR1", "1", "x", "MR", "2024-03-03")
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w:gz") as archive:
        data = synth.dicom_bytes(labels)
        info = tarfile.TarInfo("dir/one.dcm")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    response = http.post(server.url + "/data/services/import", params={"dest": "/archive"},
                         data=tar_buffer.getvalue(), headers={"Content-Type": "application/x-tar"}, timeout=60)
    assert response.status_code == 200, response.text
    labels2 = replace(labels, session="FMT_MR2")
    multipart = http.post(server.url + "/data/services/import", params={"dest": "/archive"},
                          files={"file": ("upload.zip", dicom_zip(labels2, {"4": "y"}), "application/zip")},
                          timeout=60)
    assert multipart.status_code == 200, multipart.text
    assert multipart.text.strip().endswith("/experiments/FMT_MR2")
    labels3 = replace(labels, session="FMT_MR3")
    single = http.post(server.url + "/data/services/import",
                       params={"dest": "/archive", "import-handler": "gradual-DICOM"},
                       data=synth.dicom_bytes(labels3), headers={"Content-Type": "application/dicom"}, timeout=60)
    assert single.status_code == 200, single.text


def test_errors(server: Server, http: requests.Session) -> None:
    labels = synth.DicomLabels(PROJECT, "ERR", "ERR_MR1", "1", "", "MR", "2024-01-01")
    junk = dicom_zip(labels, {"1": "a"}, extra={"notes/readme.txt": b"not dicom"})
    skipped = post(http, server, junk, dest="/archive")  # non-DICOM members are skipped, as on XNAT
    assert skipped.status_code == 200, skipped.text
    only_junk = io.BytesIO()
    with zipfile.ZipFile(only_junk, "w") as archive:
        archive.writestr("readme.txt", b"not dicom")
    nothing = post(http, server, only_junk.getvalue(), dest="/archive")
    assert nothing.status_code == 400
    assert "Upload did not include parsable files for session generation." in nothing.text
    assert post(http, server, b"", dest="/archive").status_code == 400
    assert post(http, server, b"PK\x05\x06" + b"\0" * 18, dest="/archive").status_code == 400  # empty zip
    unknown = post(http, server, dicom_zip(replace(labels, session="ERR_MR2"), {"1": "a"}),
                   dest="/archive/projects/NOSUCH")
    assert unknown.status_code == 404
    assert post(http, server, junk, dest="/elsewhere").status_code == 400
    assert post(http, server, junk, **{"import-handler": "XAR"}).status_code == 400
    unknown_handler = post(http, server, junk, **{"import-handler": "Nope"})
    assert unknown_handler.status_code == 404
    assert "Unknown importer implementation specified: Nope" in unknown_handler.text
    anonymous = requests.post(server.url + "/data/services/import", data=junk, timeout=30)
    assert anonymous.status_code == 401


def streamed_dicom_zip(labels: synth.DicomLabels, method: int) -> bytes:
    return streamed_zip({f"{k}.dcm": synth.dicom_bytes(replace(labels, instance=k)) for k in (1, 2)}, method)


def test_a_stored_member_with_a_data_descriptor_is_refused_as_javas_reader_does(
        server: Server, http: requests.Session) -> None:
    labels = synth.DicomLabels(OTHER, "DD", "DD_MR1", "1", "", "MR", "2024-01-01")
    stored = post(http, server, streamed_dicom_zip(labels, zipfile.ZIP_STORED), dest=f"/archive/projects/{OTHER}")
    assert stored.status_code == 400
    assert "only DEFLATED entries can have EXT descriptor" in stored.text
    assert server.store.get_experiment("DD_MR1", OTHER) is None
    deflated = post(http, server, streamed_dicom_zip(labels, zipfile.ZIP_DEFLATED), dest=f"/archive/projects/{OTHER}")
    assert deflated.status_code == 200, deflated.text  # ZipInputStream reads deflated members with one


def test_prearchive_then_archive(server: Server, http: requests.Session) -> None:
    labels = synth.DicomLabels(PROJECT, "PRE", "PRE_MR1", "1", "", "MR", "2024-04-04", time="101112")
    response = post(http, server, dicom_zip(labels, {"1": "a", "2": "b"}), **{"import-handler": "DICOM-zip"})
    assert response.status_code == 200, response.text
    uri = response.text.strip()
    assert uri.startswith(f"/data/prearchive/projects/{PROJECT}/")
    assert uri.endswith("/PRE_MR1")
    assert server.store.get_experiment("PRE_MR1", PROJECT) is None
    listing = http.get(server.url + "/data/prearchive/projects", params={"format": "json"}, timeout=30).json()
    rows = [r for r in listing["ResultSet"]["Result"] if r["name"] == "PRE_MR1"]
    assert len(rows) == 1
    row = rows[0]
    assert all(isinstance(v, str) for v in row.values())
    assert row["url"] == uri[len("/data"):]
    assert row["status"] == "READY"
    assert row["subject"] == "PRE"
    assert (row["scan_date"], row["scan_time"]) == ("2024-04-04", "10:11:12")
    one = http.get(server.url + uri, params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]
    assert one == [row]
    dump = http.get(server.url + "/data/services/dicomdump", params={"src": uri[len("/data"):] + "/scans/2"},
                    timeout=30).json()["ResultSet"]["Result"]
    assert {r["tag1"]: r["value"] for r in dump}["(0020,0011)"] == "2"
    archived = http.post(server.url + "/data/services/archive", params={"src": uri}, timeout=60)
    assert archived.status_code == 200, archived.text
    assert archived.text.strip() == f"/data/archive/projects/{PROJECT}/subjects/PRE/experiments/PRE_MR1"
    exp = server.store.get_experiment("PRE_MR1", PROJECT)
    assert exp is not None
    assert len(server.store.list_scans(exp.id)) == 2
    assert_digests_describe_the_files(server, exp)
    assert http.get(server.url + uri, params={"format": "json"}, timeout=30).status_code == 404


def test_prearchive_unassigned_and_delete(server: Server, http: requests.Session) -> None:
    labels = synth.DicomLabels("NOWHERE", "UN", "UN_MR1", "1", "", "MR", "2024-04-04")
    response = post(http, server, dicom_zip(labels, {"1": "a"}))
    assert response.status_code == 200, response.text
    uri = response.text.strip()
    assert uri.startswith("/data/prearchive/projects/Unassigned/")
    project_rows = http.get(server.url + "/data/prearchive/projects/Unassigned", timeout=30).json()
    assert [r["name"] for r in project_rows["ResultSet"]["Result"]] == ["UN_MR1"]
    deleted = http.post(server.url + "/data/services/prearchive/delete", params={"src": uri}, timeout=30)
    assert deleted.status_code == 200
    assert http.get(server.url + "/data/prearchive/projects/Unassigned", timeout=30).json()[
        "ResultSet"]["Result"] == []


def test_gradual_dicom_gathers_one_prearchive_session(server: Server, http: requests.Session) -> None:
    labels = synth.DicomLabels(PROJECT, "GR", "GR_MR1", "1", "", "MR", "2024-04-05")
    uris = set()
    for scan_id, instance in (("1", 1), ("1", 2), ("2", 1)):
        one = replace(labels, scan_id=scan_id, instance=instance)
        response = http.post(server.url + "/data/services/import", params={"import-handler": "gradual-DICOM"},
                             data=synth.dicom_bytes(one), headers={"Content-Type": "application/dicom"},
                             timeout=60)
        assert response.status_code == 200, response.text
        uris.add(response.text.strip())
    assert len(uris) == 1
    uri = uris.pop()
    archived = http.post(server.url + "/data/services/archive", params={"src": uri}, timeout=60)
    assert archived.status_code == 200, archived.text
    exp = server.store.get_experiment("GR_MR1", PROJECT)
    assert exp is not None
    assert {s.id: s.fields["frames"] for s in server.store.list_scans(exp.id)} == {"1": "2", "2": "1"}
    again = post(http, server, dicom_zip(labels, {"1": "a"}))  # a zip upload makes its own entry
    assert again.text.strip() != uri
