"""dicom-upload's reports: ``upload-report.json``, ``upload-report.csv``, ``upload-report.html``.

``upload-report.json`` (schema ``xnatnode/dicom-upload-report``, version :data:`SCHEMA_VERSION`)::

    {"schema_version": "1.0", "schema": "xnatnode/dicom-upload-report",
     "generated": ISO time, "generator": "xnatnode <v> dicom-upload",
     "settings": {"project" (``--project``, "" when unrestricted), "via", "dry_run", "overwrite", "workers", "verify_timeout_s", "receiver"},
     "totals": {"rows", "verified", "objects_found", "objects_sent", "objects_refused",
                "objects_archived", "bytes_sent", "seconds", "outcomes": {outcome: rows},
                "first_sent_to_last_verified_s"},
     "rows": [{"line", "source", "project", "subject", "session", "study_instance_uid",
               "outcome", "reason", "objects_found", "objects_sent", "objects_refused",
               "objects_archived", "seconds", "mb_per_s", "modalities", "series": [{"series_uid",
               "scan", "modality", "objects"}], "expected_files_per_scan", "archived_files_per_scan",
               "sop_classes", "transfer_syntaxes", "skipped_files": [{"file", "reason"}],
               "refused_objects": [{"file", "sop_instance_uid", "status", "reason"}]}]}

Outcomes: ``verified`` (in the archive, every scan with the expected files), ``planned``
(``--dry-run``), ``incomplete``, ``prearchived``, ``unverified``, ``conflict``, ``refused``,
``bad-row``, ``not-sent``. The CSV holds one line per row with the scalar columns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnatnode.stamps import generator, utc_timestamp
from xnatnode.upload import RowResult

if TYPE_CHECKING:
    from xnatnode.reports import Level
    from xnatnode.runtime import Run

SCHEMA = "xnatnode/dicom-upload-report"
SCHEMA_VERSION = "1.0"
STEM = "upload-report"
OUTCOME_LEVELS: dict[str, Level] = {"verified": "ok", "planned": "info", "incomplete": "warning", "prearchived": "warning",
                  "unverified": "warning", "conflict": "error", "refused": "error", "bad-row": "error",
                  "not-sent": "error"}
#: What to check when the CSV map holds a header and no row.
NO_ROWS = "Add one row per session under the header (source, project, subject, session)."


@dataclass(slots=True)
class ReportRow:
    """One line of ``upload-report.csv`` (the scalar part of a JSON row)."""

    line: int
    source: str
    project: str
    subject: str
    session: str
    study_instance_uid: str
    outcome: str
    reason: str
    objects_found: int
    objects_sent: int
    objects_refused: int
    objects_archived: int
    seconds: float
    mb_per_s: float


def report_row(r: RowResult) -> ReportRow:
    return ReportRow(r.row.line, r.row.source, r.row.project, r.row.subject, r.row.session, r.study_uid,
                     r.outcome, r.reason, r.found, r.sent, r.refused, r.archived, r.seconds, r.mb_per_s)


def row_data(r: RowResult) -> dict[str, Any]:
    from dataclasses import asdict

    return {**asdict(report_row(r)),
            "modalities": r.modalities, "studies": r.studies, "series": r.series,
            "expected_files_per_scan": r.expected, "archived_files_per_scan": r.in_archive,
            "sop_classes": r.sop_classes, "transfer_syntaxes": r.transfer_syntaxes,
            "skipped_files": r.skipped_files, "refused_objects": r.refusals}


def build(results: list[RowResult], settings: dict[str, Any], *, first_sent: float | None = None,
          last_verified: float | None = None) -> dict[str, Any]:
    """The JSON document (see module docstring)."""
    span = round(last_verified - first_sent, 3) if first_sent and last_verified else None
    totals = {
        "rows": len(results),
        "verified": sum(1 for r in results if r.outcome == "verified"),
        "objects_found": sum(r.found for r in results),
        "objects_sent": sum(r.sent for r in results),
        "objects_refused": sum(r.refused for r in results),
        "objects_archived": sum(r.archived for r in results),
        "bytes_sent": sum(r.bytes_sent for r in results),
        "seconds": round(sum(r.seconds for r in results), 3),
        "outcomes": dict(Counter(r.outcome for r in results)),
        "first_sent_to_last_verified_s": span,
    }
    return {
        "schema_version": SCHEMA_VERSION, "schema": SCHEMA,
        "generated": utc_timestamp(),
        "generator": generator("dicom-upload"), "settings": settings, "totals": totals,
        "rows": [row_data(r) for r in results],
    }


def write_all(document: dict[str, Any], results: list[RowResult], out_dir: Path, run: Run | None = None) -> list[Path]:
    """``upload-report.json``/``.csv``/``.html`` in ``out_dir``; returns their paths."""
    from xnatnode.reports import write_report

    return write_report(out_dir, STEM, document=document, rows=[report_row(r) for r in results],
                        fields=ReportRow, page=page(document, results, run))


def page(document: dict[str, Any], results: list[RowResult], run: Run | None = None) -> Any:
    """The HTML page: verdict, totals, outcomes chart, the rows, skipped and refused files."""
    from xnatnode.reports import (
        Chart,
        Column,
        Items,
        Link,
        Page,
        RunRecord,
        Section,
        Table,
        Total,
        Verdict,
        human_bytes,
        quantity,
    )

    totals = document["totals"]
    settings = document["settings"]
    rows = [report_row(r) for r in results]
    bad = totals["rows"] - totals["verified"]
    if not totals["rows"]:
        verdict = Verdict("warning", "The CSV has no rows: nothing was sent", NO_ROWS)
    elif settings.get("dry_run"):
        verdict = Verdict("info", "Dry run: nothing was sent",
                          f"{totals['outcomes'].get('planned', 0)} of {totals['rows']} rows can be sent.")
    elif bad == 0:
        verdict = Verdict("ok", f"All {totals['rows']} rows verified in the archive")
    else:
        verdict = Verdict("error", f"{bad} of {totals['rows']} rows not verified",
                          "See the reason of each row; a re-run sends only what is missing.")
    skipped = [f"{r.row.source}/{f['file']}: {f['reason']}" for r in results for f in r.skipped_files]
    refused = [f"{r.row.source}/{f['file']} {f['status']}: {f['reason']}" for r in results for f in r.refusals]
    via = settings.get("via", "")
    parts: list[Any] = [
        Section("Outcomes", [Chart.bars("Rows by outcome", sorted(
            ((k, float(v)) for k, v in totals["outcomes"].items()), key=lambda kv: -kv[1]))], id="outcomes"),
        Section("Rows", [Table(
            [Column("Line", "line", numeric=True), Column("Source", "source", wrap=True),
             Column("Project", "project"), Column("Subject", "subject"), Column("Session", "session"),
             Column("Outcome", "outcome", levels=OUTCOME_LEVELS), Column("Reason", "reason", wrap=True),
             Column("Found", "objects_found", numeric=True), Column("Sent", "objects_sent", numeric=True),
             Column("Refused", "objects_refused", numeric=True),
             Column("Archived", "objects_archived", numeric=True),
             Column("Seconds", "seconds", numeric=True), Column("MB/s", "mb_per_s", numeric=True)],
            rows, csv=f"{STEM}.csv", empty="No rows in the CSV.")], id="rows"),
    ]
    if skipped:
        parts.append(Section("Files not sent", [Items("Not DICOM, truncated or unreadable", skipped)],
                             collapsible=True, badge=quantity(len(skipped), "file"), badge_level="warning"))
    if refused:
        parts.append(Section("Objects refused by the receiver", [Items("DIMSE status and reason", refused)],
                             collapsible=True, badge=quantity(len(refused), "object"), badge_level="error"))
    return Page(
        title="dicom-upload",
        heading="DICOM upload",
        subtitle=f"{document['generated']} · via {via}" + (f" · {settings['receiver']}" if settings.get("receiver")
                                                           else ""),
        verdict=verdict,
        totals=[Total("Rows", totals["rows"]), Total("Verified", totals["verified"], level="ok"),
                Total("Objects found", totals["objects_found"]), Total("Sent", totals["objects_sent"]),
                Total("Refused", totals["objects_refused"], level="error" if totals["objects_refused"] else None),
                Total("Archived", totals["objects_archived"]), Total("Bytes sent", totals["bytes_sent"],
                                                                     fmt=human_bytes)],
        parts=parts,
        run=RunRecord.from_run(run) if run is not None else None,
        footer=[Link(f"{STEM}.csv"), Link(f"{STEM}.json")],
    )
