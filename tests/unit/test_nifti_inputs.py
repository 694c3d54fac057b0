"""nifti-import's pure parts: safe sources, nibabel inspection, BIDS names, the mapping CSV and
the stored zip. Real files written with nibabel; hostile archives written with zipfile."""

from __future__ import annotations

import gzip
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest
from xnatnode.imports import bids
from xnatnode.imports.mapping import MappingError, read_mapping
from xnatnode.imports.sources import FolderSource, SourceError, ZipSource, normalise, open_source
from xnatnode.nifti import scan_file, scan_image
from xnatnode.zipstream import StoredZip, ZipMember, batches, zip_size

from tests.nifti_batches import write_image

# --------------------------------------------------------------------------- sources


def _zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def test_zip_members_that_escape_or_repeat_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "batch.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ok/a.nii", b"x")
        archive.writestr("../evil.nii", b"x")
        archive.writestr("/abs.nii", b"x")
        archive.writestr("C:/win.nii", b"x")
        archive.writestr("dup/b.nii", b"1")
        archive.writestr("dup//b.nii", b"2")
        archive.writestr("__MACOSX/ok/._a.nii", b"x")
    with ZipSource(path) as source:
        assert set(source.members) == {"ok/a.nii"}
        reasons = dict(source.rejected)
    assert "escapes" in reasons["../evil.nii"]
    assert "escapes" in reasons["/abs.nii"]
    assert "escapes" in reasons["C:/win.nii"]
    assert reasons["dup/b.nii"].startswith("duplicate path")


def test_zip_links_inside_are_followed_and_outside_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path / "links.zip", {"d/a.nii": b"data"},
                {"d/in.nii": "a.nii", "d/out.nii": "../../etc/passwd", "d/abs.nii": "/etc/passwd"})
    with ZipSource(path) as source:
        assert set(source.members) == {"d/a.nii", "d/in.nii"}
        assert source.open("d/in.nii").read() == b"data"
        reasons = dict(source.rejected)
    assert reasons["d/out.nii"] == reasons["d/abs.nii"] == "link points outside the source"


def test_folder_links_out_of_the_source_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "batch"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.nii").write_bytes(b"a")
    secret = tmp_path / "secret.nii"
    secret.write_bytes(b"secret")
    os.symlink(secret, root / "sub" / "out.nii")
    os.symlink(root / "sub" / "a.nii", root / "sub" / "in.nii")
    os.symlink(tmp_path, root / "dirlink")
    source = FolderSource(root)
    assert set(source.members) == {"sub/a.nii", "sub/in.nii"}
    reasons = dict(source.rejected)
    assert reasons["sub/out.nii"] == "link points outside the source"
    assert reasons["dirlink"] == "link points outside the source"
    assert source.open("sub/in.nii").read() == b"a"


def test_open_source_reads_a_folder_holding_one_zip_and_refuses_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "resource"
    folder.mkdir()
    _zip(folder / "upload.zip", {"x/a.nii": b"1"})
    with open_source(folder) as source:
        assert isinstance(source, ZipSource)
        assert set(source.members) == {"x/a.nii"}
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(SourceError, match="neither a folder nor a zip"):
        open_source(tmp_path / "plain.txt")
    with pytest.raises(SourceError, match="does not exist"):
        open_source(tmp_path / "missing")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SourceError):
        open_source(broken)


@pytest.mark.parametrize(("raw", "expected"), [
    ("a/b.nii", "a/b.nii"), ("./a//b.nii", "a/b.nii"), ("a\\b.nii", "a/b.nii"),
    ("../a", None), ("a/../../b", None), ("/a", None), ("", None), ("a\x00b", None)])
def test_normalise(raw: str, expected: str | None) -> None:
    assert normalise(raw) == expected


# --------------------------------------------------------------------------- nibabel inspection


def _scan(path: Path) -> object:
    with path.open("rb") as handle:
        return scan_image(handle, gzipped=path.name.endswith(".gz"))


def test_inspection_of_nifti1_nifti2_3d_4d(tmp_path: Path) -> None:
    one = _scan(write_image(tmp_path / "a.nii.gz", (8, 8, 4), zooms=(1.0, 1.5, 2.0)))
    assert one.problem is None
    assert one.inspection is not None
    assert one.inspection.shape == (8, 8, 4)
    assert one.inspection.frames == 1
    assert one.inspection.voxel_size == (1.0, 1.5, 2.0)
    assert one.inspection.orientation == "RAS"
    assert one.inspection.dtype == "int16"
    two = _scan(write_image(tmp_path / "b.nii", (6, 6, 4, 7), version=2))
    assert two.problem is None
    assert two.inspection.version == 2
    assert two.inspection.frames == 7
    import hashlib

    data = (tmp_path / "b.nii").read_bytes()
    assert two.digest.md5 == hashlib.md5(data).hexdigest()
    assert two.digest.size == len(data)


