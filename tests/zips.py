"""Zips as a streaming writer makes them: :mod:`zipfile` writing into an output it cannot seek."""

from __future__ import annotations

import io
import zipfile
from typing import Any


class _Unseekable(io.RawIOBase):
    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)


def streamed_zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    """``members`` zipped into an unseekable stream: each member's CRC-32 and sizes follow it in a
    data descriptor (flag bit 3), which Java's ``ZipInputStream`` refuses for stored members."""
    out = _Unseekable()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            with archive.open(name, "w") as member:
                member.write(data)
    return bytes(out.data)
