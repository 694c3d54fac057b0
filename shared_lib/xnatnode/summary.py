"""Aggregation of a project's records (:mod:`xnatnode.listings`) into the project-summary report.

:func:`summarise` turns :class:`~xnatnode.listings.ProjectData` into a :class:`Report`: the
``summary.json`` document (:data:`SCHEMA_VERSION`, documented in the README) and one row per
subject, session, scan and resource for the CSV and HTML tables.  Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from xnatnode.labels import label_pattern, visit_of
from xnatnode.listings import LEVELS, ProjectData, Resource, Session
from xnatnode.stamps import utc_timestamp

#: Version of the summary.json layout; bump the major part on incompatible changes.
SCHEMA_VERSION = "1.0"

#: How many rows the "largest" and "gaps" lists in summary.json keep.
TOP_N = 10
GAP_LIST_LIMIT = 1000

#: Data types reported by name; every other xsiType counts as "other".
DATA_TYPES: dict[str, str] = {
    "xnat:mrsessiondata": "MR",
    "xnat:petsessiondata": "PET",
    "xnat:ctsessiondata": "CT",
}
DATA_TYPE_ORDER = ("MR", "PET", "CT", "other")

UNDATED = "undated"


def data_type(xsi_type: str) -> str:
    """``MR``, ``PET``, ``CT`` or ``other`` for a session's xsiType."""
    return DATA_TYPES.get(xsi_type.strip().lower(), "other")


# --------------------------------------------------------------------------- table rows


@dataclass(slots=True)
class SubjectRow:
    id: str
    label: str
    group: str
    sessions: int = 0
    scans: int = 0
    resources: int | None = 0
    files: int | None = 0
    bytes: int | None = 0


@dataclass(slots=True)
class SessionRow:
    id: str
    label: str
    subject_id: str
    subject_label: str
    xsi_type: str
    data_type: str
    date: str
    added: str
    visit: str
    label_pattern: str
    scans: int = 0
    resources: int | None = 0
    files: int | None = 0
    bytes: int | None = 0


@dataclass(slots=True)
class ScanRow:
    session_id: str
    session_label: str
    subject_label: str
    id: str
    type: str
    series_description: str
    quality: str
    resources: int | None = 0
    files: int | None = 0
    bytes: int | None = 0


@dataclass(slots=True)
class ResourceRow:
    level: str
    subject_label: str
    session_label: str
    scan_id: str
    label: str
    files: int | None
    bytes: int | None


def row_fields(row_type: type) -> list[str]:
    """Column names of a row dataclass, in order."""
    return [f.name for f in fields(row_type)]


@dataclass(slots=True)
class Report:
    """The report model every writer renders from."""

    summary: dict[str, Any]
    subjects: list[SubjectRow] = field(default_factory=list)
    sessions: list[SessionRow] = field(default_factory=list)
    scans: list[ScanRow] = field(default_factory=list)
    resources: list[ResourceRow] = field(default_factory=list)


# --------------------------------------------------------------------------- aggregation


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _sorted_counts(counter: Mapping[str, int]) -> dict[str, int]:
    """Largest first, then by name, so reports and diffs are stable."""
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _volume_entry() -> dict[str, int | None]:
    return {"resources": 0, "files": 0, "bytes": 0}


def _accumulate(entry: dict[str, int | None], res: Resource) -> None:
    entry["resources"] = (entry["resources"] or 0) + 1
    entry["files"] = _add(entry["files"], res.file_count)
    entry["bytes"] = _add(entry["bytes"], res.file_size)


def _month(date: dt.date | None) -> str:
    return date.strftime("%Y-%m") if date else UNDATED