@pytest.mark.parametrize("shift", [(0.0, 0.0, 0.0), (-90.5, 126.0, -72.25)])
def test_orientation_codes_are_nibabels_whatever_the_translation(shift: tuple[float, float, float]) -> None:
    """The codes are computed once per rotation-zoom part; a shift of the origin changes nothing."""
    import nibabel as nib
    import numpy as np
    from nibabel.affines import from_matvec
    from xnatnode.nifti import orientation_of

    c, s = np.cos(0.3), np.sin(0.3)
    matrices = [np.diag([1.0, 1.0, 1.0]), np.diag([-0.8, 0.8, 2.5]), np.array([[0, 0, -1.2], [1.1, 0, 0], [0, 1.1, 0]]),
                np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ np.diag([0.9, 0.9, 3.0]),
                np.array([[0.0, 0, 0], [0, 1, 0], [0, 0, 1]])]  # a degenerate axis: no code
    for matrix in matrices:
        affine = from_matvec(matrix, shift)
        expected = "".join(code or "?" for code in nib.aff2axcodes(affine))
        assert orientation_of(affine) == expected
        assert orientation_of(affine.astype(np.float32)) == "".join(
            code or "?" for code in nib.aff2axcodes(affine.astype(np.float32)))
    assert orientation_of(from_matvec(matrices[2], shift)) == "ASL"
    assert orientation_of(from_matvec(matrices[4], shift)) == "?AS"


