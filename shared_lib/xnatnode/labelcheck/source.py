"""What label-validation reads over REST, with a fixed request budget.

* The convention: ``GET /data/projects/P/config/xnatnode/labels?contents=true`` (1 request; 404
  means the project has none).
* Session context (the on-archive path), at most 4 more: the session with its scans and stored
  header fields (``/data/projects/P/experiments/<label or ID>?format=json``), the project's
  experiments and subjects (``columns=`` listings: uniqueness and the subject's label), and, for
  ``uniqueness: site``, ``/data/experiments?label=<label>`` (one site-wide listing).
* Project context, 3 or 4 more whatever the project size: subjects, experiments, one row per scan
  of the image sessions with their stored header fields, and the site's experiments for
  ``uniqueness: site``.

No xnatpy: plain keep-alive requests through :class:`xnatnode.client.Connection`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from xnatnode import listings
from xnatnode.errors import NotFound, XnatError
from xnatnode.labelcheck.convention import CONFIG_PATH, CONFIG_TOOL
from xnatnode.labelcheck.records import ScanRec, SessionRec, SiteLabel, Snapshot, SubjectRec
from xnatnode.listings import cell, parse_date, path_segment

_IMAGE_SESSION = "xnat:imageSessionData"
_SCAN = "xnat:imageScanData"
#: Stored header fields of image sessions, as listing xpaths (keys come back lower-cased).
_STORED = {"dcm_patient_id": "dcmPatientId", "dcm_patient_name": "dcmPatientName", "uid": "UID"}


class Reader(Protocol):
    """The part of :class:`xnatnode.client.Connection` used here."""

    def get(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any: ...

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any: ...

    def get_table(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, str]]: ...


def read_convention_text(conn: Reader, project: str) -> str | None:
    """The project's convention document from XNAT's config service; ``None`` if it has none."""
    try:
        response = conn.get(f"/data/projects/{path_segment(project)}/config/{CONFIG_TOOL}/{CONFIG_PATH}",
                            {"contents": "true"})
    except NotFound:
        return None
    text: str = response.content.decode("utf-8-sig", errors="replace")
    return text if text.strip() else None


def list_subjects(conn: Reader, project: str) -> list[SubjectRec]:
    """Every subject of the project: one request."""
    return [SubjectRec(s.id, s.label) for s in listings.list_subjects(conn, project)]


def list_experiments(conn: Reader, project: str, subjects: Sequence[SubjectRec]) -> list[SessionRec]:
    """Every experiment of the project (labels, types, dates, subjects): one request."""
    subject_labels = {s.id: s.label for s in subjects}
    return [
        SessionRec(id=s.id, label=s.label, subject_id=s.subject_id,
                   subject_label=subject_labels.get(s.subject_id, ""), xsi_type=s.xsi_type, date=s.date)
        for s in listings.list_sessions(conn, project)
    ]


def list_image_details(conn: Reader, project: str) -> tuple[dict[str, dict[str, str]], list[ScanRec]]:
    """Stored header fields per image session and every scan (ID, type, modality): one request,
    one row per scan (sessions without scans come once with blank scan columns)."""
    stored = [f"{_IMAGE_SESSION}/{f}" for f in _STORED.values()]
    scan_cols = [f"{_SCAN}/{c}" for c in ("ID", "type", "modality")]
    rows = conn.get_table(
        f"/data/projects/{path_segment(project)}/experiments",
        {"xsiType": _IMAGE_SESSION, "columns": ",".join(["ID", *stored, *scan_cols]), "limit": "*"},
    )
    fields: dict[str, dict[str, str]] = {}
    scans: dict[tuple[str, str], ScanRec] = {}
    for r in rows:
        sid = cell(r, "ID")
        if not sid:
            continue
        fields.setdefault(sid, {k: cell(r, f"{_IMAGE_SESSION}/{v}") for k, v in _STORED.items()})
        scan_id = cell(r, f"{_SCAN}/ID")
        if scan_id and (sid, scan_id) not in scans:
            scans[(sid, scan_id)] = ScanRec(sid, scan_id, cell(r, f"{_SCAN}/type"),
                                            cell(r, f"{_SCAN}/modality"))
    return fields, list(scans.values())


def list_site_labels(conn: Reader, label: str | None = None) -> list[SiteLabel]:
    """Session labels across the site (every one, or those equal to ``label``): one request."""
    params = {"columns": "ID,label,project", "limit": "*"}
    if label is not None:
        params["label"] = label
    rows = conn.get_table("/data/experiments", params)
    return [SiteLabel(cell(r, "project"), cell(r, "ID"), cell(r, "label")) for r in rows if cell(r, "ID")]


def _with_stored(session: SessionRec, values: Mapping[str, str]) -> SessionRec:
    return replace(session, dcm_patient_id=values.get("dcm_patient_id", ""),
                   dcm_patient_name=values.get("dcm_patient_name", ""), uid=values.get("uid", ""))


def read_project(conn: Reader, project: str, *, site: bool) -> Snapshot:
    """Project context: every subject, session and scan (3 requests, +1 with ``site``)."""
    with listings.naming_on_404(f"project {project}"):
        subjects = list_subjects(conn, project)
    experiments = list_experiments(conn, project, subjects)
    fields, scans = list_image_details(conn, project)
    sessions = [_with_stored(s, fields[s.id]) if s.id in fields else s for s in experiments]
    snap = Snapshot(project, "project", subjects=subjects, sessions=sessions, scans=scans,
                    targets=[s.id for s in sessions])
    if site:
        snap.site_labels = list_site_labels(conn)
    return snap


def _session_document(conn: Reader, project: str, ref: str) -> dict[str, Any]:
    doc = conn.get_json(f"/data/projects/{path_segment(project)}/experiments/{path_segment(ref)}")
    try:
        item = doc["items"][0]
        _ = item["data_fields"]["ID"]
    except (KeyError, IndexError, TypeError):
        raise XnatError(f"GET session {ref}: not an XNAT item document", method="GET") from None
    result: dict[str, Any] = item
    return result


def _children(item: Mapping[str, Any], field: str) -> list[Mapping[str, Any]]:
    for child in item.get("children") or []:
        if child.get("field") == field:
            return list(child.get("items") or [])
    return []


def read_session(conn: Reader, project: str, ref: str, *, site: bool) -> Snapshot:
    """Session context: one session (by label or ID) in its project (3 requests, +1 with ``site``)."""
    with listings.naming_on_404(f"session {ref} of project {project}"):
        item = _session_document(conn, project, ref)
    data = item["data_fields"]
    xsi_type = str((item.get("meta") or {}).get("xsi:type") or "")
    subjects = list_subjects(conn, project)
    experiments = list_experiments(conn, project, subjects)
    subject_id = str(data.get("subject_ID") or "")
    subject_label = next((s.label for s in subjects if s.id == subject_id), "")
    session = SessionRec(
        id=str(data["ID"]), label=str(data.get("label") or data["ID"]), subject_id=subject_id,
        subject_label=subject_label, xsi_type=xsi_type, date=parse_date(str(data.get("date") or "")),
        dcm_patient_id=str(data.get("dcmPatientId") or ""),
        dcm_patient_name=str(data.get("dcmPatientName") or ""), uid=str(data.get("UID") or ""),
    )
    scans = [
        ScanRec(session.id, str(f.get("ID") or ""), str(f.get("type") or ""), str(f.get("modality") or ""))
        for f in (s.get("data_fields") or {} for s in _children(item, "scans/scan"))
        if f.get("ID")
    ]
    sessions = [session if s.id == session.id else s for s in experiments]
    if session.id not in {s.id for s in sessions}:
        sessions.append(session)
    snap = Snapshot(project, "session", subjects=subjects, sessions=sessions, scans=scans,
                    targets=[session.id])
    if site:
        snap.site_labels = list_site_labels(conn, session.label)
    return snap


def scan_count(snap: Snapshot, session_ids: Sequence[str]) -> int:
    ids = set(session_ids)
    return sum(1 for s in snap.scans if s.session_id in ids)
