"""``summary.html``: one self-contained page (inline CSS and SVG, no script, no network)
with the key figures, charts and capped tables; the CSV files hold the full tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from xnatnode import __version__
from xnatnode.reports.svg import COLORS, bar_chart, column_chart, count, human_bytes
from xnatnode.safefiles import write_text
from xnatnode.summary import DATA_TYPE_ORDER, Report

#: Rows shown per HTML table; the CSV files hold everything.
TABLE_LIMIT = 200
LIST_LIMIT = 50

TYPE_COLORS = dict(zip(DATA_TYPE_ORDER, COLORS, strict=False))

CSS = """
:root{--fg:#1d2329;--muted:#5b6670;--line:#dde3e8;--card:#f5f7f9;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#fff}
main{max-width:1080px;margin:0 auto;padding:16px}
header h1{margin:0 0 4px;font-size:1.5em;word-break:break-word}
header p{margin:0;color:var(--muted);font-size:.9em}
h2{font-size:1.15em;margin:28px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:.95em;margin:14px 0 6px;color:var(--muted);font-weight:600}
figure h3{margin-top:0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px;margin-top:16px}
.card{background:var(--card);border-radius:8px;padding:10px 12px}
.card b{display:block;font-size:1.45em;line-height:1.2;font-variant-numeric:tabular-nums}
.card span{color:var(--muted);font-size:.85em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:18px 28px}
figure{margin:0;min-width:0}
svg.chart{width:100%;max-width:560px;height:auto;display:block}
figure.wide{margin-top:14px}figure.wide svg.chart{max-width:none;min-width:600px}
svg .l{fill:var(--fg)} svg .v{fill:var(--muted)} svg .axis{stroke:var(--line)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
table{border-collapse:collapse;width:auto;min-width:min(100%,520px);font-size:.88em}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:var(--card);position:sticky;top:0}
.note{color:var(--muted);font-size:.85em;margin:6px 0}
.ok{color:#00754a}
ul.gap{margin:4px 0 12px;padding-left:20px;columns:18em;column-gap:28px;font-size:.9em}
ul.gap li{break-inside:avoid}
a{color:var(--accent)}
footer{margin:32px 0 8px;color:var(--muted);font-size:.8em}
@media (max-width:480px){main{padding:10px}.grid{grid-template-columns:1fr}body{font-size:14px}table{min-width:100%}}
"""


def _num(value: Any) -> str:
    return "unknown" if value is None else count(value)


def _size(value: Any) -> str:
    return human_bytes(value)


def _table(
    headers: Sequence[tuple[str, bool]],
    rows: Iterable[Sequence[str]],
    *,
    total: int | None = None,
    csv_name: str | None = None,
) -> str:
    """A scrollable table; ``headers`` are (title, numeric?) pairs; cells are plain text."""
    head = "".join(f'<th class="n">{escape(h)}</th>' if n else f"<th>{escape(h)}</th>" for h, n in headers)
    body: list[str] = []
    shown = 0
    for row in rows:
        if shown >= TABLE_LIMIT:
            break
        shown += 1
        cells = "".join(
            f'<td class="n">{escape(c)}</td>' if n else f"<td>{escape(c)}</td>"
            for c, (_, n) in zip(row, headers, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    note = ""
    if total is not None and total > shown:
        where = f' — all rows in <a href="{escape(csv_name)}">{escape(csv_name)}</a>' if csv_name else ""
        note = f'<p class="note">Showing {shown:,} of {total:,}{where}.</p>'
    if not body:
        return '<p class="note">None.</p>'
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{note}'


def _figure(title: str, svg: str, *, wide: bool = False) -> str:
    if wide:
        return f'<figure class="wide"><h3>{escape(title)}</h3><div class="scroll">{svg}</div></figure>'
    return f"<figure><h3>{escape(title)}</h3>{svg}</figure>"


def _gap_list(title: str, gap: Mapping[str, Any] | None, render: Callable[[Any], str]) -> str:
    if gap is None:
        return f"<h3>{escape(title)}</h3><p class=\"note\">Not known (sizes were not read).</p>"
    n = int(gap["count"])
    if n == 0:
        return f'<h3>{escape(title)}</h3><p class="note ok">None.</p>'
    items = "".join(f"<li>{escape(render(i))}</li>" for i in gap["items"][:LIST_LIMIT])
    more = f'<p class="note">… and {n - LIST_LIMIT:,} more (see the CSV tables).</p>' if n > LIST_LIMIT else ""
    return f"<h3>{escape(title)} ({n:,})</h3><ul class=\"gap\">{items}</ul>{more}"


def render_html(report: Report) -> str:
    """The whole page as a string."""
    s = report.summary
    totals = s["totals"]
    sess = s["sessions"]
    scans = s["scans"]
    vol = s["volume"]
    gaps = s["gaps"]
    project = str(s["project"])
    sizes_known = totals["files"] is not None
    source = s.get("source", {})

    date_range = "no dated sessions"
    if sess["oldest"]:
        date_range = f'{sess["oldest"]["date"]} → {sess["newest"]["date"]}'

    cards = [
        ("Subjects", _num(totals["subjects"])),
        ("Sessions", _num(totals["sessions"])),
        ("Scans", _num(totals["scans"])),
        ("Resources", _num(totals["resources"])),
        ("Files", _num(totals["files"])),
        ("Stored", _size(totals["bytes"])),
    ]
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(project)} — project summary</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<header><h1>Project {escape(project)}</h1>",
        f"<p>Summary generated {escape(str(s['generated']))} · data {escape(date_range)}"
        f" · sizes from {escape(str(source.get('sizes', '?')))}</p></header>",
        '<section class="cards">'
        + "".join(f"<div class=\"card\"><b>{escape(v)}</b><span>{escape(k)}</span></div>" for k, v in cards)
        + "</section>",
    ]

    # Sessions
    by_type = [(t, float(n)) for t, n in sess["by_data_type"].items() if n]
    months = [(m, float(n)) for m, n in sess["by_month"].items()]
    visits = [(v, float(n)) for v, n in sess["by_visit"].items()]
    out.append('<h2 id="sessions">Sessions</h2><div class="grid">')
    out.append(
        _figure(
            "By data type",
            bar_chart(by_type, title="Sessions by data type", colors=[TYPE_COLORS[t] for t, _ in by_type]),
        )
    )
    out.append(_figure("By visit (from the session label)", bar_chart(visits, title="Sessions by visit", color=COLORS[2])))
    undated = f" ({sess['undated']:,} undated)" if sess["undated"] else ""
    out.append("</div>")
    out.append(_figure(f"Per month of acquisition{undated}", column_chart(months, title="Sessions per month"), wide=True))
    edges = []
    for key, name in (("oldest", "Oldest"), ("newest", "Newest")):
        if sess[key]:
            e = sess[key]
            edges.append(f"{name}: <b>{escape(e['date'])}</b> ({escape(e['session'])}, subject {escape(e['subject'])})")
    if sess.get("last_added"):
        e = sess["last_added"]
        edges.append(f"Last added to XNAT: <b>{escape(e['date'])}</b> ({escape(e['session'])})")
    if edges:
        out.append(f'<p class="note">{" · ".join(edges)}</p>')
    per_subject = [(f"{n} session{'s' if n != '1' else ''}", float(c)) for n, c in s["subjects"]["by_session_count"].items()]
    out.append('<div class="grid">')
    out.append(_figure("Subjects by number of sessions", bar_chart(per_subject, title="Subjects by number of sessions", color=COLORS[5])))
    out.append("</div>")
    out.append("<h3>Label patterns</h3>")
    out.append(
        _table(
            [("Pattern", False), ("Sessions", True)],
            ((p, count(n)) for p, n in sess["by_label_pattern"].items()),
            total=len(sess["by_label_pattern"]),
        )
    )
    out.append("<h3>Data types (xsiType)</h3>")
    out.append(
        _table([("xsiType", False), ("Sessions", True)], ((t or "(blank)", count(n)) for t, n in sess["by_xsi_type"].items()))
    )

    # Scans
    out.append('<h2 id="scans">Scans</h2><div class="grid">')
    out.append(_figure("By scan type", bar_chart([(t, float(n)) for t, n in scans["by_type"].items()], title="Scans by type", color=COLORS[4])))
    out.append(_figure("By quality", bar_chart([(t, float(n)) for t, n in scans["by_quality"].items()], title="Scans by quality", color=COLORS[3])))
    out.append("</div><h3>Series descriptions</h3>")
    out.append(
        _table(
            [("Series description", False), ("Scans", True)],
            ((d, count(n)) for d, n in scans["by_series_description"].items()),
            total=len(scans["by_series_description"]),
        )
    )

    # Volume
    out.append('<h2 id="storage">Storage</h2>')
    if not sizes_known:
        out.append('<p class="note">File counts and sizes were not read (<code>--sizes none</code>).</p>')
    else:
        labels = [(k, float(v["bytes"] or 0)) for k, v in vol["by_resource_label"].items()]
        types = [(t, float(v["bytes"] or 0)) for t, v in vol["by_data_type"].items() if v["resources"]]
        out.append('<div class="grid">')
        out.append(_figure("Bytes by resource label", bar_chart(labels, title="Bytes by resource label", fmt=human_bytes, color=COLORS[1])))
        out.append(
            _figure(
                "Bytes by session data type",
                bar_chart(types, title="Bytes by data type", fmt=human_bytes, colors=[TYPE_COLORS[t] for t, _ in types]),
            )
        )
        out.append("</div><h3>By level</h3>")
        out.append(
            _table(
                [("Level", False), ("Resources", True), ("Files", True), ("Size", True)],
                ((lvl, _num(v["resources"]), _num(v["files"]), _size(v["bytes"])) for lvl, v in vol["by_level"].items()),
            )
        )
        out.append("<h3>By resource label</h3>")
        out.append(
            _table(
                [("Label", False), ("Resources", True), ("Files", True), ("Size", True)],
                ((k, _num(v["resources"]), _num(v["files"]), _size(v["bytes"])) for k, v in vol["by_resource_label"].items()),
            )
        )
        out.append("<h3>Project resources</h3>")
        out.append(
            _table(
                [("Label", False), ("Files", True), ("Size", True)],
                ((r["label"], _num(r["files"]), _size(r["bytes"])) for r in vol["project_resources"]),
            )
        )
        largest = sorted(report.sessions, key=lambda r: (-(r.bytes or 0), -(r.files or 0), r.label))
        out.append("<h3>Largest sessions</h3>")
        out.append(
            _table(
                [("Session", False), ("Subject", False), ("Type", False), ("Date", False), ("Scans", True), ("Files", True), ("Size", True)],
                ((r.label, r.subject_label, r.data_type, r.date, count(r.scans), _num(r.files), _size(r.bytes)) for r in largest[:25]),
                total=len(largest),
                csv_name="sessions.csv",
            )
        )

    # Gaps
    out.append('<h2 id="gaps">Gaps</h2>')
    out.append(_gap_list("Subjects without sessions", gaps["subjects_without_sessions"], str))
    out.append(_gap_list("Sessions without scans", gaps["sessions_without_scans"], str))
    out.append(
        _gap_list(
            "Scans without files",
            gaps["scans_without_files"],
            lambda i: f"{i['session']} scan {i['scan']}" + (f" ({i['type']})" if i.get("type") else ""),
        )
    )
    if gaps.get("skipped", {}).get("count"):
        out.append(_gap_list("Deleted while being read (resources not counted)", gaps["skipped"], str))
    if gaps["resources_without_statistics"]:
        out.append(f'<p class="note">{gaps["resources_without_statistics"]:,} resources had no file statistics.</p>')

    # Subjects table
    out.append('<h2 id="subjects">Subjects</h2>')
    out.append(
        _table(
            [("Subject", False), ("Group", False), ("Sessions", True), ("Scans", True), ("Files", True), ("Size", True)],
            ((r.label, r.group, count(r.sessions), count(r.scans), _num(r.files), _size(r.bytes)) for r in report.subjects),
            total=len(report.subjects),
            csv_name="subjects.csv",
        )
    )
    tables = s.get("tables", {})
    links = " · ".join(f'<a href="{escape(v)}">{escape(v)}</a>' for v in tables.values())
    out.append(
        f"<footer>Full tables: {links} · machine-readable: <a href=\"summary.json\">summary.json</a>"
        f" (schema {escape(str(s['schema_version']))}) · xnatnode {escape(__version__)}"
        + (f" · {source['requests']:,} REST requests" if isinstance(source.get("requests"), int) else "")
        + "</footer>"
    )
    out.append("</main></body></html>\n")
    return "\n".join(out)


def write_html(report: Report, path: Path) -> Path:
    return write_text(path, render_html(report))
