"""``summary.json``: the machine-readable report (layout versioned by ``schema_version``)."""

from __future__ import annotations

import json
from pathlib import Path

from xnatnode.summary import Report


def write_json(report: Report, path: Path) -> Path:
    """Write the summary document, UTF-8, keys in a stable order, written atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report.summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
    tmp.replace(path)
    return path
