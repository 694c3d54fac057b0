"""CSV tables: one row per subject, session, scan and resource."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xnatnode.safefiles import open_output
from xnatnode.summary import (
    Report,
    ResourceRow,
    ScanRow,
    SessionRow,
    SubjectRow,
    row_fields,
)

#: File name → (row type, attribute of Report).
TABLES: dict[str, tuple[type, str]] = {
    "subjects.csv": (SubjectRow, "subjects"),
    "sessions.csv": (SessionRow, "sessions"),
    "scans.csv": (ScanRow, "scans"),
    "resources.csv": (ResourceRow, "resources"),
}


def _cell(value: Any) -> Any:
    """Unknown numbers stay empty cells; text that a spreadsheet would run as a formula is
    prefixed with a quote (CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_table(path: Path, row_type: type, rows: Sequence[Any]) -> Path:
    names = row_fields(row_type)
    with open_output(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        writer.writerows([_cell(getattr(row, n)) for n in names] for row in rows)
    return path


def write_tables(report: Report, out_dir: Path) -> list[Path]:
    """subjects.csv, sessions.csv, scans.csv and resources.csv in ``out_dir``."""
    return [
        write_table(out_dir / name, row_type, getattr(report, attr))
        for name, (row_type, attr) in TABLES.items()
    ]
