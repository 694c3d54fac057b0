"""DICOM sources on disk: a folder or a zip, read header by header with pydicom (no pixel data).

:func:`scan_source` lists every object of a source with the identifiers an upload needs
(Study/Series/SOP instance UIDs, SeriesNumber, Modality, SOP class, transfer syntax, size) and
lists the files that are not DICOM (or are truncated) separately. Folders are walked without
following symbolic links, and a link is never read (a link could point out of the mount).
Zip members are read in place (nothing is extracted). pydicom reads each file with large values
deferred, so pixel data are never loaded; a value running past the end of the file marks the
file truncated.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: Bytes above which a value is not loaded while headers are read (pixel data, big blobs).
DEFER_SIZE = 1024
#: Files larger than this are not treated as DICOM objects (a guard against hostile archives).
MAX_OBJECT_BYTES = 4 * 1024**3


class SourceError(Exception):
    """A source that cannot be read at all (missing, unreadable, not a zip, outside the root)."""


@dataclass(frozen=True)
class DicomObject:
    """One DICOM object of a source: where it is and what identifies it."""

    #: file path (folder source) or member name (zip source), relative to the source
    name: str
    study_uid: str
    series_uid: str
    series_number: str
    sop_uid: str
    sop_class: str
    transfer_syntax: str
    modality: str
    size: int


@dataclass(frozen=True)
class Skipped:
    """A file of a source that is not sent, and why."""

    name: str
    reason: str


@dataclass
class Series:
    """What a source holds of one series."""

    uid: str
    number: str
    modality: str
    sop_uids: set[str] = field(default_factory=set)

    @property
    def scan_id(self) -> str:
        """The scan ID XNAT gives it (SeriesNumber; ``0`` when absent)."""
        return self.number or "0"


@dataclass
class SourceScan:
    """Everything :func:`scan_source` found in one source."""

    path: Path
    is_zip: bool
    objects: list[DicomObject] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def studies(self) -> list[str]:
        return sorted({o.study_uid for o in self.objects})

    @property
    def series(self) -> dict[str, Series]:
        """Series by SeriesInstanceUID, with the distinct SOP instances of each."""
        out: dict[str, Series] = {}
        for o in self.objects:
            series = out.setdefault(o.series_uid, Series(o.series_uid, o.series_number, o.modality))
            series.sop_uids.add(o.sop_uid)
        return out

    def expected_scans(self) -> dict[str, int]:
        """Files XNAT should hold per scan ID (distinct SOP instances per SeriesNumber)."""
        counts: dict[str, set[str]] = {}
        for o in self.objects:
            counts.setdefault(o.series_number or "0", set()).add(o.sop_uid)
        return {scan: len(uids) for scan, uids in sorted(counts.items())}

    @property
    def modalities(self) -> list[str]:
        return sorted({o.modality for o in self.objects if o.modality})

    @property
    def sop_classes(self) -> dict[str, int]:
        return dict(Counter(o.sop_class for o in self.objects))

    @property
    def transfer_syntaxes(self) -> dict[str, int]:
        return dict(Counter(o.transfer_syntax for o in self.objects))

    @property
    def bytes(self) -> int:
        return sum(o.size for o in self.objects)

    @contextmanager
    def opened(self) -> Iterator[_Opener]:
        """A way to open each object's bytes (the folder or the zip stays open meanwhile)."""
        if self.is_zip:
            with zipfile.ZipFile(self.path) as archive:
                yield _Opener(archive)
        else:
            folder = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                yield _Opener(folder)
            finally:
                os.close(folder)


class _Opener:
    """Opens objects to be read whole (C-STORE, the import zip). A folder's files are opened
    relative to the folder's descriptor by :func:`_open_no_follow`, and unbuffered (each is read
    whole into one buffer): a quarter of the cost per file of opening ``root / name`` through a
    buffered reader."""

    def __init__(self, source: zipfile.ZipFile | int) -> None:
        self.source = source

    def open(self, name: str) -> IO[bytes]:
        if isinstance(self.source, zipfile.ZipFile):
            return self.source.open(name)
        return _open_no_follow(name, dir_fd=self.source, buffering=0)


def _open_no_follow(path: Path | str, *, dir_fd: int | None = None, buffering: int = -1) -> IO[bytes]:
    """Open a regular file for reading (relative to the folder ``dir_fd`` when given), refusing a
    symbolic link in its last component."""
    return open(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd), "rb", buffering=buffering)


