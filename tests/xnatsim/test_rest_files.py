"""Resources and files: upload (raw, multipart, extract), duplicates, overwrite, listings with
MD5 digests, downloads (file, zip, tar.gz), archive layout on disk, deletes (xnat-rest-spec §7, §8)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from xnatsim.testing import Api, Server


@pytest.fixture
def session(api: Api) -> tuple[str, str, str]:
    """(project, experiment ID, scan base URL) with scan 1 (T1) in session MR1 of subject S."""
    p = api.new_project("FIL")
    eid = api.put(f"/data/projects/{p}/subjects/S/experiments/MR1", params={"xsiType": "xnat:mrSessionData"}).text
    base = f"/data/projects/{p}/subjects/S/experiments/{eid}/scans/1"
    api.put(base, params={"xsiType": "xnat:mrScanData", "type": "T1 MPRAGE"})
    return p, eid, base


def files(api: Api, url: str) -> list[dict[str, str]]:
    body = api.get(url, params={"format": "json"}).json()["ResultSet"]
    assert "totalRecords" not in body
    assert body["Columns"] == [{"key": "URI", "serverRoot": ""}]
    result: list[dict[str, str]] = body["Result"]
    return result


def test_resource_create_catalog_and_conflict(api: Api, session: tuple[str, str, str], xnatsim_server: Server) -> None:
    p, eid, base = session
    r = api.put(base + "/resources/NIFTI", params={"format": "NIFTI", "content": "T1_RAW"})
    assert (r.status_code, r.text) == (200, "")
    assert api.put(base + "/resources/NIFTI").status_code == 409
    catalog = api.get(base + "/resources/NIFTI", params={"format": "json"})
    assert catalog.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<cat:Catalog')
    row = api.get(base + "/resources", params={"format": "json"}).json()["ResultSet"]["Result"][0]
    assert row["label"] == "NIFTI"
    assert row["element_name"] == "xnat:resourceCatalog"
    assert (row["category"], row["cat_id"], row["cat_desc"]) == ("scans", "1", "T1 MPRAGE")
    assert (row["format"], row["content"], row["file_count"]) == ("NIFTI", "T1_RAW", "0")
    rid = row["xnat_abstractresource_id"]
    assert api.get(f"/data/experiments/{eid}/scans/1/resources/{rid}").status_code == 200
    folder = xnatsim_server.store.archive_dir / p / "arc001" / "MR1" / "SCANS" / "1" / "NIFTI"
    assert (folder / "NIFTI_catalog.xml").is_file()
    assert api.get(base + "/resources/NOPE").status_code == 404


def test_upload_list_download_and_layout(api: Api, session: tuple[str, str, str], xnatsim_server: Server) -> None:
    p, eid, base = session
    data = b"\x00\x01nifti" * 1000
    r = api.put(base + "/resources/NIFTI/files/image.nii", data=data,
                headers={"Content-Type": "application/octet-stream"})
    assert (r.status_code, r.text) == (200, "")
    api.put(base + "/resources/NIFTI/files/notes/readme.txt", data=b"hello", params={"content": "NOTES"})
    listed = files(api, base + "/resources/NIFTI/files")
    assert [f["Name"] for f in listed] == ["image.nii", "readme.txt"]
    image = listed[0]
    assert image["Size"] == str(len(data))
    assert image["digest"] == hashlib.md5(data).hexdigest()
    assert image["collection"] == "NIFTI"
    rid = image["cat_ID"]
    assert image["URI"] == f"/data/projects/{p}/subjects/{_subject_id(api, p)}/experiments/{eid}/scans/1/resources/{rid}/files/image.nii"
    assert listed[1]["file_content"] == "NOTES"
    assert "ID" not in image
    assert api.get(image["URI"]).content == data
    head = api("HEAD", image["URI"])
    assert (head.status_code, head.headers["Content-Length"], head.content) == (200, str(len(data)), b"")
    site = files(api, f"/data/experiments/{eid}/scans/1/resources/NIFTI/files")
    assert site[0]["URI"] == f"/data/experiments/{eid}/scans/1/resources/{rid}/files/image.nii"
    on_disk = xnatsim_server.store.archive_dir / p / "arc001" / "MR1" / "SCANS" / "1" / "NIFTI"
    assert (on_disk / "image.nii").read_bytes() == data
    assert (on_disk / "notes" / "readme.txt").read_bytes() == b"hello"
    stats = api.get(base + "/resources", params={"format": "json"}).json()["ResultSet"]["Result"][0]
    assert (stats["file_count"], stats["file_size"]) == ("2", str(len(data) + 5))
    folder = files(api, base + "/resources/NIFTI/files/notes/")
    assert [f["Name"] for f in folder] == ["readme.txt"]
    assert api.get(base + "/resources/NIFTI/files/missing.nii").status_code == 404


def test_raw_uploads_stage_one_file_and_keep_umask_permissions(
        api: Api, session: tuple[str, str, str], xnatsim_server: Server) -> None:
    """A raw body is staged as one file in tmp/ (no folder per upload), moved into place with the
    umask's permissions (container jobs read the archive as another UID), and never left behind:
    stored, refused as a duplicate, or refused as a conflict."""
    p, _, base = session
    url = base + "/resources/NIFTI/files/"
    assert api.put(url + "a.nii", data=b"A" * 5000).status_code == 200
    duplicate = api.put(url + "a.nii", data=b"B" * 5000)
    assert (duplicate.status_code, duplicate.json()) == (200, {"duplicates": ["a.nii"]})
    assert api.put(url + "a.nii/below.nii", data=b"C").status_code == 409
    tmp = xnatsim_server.store.tmp_dir
    assert not list(tmp.iterdir())
    stored = xnatsim_server.store.archive_dir / p / "arc001" / "MR1" / "SCANS" / "1" / "NIFTI" / "a.nii"
    assert stored.read_bytes() == b"A" * 5000
    probe = tmp / "probe"
    probe.write_bytes(b"")
    try:
        assert stored.stat().st_mode & 0o777 == probe.stat().st_mode & 0o777
    finally:
        probe.unlink()


def _subject_id(api: Api, project: str) -> str:
    subject_id: str = api.get(f"/data/projects/{project}/subjects").json()["ResultSet"]["Result"][0]["ID"]
    return subject_id


def test_duplicates_and_overwrite(api: Api, session: tuple[str, str, str]) -> None:
    _, _, base = session
    url = base + "/resources/DICOM/files/a.dcm"
    assert api.put(url, data=b"one").status_code == 200  # the resource is created on demand
    dup = api.put(url, data=b"two")
    assert dup.status_code == 200
    assert dup.json() == {"duplicates": ["a.dcm"]}
    assert api.get(url).content == b"one"
    assert api.put(url, data=b"two", params={"overwrite": "true"}).text == ""
    assert api.get(url).content == b"two"
    assert files(api, base + "/resources/DICOM/files")[0]["digest"] == hashlib.md5(b"two").hexdigest()
    for i in range(3):
        api.put(base + f"/resources/DICOM/files/more/{i}.dcm", data=b"m")
    api.delete(base + "/resources/DICOM/files/more/1.dcm")
    catalog = ET.fromstring(api.get(base + "/resources/DICOM").content)
    entries = catalog.findall("{http://nrg.wustl.edu/catalog}entries/{http://nrg.wustl.edu/catalog}entry")
    assert sorted((e.get("URI"), e.get("digest")) for e in entries) == [
        ("a.dcm", hashlib.md5(b"two").hexdigest()), ("more/0.dcm", hashlib.md5(b"m").hexdigest()),
        ("more/2.dcm", hashlib.md5(b"m").hexdigest())]
    assert api.put(base + "/resources/DICOM/files/a.dcm/inside.dcm", data=b"x").status_code == 409
    assert api.put(base + "/resources/DICOM/files/more", data=b"x").status_code == 409


def test_multipart_and_extract(api: Api, session: tuple[str, str, str]) -> None:
    _, _, base = session
    r = api.post(base + "/resources/RAW/files", files={"file": ("one.txt", b"1"), "other": ("two.txt", b"22")})
    assert r.status_code == 200, r.text
    assert sorted(f["Name"] for f in files(api, base + "/resources/RAW/files")) == ["one.txt", "two.txt"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("dir/a.txt", "A")
        zf.writestr("b.txt", "BB")
    r = api.post(base + "/resources/ZIPPED/files", params={"extract": "true"},
                 files={"file": ("upload.zip", buf.getvalue())})
    assert r.status_code == 200, r.text
    assert sorted(f["URI"].split("/files/")[1] for f in files(api, base + "/resources/ZIPPED/files")) == [
        "b.txt", "dir/a.txt"]
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as tf:
        for name, payload in (("x/1.txt", b"x1"), ("2.txt", b"2")):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    r = api.put(base + "/resources/TGZ/files/upload.tar.gz", params={"extract": "true"}, data=tbuf.getvalue())
    assert r.status_code == 200, r.text
    assert sorted(f["Name"] for f in files(api, base + "/resources/TGZ/files")) == ["1.txt", "2.txt"]
    kept = api.put(base + "/resources/KEEP/files/archive.zip", data=buf.getvalue())
    assert kept.status_code == 200
    assert [f["Name"] for f in files(api, base + "/resources/KEEP/files")] == ["archive.zip"]
    assert api.put(base + "/resources/EMPTY/files/x.txt", data=b"").status_code == 400


def test_zip_downloads_and_all_scans(api: Api, session: tuple[str, str, str]) -> None:
    _, eid, base = session
    api.put(base + "/resources/NIFTI/files/image.nii", data=b"img")
    api.put(f"/data/experiments/{eid}/scans/2", params={"xsiType": "xnat:mrScanData", "type": "DWI"})
    api.put(f"/data/experiments/{eid}/scans/2/resources/DICOM/files/1.dcm", data=b"dcm")
    api.put(f"/data/experiments/{eid}/resources/QC/files/report.txt", data=b"qc")
    r = api.get(base + "/resources/NIFTI/files", params={"format": "zip"})
    assert r.headers["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert names == ["MR1/scans/1-T1_MPRAGE/resources/NIFTI/files/image.nii"]
    every = files(api, f"/data/experiments/{eid}/scans/ALL/files")
    assert sorted(f["Name"] for f in every) == ["1.dcm", "image.nii"]
    z = zipfile.ZipFile(io.BytesIO(api.get(f"/data/experiments/{eid}/scans/ALL/files", params={"format": "zip"}).content))
    assert sorted(z.namelist()) == ["MR1/scans/1-T1_MPRAGE/resources/NIFTI/files/image.nii",
                                    "MR1/scans/2-DWI/resources/DICOM/files/1.dcm"]
    assert z.read("MR1/scans/2-DWI/resources/DICOM/files/1.dcm") == b"dcm"
    simplified = api.get(f"/data/experiments/{eid}/scans/ALL/files", params={"format": "zip", "structure": "simplified"})
    assert "MR1/scans/1/NIFTI/image.nii" in zipfile.ZipFile(io.BytesIO(simplified.content)).namelist()
    resources = api.get(f"/data/experiments/{eid}/scans/ALL/resources").json()["ResultSet"]["Result"]
    assert sorted((r["cat_id"], r["label"]) for r in resources) == [("1", "NIFTI"), ("2", "DICOM")]
    some = api.get(f"/data/experiments/{eid}/scans/2,3/resources").json()["ResultSet"]["Result"]
    assert [(r["cat_id"], r["cat_desc"]) for r in some] == [("2", "DWI")]
    only_dicom = files(api, f"/data/experiments/{eid}/scans/ALL/resources/DICOM/files")
    assert [f["Name"] for f in only_dicom] == ["1.dcm"]
    tgz = api.get(f"/data/experiments/{eid}/scans/2/resources/DICOM/files", params={"format": "tar.gz"})
    with tarfile.open(fileobj=io.BytesIO(tgz.content), mode="r:gz") as tf:
        assert tf.getnames() == ["MR1/scans/2-DWI/resources/DICOM/files/1.dcm"]
    session_files = files(api, f"/data/experiments/{eid}/files")
    assert [f["Name"] for f in session_files] == ["report.txt"]
    assert api.get(f"/data/experiments/{eid}/scans/9/files").status_code == 404


def test_project_and_subject_resources_layout(api: Api, xnatsim_server: Server) -> None:
    p = api.new_project("PRS")
    api.put(f"/data/projects/{p}/subjects/SUBJ")
    assert api.put(f"/data/projects/{p}/resources/DOCS/files/protocol.pdf", data=b"%PDF").status_code == 200
    assert api.put(f"/data/projects/{p}/subjects/SUBJ/resources/NOTES/files/n.txt", data=b"n").status_code == 200
    archive: Path = xnatsim_server.store.archive_dir
    assert (archive / p / "resources" / "DOCS" / "protocol.pdf").read_bytes() == b"%PDF"
    assert (archive / p / "subjects" / "SUBJ" / "resources" / "NOTES" / "n.txt").read_bytes() == b"n"
    listed = files(api, f"/data/projects/{p}/resources/DOCS/files")
    assert listed[0]["URI"].startswith(f"/data/projects/{p}/resources/")
    assert [f["Name"] for f in files(api, f"/data/projects/{p}/files")] == ["protocol.pdf"]
    row = api.get(f"/data/projects/{p}/resources", params={"format": "json"}).json()["ResultSet"]["Result"][0]
    assert (row["category"], row["cat_id"]) == ("resources", "")


def test_deletes_remove_files(api: Api, session: tuple[str, str, str], xnatsim_server: Server) -> None:
    p, eid, base = session
    api.put(base + "/resources/NIFTI/files/a/b.nii", data=b"1")
    api.put(base + "/resources/NIFTI/files/a/c.nii", data=b"2")
    api.put(base + "/resources/NIFTI/files/d.nii", data=b"3")
    folder = xnatsim_server.store.archive_dir / p / "arc001" / "MR1"
    assert api.delete(base + "/resources/NIFTI/files/a/b.nii").status_code == 200
    assert not (folder / "SCANS" / "1" / "NIFTI" / "a" / "b.nii").exists()
    assert api.delete(base + "/resources/NIFTI/files/a").status_code == 200  # a folder deletes its contents
    assert [f["Name"] for f in files(api, base + "/resources/NIFTI/files")] == ["d.nii"]
    assert api.delete(base + "/resources/NIFTI/files/zzz").status_code == 404
    assert api.delete(base + "/resources/NIFTI").status_code == 200
    assert not (folder / "SCANS" / "1" / "NIFTI").exists()
    api.put(base + "/resources/X/files/x", data=b"x")
    assert api.delete(f"/data/projects/{p}/subjects/S/experiments/{eid}", params={"removeFiles": "true"}).status_code == 200
    assert not folder.exists()


def test_chunked_upload(api: Api, session: tuple[str, str, str]) -> None:
    _, _, base = session
    chunks = [b"a" * 70000, b"b" * 10, b"c" * 5]
    r = api.put(base + "/resources/CHUNKED/files/streamed.bin", data=iter(chunks))
    assert r.status_code == 200, r.text
    listed = files(api, base + "/resources/CHUNKED/files")
    assert listed[0]["Size"] == str(sum(len(c) for c in chunks))
    assert listed[0]["digest"] == hashlib.md5(b"".join(chunks)).hexdigest()


def test_refresh_catalog_syncs_with_the_folder(api: Api, session: tuple[str, str, str], xnatsim_server: Server) -> None:
    p, eid, base = session
    api.put(base + "/resources/SYNC/files/kept.txt", data=b"kept")
    api.put(base + "/resources/SYNC/files/gone.txt", data=b"gone")
    folder = xnatsim_server.store.archive_dir / p / "arc001" / "MR1" / "SCANS" / "1" / "SYNC"
    (folder / "sub").mkdir()
    (folder / "sub" / "new.txt").write_bytes(b"new")
    (folder / "gone.txt").unlink()
    uri = f"/archive/experiments/{eid}/scans/1/resources/SYNC"
    r = api.post("/data/services/refresh/catalog", params={"resource": uri, "options": "append,delete,checksum"})
    assert r.status_code == 200, r.text
    listed = {f["URI"].split("/files/")[1]: f["digest"] for f in files(api, base + "/resources/SYNC/files")}
    assert listed == {"kept.txt": hashlib.md5(b"kept").hexdigest(), "sub/new.txt": hashlib.md5(b"new").hexdigest()}
    stats = api.get(base + "/resources", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert next(r for r in stats if r["label"] == "SYNC")["file_count"] == "2"
    assert api.post("/data/services/refresh/catalog", params={"resource": "/archive/projects"}).status_code == 400
    assert api.post("/data/services/refresh/catalog", params={"resource": uri, "options": "bogus"}).status_code == 400
