"""findings.json, findings.csv and findings.html: one document, three views.

``findings.json`` (``schema_version`` below, documented in the README) holds the context (project,
session, where the convention and the header fields came from), the verdict, totals, and one
entry per finding with the columns of ``findings.csv``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xnatnode.labelcheck.convention import Convention
from xnatnode.labelcheck.records import Snapshot
from xnatnode.labelcheck.rules import RULES, FailOn, Finding, totals, verdict
from xnatnode.reports import RunRecord, quantity, records
from xnatnode.stamps import utc_timestamp

#: Layout version of findings.json; the major part changes on incompatible changes.
SCHEMA_VERSION = "1.0"

#: What the archived PatientID/PatientName mean on a default XNAT (reference §2).
ANON_NOTE = (
    "XNAT's default site anonymisation script sets PatientName := subject label and "
    "PatientID := session label when a session is archived, so archived headers agree with the "
    "labels by construction; a difference means the script was off or changed, or the session "
    "was renamed afterwards (XNAT does not rewrite headers on rename by default)."
)
HEADER_SOURCES = {
    "mount": "archived DICOM files on the mount (first file of each series, headers only)",
    "xnat": "XNAT's stored header fields (dcmPatientId, dcmPatientName, scan modality): "
            "no DICOM on the mount",
    "none": "no DICOM on the mount and no stored header fields in XNAT",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one run, ready to be written."""

    document: dict[str, Any]
    findings: list[Finding]


def build(snap: Snapshot, convention: Convention, findings: Sequence[Finding], *,
          fail_on: FailOn, generated: dt.datetime, source: Mapping[str, Any]) -> Outcome:
    """The findings.json document."""
    targets = set(snap.targets)
    sessions = [s for s in snap.sessions if s.id in targets]
    header_sources = {s.id: snap.header_source(s) for s in sessions if s.is_image_session}
    scan_counts = Counter(x.session_id for x in snap.scans)
    by_source = {k: sum(v == k for v in header_sources.values()) for k in HEADER_SOURCES}
    subject_ids = {s.subject_id for s in sessions}
    notes: list[str] = []
    if not convention.present:
        notes.append("The project has no naming convention (config xnatnode/labels): only XNAT's "
                     "own label rules were checked.")
    empty = [s.label for s in sessions if s.is_image_session
             and not scan_counts[s.id]]
    if empty:
        notes.append(f"{quantity(len(empty), 'session')} without scans ({', '.join(empty[:5])}"
                     f"{' …' if len(empty) > 5 else ''}): labels were checked, DICOM checks had "
                     "nothing to read (a session created empty over REST also fires the archive event).")
    if any(v == "mount" for v in header_sources.values()):
        notes.append(ANON_NOTE)
    session_doc = None
    if snap.context == "session" and sessions:
        s = sessions[0]
        session_doc = {"id": s.id, "label": s.label, "subject_label": s.subject_label,
                       "xsi_type": s.xsi_type, "scans": scan_counts[s.id],
                       "header_source": header_sources.get(s.id, "none")}
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated": utc_timestamp(generated),
        "project": snap.project,
        "context": snap.context,
        "session": session_doc,
        "convention": {"source": convention.source, "location": convention.location,
                       "template": convention.session, "subject": convention.subject},
        "headers": {"sources": {k: v for k, v in by_source.items() if v},
                    "meaning": {k: HEADER_SOURCES[k] for k, v in by_source.items() if v},
                    "patient_id_compared_with": convention.patient_id,
                    "patient_name_compared_with": convention.patient_name},
        "verdict": verdict(findings),
        "fail_on": fail_on,
        "checked": {"subjects": len(subject_ids) if snap.context == "session" else len(snap.subjects),
                    "sessions": len(sessions),
                    "scans": sum(scan_counts[t] for t in targets),
                    "dicom_series": sum(len(v) for k, v in snap.headers.items() if k in targets)},
        "totals": totals(findings),
        "notes": notes,
        "rules": {code: {"severity": convention.severity.get(code, r.severity), "title": r.title}
                  for code, r in RULES.items()},
        "findings": records(findings, Finding),
        "source": dict(source),
    }
    return Outcome(document, list(findings))


def write(outcome: Outcome, out_dir: Path, run: RunRecord | None = None) -> list[Path]:
    """findings.json, findings.csv and findings.html in ``out_dir``; the paths written."""
    from xnatnode.labelcheck.page import write_reports

    return write_reports(outcome.document, outcome.findings, out_dir, run)
