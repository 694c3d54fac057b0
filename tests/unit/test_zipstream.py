"""xnatnode.zipstream's StoredZip as the import body: the same bytes as before it was made of
pieces, small members handed on in pieces, memory bounded by one piece whatever the count, files that changed since they were scanned noticed. (Its archive validity and rewinding
are in test_nifti_inputs.py; XNAT's Java reading rule in test_dicom_upload_lib.py.)"""

from __future__ import annotations

import hashlib
import io
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from xnatnode import zipstream
from xnatnode.zipstream import StoredZip, ZipMember


def _data(n: int, k: int) -> bytes:
    return (bytes(range(k, 251)) + bytes(range(k))) * (n // 251) + bytes(range(n % 251))


CONTENTS = {"000000.dcm": _data(3000, 7), "é/b.json": b"{}", "empty": b"", "big.bin": _data(70000, 3), "x": b"12345"}
#: SHA-256 of the archive of CONTENTS at mtime 1,700,000,000 (UTC), as StoredZip built it before
#: it sent pieces (commit 8b62d59), for every way a member's CRC-32 is had.
BEFORE = "a455c9610494a4d062eeed083b1c3cb19f3961fec3c78806f3076e83e270e2be"


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DOS times are local: pin the zone so the bytes are the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("known", [True, False], ids=["crc-given", "crc-computed"])
@pytest.mark.parametrize("buffered", [16 << 20, 1000], ids=["read-once", "read-twice"])
def test_the_archive_bytes_are_those_of_before(utc: None, monkeypatch: pytest.MonkeyPatch, known: bool,
                                               buffered: int) -> None:
    monkeypatch.setattr(zipstream, "BUFFERED", buffered)
    members = [ZipMember(n, len(d), zlib.crc32(d) if known else None, lambda d=d: io.BytesIO(d))
               for n, d in CONTENTS.items()]
    for size in (-1, 1 << 20, 4096, 7):
        body = StoredZip(members, mtime=1_700_000_000)
        if size < 0:
            data = body.read()
        else:
            chunks = []
            while chunk := body.read(size):
                assert len(chunk) <= size
                chunks.append(bytes(chunk))
            data = b"".join(chunks)
        assert len(data) == len(body)
        assert hashlib.sha256(data).hexdigest() == BEFORE


def test_small_members_are_pieces_handed_on_whole(tmp_path: Path) -> None:
    """An HTTP client reading 1 MiB blocks gets small objects with their local headers in pieces
    of up to PIECE bytes (one send for several, no copy to join them), all built in one reused
    buffer; a bigger one alone, in a buffer of its own; then the central directory."""
    sizes = [132_000, 5, 0, 132_000, 132_000, 700_000, 1_200_000, 7]
    members = []
    for n, size in enumerate(sizes):
        (tmp_path / f"{n}.dcm").write_bytes(_data(size, n))
        members.append(ZipMember(f"{n:06d}.dcm", size, None, lambda p=tmp_path / f"{n}.dcm": p.open("rb")))
    body = StoredZip(members)
    views, reads = [], []
    while chunk := body.read(2 << 20):
        views.append(chunk)
        reads.append(bytes(chunk))  # a read is valid until the next one
    local = [30 + 10 + s for s in sizes]
    assert zipstream.PIECE == 1 << 20
    assert [len(r) for r in reads[:-1]] == [sum(local[:5]), local[5], local[6], local[7]]
    assert len(reads[-1]) == len(sizes) * (46 + 10) + 22
    buffers = [getattr(v, "obj", None) for v in views[:4]]
    assert buffers[0] is buffers[1] is buffers[3]  # one buffer for every piece of small members
    assert buffers[2] is not buffers[0]  # the 1.2 MB member: a buffer of its own
    body.seek(0)  # a retry: the same pieces
    assert body.read(100) == reads[0][:100]  # a piece read in part: what is left comes next
    assert body.read(2 << 20) == reads[0][100:]
    assert body.read(2 << 20) == reads[1]


def test_memory_holds_one_piece_whatever_the_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = 600 << 10  # > PIECE / 2: one member a piece
    for n in range(40):
        (tmp_path / f"{n}.dcm").write_bytes(_data(size, n))
    monkeypatch.setattr(zipstream, "BUFFERED", 2 * size)
    (tmp_path / "big.bin").write_bytes(_data(6 << 20, 1))  # above BUFFERED: read twice, in blocks

    def peak(count: int, big: bool) -> int:
        members = [ZipMember(f"{n}.dcm", size, None, lambda n=n: (tmp_path / f"{n}.dcm").open("rb"))
                   for n in range(count)]
        if big:
            members.append(ZipMember("big.bin", 6 << 20, None, lambda: (tmp_path / "big.bin").open("rb")))
        body = StoredZip(members)
        tracemalloc.start()
        try:
            while body.read(1 << 20):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(40, False) < zipstream.PIECE + size  # the reused buffer, and little else
    assert peak(40, False) < peak(4, False) + (64 << 10)  # flat in the number of members
    assert peak(4, True) < 2.5 * (1 << 20)  # a big member streams in 1 MiB blocks


def test_a_file_that_grew_or_shrank_since_the_scan_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "a.dcm"
    path.write_bytes(b"x" * 20)

    def opener() -> IO[bytes]:
        return path.open("rb")

    with pytest.raises(OSError, match="longer than the 10 bytes"):  # its CRC-32 computed here
        StoredZip([ZipMember("a.dcm", 10, None, opener)]).read()
    for known in (None, 0):
        with pytest.raises(OSError, match="ended after 20 of 30"):
            StoredZip([ZipMember("a.dcm", 30, known, opener)]).read()


def test_the_crc_is_zips() -> None:
    data = _data(100_000, 9)
    assert zipstream.crc32(data) == zlib.crc32(data)
    assert zipstream.crc32(memoryview(data)[10:], 7) == zlib.crc32(data[10:], 7)
