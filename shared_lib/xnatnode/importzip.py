"""Sending one source to XNAT's import service as a stored zip built on the fly.

XNAT's ``DICOM-zip`` handler reads the upload with Java's ``ZipInputStream``
(``DicomZipImporter.importZipFile``), which refuses a stored member followed by a data descriptor
("only DEFLATED entries can have EXT descriptor"), and that is what :mod:`zipfile` writes to a
stream it cannot seek. So the body is a :class:`xnatnode.zipstream.StoredZip`: CRC-32 and sizes in
every local header (each object's CRC is computed as the archive reaches it, the object read once),
a ``Content-Length`` known up front, memory bounded by one object, and rewindable for a retry.
``ZIP_STORED``: DICOM does not compress much and the server then reads it at disk speed. It goes to
``POST /data/services/import`` with the ``DICOM-zip`` handler and the ``project``/``subject``/
``session`` parameters (the names that handler reads), to ``dest=/archive/projects/P`` when the
project auto-archives, else ``dest=/prearchive/projects/P`` (``shared/reference/dicom-upload.md``
§4, §8).

XNAT's answers are mapped to per-row outcomes by :func:`classify`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from xnatnode.dicom import DicomObject, SourceScan
from xnatnode.zipstream import StoredZip, ZipMember


@contextmanager
def zip_body(scan: SourceScan, objects: Sequence[DicomObject]) -> Iterator[StoredZip]:
    """A stored zip of ``objects`` of ``scan`` (members ``000000.dcm``…) as a request body."""
    with scan.opened() as opener:
        body = StoredZip([ZipMember(f"{index:06d}.dcm", obj.size, None, partial(opener.open, obj.name))
                          for index, obj in enumerate(objects)])
        try:
            yield body
        finally:
            body.close()


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
