"""The prearchive: sessions received by the import service and not yet archived (spec §10.1).

Layout under the data folder: ``prearchive/<P>/<TIMESTAMP>/<session>/SCANS/<scan>/DICOM/<file>`` plus
``prearchive/<P>/<TIMESTAMP>/<session>.json`` (the row XNAT lists). Sessions whose project cannot
be identified go to project ``Unassigned``, as on XNAT.

Routes: ``GET /data/prearchive/projects[/P]`` (table), ``GET /data/prearchive/projects/P/TS/E``
(one-row table, or ``format=zip``), ``DELETE`` of the same, ``POST /data/services/archive?src=…``
(archives it; body = the archived session URI) and ``POST /data/services/prearchive/delete?src=…``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from xnatsim import access
from xnatsim.dicomhdr import read_routing
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Router
from xnatsim.store import Store, StoreError

if TYPE_CHECKING:
    from xnatsim.importer import Study

COLUMNS = ("project", "timestamp", "lastmod", "uploaded", "scan_date", "scan_time", "subject", "folderName",
           "name", "tag", "status", "url", "autoarchive", "prevent_anon", "prevent_auto_commit", "SOURCE",
           "VISIT", "PROTOCOL", "TIMEZONE")
UNASSIGNED = "Unassigned"
_LOCK = threading.Lock()


def root(store: Store) -> Path:
    return store.data_dir / "prearchive"


def _stamp(t: float) -> str:
    return time.strftime("%Y%m%d_%H%M%S", time.localtime(t)) + f"{int(t * 1000) % 1000:03d}"


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def receive(store: Store, study: Study, *, user: str, merge: bool = False) -> str:
    """Move a parsed study into the prearchive; returns its ``/data/prearchive/...`` URI.

    ``merge`` (the ``gradual-DICOM`` handler) adds the files to the entry already holding the
    same study and session, as XNAT gathers single-file uploads into one receiving session;
    otherwise every upload makes a new timestamped entry.
    """
    from xnatsim.importer import _iso_date, _iso_time, file_name

    project = study.project if study.project and store.get_project(study.project) else UNASSIGNED
    with _LOCK:
        existing = [(meta, row) for meta, row in _entries(store)
                    if merge and row["project"] == project and row["name"] == study.session
                    and row["tag"] == study.uid]
        now = time.time()
        if existing:
            meta, row = existing[-1]
            folder = _session_dir(meta)
        else:
            while (root(store) / project / _stamp(now)).exists():
                now += 0.001
            folder = root(store) / project / _stamp(now) / study.session
            folder.mkdir(parents=True)
            meta = folder.parent / f"{study.session}.json"
            h = study.first
            row = {
                "project": project, "timestamp": _stamp(now), "lastmod": _when(now), "uploaded": _when(now),
                "scan_date": _iso_date(h.get("StudyDate", "")), "scan_time": _iso_time(h.get("StudyTime", "")),
                "subject": study.subject, "folderName": study.session, "name": study.session, "tag": study.uid,
                "status": "READY", "url": f"/prearchive/projects/{project}/{_stamp(now)}/{study.session}",
                "autoarchive": "Manual", "prevent_anon": "false", "prevent_auto_commit": "false", "SOURCE": "",
                "VISIT": "", "PROTOCOL": "", "TIMEZONE": "",
            }
        for scan_id, items in study.series().items():
            target = folder / "SCANS" / scan_id / "DICOM"
            target.mkdir(parents=True, exist_ok=True)
            for item in items:
                shutil.move(str(item.path), target / file_name(item.headers))
        row["lastmod"] = _when(now)
        meta.write_text(json.dumps({"row": row, "user": user}, indent=1), encoding="utf-8")
    return "/data" + row["url"]


def _entries(store: Store) -> list[tuple[Path, dict[str, str]]]:
    out: list[tuple[Path, dict[str, str]]] = []
    base = root(store)
    if not base.is_dir():
        return out
    for meta in sorted(base.glob("*/*/*.json")):
        try:
            row: dict[str, str] = json.loads(meta.read_text(encoding="utf-8"))["row"]
        except (OSError, ValueError, KeyError):
            continue
        out.append((meta, row))
    return out


def _visible(store: Store, user: str | None, project: str) -> bool:
    if store.is_admin(user):
        return True
    found = store.get_project(project)
    return found is not None and access.can(store, user, found, "edit")


def _find(store: Store, user: str | None, project: str, timestamp: str, name: str) -> tuple[Path, dict[str, str]]:
    meta = root(store) / project / timestamp / f"{name}.json"
    if "/" in project + timestamp + name or not meta.is_file() or not _visible(store, user, project):
        raise HTTPError(404, f"Unable to find prearchive session {project}/{timestamp}/{name}.")
    row: dict[str, str] = json.loads(meta.read_text(encoding="utf-8"))["row"]
    return meta, row


def _session_dir(meta: Path) -> Path:
    return meta.parent / meta.name[: -len(".json")]


def _remove(meta: Path) -> None:
    shutil.rmtree(_session_dir(meta), ignore_errors=True)
    meta.unlink(missing_ok=True)
    for folder in (meta.parent, meta.parent.parent):
        try:
            folder.rmdir()
        except OSError:
            break


def first_dicom(store: Store, user: str | None, project: str, timestamp: str, name: str,
                scan_id: str | None) -> Path | None:
    """The first DICOM file of a prearchive session (or of one of its scans), for the dump service."""
    try:
        meta, _ = _find(store, user, project, timestamp, name)
    except HTTPError:
        raise HTTPError(400, "Experiment or project not found") from None
    scans = _session_dir(meta) / "SCANS"
    if not scans.is_dir():
        return None
    for scan in sorted(scans.iterdir(), key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name)):
        if scan_id is not None and scan.name != scan_id:
            continue
        files = sorted((scan / "DICOM").glob("*"))
        if files:
            return files[0]
    return None


def _split_src(src: str) -> tuple[str, str, str]:
    parts = [p for p in src.split("/") if p]
    if parts[:1] == ["data"]:
        parts = parts[1:]
    if len(parts) != 5 or parts[:2] != ["prearchive", "projects"]:
        raise HTTPError(400, f"Invalid src: {src} (expected /prearchive/projects/P/TIMESTAMP/SESSION).")
    return parts[2], parts[3], parts[4]


# --------------------------------------------------------------------------- handlers


def list_all(request: Request) -> Response:
    user = request.require_user()
    project = request.params.get("project")
    rows = [[row.get(c, "") for c in COLUMNS] for _, row in _entries(request.store)
            if (project is None or row["project"] == project) and _visible(request.store, user, row["project"])]
    return table_response(request, COLUMNS, rows)


def get_session(request: Request) -> Response:
    meta, row = _find(request.store, request.user, request.params["project"], request.params["timestamp"],
                      request.params["session"])
    if request.format() == "zip":
        buffer = io.BytesIO()
        folder = _session_dir(meta)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{row['name']}/{path.relative_to(folder).as_posix()}")
        response = Response(200, buffer.getvalue(), "application/zip")
        response.headers["Content-Disposition"] = f'attachment; filename="{row["name"]}.zip"'
        return response
    return table_response(request, COLUMNS, [[row.get(c, "") for c in COLUMNS]])


def delete_session(request: Request) -> Response:
    meta, _ = _find(request.store, request.user, request.params["project"], request.params["timestamp"],
                    request.params["session"])
    _remove(meta)
    return Response.empty()


def delete_service(request: Request) -> Response:
    src = request.query.get("src") or ""
    meta, _ = _find(request.store, request.user, *_split_src(src))
    _remove(meta)
    return Response.empty()


def archive_service(request: Request) -> Response:
    """``POST /data/services/archive?src=/prearchive/projects/P/TS/E[&project=&subject=&session=]``."""
    from xnatsim.importer import Destination, DicomFile, Study, archive_study, archive_uri, route

    user = request.require_user()
    q = request.query
    meta, row = _find(request.store, user, *_split_src(q.get("src") or ""))
    overwrite = (q.get_ci("overwrite") or "none").lower()
    if overwrite not in ("none", "append", "delete"):
        raise HTTPError(400, f"Unsupported overwrite value: {overwrite} (use none, append or delete).")
    store = request.store
    files = [DicomFile(p, headers) for p in sorted(_session_dir(meta).rglob("*.dcm"))
             if (headers := read_routing(p)) is not None]
    if not files:
        raise HTTPError(400, "The prearchive session holds no DICOM files.")
    project = q.get_ci("project") or (row["project"] if row["project"] != UNASSIGNED else "")
    dest = Destination(True, project, q.get_ci("subject") or row["subject"], q.get_ci("session") or row["name"],
                       overwrite)
    study = Study(row["tag"], files)
    route(study, dest, store)
    found = store.get_project(study.project) if study.project else None
    if found is None:
        raise HTTPError(400, f"Unable to identify a project for the session {study.session}.")
    access.require(store, user, found, "edit")
    staging = Path(store.stage())
    try:
        for n, item in enumerate(study.files):
            copy = staging / f"f{n:06d}"
            try:
                os.link(item.path, copy)
            except OSError:
                shutil.copyfile(item.path, copy)
            item.path = copy
        try:
            exp = archive_study(store, study, user=user, overwrite=overwrite,
                                extra={"prearchivePath": str(_session_dir(meta))})
        except StoreError as exc:
            raise HTTPError(exc.status, exc.message) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remove(meta)
    return Response.text(archive_uri(exp))


def register(router: Router) -> None:
    router.add("GET", "/data/prearchive/projects", list_all)
    router.add("GET", "/data/prearchive/projects/{project}", list_all)
    router.add("GET", "/data/prearchive/projects/{project}/{timestamp}/{session}", get_session)
    router.add("DELETE", "/data/prearchive/projects/{project}/{timestamp}/{session}", delete_session)
    router.add("POST", "/data/services/archive", archive_service)
    router.add("POST", "/data/services/prearchive/delete", delete_service)

