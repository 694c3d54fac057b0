"""nifti-import's report: ``import-report.json``, ``import-report.csv`` and a self-contained
``import-report.html``, written with the report layer (:mod:`xnatnode.reports`).

JSON document (``schema_version`` "1.0", described in the README): ``project``, ``session``
(the launch's session, or null), ``source``, ``dry_run``, ``generated``, ``generator``,
``totals`` (files per outcome, bytes imported, requests, seconds, MB/s), ``problems`` (lines
about the mapping file) and ``files``: one entry per source file with ``source``, ``outcome``
(imported, skipped, rejected, conflict, ignored; in a dry run the planned action: create, skip,
reject, conflict, ignore), ``reason``, ``subject``, ``session``, ``scan``, ``resource``,
``bytes`` and ``md5`` (the same columns as the CSV).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnatnode.imports.plan import FileRow, Outcome

if TYPE_CHECKING:
    from xnatnode.reports import Level

SCHEMA_VERSION = "1.0"
NAME = "import-report"
OUTCOME_LEVELS: dict[str, Level] = {"imported": "ok", "skipped": "info", "rejected": "error", "conflict": "error",
                  "ignored": "warning", "create": "ok", "skip": "info", "reject": "error",
                  "ignore": "warning"}
#: Outcomes (and dry-run actions) that make the run PARTIAL.
FAILED = frozenset({"rejected", "conflict", "reject"})


@dataclass
class Summary:
    """What the report says above the rows."""

    project: str
    session: str | None
    source: str
    dry_run: bool
    generated: str
    generator: str
    requests: int
    seconds: float
    problems: list[str]


def totals(rows: list[FileRow], summary: Summary) -> dict[str, Any]:
    counts = Counter(r.outcome for r in rows)
    imported = sum(r.bytes or 0 for r in rows if r.outcome == Outcome.IMPORTED)
    result: dict[str, Any] = {"files": len(rows)}
    keys = ("create", "skip", "reject", "conflict", "ignore") if summary.dry_run else tuple(Outcome)
    result.update({str(k): counts.get(str(k), 0) for k in keys})
    result.update({"bytes_imported": imported, "requests": summary.requests,
                   "seconds": round(summary.seconds, 3),
                   "mb_per_s": round(imported / 1e6 / summary.seconds, 2) if summary.seconds > 0 else None})
    return result


def nothing_imported(rows: list[FileRow]) -> str:
    """What to check when a run imported nothing and failed nothing (every file ignored, or none)."""
    from xnatnode.reports import quantity

    if not rows:
        return "The source holds no files: check the batch resource or --source."
    return (f"{quantity(len(rows), 'file')} ignored, each with its reason: an image needs a BIDS name "
            "(sub-<s>/[ses-<v>/]<datatype>/…) or a row in the --mapping CSV.")


def partial(rows: list[FileRow]) -> bool:
    return any(r.outcome in FAILED for r in rows)


def document(rows: list[FileRow], summary: Summary) -> dict[str, Any]:
    from xnatnode.reports import records

    return {
        "schema_version": SCHEMA_VERSION,
        "project": summary.project,
        "session": summary.session,
        "source": summary.source,
        "dry_run": summary.dry_run,
        "generated": summary.generated,
        "generator": summary.generator,
        "totals": totals(rows, summary),
        "problems": summary.problems,
        "files": records(rows, FileRow),
    }


def page(rows: list[FileRow], summary: Summary, run_record: Any = None) -> Any:
    from xnatnode.reports import (
        Chart,
        Column,
        Items,
        Link,
        Page,
        Section,
        Table,
        Total,
        Verdict,
        human_bytes,
        quantity,
    )

    sums = totals(rows, summary)
    bad = [r for r in rows if r.outcome in FAILED]
    where = summary.project + (f" / {summary.session}" if summary.session else "")
    if summary.dry_run:
        verdict = Verdict("info", f"Dry run: {sums['create']} to create, {sums['skip']} already there",
                          "Nothing was written.")
    elif bad:
        verdict = Verdict("error", f"{len(bad)} of {quantity(len(rows), 'file')} rejected or in conflict",
                          "See the Problems section; fix and run again (imported files are skipped).")
    elif not sums["imported"] + sums["skipped"]:
        verdict = Verdict("warning", "Nothing was imported", nothing_imported(rows))
    else:
        n = sums["imported"] + sums["skipped"]
        verdict = Verdict("ok", f"All {quantity(n, 'file')} are in XNAT" if n != 1 else "The file is in XNAT",
                          f"{sums['imported']} imported, {sums['skipped']} already there.")
    counted = [(k, float(v)) for k, v in sums.items() if k in OUTCOME_LEVELS and v]
    columns = [Column("Source", "source", wrap=True), Column("Outcome", "outcome", levels=OUTCOME_LEVELS),
               Column("Reason", "reason", wrap=True), Column("Subject", "subject"),
               Column("Session", "session"), Column("Scan", "scan"), Column("Resource", "resource"),
               Column("Size", "bytes", numeric=True, fmt=human_bytes)]
    parts: list[Any] = [Section("Outcomes", [Chart.bars("Files by outcome", counted)], id="outcomes")]
    if bad:
        parts.append(Section("Problems", [Table(columns, bad, csv=f"{NAME}.csv")], id="problems"))
    if summary.problems:
        parts.append(Section("Mapping", [Items("Notes on the mapping file", summary.problems)]))
    parts.append(Section("Files", [Table(columns, rows, csv=f"{NAME}.csv", empty="No files.")], id="files"))
    return Page(
        title=f"{where} — nifti-import",
        heading=f"NIfTI import into {where}",
        subtitle=f"{summary.generated} · source {summary.source}",
        verdict=verdict,
        totals=[Total("Files", sums["files"]),
                *[Total(k.capitalize(), v, level=OUTCOME_LEVELS[k]) for k, v in sums.items()
                  if k in OUTCOME_LEVELS],
                Total("Bytes imported", float(sums["bytes_imported"]), fmt=human_bytes),
                Total("Requests", sums["requests"])],
        parts=parts,
        run=run_record,
        footer=[Link(f"{NAME}.csv"), Link(f"{NAME}.json")],
    )


def write(out_dir: Path, rows: list[FileRow], summary: Summary, run_record: Any = None) -> list[Path]:
    """Write the three report files into ``out_dir``; returns their paths."""
    from xnatnode.reports import write_report

    paths: list[Path] = write_report(out_dir, NAME, document=document(rows, summary), rows=rows,
                                     fields=FileRow, page=page(rows, summary, run_record))
    return paths
