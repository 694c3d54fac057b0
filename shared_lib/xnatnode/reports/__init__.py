"""Report writers: ``summary.json``, CSV tables and a self-contained ``summary.html``,
all rendered from the same :class:`xnatnode.summary.Report`."""

from __future__ import annotations

from pathlib import Path

from xnatnode.reports.csvout import write_tables
from xnatnode.reports.html import write_html
from xnatnode.reports.jsonout import write_json
from xnatnode.summary import Report

__all__ = ["write_all", "write_html", "write_json", "write_tables"]


def write_all(report: Report, out_dir: Path) -> list[Path]:
    """Write every report file into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_json(report, out_dir / "summary.json")]
    paths += write_tables(report, out_dir)
    paths.append(write_html(report, out_dir / "summary.html"))
    return paths
