"""dicom-upload's library pieces in process: the CSV map, batching for C-STORE, the streamed zip,
XNAT's import answers, header reading and the state file."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from xnatnode.cstore import MAX_CONTEXTS, Answer, batches, read_answer, store_request, with_comment
from xnatnode.dicom import DicomObject, SourceError, read_header, resolve_source, scan_source
from xnatnode.importzip import classify, zip_body
from xnatnode.uploadmap import MapError, Row, State, read_map


def obj(n: int, sop_class: str = "1.2.840.10008.5.1.4.1.1.4", syntax: str = "1.2.840.10008.1.2.1") -> DicomObject:
    return DicomObject(f"{n}.dcm", "1.2.3", "1.2.3.4", "1", f"1.2.3.4.{n}", sop_class, syntax, "MR", 10)


def test_map_sniffs_separator_bom_and_crlf_and_reports_bad_rows(tmp_path: Path) -> None:
    text = ("source;project;subject;session;notes\r\n"
            "a;P1;S1;S1_MR1;ok\r\n"
            ";P1;S2;S2_MR1;no source\r\n"
            "b;P1;with space;S3_MR1;\r\n"
            "c;P1;S4;S1_MR1;same session\r\n"
            "d;P 1;S5;S5_MR1;\r\n"
            "e;P1;S6;séance;\r\n")
    path = tmp_path / "map.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    good, bad = read_map(path)
    assert [(r.line, r.source, r.notes) for r in good] == [(2, "a", "ok")]
    reasons = {b.row.line: b.reason for b in bad}
    assert reasons[3] == "no source given"
    assert reasons[4].startswith("illegal subject 'with space'")
    assert reasons[5] == "the same session as line 2"
    assert reasons[6].startswith("illegal project")
    assert reasons[7].startswith("illegal session")


def test_map_warns_about_unknown_columns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "map.csv"
    path.write_text("source,project,subject,session,modalty\na,P1,S1,S1_MR1,MR\n")
    good, bad = read_map(path)
    assert len(good) == 1
    assert not bad
    assert "CSV map map.csv: unknown column(s) ignored: modalty" in caplog.text


def test_echo_names_an_unknown_receiver_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown --dicom-host is ReceiverUnreachable (exit 3) with the reason, not a traceback."""
    import socket

    from xnatnode.cstore import ReceiverUnreachable, Target, echo

    def no_such_host(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)  # no DNS query leaves the machine
    with pytest.raises(ReceiverUnreachable, match="did not answer \\(unknown host no-such-host\\)"):
        echo(Target("no-such-host", 8104))


def test_map_restricted_to_one_project(tmp_path: Path) -> None:
    """--project P: a row for another project is bad (nothing of it goes on), an empty cell is P;
    the same session under an empty cell and under P is one session."""
    path = tmp_path / "map.csv"
    path.write_text("source,project,subject,session\n"
                    "a,P1,S1,S1_MR1\n"
                    "b,P2,S2,S2_MR1\n"
                    "c,,S3,S3_MR1\n"
                    "d,p1,S4,S4_MR1\n"
                    "e,,S1,S1_MR1\n")
    good, bad = read_map(path, "P1")
    assert [(r.line, r.project) for r in good] == [(2, "P1"), (4, "P1")]
    reasons = {b.row.line: b.reason for b in bad}
    assert set(reasons) == {3, 5, 6}
    assert "for project 'P2'" in reasons[3]
    assert "restricted to project P1" in reasons[3]
    assert "for project 'p1'" in reasons[5]
    assert reasons[6] == "the same session as line 2"
    unrestricted, bad = read_map(path)
    assert [r.line for r in unrestricted] == [2, 3, 5]
    assert {b.row.line for b in bad} == {4, 6}  # an empty project cell is illegal without --project


