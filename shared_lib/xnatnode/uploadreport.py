"""dicom-upload's reports: ``upload-report.json``, ``upload-report.csv``, ``upload-report.html``.

``upload-report.json`` (schema ``xnatnode/dicom-upload-report``, version :data:`SCHEMA_VERSION`)::

    {"schema": "xnatnode/dicom-upload-report", "schema_version": 1,
     "generated": ISO time, "generator": "xnatnode <v> dicom-upload",
     "settings": {"via", "dry_run", "overwrite", "workers", "verify_timeout_s", "receiver"},
     "totals": {"rows", "verified", "objects_found", "objects_sent", "objects_refused",
                "objects_archived", "bytes_sent", "seconds", "outcomes": {outcome: rows}},
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

import csv
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

from xnatnode import __version__
from xnatnode.upload import RowResult

SCHEMA = "xnatnode/dicom-upload-report"
SCHEMA_VERSION = 1
JSON_NAME = "upload-report.json"
CSV_NAME = "upload-report.csv"
HTML_NAME = "upload-report.html"
CSV_COLUMNS = ("line", "source", "project", "subject", "session", "study_instance_uid", "outcome", "reason",
               "objects_found", "objects_sent", "objects_refused", "objects_archived", "seconds", "mb_per_s")


def row_data(r: RowResult) -> dict[str, Any]:
    return {
        "line": r.row.line, "source": r.row.source, "project": r.row.project, "subject": r.row.subject,
        "session": r.row.session, "study_instance_uid": r.study_uid, "outcome": r.outcome, "reason": r.reason,
        "objects_found": r.found, "objects_sent": r.sent, "objects_refused": r.refused,
        "objects_archived": r.archived, "seconds": r.seconds, "mb_per_s": r.mb_per_s,
        "modalities": r.modalities, "series": r.series, "expected_files_per_scan": r.expected,
        "archived_files_per_scan": r.in_archive, "sop_classes": r.sop_classes,
        "transfer_syntaxes": r.transfer_syntaxes, "skipped_files": r.skipped_files,
        "refused_objects": r.refusals, "studies": r.studies,
    }


def build(results: list[RowResult], settings: dict[str, Any]) -> dict[str, Any]:
    rows = [row_data(r) for r in results]
    totals = {
        "rows": len(rows),
        "verified": sum(1 for r in results if r.outcome == "verified"),
        "objects_found": sum(r.found for r in results),
        "objects_sent": sum(r.sent for r in results),
        "objects_refused": sum(r.refused for r in results),
        "objects_archived": sum(r.archived for r in results),
        "bytes_sent": sum(r.bytes_sent for r in results),
        "seconds": round(sum(r.seconds for r in results), 3),
        "outcomes": dict(Counter(r.outcome for r in results)),
    }
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "generator": f"xnatnode {__version__} dicom-upload", "settings": settings, "totals": totals, "rows": rows,
    }


def _write_text(path: Path, text: str) -> Path:
    partial = path.with_name(path.name + ".part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def write_all(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write the three report files (each atomically); returns their paths."""
    import io

    paths = [_write_text(out_dir / JSON_NAME, json.dumps(report, indent=2) + "\n")]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(report["rows"])
    paths.append(_write_text(out_dir / CSV_NAME, buffer.getvalue()))
    paths.append(_write_text(out_dir / HTML_NAME, render_html(report)))
    return paths


def render_html(report: dict[str, Any]) -> str:
    """A self-contained page: totals, then one table row per CSV row (details in ``<details>``)."""
    from html import escape

    totals = report["totals"]
    outcome_text = ", ".join(f"{k}: {v}" for k, v in sorted(totals["outcomes"].items()))
    head = ("<tr>" + "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in CSV_COLUMNS if c != "reason")
            + "<th>reason</th></tr>")
    body = []
    for row in report["rows"]:
        cells = "".join(f"<td>{escape(str(row[c]))}</td>" for c in CSV_COLUMNS if c != "reason")
        details = ""
        if row["skipped_files"] or row["refused_objects"]:
            items = [f"<li>{escape(s['file'])}: {escape(s['reason'])}</li>" for s in row["skipped_files"]]
            items += [f"<li>{escape(s['file'])} {escape(s['status'])}: {escape(s['reason'])}</li>"
                      for s in row["refused_objects"]]
            details = f"<details><summary>{len(items)} file(s)</summary><ul>{''.join(items)}</ul></details>"
        body.append(f'<tr class="{escape(row["outcome"])}">{cells}<td>{escape(row["reason"])}{details}</td></tr>')
    settings = ", ".join(f"{k}={v}" for k, v in report["settings"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dicom-upload report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}}
tr.verified td:nth-child(7){{color:#1a7f37}}tr.conflict td:nth-child(7),tr.bad-row td:nth-child(7){{color:#b42318}}
</style></head><body>
<h1>dicom-upload report</h1>
<p>{escape(report["generator"])}, {escape(report["generated"])}; {escape(settings)}</p>
<p><strong>{totals["verified"]} of {totals["rows"]} rows verified</strong> ({escape(outcome_text)});
objects found {totals["objects_found"]}, sent {totals["objects_sent"]}, refused {totals["objects_refused"]},
archived {totals["objects_archived"]}.</p>
<table><thead>{head}</thead><tbody>
{"".join(body)}
</tbody></table></body></html>
"""
