"""The prearchive's storage: receiving, building and archiving sessions (no HTTP in here).

Layout under the data folder: ``prearchive/<P>/<TIMESTAMP>/<session>/SCANS/<scan>/DICOM/<file>``
plus ``prearchive/<P>/<TIMESTAMP>/<session>.json`` holding the row XNAT lists, the receiving user,
the last log message and, for direct-archive receivers, ``"direct": true`` (XNAT keeps those out
of the prearchive listing; so does this), and ``<session>.headers.jsonl``: the routing headers of
each file as it was placed (one JSON line per file, with its size, mtime and, when an upload's
extraction computed it, MD5), so that building and archiving do not parse or hash every file
again; a file the index does not describe (an entry from an older run, a file changed or placed
by other means) is read from disk.

Two ways in, as on XNAT (``../shared/reference/dicom-upload.md`` §3):

* :func:`receive` a whole parsed study (import service): one new entry per upload, status READY,
  or, for ``gradual-DICOM``, added to the entry already holding the same study and session;
* :func:`receive_object` one object at a time (C-STORE): objects are grouped by project and
  StudyInstanceUID into an entry in status RECEIVING; :func:`build_idle` (run periodically by the
  receiver's builder thread, like XNAT's ``SessionXMLRebuilder``) turns an entry idle for the
  session idle time into READY and archives it when the receiver is direct-archive, the objects
  asked for it (``AA:true``) or the project's prearchive code is 4/5. An archive conflict leaves
  the entry in status CONFLICT (ERROR for other failures) with XNAT's text as its last log line.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatsim import intake
from xnatsim.dicomhdr import read_routing
from xnatsim.intake import UNASSIGNED, DicomFile, IntakeError, Labels, Study
from xnatsim.store import Experiment, Store, now_text, time_text

INDEX_SUFFIX = ".headers.jsonl"
COLUMNS = ("project", "timestamp", "lastmod", "uploaded", "scan_date", "scan_time", "subject", "folderName",
           "name", "tag", "status", "url", "autoarchive", "prevent_anon", "prevent_auto_commit", "SOURCE",
           "VISIT", "PROTOCOL", "TIMEZONE")
_LOCK = threading.RLock()


def root(store: Store) -> Path:
    return store.data_dir / "prearchive"


def _stamp(t: float) -> str:
    return time.strftime("%Y%m%d_%H%M%S", time.localtime(t)) + f"{int(t * 1000) % 1000:03d}"


@dataclass
class Entry:
    """One prearchive session: its metadata file and what it holds."""

    meta: Path
    row: dict[str, str]
    user: str = ""
    direct: bool = False
    log: list[str] = field(default_factory=list)
    #: overwrite mode an auto-archive uses ("" = decide from the project at build time)
    overwrite: str = ""

    @property
    def folder(self) -> Path:
        return self.meta.parent / self.meta.name[: -len(".json")]

    @property
    def index(self) -> Path:
        """The headers of the files placed so far (see the module doc)."""
        return self.meta.with_suffix(INDEX_SUFFIX)

    def save(self) -> None:
        data = {"row": self.row, "user": self.user, "direct": self.direct, "log": self.log,
                "overwrite": self.overwrite}
        tmp = self.meta.with_name(self.meta.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.meta)

    @classmethod
    def load(cls, meta: Path) -> Entry | None:
        try:
            data: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8"))
            return cls(meta, data["row"], data.get("user", ""), bool(data.get("direct")),
                       list(data.get("log", [])), str(data.get("overwrite", "")))
        except (OSError, ValueError, KeyError):
            return None

    def files(self) -> list[DicomFile]:
        """The entry's DICOM files with their headers (from the index when it describes the file)."""
        known = self._indexed()
        out: list[DicomFile] = []
        for path in sorted(self.folder.rglob("*.dcm")):
            found = known.get(path.relative_to(self.folder).as_posix())
            if found is not None:
                st = path.stat()
                if (st.st_size, st.st_mtime_ns) == found[0]:
                    out.append(DicomFile(path, found[1], found[2]))
                    continue
            headers = read_routing(path)
            if headers is not None:
                out.append(DicomFile(path, headers))
        return out

    def _indexed(self) -> dict[str, tuple[tuple[int, int], dict[str, str], str]]:
        """``relative path -> ((size, mtime_ns), headers, md5)`` from the index (the last line wins)."""
        known: dict[str, tuple[tuple[int, int], dict[str, str], str]] = {}
        try:
            lines = self.index.read_text(encoding="utf-8").splitlines()
        except OSError:
            return known
        for line in lines:
            try:
                item = json.loads(line)
                known[str(item["file"])] = ((int(item["size"]), int(item["mtime_ns"])), dict(item["headers"]),
                                            str(item.get("md5", "")))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash: that file is read from disk
        return known


