"""A streaming ``multipart/form-data`` reader: each file part is written to disk as it arrives.

Hand-written because the standard library has no streaming parser (``email`` holds the whole body
in memory, ``cgi`` is gone from Python 3.13) and uploads here may be gigabytes. Reads are 64 KiB;
a part's headers may span reads (tests/xnatsim/test_multipart.py sweeps those boundaries).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xnatsim.routing import Body, HTTPError

CHUNK = 1 << 16
#: the longest header block of one part (bytes)
MAX_HEADERS = 64 * 1024
_DISPOSITION_NAME = re.compile(r'(?:^|;)\s*name="([^"]*)"')
_DISPOSITION_FILENAME = re.compile(r'(?:^|;)\s*filename="([^"]*)"')


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    path: Path
    size: int
    md5: str


def boundary_of(content_type_header: str) -> bytes:
    found = re.search(r'boundary="?([^";]+)"?', content_type_header)
    if not found:
        raise HTTPError(400, "multipart/form-data without a boundary.")
    return found.group(1).encode("latin-1")


def read_parts(body: Body, length: int, boundary: bytes, folder: Path) -> Iterator[Part]:
    """Parse the body, writing every part's content to a new file in ``folder``."""
    delimiter = b"\r\n--" + boundary
    buffer = b"\r\n"
    remaining = length

    def fill() -> bool:
        nonlocal buffer, remaining
        if remaining <= 0:
            return False
        data = body.read(min(CHUNK, remaining))
        if not data:
            remaining = 0
            return False
        remaining -= len(data)
        buffer += data
        return True

    # skip the preamble up to the first delimiter
    while delimiter not in buffer:
        if not fill():
            raise HTTPError(400, "Malformed multipart body: no boundary found.")
        buffer = buffer[-(len(delimiter) + CHUNK):]
    buffer = buffer[buffer.index(delimiter) + len(delimiter):]
    index = 0
    while True:
        while len(buffer) < 2 and fill():
            pass
        if buffer.startswith(b"--"):
            return
        # the buffer starts at this part's headers and may already hold much of its content: only
        # the headers (up to the blank line) count against the limit, wherever a read ended
        while (end := buffer.find(b"\r\n\r\n")) < 0 and len(buffer) <= MAX_HEADERS and fill():
            pass
        if not 0 <= end <= MAX_HEADERS:
            raise HTTPError(400, "Malformed multipart body: bad part headers.")
        head, buffer = buffer[:end], buffer[end + 4:]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name_match = _DISPOSITION_NAME.search(disposition)
        file_match = _DISPOSITION_FILENAME.search(disposition)
        index += 1
        target = folder / f"part-{index}"
        digest = hashlib.md5()
        size = 0
        with target.open("wb") as out:
            while True:
                at = buffer.find(delimiter)
                if at >= 0:
                    out.write(buffer[:at])
                    digest.update(buffer[:at])
                    size += at
                    buffer = buffer[at + len(delimiter):]
                    break
                keep = len(delimiter)
                if len(buffer) > keep:
                    out.write(buffer[:-keep])
                    digest.update(buffer[:-keep])
                    size += len(buffer) - keep
                    buffer = buffer[-keep:]
                if not fill():
                    raise HTTPError(400, "Malformed multipart body: unterminated part.")
        yield Part(name_match.group(1) if name_match else "", file_match.group(1) if file_match else None,
                   headers.get("content-type", "application/octet-stream"), target, size, digest.hexdigest())
