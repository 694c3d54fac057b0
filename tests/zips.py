"""Zips for tests: a folder zipped, and zips as a streaming writer makes them (:mod:`zipfile`
writing into an output it cannot seek)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
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


def zip_folder(folder: Path, target: Path) -> Path:
    """``folder``'s files in a zip (paths relative to ``folder``)."""
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return target