def resolve_source(root: Path, source: str) -> Path:
    """``source`` (relative to ``root``, or absolute inside it) as a path that stays inside ``root``."""
    text = source.strip()
    if not text:
        raise SourceError("the source is empty")
    candidate = Path(text)
    path = candidate if candidate.is_absolute() else root / candidate
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise SourceError(f"source {text} does not exist under {root}") from None
    real_root = root.resolve()
    if real != real_root and real_root not in real.parents:
        raise SourceError(f"source {text} is outside {root} (a link out of the mount?)")
    if path.is_symlink():
        raise SourceError(f"source {text} is a symbolic link; give the real folder or zip")
    return real


def read_header(stream: IO[bytes], size: int) -> DicomObject | str:
    """The identifiers of one object, or why it is not a usable DICOM object."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:  # deferred values stay unread (pydicom >= 3 keeps them deferred in get_item)
        ds = pydicom.dcmread(stream, defer_size=DEFER_SIZE)
        element = ds.get_item("PixelData", keep_deferred=True) if "PixelData" in ds else None
        values = {k: str(ds.get(k, "") or "").strip() for k in
                  ("StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SOPInstanceUID", "SOPClassUID",
                   "Modality")}
        syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    except InvalidDicomError:
        return "not DICOM"
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError, NotImplementedError) as exc:
        return f"unreadable DICOM ({type(exc).__name__}: {str(exc)[:120]})"
    if element is not None:
        tell = getattr(element, "value_tell", None)
        length = int(getattr(element, "length", 0) or 0)
        if tell is not None and length != 0xFFFFFFFF and tell + length > size:
            return f"truncated (pixel data needs {tell + length} bytes, the file has {size})"
    missing = [k for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID") if not values[k]]
    if missing:
        return f"DICOM without {', '.join(missing)}"
    return DicomObject("", values["StudyInstanceUID"], values["SeriesInstanceUID"], values["SeriesNumber"],
                       values["SOPInstanceUID"], values["SOPClassUID"], syntax, values["Modality"], size)


def _walk(folder: Path) -> Iterator[tuple[str, Path | None, str]]:
    """``(relative name, path or None, reason to skip)`` for every entry, links never followed."""
    for top, dirs, files in os.walk(folder, followlinks=False):
        base = Path(top)
        dirs.sort()
        for name in [d for d in dirs if (base / d).is_symlink()]:
            yield (base / name).relative_to(folder).as_posix(), None, "symbolic link (not followed)"
        for name in sorted(files):
            path = base / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                yield rel, None, "symbolic link (not followed)"
            elif not path.is_file():
                yield rel, None, "not a regular file"
            else:
                yield rel, path, ""


def scan_source(path: Path, *, progress: Any = None) -> SourceScan:
    """Read the headers of every object of a folder or zip source (see module docstring)."""
    if path.is_dir():
        scan = SourceScan(path, False)
        for name, file_path, reason in _walk(path):
            if file_path is None:
                scan.skipped.append(Skipped(name, reason))
                continue
            size = file_path.stat().st_size
            _add(scan, name, size, lambda p=file_path: _open_no_follow(p))
            if progress is not None:
                progress.advance()
        return scan
    if not zipfile.is_zipfile(path):
        raise SourceError(f"source {path.name} is neither a folder nor a zip")
    scan = SourceScan(path, True)
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                _add(scan, info.filename, info.file_size, lambda i=info: archive.open(i))
                if progress is not None:
                    progress.advance()
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"cannot read zip {path.name}: {exc}") from None
    return scan


def _add(scan: SourceScan, name: str, size: int, opener: Any) -> None:
    if size > MAX_OBJECT_BYTES:
        scan.skipped.append(Skipped(name, f"larger than {MAX_OBJECT_BYTES} bytes"))
        return
    if size < 132:
        scan.skipped.append(Skipped(name, "not DICOM (too short)"))
        return
    try:
        with opener() as stream:
            found = read_header(stream, size)
    except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
        found = f"unreadable ({type(exc).__name__})"
    if isinstance(found, str):
        scan.skipped.append(Skipped(name, found))
    else:
        scan.objects.append(DicomObject(name, found.study_uid, found.series_uid, found.series_number, found.sop_uid,
                                        found.sop_class, found.transfer_syntax, found.modality, size))


def routing_comment(project: str, subject: str, session: str) -> str:
    """XNAT's documented routing text for (0010,4000) PatientComments."""
    return f"Project: {project} Subject: {subject} Session: {session}"