def test_bad_images_are_refused_with_a_reason(tmp_path: Path) -> None:
    good = write_image(tmp_path / "good.nii", (8, 8, 4)).read_bytes()
    good_gz = write_image(tmp_path / "good.nii.gz", (8, 8, 4)).read_bytes()
    cases = {
        "empty.nii": (b"", "empty file"),
        "short.nii": (b"hello", "not a NIfTI image"),
        "text.nii": (b"x" * 1000, "no NIfTI-1 or NIfTI-2 header"),
        "truncated.nii": (good[:-100], "truncated"),
        "truncated.nii.gz": (good_gz[: len(good_gz) // 2], "truncated gzip"),
        "notgz.nii.gz": (good, "not gzip-compressed"),
        "corrupt.nii.gz": (good_gz[:20] + b"\x00" * 40 + good_gz[60:], "gzip"),
        "pair.nii": (good[:344] + b"ni1\x00" + good[348:], "hdr/.img pair"),
        "analyze.nii": (good[:344] + b"\x00\x00\x00\x00" + good[348:], "Analyze"),
    }
    for name, (data, reason) in cases.items():
        found = scan_image(io.BytesIO(data), gzipped=name.endswith(".gz"))
        assert reason in (found.problem or ""), (name, found.problem)
    five = _scan(write_image(tmp_path / "five.nii", (2, 2, 2, 2, 2)))
    assert "5D image: unsupported" in five.problem
    two_d = _scan(write_image(tmp_path / "flat.nii", (4, 4)))
    assert "2D image: unsupported" in two_d.problem
    bad_type = bytearray(good)
    bad_type[70:72] = (999).to_bytes(2, "little")  # datatype code nobody knows
    assert "corrupt NIfTI-1 header" in scan_image(io.BytesIO(bytes(bad_type)), gzipped=False).problem


def test_concatenated_gzip_members_are_one_image(tmp_path: Path) -> None:
    raw = write_image(tmp_path / "a.nii", (8, 8, 4)).read_bytes()
    data = gzip.compress(raw[:1000]) + gzip.compress(raw[1000:])
    assert scan_image(io.BytesIO(data), gzipped=True).problem is None


def test_scan_file_keeps_small_content_only() -> None:
    assert scan_file(io.BytesIO(b"{}"), keep=10).content == b"{}"
    assert scan_file(io.BytesIO(b"x" * 20), keep=10).content is None


# --------------------------------------------------------------------------- BIDS names


def test_bids_names() -> None:
    name = bids.parse("ds/sub-01/ses-v1/func/sub-01_ses-v1_task-rest_acq-mb_run-02_bold.nii.gz")
    assert name is not None
    assert (name.sub, name.ses, name.datatype, name.suffix) == ("01", "v1", "func", "bold")
    assert name.scan_type == "task-rest_acq-mb_run-02_bold"
    assert name.modality == "mr"
    assert bids.parse("sub-01/anat/sub-01_T1w.nii").scan_type == "T1w"
    assert bids.parse("sub-01/pet/sub-01_trc-FDG_pet.nii.gz").modality == "pet"
    assert bids.parse("sub-01/anat/sub-01_ct.nii.gz").modality == "ct"
    assert bids.parse("sub-01/eeg/sub-01_task-x_eeg.edf").modality is None
    # folder and file disagree, no datatype folder, not BIDS at all
    assert bids.parse("sub-02/anat/sub-01_T1w.nii") is None
    assert bids.parse("sub-01/ses-a/anat/sub-01_ses-b_T1w.nii") is None
    assert bids.parse("sub-01_T1w.nii") is None
    assert bids.parse("scans/brain.nii") is None


# --------------------------------------------------------------------------- mapping CSV


def test_mapping_separators_bom_crlf_and_strings() -> None:
    for sep in (",", ";", "\t"):
        text = sep.join(["source", "Subject ", "session", "scan", "date"]) + "\r\n" + sep.join(
            ["a/b.nii", "001", "001_v1", "07", "20240102"]) + "\r\n"
        mapping = read_mapping(("\ufeff" + text).encode("utf-8"), "m.csv")
        row = mapping.rows[0]
        assert (row.source, row.subject, row.session, row.scan, row.date) == (
            "a/b.nii", "001", "001_v1", "07", "2024-01-02")
        assert mapping.problems == []


def test_mapping_problems_are_per_row() -> None:
    text = ("source,subject,session,colour,modality,date\n"
            "a.nii,s1,e1,red,MR,\n"
            "a.nii,s1,e1,red,MR,\n"          # duplicate: ignored
            "b.nii,s1,,x,MR,\n"              # empty session
            "c.nii,s1,e1,x,XR,\n"            # bad modality
            "d.nii,s1,e1,x,PT,01/02/2024\n"  # bad date
            "../e.nii,s1,e1,x,,\n"           # escapes
            "f.nii,s1,e1,x,,\n"
            "f.nii,s2,e2,x,,\n")             # same source, two targets
    mapping = read_mapping(text.encode(), "m.csv")
    assert [r.source for r in mapping.rows] == ["a.nii"]
    assert mapping.rows[0].modality == "mr"
    assert any("unknown column(s) ignored: colour" in p for p in mapping.problems)
    assert any("duplicate of line 2" in p for p in mapping.problems)
    bad = dict(mapping.bad_rows)
    assert "empty session" in bad["b.nii"]
    assert "modality 'XR'" in bad["c.nii"]
    assert "not YYYY-MM-DD" in bad["d.nii"]
    assert "not a path inside" in bad["../e.nii"]
    assert "different targets" in bad["f.nii"]


@pytest.mark.parametrize(("data", "message"), [
    (b"source,subject\na,b\n", "lacks the required column"),
    (b"", "is empty"),
    (b"\xff\xfe\x00s", "not UTF-8"),
])
def test_mapping_errors(data: bytes, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        read_mapping(data, "m.csv")


# --------------------------------------------------------------------------- stored zip


def test_stored_zip_is_a_valid_rewindable_archive(tmp_path: Path) -> None:
    import zlib

    contents = {"a.nii.gz": os.urandom(3000), "é/b.json": b"{}", "empty.txt": b""}
    members = [ZipMember(n, len(d), zlib.crc32(d), lambda d=d: io.BytesIO(d)) for n, d in contents.items()]
    body = StoredZip(members)
    assert len(body) == zip_size(members)
    first = body.read(100) + body.read()
    assert len(first) == len(body)
    body.seek(0)
    assert body.read() == first
    body.seek(50)
    assert body.tell() == 50
    assert body.read(10) == first[50:60]
    archive = zipfile.ZipFile(io.BytesIO(first))
    assert archive.testzip() is None
    assert {i.filename: archive.read(i) for i in archive.infolist()} == contents
    assert all(i.compress_type == zipfile.ZIP_STORED and not i.flag_bits & 0x8 for i in archive.infolist())


def test_stored_zip_notices_a_file_that_shrank() -> None:
    body = StoredZip([ZipMember("a", 10, 0, lambda: io.BytesIO(b"short"))])
    with pytest.raises(OSError, match="ended after 5 of 10"):
        body.read()


def test_batches_split_big_resources() -> None:
    big = [ZipMember(f"f{i}", 1_500_000_000, 0, lambda: io.BytesIO()) for i in range(5)]
    groups = list(batches(big))
    assert [len(g) for g in groups] == [2, 2, 1]
