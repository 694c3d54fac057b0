"""The report layer (xnatnode.reports): parts, escaping, self-containment, writers."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from markupsafe import Markup
from xnatnode.reports import (
    LIST_LIMIT,
    MARKER,
    Chart,
    Column,
    Fact,
    Facts,
    Grid,
    Items,
    Link,
    Note,
    Page,
    RunRecord,
    Section,
    Span,
    Table,
    Total,
    Verdict,
    page_problems,
    quantity,
    records,
    render,
    write_csv,
    write_json,
    write_report,
)
from xnatnode.reports.page import stylesheet

HOSTILE = '<script>alert("x")</script><img src=https://evil.example/x.png onerror=alert(1)>'
SHARED_LIB = Path(__file__).resolve().parents[2] / "shared_lib" / "xnatnode"


@dataclass(slots=True)
class Row:
    source: str
    outcome: str
    bytes: int | None
    reason: str = ""


def _every_part(text: str) -> Page:
    """A page with ``text`` in every place a command can put a string."""
    rows = [Row(text, "rejected", 10, text), Row("b.nii", "imported", None)]
    return Page(
        title=text,
        heading=text,
        subtitle=text,
        verdict=Verdict("error", text, text),
        totals=[Total(text, text, level="warning", hint=text), Total("n", 1234)],
        parts=[
            Section(text, [
                Grid([Chart.bars(text, [(text, 1.0)], label=text),
                      Chart.columns(text, [(text, 2.0)])]),
                Table([Column(text, "source", wrap=True),
                       Column("Outcome", "outcome", levels={"rejected": "error"}),
                       Column("Bytes", "bytes", numeric=True, missing="unknown"),
                       Column("Reason", lambda r: r.reason)], rows, title=text),
                Note(f"{text} `{text}`", title=text),
                Facts([Fact(text, text, text)]),
                Items(text, [text, text]),
                Section(text, [Note(text)], collapsible=True, badge=text, badge_level="error"),
            ], id=text),
        ],
        run=RunRecord({"command": text, "version": "1", "xnat_host": text, "token": "***",
                       "arguments": {"project": text}}),
        footer=[text, Span(text, Link("a.csv")), Link(text.replace("/", "_").replace(":", "_"))],
    )


def test_hostile_strings_are_text_everywhere() -> None:
    html = render(_every_part(HOSTILE))
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "onerror" in html  # as text (page_problems parses: no on* attribute)
    assert page_problems(html) == []


def test_page_parts_render() -> None:
    html = render(_every_part("plain"))
    assert html.startswith("<!DOCTYPE html>")
    assert f'<meta name="{MARKER}" content="1">' in html
    assert 'class="verdict lvl-error"' in html
    assert "✗" in html
    assert '<div class="card lvl-warning" title="plain">' in html
    assert "<b>1,234</b>" in html
    assert '<td class="n">unknown</td>' in html  # None in a numeric column
    assert '<span class="badge lvl-error">rejected</span>' in html
    assert '<td class="w">plain</td>' in html
    assert "<code>plain</code>" in html
    assert '<details class="group" open>' in html
    assert '<h2 id="plain">plain</h2>' in html
    assert "<h3>plain</h3>" in html  # nested parts one level down
    assert html.count("<svg") == 2
    assert '<details class="run" id="run">' in html
    assert "<dt>--project</dt><dd>plain</dd>" in html
    assert re.search(r"<footer>plain · plain<a href=\"a.csv\">a.csv</a> · .*xnatnode ", html)


def test_every_table_scrolls_in_its_own_box_on_a_phone() -> None:
    wide = Table([Column(f"Column {i}") for i in range(30)], [tuple("x" * 40 for _ in range(30))])
    html = render(Page("t", [wide, Section("s", [wide])]))
    assert html.count('<div class="scroll"><table>') == 2
    css = stylesheet()
    assert re.search(r"\.scroll\{overflow-x:auto", css)
    assert "max-width:100%" in css
    assert page_problems(html) == []


def test_self_contained() -> None:
    html = render(_every_part("x"))
    for attr, target in re.findall(r'\b(src|href)="([^"]*)"', html):
        assert not re.match(r"([a-z]+:|//|/)", target), (attr, target)
    assert "@import" not in html
    assert "url(" not in html
    assert "@font-face" not in html


@pytest.mark.parametrize(
    "href", ["https://example.org/x.csv", "http:x", "//example.org", "/etc/passwd",
             "javascript:alert(1)", "JavaScript:x", " data:text/html,x", "\\\\host\\share"],
)
def test_links_must_be_relative(href: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        Link("x", href)
    with pytest.raises(ValueError, match="relative"):
        Table([Column("a")], [], csv=href)


def test_chart_markup_only_from_the_svg_module() -> None:
    with pytest.raises(ValueError, match="svg"):
        Chart("t", "<svg onload=alert(1)>")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="svg"):
        Chart("t", Markup("<script>alert(1)</script>"))


def test_levels_are_checked() -> None:
    with pytest.raises(ValueError, match="level"):
        Verdict("fine", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        Total("x", 1, level="red")  # type: ignore[arg-type]


def test_table_cap_and_count() -> None:
    rows = [(i,) for i in range(450)]
    for given in (rows, iter(rows)):
        html = render(Page("t", [Table([Column("n", numeric=True)], given, csv="all.csv",
                                       limit=100)]))
        assert html.count("<tr>") == 101
        assert 'Showing 100 of 450 — all rows in <a href="all.csv">all.csv</a>.' in html
    html = render(Page("t", [Table([Column("n")], [], title="Empty", empty="No rows.")]))
    assert "<h2>Empty</h2><p class=\"note\">No rows.</p>" in html


def test_items_cap() -> None:
    html = render(Page("t", [Items("Gaps", [str(i) for i in range(80)], more="see x.csv")]))
    assert html.count("<li>") == LIST_LIMIT
    assert "<h2>Gaps (80)</h2>" in html
    assert "… and 30 more (see x.csv)." in html
    assert '<p class="note ok">None.</p>' in render(Page("t", [Items("Gaps", [])]))


def test_run_record_hides_status_until_finished() -> None:
    live = {"command": "c", "version": "1", "started": "s", "finished": None, "status": "ok",
            "exit_code": 0, "request_count": 3}
    names = [n for n, _ in RunRecord(live).entries()]
    assert names == ["command", "version", "started", "request count"]
    done = RunRecord({**live, "finished": "f", "status": "partial", "exit_code": 6})
    assert ("status", "partial") in done.entries()


def test_run_record_shows_flag_values_as_typed() -> None:
    record = RunRecord({"command": "c", "request_count": 12345, "arguments": {
        "dicom_port": 34575, "deadline": 21600.0, "timeout": 2.5, "dry_run": False, "via": "cstore"}})
    entries = dict(record.entries())
    assert entries["--dicom-port"] == "34575"  # a port, not a quantity: no "34,575"
    assert entries["--deadline"] == "21600"
    assert entries["--timeout"] == "2.5"
    assert entries["--dry-run"] == "no"
    assert entries["--via"] == "cstore"
    assert entries["request count"] == "12,345"


def test_page_problems_finds_what_is_wrong() -> None:
    bad = (
        '<html><head><link rel="stylesheet" href="https://cdn.example/x.css">'
        "<style>@import 'x.css';</style></head><body><table><tr><td>x</td></tr></table>"
        '<a href="//evil.example">x</a><div onclick="x()"></div><script>1</script></body></html>'
    )
    problems = "\n".join(page_problems(bad))
    for expected in ("DOCTYPE", MARKER, "viewport", "<link>", "https://cdn.example/x.css",
                     "//evil.example", "onclick", "<script>", "@import", "scrolling container"):
        assert expected in problems


def test_write_json_needs_a_schema_version(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="schema_version"):
        write_json(tmp_path / "r.json", {"totals": {}})
    with pytest.raises(ValueError, match="schema_version"):
        write_json(tmp_path / "r.json", {"schema_version": 1})
    rows = [Row("a", "imported", 1)]
    doc = {"schema_version": "1.0", "files": records(rows, Row), "path": tmp_path}
    write_json(tmp_path / "r.json", doc)
    back = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert next(iter(back)) == "schema_version"
    assert back["files"] == [{"source": "a", "outcome": "imported", "bytes": 1, "reason": ""}]
    assert back["path"] == str(tmp_path)


def test_write_csv_is_safe_in_a_spreadsheet(tmp_path: Path) -> None:
    rows = [Row("=HYPERLINK(\"http://x\")", "+1", None, "@SUM(A1)"), Row("-2", "ok", 5, "\tx")]
    write_csv(tmp_path / "r.csv", rows, fields=Row)
    with (tmp_path / "r.csv").open(newline="", encoding="utf-8") as fh:
        got = list(csv.reader(fh))
    assert got[0] == ["source", "outcome", "bytes", "reason"]
    assert got[1] == ["'=HYPERLINK(\"http://x\")", "'+1", "", "'@SUM(A1)"]
    assert got[2] == ["'-2", "ok", "5", "'\tx"]
    write_csv(tmp_path / "empty.csv", [], fields=["a", "b"])
    assert (tmp_path / "empty.csv").read_bytes() == b"a,b\r\n"
    write_csv(tmp_path / "m.csv", [{"a": [1, 2], "b": {"k": "v"}}], fields=["a", "b"])
    assert '"[1, 2]","{""k"": ""v""}"' in (tmp_path / "m.csv").read_text("utf-8")


def test_write_report_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    rows = [Row("a.nii", "imported", 1)]
    paths = write_report(out, "import-report", document={"schema_version": "1.0"}, rows=rows,
                         fields=Row, page=Page("Import"))
    assert [p.name for p in paths] == ["import-report.json", "import-report.csv",
                                       "import-report.html"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files
    assert page_problems((out / "import-report.html").read_text("utf-8")) == []


def test_writers_replace_a_planted_link_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep", "utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "r.json").symlink_to(victim)
    write_json(out / "r.json", {"schema_version": "1.0"})
    assert victim.read_text("utf-8") == "keep"
    assert not (out / "r.json").is_symlink()


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("old", "utf-8")
    with pytest.raises(TypeError):
        write_json(tmp_path / "r.json", {"schema_version": "1.0", "x": object()})
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert (tmp_path / "r.json").read_text("utf-8") == "old"


def test_html_is_made_only_by_the_layer() -> None:
    """Every command's HTML comes from xnatnode.reports (templates, one stylesheet): no module
    of the library writes page markup by hand. Commands' pages carry the layer's marker, which
    their own tests check with page_problems()."""
    by_hand = re.compile(r"<(!doctype|html|body|table|tr|td|th|style)[\s>]", re.IGNORECASE)
    allowed = {SHARED_LIB / "reports" / "check.py"}  # names the tags in its messages
    offenders = [
        str(path.relative_to(SHARED_LIB))
        for path in sorted(SHARED_LIB.rglob("*.py"))
        if path not in allowed and by_hand.search(path.read_text("utf-8"))
    ]
    assert offenders == []


def test_templates_ship_in_the_wheel_sources() -> None:
    templates = SHARED_LIB / "reports" / "templates"
    assert {p.name for p in templates.iterdir()} >= {"page.html.j2", "parts.html.j2", "style.css"}


def test_run_record_from_a_run(tmp_path: Path) -> None:
    from xnatnode.runtime import Run

    with Run("demo", output_dir=tmp_path) as run:
        run.record["project"] = "P1"
        html = render(Page("t", run=RunRecord.from_run(run)))
    assert "<summary>Run record: demo · xnatnode " in html
    assert "<dt>project</dt><dd>P1</dd>" in html
    assert "<dt>started</dt>" in html
    assert "<dt>status</dt>" not in html  # not known while the run is still going


def test_cell_text() -> None:
    import enum

    from xnatnode.reports import cell_text

    class Outcome(enum.Enum):
        IMPORTED = "imported"

    assert cell_text(Outcome.IMPORTED) == "imported"
    assert cell_text(1234567) == "1,234,567"
    assert cell_text(48.25) == "48.2"
    assert cell_text(None, "unknown") == "unknown"
    assert cell_text(True) == "yes"
    assert cell_text(["a", 1000]) == "a, 1,000"
    cell = Column("Outcome", 0, levels={"imported": "ok"}).cell((Outcome.IMPORTED,), 0)
    assert (cell.text, cell.level) == ("imported", "ok")


def test_zero_counts_raise_no_alarm() -> None:
    html = render(Page("t", totals=[Total("Rejected", 0, level="error"),
                                    Total("Conflicts", 2, level="error")]))
    assert '<div class="card"><b>0</b><span>Rejected</span>' in html
    assert '<div class="card lvl-error"><b>2</b><span>Conflicts</span>' in html


def test_bars_coloured_by_level() -> None:
    from xnatnode.reports.page import LEVEL_COLORS

    chart = Chart.bars("Files", [("imported", 3.0), ("rejected", 1.0), ("other", 1.0)],
                       levels={"imported": "ok", "rejected": "error"}, color="#123456")
    assert [LEVEL_COLORS["ok"], LEVEL_COLORS["error"], "#123456"] == re.findall(
        r'fill="(#[0-9a-fA-F]{6})"', chart.svg)


def test_every_level_has_its_colours() -> None:
    css = stylesheet()
    for level in ("ok", "warning", "error", "info"):
        assert f".lvl-{level}{{--c:var(--{level});--bg:var(--{level}-bg)}}" in css
    for part in (".verdict", ".card", ".note", ".badge"):
        assert part in css


def test_quantities_are_singular_only_for_one() -> None:
    assert quantity(1, "error") == "1 error"
    assert quantity(0, "error") == "0 errors"
    assert quantity(1234, "file") == "1,234 files"
    assert quantity(2, "series", "series") == "2 series"
