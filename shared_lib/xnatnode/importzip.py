"""Sending one source to XNAT's import service as a stored zip streamed on the fly.

The zip is written by :mod:`zipfile` into a small buffer that is emptied after each chunk, so a
session of any size goes out with memory bounded by :data:`CHUNK` (``ZIP_STORED``: DICOM does
not compress much and the server then reads it at disk speed). The body is sent with chunked
transfer encoding to ``POST /data/services/import`` with the ``DICOM-zip`` handler and the
``project``/``subject``/``session`` parameters (the names that handler reads), to
``dest=/archive/projects/P`` when the project auto-archives, else ``dest=/prearchive/projects/P``
(``shared/reference/dicom-upload.md`` §4, §8).

XNAT's answers are mapped to per-row outcomes by :func:`classify`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from xnatnode.dicom import SourceScan

CHUNK = 1 << 20


class _Sink(io.RawIOBase):
    """A write-only, unseekable buffer that :func:`stream_zip` drains after each write.

    Written blocks are kept as they come (no copy) and joined once when taken.
    """

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        out = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return out


def stream_zip(scan: SourceScan, names: list[str], *, on_bytes: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The bytes of a stored zip holding ``names`` of ``scan``, produced a chunk at a time."""
    sink = _Sink()
    with scan.opened() as opener, zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for index, name in enumerate(names):
            info = zipfile.ZipInfo(f"{index:06d}.dcm")
            with opener.open(name) as source, archive.open(info, "w", force_zip64=True) as target:
                while block := source.read(CHUNK):
                    target.write(block)
                    if sink.size >= CHUNK:
                        data = sink.take()
                        if on_bytes is not None:
                            on_bytes(len(data))
                        yield data
        # the central directory is written when the archive closes
    tail = sink.take()
    if tail:
        if on_bytes is not None:
            on_bytes(len(tail))
        yield tail


@dataclass(frozen=True)
class ImportAnswer:
    """XNAT's answer to one import, as a row outcome."""

    outcome: str  # "archived", "prearchived", "conflict", "refused"
    reason: str
    uris: tuple[str, ...] = ()


CONFLICT_HINTS = {
    "Session already exists": "the session already exists (use --overwrite append to add to it)",
    "Invalid modification of session UID": "the session exists in XNAT with another StudyInstanceUID",
    "Invalid modification of session subject": "the session label exists for another subject",
    "Invalid modification of session modality": "the session exists with another modality",
    "Upload included files for multiple imaging sessions": "the source holds more than one session",
}


def classify(status: int, text: str) -> ImportAnswer:
    """A per-row outcome for the import service's status and body."""
    body = text.strip()
    if status == 200:
        uris = tuple(line.strip() for line in body.splitlines() if line.strip())
        if uris and all("/archive/" in u or u.startswith("/xapi/direct-archive") for u in uris):
            return ImportAnswer("archived", "", uris)
        return ImportAnswer("prearchived", "in the prearchive: " + ", ".join(uris), uris)
    detail = _status_text(body)
    for key, hint in CONFLICT_HINTS.items():
        if key in detail:
            return ImportAnswer("conflict", f"XNAT {status}: {detail} ({hint})")
    return ImportAnswer("conflict" if status == 409 else "refused", f"XNAT {status}: {detail}")


def _status_text(body: str) -> str:
    """The message of XNAT's HTML status page (``<h3>…</h3>``), else the first line."""
    import re

    found = re.search(r"<h3>(.*?)</h3>", body, re.DOTALL)
    text = found.group(1) if found else (body.splitlines()[0] if body else "")
    return " ".join(text.split())[:300]
