"""The prearchive over REST (spec §10.1): listing, one session, delete, archive, last log line.

Routes: ``GET /data/prearchive/projects[/P]`` (table), ``GET /data/prearchive/projects/P/TS/E``
(one-row table, or ``format=zip``), ``DELETE`` of the same, ``GET …/P/TS/E/logs/last`` (the last
log message, e.g. the conflict that stopped an auto-archive), ``POST /data/services/archive?src=…``
(archives it; body = the archived session URI) and ``POST /data/services/prearchive/delete?src=…``.
Storage, building and archiving live in :mod:`xnatsim.prearcstore` (no HTTP there).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from xnatsim import access, intake, prearcstore
from xnatsim.intake import IntakeError, Labels
from xnatsim.prearcstore import COLUMNS, Entry
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes
from xnatsim.store import Store

routes = Routes()


def _visible(store: Store, user: str | None, project: str) -> bool:
    if store.is_admin(user):
        return True
    found = store.get_project(project)
    return found is not None and access.can(store, user, found, "edit")


def _find(store: Store, user: str | None, project: str, timestamp: str, name: str) -> Entry:
    entry = prearcstore.find(store, project, timestamp, name)
    if entry is None or entry.direct or not _visible(store, user, project):
        raise HTTPError(404, f"Unable to find prearchive session {project}/{timestamp}/{name}.")
    return entry


def first_dicom(store: Store, user: str | None, project: str, timestamp: str, name: str,
                scan_id: str | None) -> Path | None:
    """The first DICOM file of a prearchive session (or of one of its scans), for the dump service."""
    try:
        entry = _find(store, user, project, timestamp, name)
    except HTTPError:
        raise HTTPError(400, "Experiment or project not found") from None
    return prearcstore.first_dicom(entry, scan_id)


def _split_src(src: str) -> tuple[str, str, str]:
    parts = [p for p in src.split("/") if p]
    if parts[:1] == ["data"]:
        parts = parts[1:]
    if len(parts) != 5 or parts[:2] != ["prearchive", "projects"]:
        raise HTTPError(400, f"Invalid src: {src} (expected /prearchive/projects/P/TIMESTAMP/SESSION).")
    return parts[2], parts[3], parts[4]


# --------------------------------------------------------------------------- handlers


@routes.route("GET", "/data/prearchive/projects", "/data/prearchive/projects/{project}")
def list_all(request: Request) -> Response:
    user = request.require_user()
    project = request.params.get("project")
    rows = [[e.row.get(c, "") for c in COLUMNS] for e in prearcstore.listed(request.store)
            if (project is None or e.row["project"] == project) and _visible(request.store, user, e.row["project"])]
    return table_response(request, COLUMNS, rows)


def _entry(request: Request) -> Entry:
    return _find(request.store, request.user, request.params["project"], request.params["timestamp"],
                 request.params["session"])


@routes.route("GET", "/data/prearchive/projects/{project}/{timestamp}/{session}")
def get_session(request: Request) -> Response:
    entry = _entry(request)
    row = entry.row
    if request.format() == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(entry.folder.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{row['name']}/{path.relative_to(entry.folder).as_posix()}")
        response = Response(200, buffer.getvalue(), "application/zip")
        response.headers["Content-Disposition"] = f'attachment; filename="{row["name"]}.zip"'
        return response
    return table_response(request, COLUMNS, [[row.get(c, "") for c in COLUMNS]])


@routes.route("GET", "/data/prearchive/projects/{project}/{timestamp}/{session}/logs/last")
def last_log(request: Request) -> Response:
    entry = _entry(request)
    return Response.text(entry.log[-1] if entry.log else "")


@routes.route("DELETE", "/data/prearchive/projects/{project}/{timestamp}/{session}")
def delete_session(request: Request) -> Response:
    prearcstore.remove(_entry(request))
    return Response.empty()


@routes.route("POST", "/data/services/prearchive/delete")
def delete_service(request: Request) -> Response:
    src = request.query.get("src") or ""
    prearcstore.remove(_find(request.store, request.user, *_split_src(src)))
    return Response.empty()


@routes.route("POST", "/data/services/archive")
def archive_service(request: Request) -> Response:
    """``POST /data/services/archive?src=/prearchive/projects/P/TS/E[&project=&subject=&session=&overwrite=]``."""
    user = request.require_user()
    q = request.query
    entry = _find(request.store, user, *_split_src(q.get("src") or ""))
    store = request.store
    labels = Labels(q.get_ci("project") or "", q.get_ci("subject") or "", q.get_ci("session") or "")
    project = labels.project or entry.row["project"]
    found = store.get_project(project)
    if found is None:
        raise HTTPError(400, f"Unable to identify a project for the session {labels.session or entry.row['name']}.")
    access.require(store, user, found, "edit")
    try:
        exp = prearcstore.archive(store, entry, user=user, overwrite=intake.parse_overwrite(q.get_ci("overwrite")),
                                  labels=labels)
    except IntakeError as exc:
        if exc.status == 409:
            entry.row["status"] = "CONFLICT"
            entry.log.append(exc.message)
            entry.save()
        raise HTTPError(exc.status, exc.message) from exc
    return Response.text(intake.archive_uri(exp))


register = routes.register
