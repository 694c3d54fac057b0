"""The DICOM dump service: ``GET /data/services/dicomdump?src=…[&field=…]&format=json``.

Follows XNAT's ``DicomDump`` restlet: ``src`` names a session, a scan or one file in a scan's
``DICOM`` resource, in these forms (matched as prefixes, like XNAT's ``Template.MODE_STARTS_WITH``)::

    /archive/projects/P/subjects/S/experiments/E/scans/SC/resources/DICOM/files/NAME
    /archive/projects/P[/subjects/S]/experiments/E/scans/SC
    /archive/projects/P[/subjects/S]/experiments/E
    /prearchive/projects/P/TIMESTAMP/E[/scans/SC]

``E`` is a label in ``P`` or an ID. The first file of the first scan (in scan order) with a
``DICOM`` resource is dumped (rows: :mod:`xnatsim.dicomhdr`). Answers as XNAT does: no ``src`` →
400 "Please set the src parameter"; a bad ``field`` → 400; an unknown experiment → 400
"Experiment or project not found"; a ``src`` of another form or a session without DICOM → 200
with an empty table; an unreadable file → 500.
"""

from __future__ import annotations

from pathlib import Path

from xnatsim import access, prearchive
from xnatsim.dicomhdr import COLUMNS, BadField, dump_rows, parse_fields
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes
from xnatsim.store import Parent, Store

DICOM_LABEL = "DICOM"


def _archive_file(store: Store, user: str | None, parts: list[str]) -> Path | None:
    """The file to dump for ``/archive/projects/P/...`` split into segments (after ``archive``)."""
    if len(parts) < 4 or parts[0] != "projects":
        return None
    project = parts[1]
    rest = parts[2:]
    if rest[:1] == ["subjects"] and len(rest) >= 4:
        rest = rest[2:]
    if rest[:1] != ["experiments"] or len(rest) < 2:
        return None
    exp = store.get_experiment(rest[1], project)
    found = store.get_project(project)
    if exp is None or found is None or not access.can(store, user, found, "read"):
        raise HTTPError(400, "Experiment or project not found")
    scan_id: str | None = None
    file_name: str | None = None
    tail = rest[2:]
    if tail[:1] == ["scans"] and len(tail) >= 2:
        scan_id = tail[1]
        if tail[2:5] == ["resources", DICOM_LABEL, "files"] and len(tail) >= 6:
            file_name = tail[5]
    elif tail[:1] in (["assessors"], ["recons"]):
        return None
    for scan in store.list_scans(exp.id):
        if scan_id is not None and scan.id != scan_id:
            continue
        resource = store.get_resource(Parent("scan", exp.project, exp.subject_id, exp.id, scan.pk), DICOM_LABEL)
        if resource is None or resource.label != DICOM_LABEL:
            continue
        for entry in store.list_files(resource.id):
            if file_name is None or entry.name == file_name:
                return store.file_path(resource, entry)
    return None


def locate(store: Store, user: str | None, src: str) -> Path | None:
    """The DICOM file ``src`` designates, or None (empty table)."""
    parts = [p for p in src.split("/") if p]
    if not parts:
        return None
    if parts[0] == "archive":
        return _archive_file(store, user, parts[1:])
    if parts[0] == "prearchive" and len(parts) >= 5 and parts[1] == "projects":
        scan_id = parts[6] if len(parts) >= 7 and parts[5] == "scans" else None
        return prearchive.first_dicom(store, user, parts[2], parts[3], parts[4], scan_id)
    return None


routes = Routes()


@routes.route("GET", "/data/services/dicomdump")
def dicomdump(request: Request) -> Response:
    src = request.query.get("src")
    if src is None:
        raise HTTPError(400, "Please set the src parameter")
    try:
        fields = parse_fields(v for k, v in request.query.items if k == "field")
    except BadField as exc:
        raise HTTPError(400, str(exc)) from exc
    path = locate(request.store, request.user, src)
    rows: list[list[str]] = []
    if path is not None:
        if not path.is_file():
            raise HTTPError(404, f"File not found: {path.name}")
        try:
            found = dump_rows(path, fields or None)
        except Exception as exc:  # pydicom raises many kinds on corrupt files; XNAT answers 500
            raise HTTPError(500, f"Unable to read DICOM header: {exc}") from exc
        rows = [[row[c] for c in COLUMNS] for row in found]
    return table_response(request, COLUMNS, rows)


register = routes.register
