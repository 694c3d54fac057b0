"""The streaming multipart/form-data reader, at and around its 64 KiB read boundaries."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from urllib3 import encode_multipart_formdata
from xnatsim.testing import Api

from xnatsim import multipart


def _two_files(first_size: int) -> tuple[bytes, bytes, list[bytes]]:
    """A two-file body as ``requests`` sends it: ``(body, boundary, [first, second])``."""
    first = bytes(i % 251 for i in range(first_size))
    second = b"second file\r\n--not a boundary\r\n" * 4000  # more than one read, as in the report
    body, content_type = encode_multipart_formdata({"file": ("one.bin", first), "other": ("two.txt", second)})
    return body, multipart.boundary_of(content_type), [first, second]


def _parse(body: bytes, boundary: bytes, folder: Path) -> list[multipart.Part]:
    return list(multipart.read_parts(io.BytesIO(body), len(body), boundary, folder))


def test_every_first_part_size_around_the_read_boundary(tmp_path: Path) -> None:
    """Part headers that straddle a 64 KiB read (first parts of 65,300-65,532 bytes) were refused."""
    refused = []
    for size in range(65_300, 65_533):
        folder = tmp_path / str(size)
        folder.mkdir()
        body, boundary, contents = _two_files(size)
        try:
            parts = _parse(body, boundary, folder)
        except multipart.HTTPError as exc:
            refused.append((size, exc.message))
            continue
        assert [p.filename for p in parts] == ["one.bin", "two.txt"], size
        assert [p.path.read_bytes() for p in parts] == contents, size
        assert [p.md5 for p in parts] == [hashlib.md5(c).hexdigest() for c in contents], size
    assert refused == []


def test_headers_over_the_limit_are_still_refused(tmp_path: Path) -> None:
    boundary = b"B"
    body = (b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\nX-Long: "
            + b"x" * (multipart.MAX_HEADERS + 10) + b"\r\n\r\ndata\r\n--B--\r\n")
    with pytest.raises(multipart.HTTPError, match="bad part headers"):
        _parse(body, boundary, tmp_path)


@pytest.mark.parametrize("first_size", [65_300, 65_400, 65_480])
def test_two_file_upload_over_http(api: Api, first_size: int) -> None:
    project = api.new_project("MPART")
    body, boundary, contents = _two_files(first_size)
    base = f"/data/projects/{project}/resources/UP/files"
    r = api.post(base, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"})
    assert r.status_code == 200, r.text
    assert api.get(base + "/one.bin").content == contents[0]
    assert api.get(base + "/two.txt").content == contents[1]
