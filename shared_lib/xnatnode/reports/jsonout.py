"""``summary.json``: the machine-readable report (layout versioned by ``schema_version``)."""

from __future__ import annotations

import json
from pathlib import Path

from xnatnode.safefiles import write_text
from xnatnode.summary import Report


def write_json(report: Report, path: Path) -> Path:
    """Write the summary document, UTF-8, keys in a stable order, written safely."""
    return write_text(path, json.dumps(report.summary, indent=2, ensure_ascii=False) + "\n")
