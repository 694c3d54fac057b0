"""DICOM header fields from the mounted archive: the first file of each series, headers only.

pydicom reads with ``stop_before_pixels`` and only the tags the checks use, so a file costs one
short read whatever its size.  The mount is walked without following links (a link inside a
session folder is skipped: it could point out of the mount).  Layouts: a session folder
(``SCANS/<scan>/<resource>/…``, what the Container Service mounts for a session) or a project's
archive (``[arcNNN/]<session label>/SCANS/…``, mounted for a project).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from xnatnode.labelcheck.records import SeriesHeader, SessionRec

#: The tags read from each first file.
TAGS = ("PatientID", "PatientName", "StudyDate", "Modality", "StudyInstanceUID")
#: The resource folders of a scan that hold its DICOM files (XNAT's labels), in this order.
DICOM_RESOURCES = ("DICOM", "secondary")
#: Files tried per scan before the series counts as unreadable.
MAX_TRIES = 3
_NOT_DICOM = (".xml", ".json", ".txt", ".nii", ".gz", ".bval", ".bvec", ".png", ".jpg", ".gif")


def _dirs(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return sorted((e for e in it if e.is_dir(follow_symlinks=False)), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def _files(path: str) -> Iterator[os.DirEntry[str]]:
    """Regular files below ``path`` in name order, links skipped."""
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for e in entries:
        if e.is_file(follow_symlinks=False) and not e.name.lower().endswith(_NOT_DICOM):
            yield e
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            yield from _files(e.path)


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


#: The last tag read: StudyInstanceUID (0020,000D); a file is parsed no further (tags come in
#: ascending order), so the large private groups after it (a Siemens CSA header in (0029,xxxx),
#: overlays, pixel data) are never read.
LAST_TAG = 0x0020000D


def _past_last_tag(tag: int, vr: str | None, length: int) -> bool:
    return tag > LAST_TAG


def read_first_header(scan_dir: str) -> tuple[str, dict[str, str]] | tuple[str, str] | None:
    """(file, fields) of the first readable DICOM file under a scan folder, (file, reason) when
    none of the first :data:`MAX_TRIES` files reads, ``None`` when the scan has no files.

    pydicom's ``read_partial`` with a stop condition: its documented use when reading should stop
    somewhere other than at the pixel data."""
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_partial
    from pydicom.tag import Tag

    resources = _dirs(scan_dir)
    # Only the DICOM resources: a scan may hold NIfTI, BIDS sidecars or snapshots beside them.
    ordered = [r for name in DICOM_RESOURCES for r in resources if r.name.lower() == name.lower()]
    tried: list[tuple[str, str]] = []
    for res in ordered:
        for entry in _files(res.path):
            try:
                with open(entry.path, "rb") as fh:
                    ds = read_partial(fh, stop_when=_past_last_tag, specific_tags=[Tag(t) for t in TAGS])
                    fields = {tag: _text(ds.get(tag)) for tag in TAGS}
            except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as exc:
                tried.append((entry.path, f"{type(exc).__name__}: {exc}"[:200]))
                if len(tried) >= MAX_TRIES:
                    return tried[0]
                continue
            return entry.path, fields
    return tried[0] if tried else None


def session_folder(input_dir: str, project_archive: str | None, session: SessionRec) -> str | None:
    """The session's folder on the mount: ``input_dir`` itself when it is a session folder, else
    ``<archive>/<label>`` (or ``<archive>/<ID>``)."""
    if os.path.isdir(os.path.join(input_dir, "SCANS")) and not os.path.islink(input_dir):
        return input_dir
    if project_archive is None:
        return None
    for name in (session.label, session.id):
        path = os.path.join(project_archive, name)
        if name and os.path.isdir(path) and not os.path.islink(path):
            return path
    return None


def read_session_headers(session: SessionRec, folder: str, root: str,
                         unreadable: list[tuple[str, str, str]]) -> list[SeriesHeader]:
    """First-file headers of every scan under ``folder/SCANS`` (paths in the result relative
    to ``root``); files that do not read are appended to ``unreadable``."""
    out: list[SeriesHeader] = []
    for scan in _dirs(os.path.join(folder, "SCANS")):
        found = read_first_header(scan.path)
        if found is None:
            continue
        path, data = found
        rel = os.path.relpath(path, root)
        if isinstance(data, str):
            unreadable.append((session.id, rel, data))
            continue
        out.append(SeriesHeader(
            session_id=session.id, scan_id=scan.name, file=rel,
            patient_id=data["PatientID"], patient_name=data["PatientName"],
            study_date=data["StudyDate"], modality=data["Modality"], study_uid=data["StudyInstanceUID"],
        ))
    return out


#: Sessions per chunk handed to a worker process, and the fewest sessions worth the processes.
CHUNK = 64
PARALLEL_MIN = 256


def _read_chunk(items: list[tuple[SessionRec, str]], root: str
                ) -> tuple[dict[str, list[SeriesHeader]], list[tuple[str, str, str]]]:
    out: dict[str, list[SeriesHeader]] = {}
    unreadable: list[tuple[str, str, str]] = []
    for session, folder in items:
        headers = read_session_headers(session, folder, root, unreadable)
        if headers:
            out[session.id] = headers
    return out, unreadable


def read_headers(input_dir: Path, project_archive: str | None, sessions: Iterable[SessionRec],
                 unreadable: list[tuple[str, str, str]], *,
                 progress: Callable[[int], None] | None = None,
                 workers: int | None = None) -> dict[str, list[SeriesHeader]]:
    """Session ID -> first-file headers, for the sessions whose folder is on the mount.

    Parsing headers is CPU work (about 2 ms a file): a large project is read by ``workers``
    processes (default: the CPUs), :data:`CHUNK` sessions at a time; a small one, or a machine
    where processes cannot be started, in this process."""
    root = str(input_dir)
    found = [(s, f) for s in sessions if (f := session_folder(root, project_archive, s)) is not None]
    chunks = [found[i : i + CHUNK] for i in range(0, len(found), CHUNK)]
    workers = workers or os.cpu_count() or 1
    out: dict[str, list[SeriesHeader]] = {}
    results: Iterable[tuple[dict[str, list[SeriesHeader]], list[tuple[str, str, str]]]]
    pool = None
    if workers > 1 and len(found) >= PARALLEL_MIN:
        try:
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)))
        except (OSError, ImportError, NotImplementedError):
            pool = None
    try:
        results = (pool.map(_read_chunk, chunks, [root] * len(chunks)) if pool is not None
                   else (_read_chunk(chunk, root) for chunk in chunks))
        for chunk, (headers, bad) in zip(chunks, results, strict=True):
            out.update(headers)
            unreadable.extend(bad)
            if progress is not None:
                progress(len(chunk))
    finally:
        if pool is not None:
            pool.shutdown()
    return out
