"""Bulk reads of a project's metadata into typed records.

A handful of ``columns=`` listings give every subject, session and scan of a project whatever its
size (spec §0.2, §5.1); resource file counts and sizes come either from the resource listings'
stored statistics (one request per parent, §7.1) or from the mounted project archive
(:func:`read_archive`).  Commands other than project-summary reuse these records.

Request cost of :func:`read_project` (S subjects, E sessions, E_img of them image sessions with
scans, B resources whose statistics are blank):

* metadata: 3 requests (subjects, sessions, one row per scan);
* ``sizes="rest"``: + 1 (project resources) + S (subject resources) + E (session resources)
  + E_img (``scans/ALL/resources``: every scan resource of a session, with ``cat_id`` = scan ID;
  a server refusing the ``ALL`` scan set costs one request per scan instead) + B (files listing
  of a resource without statistics);
* ``sizes="mount"``: + 1 + S, the session and scan resources come from the mount (a session
  whose folder is missing there is read over REST: 1-2 requests);
* ``sizes="none"``: nothing more.

Failures of one item: a parent deleted meanwhile (404) is listed in ``ProjectData.skipped``; one
whose listing still fails after the connection's retries (5xx, a dropped or cut-short answer) is
listed in ``ProjectData.missing`` and the rest is read on (the command then exits ``PARTIAL``).
Refused credentials, the run's deadline, or :data:`GIVE_UP_AFTER` failed items in a row end the
read.

Numbers from XNAT are checked: a file count or size that is not a whole number from 0 to 2**63
(negative, ``1e400``, ``NaN``) is treated as unknown (the files listing is read instead), and a
row listed twice is counted once.

Symbolic links in the mounted archive are never followed and never counted: each is skipped
with a warning (the first few by name, then a total) and listed in ``ProjectData.links``. A link
may point out of the mount (``/opt``, another project) or back into it (counted twice); XNAT
itself does not make links in an archive.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import quote

from xnatnode.deadline import DeadlineExceeded
from xnatnode.errors import Forbidden, NotFound, Unauthorized, XnatError

log = logging.getLogger(__name__)

#: Where a resource hangs in the hierarchy.
Level = Literal["project", "subject", "session", "scan"]
LEVELS: tuple[Level, ...] = ("project", "subject", "session", "scan")

#: Thread-pool bound for per-parent resource listings (keeps XNAT's load predictable).
DEFAULT_WORKERS = 8
#: Failed items in a row after which a read stops (XNAT is down, not one item broken).
GIVE_UP_AFTER = 10
#: Largest file count or size believed (2**63: a signed 64-bit number, as XNAT stores them).
MAX_COUNT = 2**63
#: How many skipped links are named in the log (the rest are counted).
LINKS_LOGGED = 5

#: Scan-level xpath columns of the bulk experiments listing (keys come back lower-cased).
SCAN_XPATH = "xnat:imagescandata"
SCAN_COLUMNS = ("id", "type", "series_description", "quality")


class TableReader(Protocol):
    """The part of :class:`xnatnode.client.Connection` the listings need."""

    def get_table(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> list[dict[str, str]]: ...


@dataclass(frozen=True, slots=True)
class Subject:
    id: str
    label: str
    group: str = ""


@dataclass(frozen=True, slots=True)
class Session:
    """A subject assessor (image session or other) of the project."""

    id: str
    label: str
    subject_id: str
    xsi_type: str
    date: dt.date | None = None
    #: when the session was added to XNAT (``insert_date``), if the server says
    inserted: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Scan:
    session_id: str
    id: str
    type: str = ""
    series_description: str = ""
    quality: str = ""


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource (catalog) with its file statistics; ``None`` where they are unknown.

    ``owner_id`` is the project ID, subject ID or session ID (for session and scan resources);
    ``scan_id`` is set for scan resources only.
    """

    level: Level
    label: str
    owner_id: str
    scan_id: str = ""
    file_count: int | None = None
    file_size: int | None = None
    resource_id: str = ""