def test_map_without_required_columns(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("folder,project\nx,y\n")
    with pytest.raises(MapError, match="lacks the column"):
        read_map(path)
    with pytest.raises(MapError, match="does not exist"):
        read_map(tmp_path / "missing.csv")


def test_batches_respect_size_and_128_contexts() -> None:
    objects = [obj(n, sop_class=f"1.2.840.10008.5.1.4.1.1.{n % 200}") for n in range(400)]
    parts = batches(objects, 500)
    assert sum(len(b) for b in parts) == 400
    assert all(len({(o.sop_class, o.transfer_syntax) for o in b}) <= MAX_CONTEXTS for b in parts)
    assert [len(b) for b in batches([obj(n) for n in range(10)], 4)] == [4, 4, 2]


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
@pytest.mark.parametrize("old_comment", [None, "Project: OLD Subject: X Session: Y"])
def test_with_comment_sets_patient_comments_in_the_encoded_bytes(syntax: str, old_comment: str | None) -> None:
    import pydicom
    from pydicom.uid import UID
    from pynetdicom.dsutils import decode, encode

    from xnatsim import synth

    ds = pydicom.dcmread(io.BytesIO(synth.dicom_bytes(synth.DicomLabels("P", "S", "E", "1", "x"), rows=16, columns=16)))
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    if old_comment is None:
        ds.pop("PatientComments", None)
    else:
        ds.PatientComments = old_comment
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    raw = buffer.getvalue()

    patched = with_comment(raw, syntax, "Project: P Subject: S Session: E")
    assert patched is not None
    implicit = syntax == "1.2.840.10008.1.2"
    again = decode(io.BytesIO(patched), implicit, True)
    assert again.PatientComments == "Project: P Subject: S Session: E"
    assert again.PixelData == ds.PixelData
    assert [e.tag for e in again if e.tag != 0x00104000] == [e.tag for e in ds if e.tag != 0x00104000]
    ds.PatientComments = "Project: P Subject: S Session: E"
    assert patched == encode(ds, implicit, True)  # what pynetdicom would have sent, byte for byte
    assert with_comment(raw, "1.2.840.10008.1.2.1.99", "x") is None  # deflated: decoded instead
    assert with_comment(raw[132:], syntax, "x") is None  # no Part 10 preamble


@pytest.mark.parametrize(("message_id", "sop_uid"), [(1, "1.2.3.45"), (65535, "1.2.826.0.1.3680043.8.498.1234567")])
def test_store_request_is_the_command_set_pynetdicom_encodes(message_id: int, sop_uid: str) -> None:
    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.dsutils import encode

    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    request.AffectedSOPInstanceUID = sop_uid
    request.Priority = 2
    request.DataSet = io.BytesIO(b"\0\0")
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    assert store_request(message_id, "1.2.840.10008.5.1.4.1.1.4", sop_uid) == encode(message.command_set, True, True)


@pytest.mark.parametrize(("status", "comment"), [(0x0000, None), (0xB007, None), (0xA900, "Bad routing"),
                                                 (0xC000, "odd length"), (0xA700, None)])
def test_read_answer_reads_what_pynetdicom_encodes(status: int, comment: str | None) -> None:
    from pynetdicom.dimse_messages import C_STORE_RSP
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.dsutils import encode

    answer = C_STORE()
    answer.MessageIDBeingRespondedTo = 7
    answer.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    answer.AffectedSOPInstanceUID = "1.2.3.45"
    answer.Status = status
    if comment is not None:
        answer.ErrorComment = comment
    message = C_STORE_RSP()
    message.primitive_to_message(answer)
    command = encode(message.command_set, True, True)
    assert read_answer(command) == Answer(7, status, comment or "")
    assert read_answer(command[:-3]) is None  # truncated
    assert read_answer(store_request(7, "1.2.3", "1.2.3.4")) is None  # a request is no answer


def test_zip_body_reads_like_javas_zip_input_stream(tmp_path: Path) -> None:
    """XNAT reads the upload with java.util.zip.ZipInputStream: local headers in order, each
    stored member with its CRC-32 and sizes there (no data descriptor, which it refuses)."""
    import struct
    import zlib

    from xnatnode.dicom import DicomObject, SourceScan

    folder = tmp_path / "src"
    folder.mkdir()
    payloads = {f"f{n}.bin": bytes([n]) * (300_000 + n) for n in range(7)}
    for name, data in payloads.items():
        (folder / name).write_bytes(data)
    objects = [DicomObject(name, "1.2", "1.2.3", "1", f"1.2.3.{n}", "1.2.840.10008.5.1.4.1.1.4",
                           "1.2.840.10008.1.2.1", "MR", len(data)) for n, (name, data) in enumerate(sorted(payloads.items()))]
    with zip_body(SourceScan(folder, False), objects) as body:
        chunks = []
        while chunk := body.read(65536):
            assert len(chunk) <= 65536
            chunks.append(bytes(chunk))  # a read is valid until the next one
        data = b"".join(chunks)
        assert len(data) == len(body)
        body.seek(0)  # a retry sends the same bytes again
        assert body.read() == data
    offset, seen = 0, []
    while data[offset:offset + 4] == b"PK\x03\x04":
        flags, method, _, _, crc, csize, size, nlen, xlen = struct.unpack("<HHHHIIIHH", data[offset + 6:offset + 30])
        assert not flags & 0x8
        assert method == 0
        assert csize == size
        start = offset + 30 + nlen + xlen
        member = data[start:start + size]
        assert zlib.crc32(member) == crc
        seen.append(member)
        offset = start + size
    assert seen == [payloads[n] for n in sorted(payloads)]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert [i.filename for i in archive.infolist()] == [f"{n:06d}.dcm" for n in range(7)]

def test_classify_xnat_answers() -> None:
    assert classify(200, "/data/archive/projects/P/subjects/S/experiments/E").outcome == "archived"
    assert classify(200, "/data/prearchive/projects/P/20240101_000000000/E").outcome == "prearchived"
    page = "<html><body><h3>Session already exists, retry with overwrite enabled</h3></body></html>"
    answer = classify(409, page)
    assert answer.outcome == "conflict"
    assert "Session already exists, retry with overwrite enabled" in answer.reason
    assert "--overwrite append" in answer.reason
    assert classify(400, "Upload did not include parsable files").outcome == "refused"


def test_read_header_non_dicom_truncated_and_missing_uids(tmp_path: Path) -> None:
    from xnatsim import synth

    data = synth.dicom_bytes(synth.DicomLabels("P", "S", "E", "1", "x"), rows=64, columns=64)
    found = read_header(io.BytesIO(data), len(data))
    assert isinstance(found, DicomObject)
    assert found.series_number == "1"
    cut = data[:-200]
    assert "truncated" in str(read_header(io.BytesIO(cut), len(cut)))
    assert read_header(io.BytesIO(b"x" * 300), 300) == "not DICOM"


def test_scan_source_never_follows_links_and_stays_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.dcm").write_bytes(b"x" * 200)
    (root / "a" / "link.dcm").symlink_to(outside / "secret.dcm")
    (root / "a" / "dirlink").symlink_to(outside)
    scan = scan_source(root / "a")
    assert {s.name: s.reason for s in scan.skipped} == {"dirlink": "symbolic link (not followed)",
                                                       "link.dcm": "symbolic link (not followed)"}
    with pytest.raises(SourceError, match="outside"):
        resolve_source(root, "../outside")
    with pytest.raises(SourceError, match="does not exist"):
        resolve_source(root, "nope")


def test_state_survives_a_reload_and_is_keyed_by_row_and_study(tmp_path: Path) -> None:
    path = tmp_path / "upload-state.json"
    row = Row(2, "a", "P", "S", "E")
    state = State(path)
    state.entry(row, "1.2.3")
    state.add_stored(row, "1.2.3", ["1.2.3.4.1", "1.2.3.4.2"])
    state.set_outcome(row, "1.2.3", "verified", "cstore")
    state.save()
    again = State(path)
    assert again.stored(row, "1.2.3") == {"1.2.3.4.1", "1.2.3.4.2"}
    assert again.outcome(row, "1.2.3") == "verified"
    assert again.stored(row, "9.9.9") == set()
    path.write_text("{broken")
    with pytest.raises(MapError, match="unreadable"):
        State(path)


def test_the_opener_reads_whole_files_and_refuses_a_link_put_in_after_the_scan(tmp_path: Path) -> None:
    from xnatnode.dicom import SourceScan

    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.dcm").write_bytes(b"a" * 1000)
    (folder / "b.dcm").write_bytes(b"b" * 10)
    (tmp_path / "secret").write_bytes(b"s")
    with SourceScan(folder, False).opened() as opener:
        with opener.open("sub/a.dcm") as stream:
            assert stream.read() == b"a" * 1000
        (folder / "b.dcm").unlink()
        (folder / "b.dcm").symlink_to(tmp_path / "secret")
        with pytest.raises(OSError, match="symbolic links"):  # ELOOP: O_NOFOLLOW
            opener.open("b.dcm")
