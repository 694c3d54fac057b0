"""What XNAT already holds, read with bulk listings before anything is written.

* one listing of the project's sessions (``/data/projects/P/experiments?columns=…``): labels,
  subjects, types;
* for each session of the batch that already exists: its scans
  (``/data/experiments/E/scans?columns=ID,type,xsiType``) and, when it has scans, every file
  of every scan with its size and MD5 ``digest`` (``/data/experiments/E/scans/ALL/files``).

So the reads cost 1 + at most 2 per existing session, whatever the number of files. The same
files listing verifies the uploads afterwards (:func:`read_files`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import unquote

from xnatnode.client import Connection
from xnatnode.listings import path_segment

_FILE_URI = re.compile(r"/scans/([^/]+)/resources/[^/]+/files/(.+)$")

FileKey = tuple[str, str, str]  #: (scan ID, resource label, path inside the resource)


@dataclass(frozen=True, slots=True)
class ExistingFile:
    size: int
    digest: str  #: MD5 hex, or "" when XNAT's checksums are off


@dataclass
class ExistingSession:
    xnat_id: str
    label: str
    subject_id: str
    subject_label: str
    xsi_type: str
    #: scan ID -> (type, xsiType)
    scans: dict[str, tuple[str, str]] = field(default_factory=dict)
    files: dict[FileKey, ExistingFile] = field(default_factory=dict)


@dataclass
class ProjectState:
    project: str
    #: session label -> session
    sessions: dict[str, ExistingSession] = field(default_factory=dict)


def read_sessions(conn: Connection, project: str) -> ProjectState:
    """The project's sessions (one request); a missing project raises NotFound."""
    rows = conn.get_table(f"/data/projects/{path_segment(project)}/experiments",
                          {"columns": "ID,label,subject_ID,subject_label,xsiType"})
    state = ProjectState(project)
    for row in rows:
        state.sessions[row.get("label", "")] = ExistingSession(
            row.get("ID", ""), row.get("label", ""), row.get("subject_ID", ""),
            row.get("subject_label", ""), row.get("xsiType", ""))
    return state


def read_scans(conn: Connection, session: ExistingSession) -> None:
    """Fill ``session.scans`` (one request)."""
    rows = conn.get_table(f"/data/experiments/{path_segment(session.xnat_id)}/scans",
                          {"columns": "ID,type,xsiType"})
    session.scans = {row.get("ID", ""): (row.get("type", ""), row.get("xsiType", "")) for row in rows}


def read_files(conn: Connection, session: ExistingSession) -> dict[FileKey, ExistingFile]:
    """Every file of every scan of ``session`` with its digest (one request)."""
    rows = conn.get_table(f"/data/experiments/{path_segment(session.xnat_id)}/scans/ALL/files")
    files: dict[FileKey, ExistingFile] = {}
    for row in rows:
        match = _FILE_URI.search(row.get("URI", ""))
        if match is None:
            continue
        try:
            size = int(row.get("Size") or 0)
        except ValueError:
            size = -1
        key = (unquote(match.group(1)), row.get("collection", ""), unquote(match.group(2)))
        files[key] = ExistingFile(size, row.get("digest", "").lower())
    return files


def load_sessions(conn: Connection, sessions: Iterable[ExistingSession], workers: int,
                  done: Callable[[], None] | None = None) -> None:
    """Read scans and files of ``sessions``, ``workers`` requests at a time."""

    def load(session: ExistingSession) -> None:
        read_scans(conn, session)
        if session.scans:
            session.files = read_files(conn, session)
        if done is not None:
            done()

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(load, list(sessions)))
