"""JSON, CSV and HTML writers from in-memory records (no server)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

from summary_fixtures import small_project
from xnatnode.listings import Resource, Scan, Session, Subject
from xnatnode.reports import page_problems
from xnatnode.reports.project_summary import TABLE_LIMIT, render_html, write_all
from xnatnode.reports.svg import bar_chart, column_chart, human_bytes
from xnatnode.summary import summarise

NOW = dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)


def test_write_all(tmp_path: Path) -> None:
    report = summarise(small_project(), generated=NOW)
    paths = write_all(report, tmp_path)
    assert sorted(p.name for p in paths) == [
        "resources.csv", "scans.csv", "sessions.csv", "subjects.csv", "summary.html", "summary.json",
    ]
    assert not list(tmp_path.glob("*.tmp"))
    doc = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert doc == json.loads(json.dumps(report.summary))
    assert doc["totals"]["files"] == 169


def test_csv_tables(tmp_path: Path) -> None:
    data = small_project()
    data.subjects.append(Subject("S9", "=HYPERLINK(\"x\")", ""))
    data.resources.append(Resource("session", "RAW", "E3", "", None, None))
    write_all(summarise(data, generated=NOW), tmp_path)
    with (tmp_path / "sessions.csv").open(newline="", encoding="utf-8") as fh:
        sessions = list(csv.DictReader(fh))
    assert [r["label"] for r in sessions][:2] == ["subj001_baseline_mr", "subj001_followup_pet"]
    e1 = next(r for r in sessions if r["id"] == "E1")
    assert (e1["data_type"], e1["visit"], e1["scans"], e1["files"], e1["bytes"]) == (
        "MR", "baseline", "3", "153", "1900010",
    )
    e3 = next(r for r in sessions if r["id"] == "E3")
    assert e3["files"] == ""
    assert e3["date"] == ""
    with (tmp_path / "subjects.csv").open(newline="", encoding="utf-8") as fh:
        subjects = list(csv.DictReader(fh))
    assert any(r["label"].startswith("'=") for r in subjects)  # no formula injection
    for name, rows in (("scans.csv", 6), ("resources.csv", 10)):
        with (tmp_path / name).open(newline="", encoding="utf-8") as fh:
            assert len(list(csv.DictReader(fh))) == rows


def test_html_is_self_contained_and_escaped() -> None:
    data = small_project()
    data.sessions.append(Session("E9", "<script>alert(1)</script>", "S3", "xnat:mrSessionData"))
    page = render_html(summarise(data, generated=NOW))
    assert page.startswith("<!DOCTYPE html>")
    assert page_problems(page) == []
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert 'name="viewport"' in page
    # nothing fetched from anywhere: no external URLs, scripts, fonts or images
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "@import" not in page
    assert "url(" not in page
    assert page.count("<svg") >= 6
    assert "subj003" in page  # subject without sessions listed under gaps
    assert "3.7 MiB" in page  # total bytes in the key figures


def test_html_tables_are_capped() -> None:
    data = small_project()
    data.sessions += [
        Session(f"X{i}", f"subj003_v{i}", "S3", "xnat:mrSessionData") for i in range(TABLE_LIMIT + 50)
    ]
    data.scans += [Scan(f"X{i}", "1", "T1w") for i in range(TABLE_LIMIT + 50)]
    page = render_html(summarise(data, generated=NOW))
    assert "sessions.csv" in page
    assert page.count("<tr>") < 3 * TABLE_LIMIT


def test_html_without_sizes() -> None:
    data = small_project(sizes="none")
    data.resources = []
    page = render_html(summarise(data, generated=NOW))
    assert "--sizes none" in page


def test_svg_helpers() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
    assert human_bytes(None) == "unknown"
    svg = bar_chart([(f"t{i}", float(i)) for i in range(20, 0, -1)], title="x", max_items=5)
    assert svg.count("<rect") == 6
    assert "(15 more)" in svg
    assert "no data" in bar_chart([], title="x")
    col = column_chart([("2024-01", 1.0), ("2024-02", 0.0)], title="m")
    assert col.count("<rect") == 2
