"""project-summary's report files, all from one :class:`xnatnode.summary.Report`: ``summary.json``,
the four CSV tables and ``summary.html`` (built with the report layer: key figures, charts and
capped tables; the CSV files hold the full tables)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from xnatnode.reports.output import write_csv, write_html, write_json
from xnatnode.reports.page import (
    LIST_LIMIT,
    TABLE_LIMIT,
    Chart,
    Column,
    Fact,
    Facts,
    Grid,
    Inline,
    Items,
    Link,
    Note,
    Page,
    Part,
    Section,
    Span,
    Table,
    Total,
)
from xnatnode.reports.svg import COLORS, count, human_bytes, quantity
from xnatnode.summary import (
    DATA_TYPE_ORDER,
    Report,
    ResourceRow,
    ScanRow,
    SessionRow,
    SubjectRow,
)

__all__ = ["LIST_LIMIT", "TABLES", "TABLE_LIMIT", "render_html", "summary_page", "write_all"]

#: File name → (row type, attribute of Report).
TABLES: dict[str, tuple[type, str]] = {
    "subjects.csv": (SubjectRow, "subjects"),
    "sessions.csv": (SessionRow, "sessions"),
    "scans.csv": (ScanRow, "scans"),
    "resources.csv": (ResourceRow, "resources"),
}

TYPE_COLORS = dict(zip(DATA_TYPE_ORDER, COLORS, strict=False))


def _num(value: Any) -> str:
    return "unknown" if value is None else count(value)


def _col(title: str, key: str | int | None = None, fmt: Callable[[Any], str] = str) -> Column:
    return Column(title, key, numeric=True, fmt=fmt)


def _counts_table(title: str, name: str, counts: Mapping[str, int], noun: str) -> Table:
    return Table([Column(name), _col(noun, fmt=count)], list(counts.items()), title=title)


def _gap(title: str, gap: Mapping[str, Any] | None, render: Callable[[Any], str]) -> Part:
    if gap is None:
        return Note("Not known (sizes were not read).", title=title)
    return Items(title, [render(i) for i in gap["items"][:LIST_LIMIT]], total=int(gap["count"]),
                 more="see the CSV tables")


def _scan_text(item: Mapping[str, Any]) -> str:
    kind = f" ({item['type']})" if item.get("type") else ""
    return f"{item['session']} scan {item['scan']}{kind}"


def _sessions(report: Report) -> Section:
    sess = report.summary["sessions"]
    by_type = [(t, float(n)) for t, n in sess["by_data_type"].items() if n]
    months = [(m, float(n)) for m, n in sess["by_month"].items()]
    visits = [(v, float(n)) for v, n in sess["by_visit"].items()]
    per_subject = [(quantity(int(n), "session"), float(c))
                   for n, c in report.summary["subjects"]["by_session_count"].items()]
    undated = f" ({sess['undated']:,} undated)" if sess["undated"] else ""
    edges = [
        Fact(name, sess[key]["date"], f"{sess[key]['session']}, subject {sess[key]['subject']}")
        for key, name in (("oldest", "Oldest"), ("newest", "Newest"))
        if sess[key]
    ]
    if sess.get("last_added"):
        added = sess["last_added"]
        edges.append(Fact("Last added to XNAT", added["date"], added["session"]))
    parts: list[Part] = [
        Grid([
            Chart.bars("By data type", by_type, label="Sessions by data type",
                       colors=[TYPE_COLORS[t] for t, _ in by_type]),
            Chart.bars("By visit (from the session label)", visits, label="Sessions by visit",
                       color=COLORS[2]),
        ]),
        Chart.columns(f"Per month of acquisition{undated}", months, label="Sessions per month"),
    ]
    if edges:
        parts.append(Facts(edges))
    parts += [
        Grid([Chart.bars("Subjects by number of sessions", per_subject, color=COLORS[5])]),
        _counts_table("Label patterns", "Pattern", sess["by_label_pattern"], "Sessions"),
        Table([Column("xsiType"), _col("Sessions", fmt=count)],
              [(t or "(blank)", n) for t, n in sess["by_xsi_type"].items()],
              title="Data types (xsiType)"),
    ]
    return Section("Sessions", parts, id="sessions")


def _scans(report: Report) -> Section:
    scans = report.summary["scans"]
    return Section("Scans", [
        Grid([
            Chart.bars("By scan type", [(t, float(n)) for t, n in scans["by_type"].items()],
                       label="Scans by type", color=COLORS[4]),
            Chart.bars("By quality", [(t, float(n)) for t, n in scans["by_quality"].items()],
                       label="Scans by quality", color=COLORS[3]),
        ]),
        _counts_table("Series descriptions", "Series description",
                      scans["by_series_description"], "Scans"),
    ], id="scans")


def _storage(report: Report) -> Section:
    if report.summary["totals"]["files"] is None:
        return Section("Storage", [Note("File counts and sizes were not read (`--sizes none`).")],
                       id="storage")
    vol = report.summary["volume"]
    labels = [(k, float(v["bytes"] or 0)) for k, v in vol["by_resource_label"].items()]
    types = [(t, float(v["bytes"] or 0)) for t, v in vol["by_data_type"].items() if v["resources"]]
    volume_columns = [Column("Level"), _col("Resources", 1, _num), _col("Files", 2, _num),
                      _col("Size", 3, human_bytes)]
    largest = sorted(report.sessions, key=lambda r: (-(r.bytes or 0), -(r.files or 0), r.label))
    return Section("Storage", [
        Grid([
            Chart.bars("Bytes by resource label", labels, fmt=human_bytes, color=COLORS[1]),
            Chart.bars("Bytes by session data type", types, label="Bytes by data type",
                       fmt=human_bytes, colors=[TYPE_COLORS[t] for t, _ in types]),
        ]),
        Table(volume_columns, [(k, v["resources"], v["files"], v["bytes"])
                               for k, v in vol["by_level"].items()], title="By level"),
        Table([Column("Label"), *volume_columns[1:]],
              [(k, v["resources"], v["files"], v["bytes"])
               for k, v in vol["by_resource_label"].items()], title="By resource label"),
        Table([Column("Label"), _col("Files", 1, _num), _col("Size", 2, human_bytes)],
              [(r["label"], r["files"], r["bytes"]) for r in vol["project_resources"]],
              title="Project resources"),
        Table([Column("Session", "label"), Column("Subject", "subject_label"),
               Column("Type", "data_type"), Column("Date", "date"),
               _col("Scans", "scans", count), _col("Files", "files", _num),
               _col("Size", "bytes", human_bytes)],
              largest[:25], total=len(largest), csv="sessions.csv", title="Largest sessions"),
    ], id="storage")


def _gaps(report: Report) -> Section:
    gaps = report.summary["gaps"]
    parts: list[Part] = [
        _gap("Subjects without sessions", gaps["subjects_without_sessions"], str),
        _gap("Sessions without scans", gaps["sessions_without_scans"], str),
        _gap("Scans without files", gaps["scans_without_files"], _scan_text),
    ]
    if gaps.get("skipped", {}).get("count"):
        parts.append(_gap("Deleted while being read (resources not counted)", gaps["skipped"], str))
    if gaps.get("unread", {}).get("count"):
        parts.append(_gap("Could not be read from XNAT (not counted: the totals are low)",
                          gaps["unread"], str))
    if gaps.get("links_skipped", {}).get("count"):
        parts.append(_gap("Symbolic links in the archive (not followed, not counted)",
                          gaps["links_skipped"], str))
    if gaps["resources_without_statistics"]:
        parts.append(Note(f"{gaps['resources_without_statistics']:,} resources had no file "
                          "statistics."))
    return Section("Gaps", parts, id="gaps")


def summary_page(report: Report) -> Page:
    """summary.html as a :class:`~xnatnode.reports.page.Page`."""
    s = report.summary
    totals = s["totals"]
    sess = s["sessions"]
    source = s.get("source", {})
    date_range = "no dated sessions"
    if sess["oldest"]:
        date_range = f'{sess["oldest"]["date"]} → {sess["newest"]["date"]}'
    subjects = Section("Subjects", [Table(
        [Column("Subject", "label"), Column("Group", "group"), _col("Sessions", "sessions", count),
         _col("Scans", "scans", count), _col("Files", "files", _num),
         _col("Size", "bytes", human_bytes)],
        report.subjects, csv="subjects.csv",
    )], id="subjects")
    tables: list[str | Link] = ["Full tables: "]
    for name in s.get("tables", {}).values():
        tables += [" · ", Link(name)] if len(tables) > 1 else [Link(name)]
    footer: list[Inline] = [
        Span(*tables),
        Span("machine-readable: ", Link("summary.json"), f" (schema {s['schema_version']})"),
    ]
    if isinstance(source.get("requests"), int):
        footer.append(f"{source['requests']:,} REST requests")
    project = str(s["project"])
    return Page(
        title=f"{project} — project summary",
        heading=f"Project {project}",
        subtitle=f"Summary generated {s['generated']} · data {date_range}"
        f" · sizes from {source.get('sizes', '?')}",
        totals=[
            Total("Subjects", totals["subjects"], fmt=_num),
            Total("Sessions", totals["sessions"], fmt=_num),
            Total("Scans", totals["scans"], fmt=_num),
            Total("Resources", totals["resources"], fmt=_num),
            Total("Files", totals["files"], fmt=_num),
            Total("Stored", totals["bytes"], fmt=human_bytes),
        ],
        parts=[_sessions(report), _scans(report), _storage(report), _gaps(report), subjects],
        footer=footer,
    )


def render_html(report: Report) -> str:
    """The whole page as a string."""
    from xnatnode.reports.page import render

    return render(summary_page(report))


def write_all(report: Report, out_dir: Path) -> list[Path]:
    """Write every report file into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_json(out_dir / "summary.json", report.summary)]
    paths += [write_csv(out_dir / name, getattr(report, attr), fields=row_type)
              for name, (row_type, attr) in TABLES.items()]
    paths.append(write_html(out_dir / "summary.html", summary_page(report)))
    return paths