def entries(store: Store) -> list[Entry]:
    """Every prearchive entry (direct-archive ones included), oldest first."""
    base = root(store)
    if not base.is_dir():
        return []
    return [e for meta in sorted(base.glob("*/*/*.json")) if (e := Entry.load(meta)) is not None]


def listed(store: Store) -> Iterator[Entry]:
    """The entries XNAT lists in the prearchive (not the direct-archive ones)."""
    return (e for e in entries(store) if not e.direct)


def find(store: Store, project: str, timestamp: str, name: str) -> Entry | None:
    if "/" in project + timestamp + name or ".." in (project, timestamp, name):
        return None
    meta = root(store) / project / timestamp / f"{name}.json"
    return Entry.load(meta) if meta.is_file() else None


def remove(entry: Entry) -> None:
    shutil.rmtree(entry.folder, ignore_errors=True)
    entry.index.unlink(missing_ok=True)
    entry.meta.unlink(missing_ok=True)
    for folder in (entry.meta.parent, entry.meta.parent.parent):
        try:
            folder.rmdir()
        except OSError:
            break


def _new_entry(store: Store, project: str, study_uid: str, session: str, subject: str,
               headers: dict[str, str], status: str, user: str) -> Entry:
    now = time.time()
    while (root(store) / project / _stamp(now)).exists():
        now += 0.001
    stamp, when = _stamp(now), time_text(now)
    folder = root(store) / project / stamp / session
    folder.mkdir(parents=True)
    row = {
        "project": project, "timestamp": stamp, "lastmod": when, "uploaded": when,
        "scan_date": intake.iso_date(headers.get("StudyDate", "")),
        "scan_time": intake.iso_time(headers.get("StudyTime", "")),
        "subject": subject, "folderName": session, "name": session, "tag": study_uid,
        "status": status, "url": f"/prearchive/projects/{project}/{stamp}/{session}",
        "autoarchive": "Manual", "prevent_anon": "false", "prevent_auto_commit": "false", "SOURCE": "",
        "VISIT": "", "PROTOCOL": "", "TIMEZONE": "",
    }
    return Entry(folder.parent / f"{session}.json", row, user)


def _project_of(store: Store, project: str) -> str:
    return project if project and store.get_project(project) is not None else UNASSIGNED