@dataclass(slots=True)
class ProjectData:
    """Everything :func:`read_project` learned about one project."""

    project: str
    subjects: list[Subject] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    scans: list[Scan] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    #: How sizes were obtained: "mount", "rest" or "none" (no resources read).
    sizes: str = "none"
    #: Objects listed at first but gone (404) when their resources were read.
    skipped: list[str] = field(default_factory=list)
    #: What could not be read after retries ("session X resources: reason"): not counted.
    missing: list[str] = field(default_factory=list)
    #: Symbolic links found in the mounted archive: skipped, not followed, not counted.
    links: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every listed object was read."""
        return not (self.skipped or self.missing)


# --------------------------------------------------------------------------- value parsing


def parse_int(value: str | None) -> int | None:
    """An XNAT table value as an integer; ``None`` for blank or malformed values."""
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > 40:
        return None
    try:
        number = float(text) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        return None
    if isinstance(number, float):
        if not math.isfinite(number) or not number.is_integer():
            return None
        return int(number)
    return number


def parse_count(value: str | None) -> int | None:
    """A file count or size from XNAT: a whole number from 0 to :data:`MAX_COUNT`, else
    ``None`` (unknown: negative, ``1e400``, ``NaN`` and fractions are impossible values)."""
    number = parse_int(value)
    if number is None or not 0 <= number <= MAX_COUNT:
        return None
    return number


_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%Y/%m/%d", "%d.%m.%Y")


def parse_date(value: str | None) -> dt.date | None:
    """An XNAT date (``YYYY-MM-DD``, ``MM/DD/YYYY`` or DICOM ``YYYYMMDD``); ``None`` if blank or odd."""
    if not value:
        return None
    text = value.strip()[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", value.strip()) else value.strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def cell(row: Mapping[str, str], *keys: str) -> str:
    """A listing row's value: the first present among ``keys``, comparing keys case-insensitively
    (XNAT's column names differ in case between versions and formats); blank if none."""
    for key in keys:
        if key in row:
            return row[key] or ""
    lowered = {k.lower(): v for k, v in row.items()}
    for key in keys:
        if key.lower() in lowered:
            return lowered[key.lower()] or ""
    return ""


def path_segment(value: str) -> str:
    """A URL path segment."""
    return quote(value, safe="")


# --------------------------------------------------------------------------- metadata listings


def list_subjects(conn: TableReader, project: str) -> list[Subject]:
    """All subjects of ``project`` (one request; a missing project raises NotFound)."""
    rows = conn.get_table(
        f"/data/projects/{path_segment(project)}/subjects",
        {"columns": "ID,label,group", "limit": "*"},
    )
    subjects = {
        cell(r, "ID"): Subject(id=cell(r, "ID"), label=cell(r, "label"), group=cell(r, "group"))
        for r in rows
        if cell(r, "ID")
    }
    return sorted(subjects.values(), key=lambda s: s.label)


def list_sessions(conn: TableReader, project: str) -> list[Session]:
    """All subject assessors of ``project`` with type, date and subject (one request)."""
    rows = conn.get_table(
        f"/data/projects/{path_segment(project)}/experiments",
        {"columns": "ID,label,xsiType,date,subject_ID,insert_date", "limit": "*"},
    )
    sessions: dict[str, Session] = {}
    for r in rows:
        sid = cell(r, "ID", "xnat:subjectassessordata/id")
        if not sid or sid in sessions:
            continue
        sessions[sid] = Session(
            id=sid,
            label=cell(r, "label"),
            subject_id=cell(r, "subject_ID", "xnat:subjectassessordata/subject_id"),
            xsi_type=cell(r, "xsiType"),
            date=parse_date(cell(r, "date")),
            inserted=parse_date(cell(r, "insert_date")),
        )
    return sorted(sessions.values(), key=lambda s: s.label)


def list_scans(conn: TableReader, project: str) -> list[Scan]:
    """Every scan of the project's image sessions: one bulk request, one row per scan.

    Sessions without scans come back once with blank scan columns and are skipped.
    """
    columns = ["ID", "label"] + [f"{SCAN_XPATH}/{c}" for c in SCAN_COLUMNS]
    rows = conn.get_table(
        f"/data/projects/{path_segment(project)}/experiments",
        {"xsiType": "xnat:imageSessionData", "columns": ",".join(columns), "limit": "*"},
    )
    scans: dict[tuple[str, str], Scan] = {}
    for r in rows:
        session_id = cell(r, "ID", "xnat:subjectassessordata/id", "xnat:imagesessiondata/id")
        scan_id = cell(r, f"{SCAN_XPATH}/id")
        if not session_id or not scan_id or (session_id, scan_id) in scans:
            continue
        scans[(session_id, scan_id)] = Scan(
            session_id=session_id,
            id=scan_id,
            type=cell(r, f"{SCAN_XPATH}/type"),
            series_description=cell(r, f"{SCAN_XPATH}/series_description"),
            quality=cell(r, f"{SCAN_XPATH}/quality"),
        )
    return sorted(scans.values(), key=lambda s: (s.session_id, _scan_sort_key(s.id)))


def _scan_sort_key(scan_id: str) -> tuple[int, str]:
    return (int(scan_id), "") if scan_id.isdigit() else (1 << 30, scan_id)


# --------------------------------------------------------------------------- resource listings


def _resources_from_rows(
    rows: Iterable[Mapping[str, str]], level: Level, owner_id: str, scan_id: str = ""
) -> list[Resource]:
    out: dict[tuple[str, str], Resource] = {}
    for r in rows:
        this_scan = scan_id
        if level == "scan" and not this_scan:
            this_scan = cell(r, "cat_id")
        resource = Resource(
            level=level,
            label=cell(r, "label") or cell(r, "xnat_abstractresource_id"),
            owner_id=owner_id,
            scan_id=this_scan,
            file_count=parse_count(cell(r, "file_count")),
            file_size=parse_count(cell(r, "file_size")),
            resource_id=cell(r, "xnat_abstractresource_id"),
        )
        out.setdefault((this_scan, resource.resource_id or resource.label), resource)
    if len(out) < sum(1 for _ in rows):
        log.warning("a resource listing of %s %s named a resource twice: counted once",
                    level, owner_id)
    return list(out.values())


def resource_parent_path(project: str, resource: Resource) -> str:
    """The REST path of the object a resource hangs on."""
    if resource.level == "project":
        return f"/data/projects/{path_segment(project)}"
    if resource.level == "subject":
        return f"/data/projects/{path_segment(project)}/subjects/{path_segment(resource.owner_id)}"
    if resource.level == "session":
        return f"/data/experiments/{path_segment(resource.owner_id)}"
    return f"/data/experiments/{path_segment(resource.owner_id)}/scans/{path_segment(resource.scan_id)}"


def _fill_missing_stats(conn: TableReader, project: str, res: Resource) -> Resource:
    """Count a resource's files from its files listing when its statistics are blank."""
    ref = res.resource_id or res.label
    rows = conn.get_table(
        f"{resource_parent_path(project, res)}/resources/{path_segment(ref)}/files"
    )
    files = {(cell(r, "URI") or cell(r, "Name") or str(i)): r for i, r in enumerate(rows)}
    sizes = [parse_count(cell(r, "Size")) for r in files.values()]
    total = sum(s for s in sizes if s is not None)
    return Resource(
        level=res.level,
        label=res.label,
        owner_id=res.owner_id,
        scan_id=res.scan_id,
        file_count=len(files),
        file_size=total if all(s is not None for s in sizes) and total <= MAX_COUNT else None,
        resource_id=res.resource_id,
    )


class ItemFailures:
    """Where one item's failure goes: a 404 to ``skipped`` (deleted meanwhile), another failure
    after retries to ``missing``; with neither list, every failure is raised. Refused
    credentials, the deadline and :data:`GIVE_UP_AFTER` failures in a row are always raised."""

    def __init__(self, skipped: list[str] | None = None, missing: list[str] | None = None) -> None:
        self.skipped = skipped
        self.missing = missing
        self._in_a_row = 0
        self._lock = threading.Lock()

    def guard(self, fn: Callable[[Any], list[Resource]],
              name: Callable[[Any], str]) -> Callable[[Any], list[Resource]]:
        """``fn`` with its failures recorded as above."""

        def wrapped(item: Any) -> list[Resource]:
            try:
                found = fn(item)
            except NotFound:
                if self.skipped is None:
                    raise
                log.warning("%s disappeared while it was being read (404): skipped", name(item))
                self.skipped.append(name(item))
                return []
            except (Unauthorized, Forbidden, DeadlineExceeded):
                raise
            except XnatError as exc:
                if self.missing is None:
                    raise
                with self._lock:
                    self._in_a_row += 1
                    if self._in_a_row >= GIVE_UP_AFTER:
                        raise
                    self.missing.append(f"{name(item)}: {exc}")
                log.warning("%s could not be read (%s): left out, the rest goes on", name(item), exc)
                return []
            with self._lock:
                self._in_a_row = 0
            return found

        return wrapped


def _map_bounded(
    fn: Callable[[Any], list[Resource]],
    items: Sequence[Any],
    workers: int,
    progress: Callable[[int], None] | None,
) -> list[Resource]:
    """Apply ``fn`` with at most ``workers`` requests in flight; keeps input order."""
    out: list[Resource] = []
    if not items:
        return out
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        for result in pool.map(fn, items):
            out.extend(result)
            if progress is not None:
                progress(1)
    return out


def list_project_resources(
    conn: TableReader, project: str, *, failures: ItemFailures | None = None
) -> list[Resource]:
    def one(_: str) -> list[Resource]:
        rows = conn.get_table(f"/data/projects/{path_segment(project)}/resources")
        return _resources_from_rows(rows, "project", project)

    return (failures or ItemFailures()).guard(one, lambda _: f"project {project} resources")(project)


def list_subject_resources(
    conn: TableReader,
    project: str,
    subjects: Sequence[Subject],
    *,
    workers: int = DEFAULT_WORKERS,
    progress: Callable[[int], None] | None = None,
    skipped: list[str] | None = None,
    failures: ItemFailures | None = None,
) -> list[Resource]:
    """Resources of every subject: one request per subject, ``workers`` at a time.
    Subjects deleted meanwhile are appended to ``skipped`` (if given) instead of failing;
    ``failures`` decides otherwise (see :class:`ItemFailures`)."""

    def one(subject: Subject) -> list[Resource]:
        rows = conn.get_table(
            f"/data/projects/{path_segment(project)}/subjects/{path_segment(subject.id)}/resources"
        )
        return _resources_from_rows(rows, "subject", subject.id)

    named = (failures or ItemFailures(skipped)).guard(one, lambda sub: f"subject {sub.label}")
    return _map_bounded(named, subjects, workers, progress)


def list_session_resources(
    conn: TableReader,
    sessions: Sequence[Session],
    scans: Sequence[Scan],
    *,
    workers: int = DEFAULT_WORKERS,
    progress: Callable[[int], None] | None = None,
    skipped: list[str] | None = None,
    failures: ItemFailures | None = None,
) -> list[Resource]:
    """Session and scan resources: ``/resources`` plus, for sessions with scans,
    ``/scans/ALL/resources`` (every scan resource with ``cat_id`` = scan ID) per session.

    A server that refuses the ``ALL`` scan set (404/400) is asked once per scan instead
    (``/scans/<id>/resources``), with a warning: correct, but one request per scan.
    """
    scans_of: dict[str, list[str]] = {}
    for sc in scans:
        scans_of.setdefault(sc.session_id, []).append(sc.id)
    per_scan = {"fallback": False}

    def scan_resources(session_id: str, base: str) -> list[Resource]:
        if not per_scan["fallback"]:
            try:
                rows = conn.get_table(f"{base}/scans/ALL/resources")
                return _resources_from_rows(rows, "scan", session_id)
            except XnatError as exc:
                if exc.status not in (400, 404):
                    raise
                if not per_scan["fallback"]:
                    log.warning("XNAT refused %s/scans/ALL/resources (%s): listing resources "
                                "scan by scan (one request per scan)", base, exc.status)
                per_scan["fallback"] = True
        found: list[Resource] = []
        for scan_id in scans_of[session_id]:
            rows = conn.get_table(f"{base}/scans/{path_segment(scan_id)}/resources")
            found += _resources_from_rows(rows, "scan", session_id, scan_id)
        return found

    def one(session: Session) -> list[Resource]:
        base = f"/data/experiments/{path_segment(session.id)}"
        found = _resources_from_rows(conn.get_table(f"{base}/resources"), "session", session.id)
        if session.id in scans_of:
            found += scan_resources(session.id, base)
        return found

    named = (failures or ItemFailures(skipped)).guard(one, lambda ses: f"session {ses.label}")
    return _map_bounded(named, sessions, workers, progress)


def complete_statistics(
    conn: TableReader,
    project: str,
    resources: Sequence[Resource],
    *,
    workers: int = DEFAULT_WORKERS,
    failures: ItemFailures | None = None,
) -> list[Resource]:
    """Replace resources with blank ``file_count``/``file_size`` by counts from their files
    listing (one request per such resource; resources with statistics cost nothing). A files
    listing that fails (see :class:`ItemFailures`) leaves its resource's statistics unknown."""
    blank = [i for i, r in enumerate(resources) if r.file_count is None or r.file_size is None]
    if not blank:
        return list(resources)
    out = list(resources)

    def fill(i: int) -> list[Resource]:
        return [_fill_missing_stats(conn, project, resources[i])]

    guarded = (failures or ItemFailures()).guard(
        fill, lambda i: f"files of {resources[i].level} resource {resources[i].label} of "
                        f"{resources[i].owner_id}")
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(blank)))) as pool:
        for i, filled in zip(blank, pool.map(guarded, blank), strict=True):
            if filled:
                out[i] = filled[0]
    return out


