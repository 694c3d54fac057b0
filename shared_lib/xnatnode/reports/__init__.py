"""The report layer: every command's JSON, CSV and self-contained HTML report, one way.

A command declares its rows and its page; the layer writes the files (safely: a new temporary
file, then one rename) and renders the page with jinja2 templates (``templates/``: the skeleton,
one macro per part, one stylesheet), autoescaping on. Pages load nothing (inline CSS and SVG, no
script, no font, no image, links only to files beside the page), read on a phone (wide tables and
charts scroll inside their own box), and carry ``<meta name="xnatnode-report">``.

Modules: :mod:`~xnatnode.reports.page` (the parts and :func:`render`),
:mod:`~xnatnode.reports.output` (the writers), :mod:`~xnatnode.reports.svg` (charts),
:mod:`~xnatnode.reports.check` (:func:`page_problems`, for tests),
:mod:`~xnatnode.reports.project_summary` (project-summary's files, a worked example).

Rows and the JSON document
--------------------------
Rows are dataclass instances (or mappings). The document starts with ``schema_version``
(``"MAJOR.MINOR"``, documented in the README; :func:`write_json` refuses a document without it)::

    from xnatnode.reports import records

    SCHEMA_VERSION = "1.0"

    @dataclass(slots=True)
    class FileRow:
        source: str
        outcome: str        # imported | skipped | rejected | conflict | ignored
        reason: str
        bytes: int | None

    document = {
        "schema_version": SCHEMA_VERSION,
        "project": project,
        "totals": {"files": len(rows), "imported": n_ok, "rejected": n_bad},
        "files": records(rows, FileRow),   # list of dicts, same columns as the CSV
    }

Dates, paths, enums and nested dataclasses in a document become JSON text. CSV cells that a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``...) get a leading ``'``; ``None``
is an empty cell; lists and mappings are JSON.

The page
--------
::

    from xnatnode.reports import (Chart, Column, Facts, Fact, Grid, Items, Link, Note, Page,
                                  RunRecord, Section, Table, Total, Verdict, human_bytes)

    OUTCOME_LEVELS = {"imported": "ok", "skipped": "info", "rejected": "error",
                      "conflict": "error", "ignored": "warning"}
    page = Page(
        title=f"{project} — nifti-import",            # browser tab
        heading=f"Import into {project}",             # <h1> (default: title)
        subtitle=f"Started {started} · source {source}",
        verdict=Verdict("error", "3 of 120 files rejected", "See the Rejected section."),
        # level: "ok" | "warning" | "error" | "info"; shown with a mark, not colour alone
        totals=[Total("Files", 120), Total("Imported", 117, level="ok"),
                Total("Rejected", 3, level="error"),  # a zero count is never coloured
                Total("Size", 2.1e9, fmt=human_bytes),
                Total("MB/s", 48.3)],                 # ints get 1,234; floats one decimal
        parts=[
            Section("Throughput", [Grid([
                Chart.bars("Files by outcome", [("imported", 117.0), ("rejected", 3.0)],
                           levels=OUTCOME_LEVELS),   # bars in the badges' colours
                Chart.bars("Bytes by session", by_session, fmt=human_bytes),
            ])], id="throughput"),
            Section("Files", [Table(
                [Column("Source", "source", wrap=True),
                 Column("Outcome", "outcome", levels=OUTCOME_LEVELS),   # coloured badge
                 Column("Reason", "reason", wrap=True),
                 Column("Size", "bytes", numeric=True, fmt=human_bytes),
                 Column("MB/s", lambda r: r.bytes / r.seconds / 1e6, numeric=True)],
                rows,                                  # dataclasses, mappings or tuples
                csv="import-report.csv",               # "Showing 200 of N — all rows in ..."
                empty="No files.",
            )], id="files"),
            # findings grouped by rule: one collapsible section each, a badge with the count
            *[Section(rule, [Note(description), Table(columns, found)], collapsible=True,
                      badge=f"{len(found)} errors", badge_level="error")
              for rule, (description, found) in by_rule.items()],
            Section("Gaps", [Items("Sessions without scans", labels, more="see the CSV")]),
            Note("Sizes were not read (`--sizes none`)."),   # `backticks` render as code
            Facts([Fact("Oldest", "2023-01-15", "subj001_baseline_mr")]),
        ],
        run=RunRecord.from_run(run),   # folded run record: command, version, host, requests,
                                       # arguments (secrets masked)
        footer=[Link("import-report.csv"), Link("import-report.json")],   # relative links only
    )

Parts nest: a :class:`Section` holds parts (its title is ``<h2>``, nested sections ``<h3>``...);
a :class:`Grid` puts charts side by side on a wide screen. Tables show at most ``TABLE_LIMIT``
(200) rows and link their CSV for the rest; :class:`Items` lists show ``LIST_LIMIT`` (50).
A column's ``key`` is an attribute/mapping key, a tuple index, a callable, or ``None`` (the
column's position). Every string is escaped; a :class:`Chart` only from :meth:`Chart.bars` /
:meth:`Chart.columns`; links must be relative (ValueError otherwise).

Writing
-------
::

    from xnatnode.reports import write_report
    paths = write_report(run.output_dir, "import-report",
                         document=document, rows=rows, fields=FileRow, page=page)
    # -> import-report.json, import-report.csv, import-report.html

or one file at a time: ``write_json(path, document)``, ``write_csv(path, rows, fields=FileRow)``
(header written even with no rows), ``write_html(path, page)``; ``render(page)`` gives the HTML
as a string. Set ``run.exit_code`` before building ``RunRecord.from_run(run)`` if you want it
in the record (it shows final fields only once the run has finished).

Testing a command's page
------------------------
::

    from xnatnode.reports import page_problems
    assert page_problems(html) == []   # marker, viewport, nothing external, tables scroll
"""

from __future__ import annotations

from xnatnode.reports.check import page_problems
from xnatnode.reports.output import (
    SCHEMA_KEY,
    csv_cell,
    field_names,
    records,
    write_csv,
    write_html,
    write_json,
    write_report,
)
from xnatnode.reports.page import (
    LEVELS,
    LIST_LIMIT,
    MARKER,
    TABLE_LIMIT,
    Chart,
    Column,
    Fact,
    Facts,
    Grid,
    Items,
    Level,
    Link,
    Note,
    Page,
    Part,
    RunRecord,
    Section,
    Span,
    Table,
    Total,
    Verdict,
    cell_text,
    render,
)
from xnatnode.reports.svg import COLORS, count, human_bytes, quantity

__all__ = [
    "COLORS",
    "LEVELS",
    "LIST_LIMIT",
    "MARKER",
    "SCHEMA_KEY",
    "TABLE_LIMIT",
    "Chart",
    "Column",
    "Fact",
    "Facts",
    "Grid",
    "Items",
    "Level",
    "Link",
    "Note",
    "Page",
    "Part",
    "RunRecord",
    "Section",
    "Span",
    "Table",
    "Total",
    "Verdict",
    "cell_text",
    "count",
    "csv_cell",
    "field_names",
    "human_bytes",
    "page_problems",
    "quantity",
    "records",
    "render",
    "write_csv",
    "write_html",
    "write_json",
    "write_report",
]