def _move(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, making ``target``'s folder only when the move finds it missing.

    A mkdir for every received object is a syscall per C-STORE; remembering the folders made
    could go stale (a session deleted or archived meanwhile), asking the move cannot.
    """
    try:
        shutil.move(source, target)
    except FileNotFoundError:
        if target.parent.is_dir():
            raise  # the source is missing
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)


def _place(entry: Entry, items: Iterable[DicomFile]) -> None:
    """Move ``items`` into the entry's scan folders and add their headers to its index."""
    lines: list[str] = []
    for item in items:
        rel = f"SCANS/{intake.scan_id(item.headers)}/DICOM/{intake.file_name(item.headers)}"
        target = entry.folder / rel
        _move(item.path, target)
        st = target.stat()
        lines.append(json.dumps({"file": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                 "headers": item.headers, "md5": item.md5}) + "\n")
    with entry.index.open("a", encoding="utf-8") as out:
        out.writelines(lines)


def receive(store: Store, study: Study, *, user: str, merge: bool = False) -> str:
    """Move a parsed study into the prearchive; returns its ``/data/prearchive/...`` URI.

    ``merge`` (the ``gradual-DICOM`` handler) adds the files to the entry already holding the
    same study and session, as XNAT gathers single-file uploads into one receiving session;
    otherwise every upload makes a new timestamped entry.
    """
    project = _project_of(store, study.project)
    with _LOCK:
        same = [e for e in entries(store) if merge and not e.direct and e.row["project"] == project
                and e.row["name"] == study.session and e.row["tag"] == study.uid]
        entry = same[-1] if same else _new_entry(store, project, study.uid, study.session, study.subject,
                                                  study.first, "READY", user)
        _place(entry, study.files)
        entry.row["lastmod"] = now_text()
        entry.save()
    return "/data" + entry.row["url"]


# --------------------------------------------------------------------------- C-STORE path


class Receiving:
    """Entries in status RECEIVING, by (project, StudyInstanceUID), with their last activity.

    One per store (kept in the receiver's state); entries still RECEIVING from an earlier run are
    picked up again with their ``lastmod`` as the last activity.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.open: dict[tuple[str, str], Entry] = {}
        self.last: dict[Path, float] = {}
        for entry in entries(store):
            if entry.row["status"] == "RECEIVING":
                self.open[(entry.row["project"], entry.row["tag"])] = entry
                self.last[entry.meta] = entry.meta.stat().st_mtime

    def add(self, item: DicomFile, labels: Labels, *, user: str, direct: bool, source_ae: str = "") -> Entry:
        """File one received object (moved from ``item.path``) into its receiving session."""
        project = _project_of(self.store, labels.project)
        key = (project, item.headers.get("StudyInstanceUID", ""))
        with _LOCK:
            entry = self.open.get(key)
            if entry is None:
                session = labels.session or "dicom_upload"
                entry = _new_entry(self.store, project, key[1], session, labels.subject, item.headers,
                                   "RECEIVING", user)
                entry.direct = direct and project != UNASSIGNED
                entry.row["SOURCE"] = source_ae
                if labels.auto_archive is not None:
                    entry.overwrite = "append" if labels.auto_archive else "never"
                entry.save()
                self.open[key] = entry
            _place(entry, (item,))
            self.last[entry.meta] = time.monotonic()
        return entry

    def idle(self, idle_seconds: float) -> list[Entry]:
        """Entries without a new object for ``idle_seconds``, removed from the open set."""
        now = time.monotonic()
        done: list[Entry] = []
        with _LOCK:
            for key, entry in list(self.open.items()):
                last = self.last.get(entry.meta, 0.0)
                if last > 1e9:  # a wall-clock mtime from an earlier run
                    last = now - (time.time() - last)
                if now - last >= idle_seconds:
                    del self.open[key]
                    self.last.pop(entry.meta, None)
                    done.append(entry)
        return done


def build_idle(receiving: Receiving, idle_seconds: float) -> list[str]:
    """Build the sessions idle for ``idle_seconds`` and auto-archive those that should be.

    Returns one line per session handled (``archived <uri>`` / ``READY <url>`` / ``CONFLICT …``).
    """
    store = receiving.store
    out: list[str] = []
    for entry in receiving.idle(idle_seconds):
        entry.row["status"] = "READY"
        entry.row["lastmod"] = now_text()
        overwrite = entry.overwrite or ""
        if entry.direct:
            overwrite = overwrite if overwrite not in ("", "never") else "append"
        elif overwrite == "never":
            overwrite = ""
        elif not overwrite:
            overwrite = intake.auto_archive_overwrite(store, entry.row["project"]) or ""
        if not overwrite or entry.row["project"] == UNASSIGNED:
            entry.direct = False
            entry.save()
            out.append(f"READY {entry.row['url']}")
            continue
        entry.save()
        try:
            exp = archive(store, entry, user=entry.user, overwrite=overwrite)
        except IntakeError as exc:
            entry.direct = False
            entry.row["status"] = "CONFLICT" if exc.status == 409 else "ERROR"
            entry.log.append(exc.message)
            entry.save()
            out.append(f"{entry.row['status']} {entry.row['url']}: {exc.message}")
            continue
        out.append(f"archived {intake.archive_uri(exp)}")
    return out


def archive(store: Store, entry: Entry, *, user: str, overwrite: str,
            labels: Labels | None = None) -> Experiment:
    """Archive a prearchive entry (its files are linked into the archive, then the entry is removed)."""
    files = entry.files()
    if not files:
        raise IntakeError(400, "The prearchive session holds no DICOM files.")
    row = entry.row
    labels = labels or Labels()
    study = Study(row["tag"], files)
    study.project = labels.project or (row["project"] if row["project"] != UNASSIGNED else "")
    study.subject = labels.subject or row["subject"]
    study.session = labels.session or row["name"]
    if store.get_project(study.project) is None:
        raise IntakeError(400, f"Unable to identify a project for the session {study.session}.")
    staging = store.stage()
    try:
        for n, item in enumerate(study.files):
            copy = staging / f"f{n:06d}"
            try:
                os.link(item.path, copy)
            except OSError:
                shutil.copyfile(item.path, copy)
            item.path = copy
        exp = intake.archive_study(store, study, user=user, overwrite=overwrite,
                                   extra={"prearchivePath": str(entry.folder)})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with _LOCK:
        remove(entry)
    return exp


def first_dicom(entry: Entry, scan_id: str | None) -> Path | None:
    """The first DICOM file of a prearchive session (or of one of its scans), for the dump service."""
    scans = entry.folder / "SCANS"
    if not scans.is_dir():
        return None
    for scan in sorted(scans.iterdir(), key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name)):
        if scan_id is not None and scan.name != scan_id:
            continue
        files = sorted((scan / "DICOM").glob("*"))
        if files:
            return files[0]
    return None