def _months_between(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last`` inclusive (gaps filled with zero later)."""
    y, m = int(first[:4]), int(first[5:7])
    ly, lm = int(last[:4]), int(last[5:7])
    out: list[str] = []
    while (y, m) <= (ly, lm) and len(out) < 1200:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def summarise(
    data: ProjectData,
    *,
    generated: dt.datetime | None = None,
    source: Mapping[str, Any] | None = None,
) -> Report:
    """Aggregate ``data`` into the report (counts, volume, time, gaps and table rows)."""
    sizes_known = data.sizes != "none"
    zero: int | None = 0 if sizes_known else None
    subjects_by_id = {s.id: s for s in data.subjects}
    subject_rows = {
        s.id: SubjectRow(s.id, s.label, s.group, resources=zero, files=zero, bytes=zero)
        for s in data.subjects
    }
    session_rows: dict[str, SessionRow] = {}
    for s in data.sessions:
        subject_label = subjects_by_id[s.subject_id].label if s.subject_id in subjects_by_id else ""
        session_rows[s.id] = SessionRow(
            id=s.id,
            label=s.label,
            subject_id=s.subject_id,
            subject_label=subject_label,
            xsi_type=s.xsi_type,
            data_type=data_type(s.xsi_type),
            date=s.date.isoformat() if s.date else "",
            added=s.inserted.isoformat() if s.inserted else "",
            visit=visit_of(s.label, subject_label),
            label_pattern=label_pattern(s.label, subject_label),
            resources=zero,
            files=zero,
            bytes=zero,
        )
        if s.subject_id in subject_rows:
            subject_rows[s.subject_id].sessions += 1
        elif s.subject_id:
            # A session whose subject the subjects listing did not return (e.g. shared in).
            subject_rows[s.subject_id] = SubjectRow(
                s.subject_id, s.subject_id, "", sessions=1, resources=zero, files=zero, bytes=zero
            )
    scan_rows: dict[tuple[str, str], ScanRow] = {}
    for sc in data.scans:
        srow = session_rows.get(sc.session_id)
        scan_rows[(sc.session_id, sc.id)] = ScanRow(
            session_id=sc.session_id,
            session_label=srow.label if srow else sc.session_id,
            subject_label=srow.subject_label if srow else "",
            id=sc.id,
            type=sc.type,
            series_description=sc.series_description,
            quality=sc.quality,
            resources=zero,
            files=zero,
            bytes=zero,
        )
        if srow is not None:
            srow.scans += 1
            if srow.subject_id in subject_rows:
                subject_rows[srow.subject_id].scans += 1

    by_level = {level: _volume_entry() for level in LEVELS}
    by_label: dict[str, dict[str, int | None]] = defaultdict(_volume_entry)
    by_type_volume: dict[str, dict[str, int | None]] = {t: _volume_entry() for t in DATA_TYPE_ORDER}
    project_resources: list[dict[str, Any]] = []
    resource_rows: list[ResourceRow] = []
    missing_stats = 0
    totals_files: int | None = zero
    totals_bytes: int | None = zero
    for res in data.resources:
        _accumulate(by_level[res.level], res)
        _accumulate(by_label[res.label], res)
        totals_files = _add(totals_files, res.file_count)
        totals_bytes = _add(totals_bytes, res.file_size)
        if res.file_count is None or res.file_size is None:
            missing_stats += 1
        subject_label = session_label = ""
        owner_subject: str | None = None
        if res.level == "project":
            project_resources.append(
                {"label": res.label, "files": res.file_count, "bytes": res.file_size}
            )
        elif res.level == "subject":
            owner_subject = res.owner_id
            subject_label = subject_rows[res.owner_id].label if res.owner_id in subject_rows else ""
        else:
            srow = session_rows.get(res.owner_id)
            if srow is not None:
                session_label, subject_label = srow.label, srow.subject_label
                owner_subject = srow.subject_id
                srow.resources = _add(srow.resources, 1)
                srow.files = _add(srow.files, res.file_count)
                srow.bytes = _add(srow.bytes, res.file_size)
                _accumulate(by_type_volume[srow.data_type], res)
            if res.level == "scan":
                scrow = scan_rows.get((res.owner_id, res.scan_id))
                if scrow is not None:
                    scrow.resources = _add(scrow.resources, 1)
                    scrow.files = _add(scrow.files, res.file_count)
                    scrow.bytes = _add(scrow.bytes, res.file_size)
        if owner_subject is not None and owner_subject in subject_rows:
            sub = subject_rows[owner_subject]
            sub.resources = _add(sub.resources, 1)
            sub.files = _add(sub.files, res.file_count)
            sub.bytes = _add(sub.bytes, res.file_size)
        resource_rows.append(
            ResourceRow(
                level=res.level,
                subject_label=subject_label,
                session_label=session_label,
                scan_id=res.scan_id,
                label=res.label,
                files=res.file_count,
                bytes=res.file_size,
            )
        )

    sessions = list(session_rows.values())
    scans = list(scan_rows.values())
    subjects = sorted(subject_rows.values(), key=lambda r: r.label)

    dated = sorted((s for s in data.sessions if s.date), key=lambda s: (s.date, s.label))
    months = Counter(_month(s.date) for s in data.sessions)
    by_month: dict[str, int] = {}
    if dated:
        first, last = _month(dated[0].date), _month(dated[-1].date)
        by_month = {m: months.get(m, 0) for m in _months_between(first, last)}
    undated = months.get(UNDATED, 0)

    def edge(s: Session) -> dict[str, str]:
        return {
            "date": s.date.isoformat() if s.date else "",
            "session": s.label,
            "subject": session_rows[s.id].subject_label,
        }

    by_type_counts = Counter(r.data_type for r in sessions)
    inserted = sorted((s for s in data.sessions if s.inserted), key=lambda s: (s.inserted, s.label))
    per_subject = Counter(r.sessions for r in subjects)

    def size_key(row: SessionRow | SubjectRow) -> tuple[int, int, str]:
        return (-(row.bytes or 0), -(row.files or 0), row.label)

    largest_sessions = sorted(sessions, key=size_key)[:TOP_N] if sizes_known else []
    largest_subjects = sorted(subjects, key=size_key)[:TOP_N] if sizes_known else []

    subjects_without_sessions = [r.label for r in subjects if r.sessions == 0]
    sessions_without_scans = [r.label for r in sessions if r.scans == 0]
    scans_without_files = (
        [{"session": r.session_label, "scan": r.id, "type": r.type} for r in scans if r.files == 0]
        if sizes_known
        else None
    )

    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "project": data.project,
        "generated": utc_timestamp(generated),
        "source": {"sizes": data.sizes, "complete": data.complete, **dict(source or {})},
        "totals": {
            "subjects": len(subjects),
            "sessions": len(sessions),
            "scans": len(scans),
            "resources": len(data.resources) if sizes_known else None,
            "files": totals_files,
            "bytes": totals_bytes,
        },
        "sessions": {
            "by_data_type": {t: by_type_counts.get(t, 0) for t in DATA_TYPE_ORDER},
            "by_xsi_type": _sorted_counts(Counter(r.xsi_type for r in sessions)),
            "by_visit": _sorted_counts(Counter(r.visit for r in sessions)),
            "by_label_pattern": _sorted_counts(Counter(r.label_pattern for r in sessions)),
            "by_month": by_month,
            "undated": undated,
            "oldest": edge(dated[0]) if dated else None,
            "newest": edge(dated[-1]) if dated else None,
            "first_added": _added(inserted[0]) if inserted else None,
            "last_added": _added(inserted[-1]) if inserted else None,
        },
        "subjects": {
            "by_session_count": {str(n): per_subject[n] for n in sorted(per_subject)},
        },
        "scans": {
            "by_type": _sorted_counts(Counter(r.type or "(blank)" for r in scans)),
            "by_series_description": _sorted_counts(
                Counter(r.series_description or "(blank)" for r in scans)
            ),
            "by_quality": _sorted_counts(Counter(r.quality or "(blank)" for r in scans)),
        },
        "volume": {
            "by_level": by_level if sizes_known else None,
            "by_resource_label": (
                dict(sorted(by_label.items(), key=lambda kv: (-(kv[1]["bytes"] or 0), kv[0])))
                if sizes_known
                else None
            ),
            "by_data_type": by_type_volume if sizes_known else None,
            "project_resources": project_resources if sizes_known else None,
            "largest_sessions": [_size_entry(r) for r in largest_sessions],
            "largest_subjects": [_size_entry(r) for r in largest_subjects],
        },
        "gaps": {
            "subjects_without_sessions": _capped(subjects_without_sessions),
            "sessions_without_scans": _capped(sessions_without_scans),
            "scans_without_files": (
                _capped(scans_without_files) if scans_without_files is not None else None
            ),
            "resources_without_statistics": missing_stats if sizes_known else None,
            "skipped": _capped(data.skipped),
            "unread": _capped(data.missing),
            "links_skipped": _capped(data.links),
        },
        "tables": {
            "subjects": "subjects.csv",
            "sessions": "sessions.csv",
            "scans": "scans.csv",
            "resources": "resources.csv",
        },
    }
    return Report(summary, subjects, sessions, scans, resource_rows)


def _added(s: Session) -> dict[str, str]:
    return {"date": s.inserted.isoformat() if s.inserted else "", "session": s.label}


def _size_entry(row: SessionRow | SubjectRow) -> dict[str, Any]:
    entry: dict[str, Any] = {"label": row.label}
    if isinstance(row, SessionRow):
        entry["subject"] = row.subject_label
        entry["data_type"] = row.data_type
    entry["files"] = row.files
    entry["bytes"] = row.bytes
    return entry


def _capped(items: Iterable[Any]) -> dict[str, Any]:
    """``{"count": n, "items": [...first GAP_LIST_LIMIT...]}``."""
    listed = list(items)
    return {"count": len(listed), "items": listed[:GAP_LIST_LIMIT]}
