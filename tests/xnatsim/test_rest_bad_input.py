"""Bad input gets XNAT's error status with a clear message, and nothing is written."""

from __future__ import annotations

import base64
import http.client
import io
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from xnatsim.testing import Api, Server, running_server

from tests.zips import streamed_zip


def raw(server_url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, str]:
    """Send ``path`` exactly as given (``requests`` would normalise ``..`` segments away)."""
    parts = urlsplit(server_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    auth = base64.b64encode(b"admin:admin").decode()
    conn.request(method, path, body=body, headers={"Authorization": f"Basic {auth}", **(headers or {})})
    response = conn.getresponse()
    text = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, text


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def target(api: Api) -> tuple[str, str]:
    p = api.new_project("BAD")
    eid = api.put(f"/data/projects/{p}/subjects/S/experiments/MR1", params={"xsiType": "xnat:mrSessionData"}).text
    api.put(f"/data/experiments/{eid}/scans/1", params={"xsiType": "xnat:mrScanData"})
    api.put(f"/data/experiments/{eid}/scans/1/resources/R/files/ok.txt", data=b"ok")
    return p, eid


@pytest.mark.parametrize("path", [
    "/data/projects/{p}/subjects/..",
    "/data/projects/{p}/subjects/a%2Fb",
    "/data/projects/{p}/subjects/a%00b",
    "/data/projects/{p}/subjects/S/experiments/..?xsiType=xnat:mrSessionData",
    "/data/projects/{p}/subjects/S/experiments/x%2F..%2F..%2Fetc?xsiType=xnat:mrSessionData",
    "/data/experiments/{e}/scans/..?xsiType=xnat:mrScanData",
    "/data/experiments/{e}/scans/1/resources/..",
    "/data/experiments/{e}/scans/1/resources/R/files/../../evil.txt",
    "/data/experiments/{e}/scans/1/resources/R/files/a/%2e%2e/%2e%2e/evil.txt",
    "/data/experiments/{e}/scans/1/resources/R/files//etc/evil.txt",
    "/data/experiments/{e}/scans/1/resources/R/files/a%5C..%5Cevil.txt",
    "/data/experiments/{e}/scans/1/resources/R/files/nul%00.txt",
    "/data/experiments/{e}/scans/1/resources/R/files/R_catalog.xml",
    "/data/projects/{p}/subjects/" + "s" * 201,
    "/data/projects/{p}/subjects/S/experiments/" + "e" * 201 + "?xsiType=xnat:mrSessionData",
    "/data/experiments/{e}/scans/" + "1" * 201 + "?xsiType=xnat:mrScanData",
    "/data/experiments/{e}/scans/1/resources/" + "r" * 201 + "/files/x.txt",
    "/data/experiments/{e}/scans/1/resources/R/files/" + "f" * 256,
    "/data/experiments/{e}/scans/1/resources/R/files/" + "/".join(["d" * 200] * 6),
    "/data/projects/" + "P" * 201 + "?xsiType=xnat:projectData",
])
def test_escaping_names_are_refused(xnatsim_server: Server, target: tuple[str, str], path: str) -> None:
    p, eid = target
    root = xnatsim_server.store.archive_dir
    before = snapshot(root)
    status, text = raw(xnatsim_server.url, "PUT", path.format(p=p, e=eid), b"data",
                       {"Content-Type": "application/octet-stream"})
    assert status in (400, 404), text
    assert "<h3>" in text
    assert snapshot(root) == before
    assert not list(xnatsim_server.store.tmp_dir.iterdir())


def _zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.txt", b"fine")
        for name, payload in entries.items():
            zf.writestr(name, payload)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _tar(kind: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        good = tarfile.TarInfo("good.txt")
        good.size = 4
        tf.addfile(good, io.BytesIO(b"fine"))
        bad = tarfile.TarInfo({"abs": "/tmp/evil.txt", "dotdot": "../evil.txt", "sym": "link",
                               "hard": "hard", "dev": "dev"}[kind])
        if kind == "sym":
            bad.type, bad.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hard":
            bad.type, bad.linkname = tarfile.LNKTYPE, "good.txt"
        elif kind == "dev":
            bad.type = tarfile.CHRTYPE
        else:
            bad.size = 4
        tf.addfile(bad, io.BytesIO(b"evil") if bad.size else None)
    return buf.getvalue()


@pytest.mark.parametrize(("name", "payload"), [
    ("up.zip", _zip({"../evil.txt": b"x"})),
    ("up.zip", _zip({"/abs/evil.txt": b"x"})),
    ("up.zip", _zip({"a/../../evil.txt": b"x"})),
    ("up.zip", _zip({}, symlink="link")),
    ("up.zip", b"this is not a zip"),
    ("up.zip", streamed_zip({"good.txt": b"fine", "more.txt": b"fine"})),  # Java's ZipInputStream refuses it (no CRC in the local header)
    ("up.zip", _zip({"a\\..\\..\\evil.txt": b"x"})),
    ("up.zip", _zip({"d/x.txt": b"x", "d": b"y"})),
    ("up.zip", _zip({"d": b"y", "d/x.txt": b"x"})),
    ("up.zip", _zip({"R_catalog.xml": b"<x/>"})),
    ("up.tar.gz", _tar("abs")),
    ("up.tar.gz", _tar("dotdot")),
    ("up.tar.gz", _tar("sym")),
    ("up.tar.gz", _tar("hard")),
    ("up.tar.gz", _tar("dev")),
])
def test_hostile_archives_are_refused_whole(api: Api, xnatsim_server: Server, target: tuple[str, str],
                                            name: str, payload: bytes) -> None:
    _, eid = target
    root = xnatsim_server.store.archive_dir
    before = snapshot(root)
    r = api.put(f"/data/experiments/{eid}/scans/1/resources/R/files/{name}", params={"extract": "true"}, data=payload)
    assert r.status_code == 400, r.text
    assert str(xnatsim_server.store.tmp_dir) not in r.text  # a clear message, not a server path
    assert snapshot(root) == before  # not even good.txt
    names = [f["Name"] for f in api.get(f"/data/experiments/{eid}/scans/1/resources/R/files").json()["ResultSet"]["Result"]]
    assert names == ["ok.txt"]


def test_malformed_bodies(api: Api, target: tuple[str, str]) -> None:
    _, eid = target
    url = f"/data/experiments/{eid}/scans/1/resources/R/files"
    r = api.post(url, data=b"--nope\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=zzz"})
    assert r.status_code == 400
    r = api.post(url, data=b"x", headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 400
    assert "boundary" in r.text
    r = api.put(url + "/x.txt", params={"inbody": "true"}, files={"f": ("x.txt", b"x")})
    assert r.status_code == 406
    assert api.post(url, data=b"raw without a name").status_code == 400
    assert api.post("/xnatsim/faults", data=b"[1]").status_code == 400
    assert api.post("/xnatsim/faults", json={"fail_rate": 3}).status_code == 400
    assert api.put(f"/data/experiments/{eid}/scans/2", params={"xsiType": "xnat:notAScan"}).status_code == 400


def test_oversize_bodies_are_refused(tmp_path: Path) -> None:
    with running_server(tmp_path, max_body=1024, fetch_schemas=False) as server:
        api = Api(server)
        api.put("/data/projects/SMALL", params={"xsiType": "xnat:projectData"})
        before = snapshot(server.store.archive_dir)
        r = api.put("/data/projects/SMALL/resources/R/files/big.bin", data=b"x" * 4096)
        assert r.status_code == 413
        assert "too large" in r.text
        assert snapshot(server.store.archive_dir) == before
        assert api.put("/data/projects/SMALL/resources/R/files/small.bin", data=b"x" * 100).status_code == 200
        server.reset_stats()
        status, text = raw(server.url, "PUT", "/data/projects/SMALL/resources/R/files/expect.bin",
                           headers={"Expect": "100-continue", "Content-Length": "5000"})
        assert status == 413
        assert "too large" in text
        stats = server.stats(with_log=True)  # refused before the body, still counted
        assert (stats["requests"], stats["statuses"]) == (1, {"413": 1})
        assert stats["log"][0]["path"] == "/data/projects/SMALL/resources/R/files/expect.bin"
        chunked = api.put("/data/projects/SMALL/resources/R/files/chunked.bin", data=iter([b"x" * 800] * 3))
        assert chunked.status_code == 413
        bomb = io.BytesIO()  # 256 kB of zeros in a < 1 kB zip: beyond the unpack limit (10 x the body limit)
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("bomb.bin", bytes(256 * 1024))
        assert len(bomb.getvalue()) <= 1024
        r = api.put("/data/projects/SMALL/resources/R/files/bomb.zip", params={"extract": "true"}, data=bomb.getvalue())
        assert r.status_code == 413, r.text
        assert "size limit" in r.text
        assert not list(server.store.tmp_dir.iterdir())
        assert {p for p in snapshot(server.store.archive_dir) - before if p.endswith(".bin")} == {
            "SMALL/resources/R/small.bin"}


@pytest.mark.parametrize("filename", ["../../evil.txt", "/abs/evil.txt", "a\\..\\..\\evil.txt", "C:\\x\\evil.txt"])
def test_multipart_file_names_keep_only_their_last_part(api: Api, xnatsim_server: Server, target: tuple[str, str],
                                                        filename: str) -> None:
    p, eid = target
    root = xnatsim_server.store.archive_dir
    before = snapshot(root)
    r = api.post(f"/data/experiments/{eid}/scans/1/resources/R/files", files={"file": (filename, b"data")})
    assert r.status_code == 200, r.text
    assert {p.rsplit("/", 1)[-1] for p in snapshot(root) - before} == {"evil.txt"}
    assert all(new.startswith(f"{p}/arc001/MR1/SCANS/1/R/") for new in snapshot(root) - before)
    assert api.delete(f"/data/experiments/{eid}/scans/1/resources/R/files/evil.txt").status_code == 200
    assert snapshot(root) == before


@pytest.mark.parametrize("path", ["%2F", "%2F%2F", "a%2F..%2F..", "%2e%2e"])
def test_odd_delete_paths_delete_nothing(xnatsim_server: Server, target: tuple[str, str], path: str) -> None:
    _, eid = target
    root = xnatsim_server.store.archive_dir
    before = snapshot(root)
    status, text = raw(xnatsim_server.url, "DELETE", f"/data/experiments/{eid}/scans/1/resources/R/files/{path}")
    assert status in (400, 404), text
    assert snapshot(root) == before


def test_xml_document_bodies_are_refused_and_form_bodies_read(api: Api, target: tuple[str, str]) -> None:
    """xnatsim sets fields from parameters only: an XML document (valid or not) is refused with 400
    rather than silently dropped; form-encoded fields count like query parameters."""
    p, eid = target
    xml = {"Content-Type": "text/xml"}
    document = b'<xnat:MRSession xmlns:xnat="http://nrg.wustl.edu/xnat" label="X1"><xnat:note>n</xnat:note>'
    for url in (f"/data/projects/{p}/subjects/NEW_S", f"/data/projects/{p}/subjects/S/experiments/NEW_E",
                f"/data/experiments/{eid}/scans/77", f"/data/experiments/{eid}/resources/NEW_R", "/data/projects/NEWPX"):
        for body in (document, document + b"</xnat:MRSession>"):
            r = api.put(url, data=body, headers=xml, params={"xsiType": "xnat:mrSessionData"} if "NEW_E" in url else {})
            assert r.status_code == 400, (url, r.text)
            assert "query parameters" in r.text
            assert api.get(url).status_code == 404
    r = api.put(f"/data/projects/{p}/subjects/FORM_S/experiments/FORM_E",
                data={"xsiType": "xnat:mrSessionData", "date": "2024-01-02", "note": "from the form"})
    assert r.status_code == 201, r.text
    fields = api.get(f"/data/projects/{p}/subjects/FORM_S/experiments/FORM_E",
                     params={"format": "json"}).json()["items"][0]["data_fields"]
    assert (fields["date"], fields["note"]) == ("2024-01-02", "from the form")
