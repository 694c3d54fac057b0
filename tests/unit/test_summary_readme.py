"""README.md documents summary.json and the CSV tables as project-summary writes them: the
documented keys and columns are checked against a real report, so neither can drift alone."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from summary_fixtures import small_project
from xnatnode.reports.project_summary import TABLES
from xnatnode.summary import SCHEMA_VERSION, row_fields, summarise

README = Path(__file__).resolve().parents[2] / "README.md"
TICKED = re.compile(r"`([^`]+)`")


def _schema_section() -> tuple[str, str]:
    text = README.read_text("utf-8")
    match = re.search(r"^#### summary\.json \(schema_version ([^)]+)\)\n(.*?)(?=^#|\Z)", text,
                      re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '#### summary.json (schema_version …)' section"
    return match.group(1), match.group(2)


def _rows(section: str) -> dict[str, str]:
    """Documented top-level key → the text describing it (from the section's table)."""
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not line.startswith("|") or set(cells[0]) <= {"-", " "}:
            continue
        for key in TICKED.findall(cells[0]):
            rows[key] = " | ".join(cells[1:])
    return rows


@pytest.fixture(scope="module")
def summary() -> dict[str, object]:
    report = summarise(small_project(), generated=dt.datetime(2026, 11, 24, tzinfo=dt.UTC),
                       source={"xnat_host": "http://x", "requests": 7, "generator": "g"})
    return report.summary


def test_schema_version_in_readme_is_the_written_one(summary: dict[str, object]) -> None:
    version, _ = _schema_section()
    assert version == SCHEMA_VERSION == summary["schema_version"]


def test_every_top_level_and_second_level_key_is_documented(summary: dict[str, object]) -> None:
    rows = _rows(_schema_section()[1])
    assert set(rows) == set(summary), "README's summary.json table lists other top-level keys"
    for key, value in summary.items():
        if not isinstance(value, dict) or key == "tables":
            continue
        documented = set(TICKED.findall(rows[key]))
        missing = sorted(set(value) - documented)
        assert not missing, f"summary.json {key}: {missing} not described in README.md"


def test_csv_columns_are_the_documented_ones() -> None:
    section = _schema_section()[1]
    for name, (row_type, _) in TABLES.items():
        match = re.search(rf"`{re.escape(name)}` \(`([^`]+)`\)", section)
        assert match, f"README.md does not list the columns of {name}"
        documented = [c.strip() for c in match.group(1).replace("\n", " ").split(",")]
        assert documented == row_fields(row_type), name