# --------------------------------------------------------------------------- mounted archive

#: XNAT writes one catalog file per resource at the resource folder's root; it is not data.
CATALOG_SUFFIX = "_catalog.xml"


def _count_files(directory: str, links: list[str]) -> tuple[int, int]:
    """Files and bytes below ``directory`` (recursive), catalogs excluded; links are appended to
    ``links``, not followed and not counted. A folder that cannot be read raises
    :class:`PermissionError` (a count without it is wrong)."""
    files = 0
    size = 0
    stack = [(directory, True)]
    while stack:
        path, top = stack.pop()
        try:
            with os.scandir(path) as it:
                for entry in it:
                    if entry.is_symlink():
                        links.append(entry.path)
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, False))
                    elif entry.is_file(follow_symlinks=False):
                        if top and entry.name.endswith(CATALOG_SUFFIX):
                            continue
                        files += 1
                        size += entry.stat(follow_symlinks=False).st_size
        except (FileNotFoundError, NotADirectoryError):
            continue
    return files, size


def _subdirs(path: str, *, strict: bool = False,
             links: list[str] | None = None) -> list[tuple[str, str]]:
    """Sub-folders of ``path`` (none if it is missing), links to folders left out (and appended
    to ``links``); ``strict``: an unreadable ``path`` raises :class:`PermissionError` instead of
    looking empty."""
    found: list[tuple[str, str]] = []
    try:
        with os.scandir(path) as it:
            for entry in it:
                if entry.is_symlink():
                    if links is not None:
                        links.append(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    found.append((entry.name, entry.path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError:
        if strict:
            raise
        return []
    return sorted(found)


def archive_root(input_dir: str, project: str) -> str:
    """The folder holding session folders: ``input_dir`` itself (XNAT mounts the project's
    current-arc folder, spec B.7), or its ``arc001``-style child or ``<project>/arc*``."""
    candidates = [input_dir, os.path.join(input_dir, project)]
    for base in candidates:
        arcs = [p for name, p in _subdirs(base) if re.fullmatch(r"arc\d{3}", name)]
        if arcs:
            return arcs[0]
    return input_dir


def mounted_sessions(input_dir: str, project: str, sessions: Sequence[Session],
                     links: list[str] | None = None) -> dict[str, str]:
    """Session ID → its folder in the mounted archive, for sessions whose folder is present
    (a session "folder" that is a link is appended to ``links`` instead)."""
    root = archive_root(input_dir, project)
    folders = dict(_subdirs(root, links=links))
    found: dict[str, str] = {}
    for s in sessions:
        path = folders.get(s.label) or folders.get(s.id)
        if path is not None:
            found[s.id] = path
    return found


def _read_session_folder(session_id: str, path: str, links: list[str]) -> list[Resource]:
    found: list[Resource] = []
    for label, res_dir in _subdirs(os.path.join(path, "RESOURCES"), strict=True, links=links):
        n, size = _count_files(res_dir, links)
        found.append(Resource("session", label, session_id, "", n, size))
    for scan_id, scan_dir in _subdirs(os.path.join(path, "SCANS"), strict=True, links=links):
        for label, res_dir in _subdirs(scan_dir, strict=True, links=links):
            n, size = _count_files(res_dir, links)
            found.append(Resource("scan", label, session_id, scan_id, n, size))
    return found


def read_archive(
    session_dirs: Mapping[str, str],
    *,
    progress: Callable[[int], None] | None = None,
    unreadable: list[str] | None = None,
    links: list[str] | None = None,
) -> list[Resource]:
    """Session and scan resources from session folders in XNAT's layout:
    ``SCANS/<scan>/<RESOURCE>/…`` and ``RESOURCES/<label>/…`` (``ASSESSORS`` is not read).

    A session with a folder this user may not read (the archive's owner and modes) is left out
    whole and its ID appended to ``unreadable``; without that list the PermissionError is raised.
    Symbolic links are skipped with a warning and appended to ``links`` (module docstring).
    """
    out: list[Resource] = []
    found_links: list[str] = [] if links is None else links
    for session_id, path in session_dirs.items():
        before = len(found_links)
        try:
            out += _read_session_folder(session_id, path, found_links)
        except PermissionError as exc:
            if unreadable is None:
                raise
            unreadable.append(session_id)
            if len(unreadable) <= 5:  # the first few name the folder; read_project says how many
                log.warning("cannot read %s on the mount (%s, uid %d): session %s is read over "
                            "REST", exc.filename or path, exc.strerror, os.getuid(), session_id)
        for link in found_links[before:]:
            _warn_link(link, len(found_links))
        if progress is not None:
            progress(1)
    return out


def _warn_link(path: str, count: int) -> None:
    if count <= LINKS_LOGGED:
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        log.warning("symbolic link %s -> %s in the mounted archive: skipped (links are not "
                    "followed or counted)", path, target)


# --------------------------------------------------------------------------- whole project

SizesMode = Literal["auto", "mount", "rest", "none"]


class ProgressFactory(Protocol):
    """``run.progress`` of :class:`xnatnode.runtime.Run`: named counter with a total."""

    def __call__(self, name: str, total: int) -> Any: ...


@contextlib.contextmanager
def naming_on_404(what: str) -> Iterator[None]:
    """A 404 inside becomes ``<what> not found (or not visible to this user): …`` (exit 5), so the
    message names the object the admin gave rather than only the URL that answered 404."""
    try:
        yield
    except NotFound as exc:
        raise NotFound(
            f"{what} not found (or not visible to this user): {exc}",
            status=exc.status, method=exc.method, url=exc.url,
        ) from None


def read_project(
    conn: TableReader,
    project: str,
    *,
    sizes: SizesMode = "auto",
    input_dir: str | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressFactory | None = None,
) -> ProjectData:
    """Read a project's subjects, sessions, scans and resources.

    ``sizes``: ``mount`` reads session and scan resources from ``input_dir`` (sessions missing
    there fall back to REST), ``rest`` from resource listings, ``none`` skips resources,
    ``auto`` uses the mount when ``input_dir`` holds at least one of the project's sessions.
    """
    data = ProjectData(project=project)
    with naming_on_404(f"project {project}"):
        data.subjects = list_subjects(conn, project)  # first: 404 for an unknown project
    data.sessions = list_sessions(conn, project)
    data.scans = list_scans(conn, project)
    if sizes == "none":
        data.sizes = "none"
        return data

    on_disk: dict[str, str] = {}
    if sizes in ("auto", "mount") and input_dir:
        on_disk = mounted_sessions(input_dir, project, data.sessions, data.links)
        for link in data.links:
            _warn_link(link, 1)
    if sizes == "mount" and data.sessions and not on_disk:
        raise FileNotFoundError(
            f"--sizes mount: no session folder of project {project} under {input_dir}"
        )
    use_mount = sizes == "mount" or (sizes == "auto" and bool(on_disk))
    data.sizes = "mount" if use_mount else "rest"

    def counter(name: str, total: int) -> Callable[[int], None] | None:
        if progress is None or total == 0:
            return None
        bar = progress(name, total=total)
        return lambda k: bar.advance(k)

    failures = ItemFailures(data.skipped, data.missing)
    resources = list_project_resources(conn, project, failures=failures)
    resources += list_subject_resources(
        conn, project, data.subjects, workers=workers,
        progress=counter("subject resources", len(data.subjects)), failures=failures,
    )
    if use_mount:
        unreadable: list[str] = []
        resources += read_archive(on_disk, progress=counter("sessions on mount", len(on_disk)),
                                  unreadable=unreadable, links=data.links)
        if len(data.links) > LINKS_LOGGED:
            log.warning("%d symbolic links in the mounted archive were skipped", len(data.links))
        if unreadable:
            log.warning("%d of %d sessions on the mount were not readable by uid %d and were read "
                        "over REST", len(unreadable), len(on_disk), os.getuid())
        refused = set(unreadable)
        rest = [s for s in data.sessions if s.id not in on_disk or s.id in refused]
    else:
        rest = list(data.sessions)
    resources += list_session_resources(
        conn, rest, data.scans, workers=workers,
        progress=counter("session resources", len(rest)), failures=failures,
    )
    data.resources = complete_statistics(conn, project, resources, workers=workers,
                                         failures=failures)
    return data
