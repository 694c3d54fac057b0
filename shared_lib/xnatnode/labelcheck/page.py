"""Writers of findings.json and findings.csv (findings.html: see write_reports)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

from xnatnode.labelcheck.rules import FINDING_FIELDS
from xnatnode.safefiles import open_output, write_text

if TYPE_CHECKING:
    from xnatnode.labelcheck.report import Outcome


def _cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def write_reports(outcome: Outcome, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    paths.append(write_text(out_dir / "findings.json",
                            json.dumps(outcome.document, indent=2, ensure_ascii=False) + "\n"))
    path = out_dir / "findings.csv"
    with open_output(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FINDING_FIELDS)
        writer.writerows([_cell(str(getattr(f, n))) for n in FINDING_FIELDS] for f in outcome.findings)
    paths.append(path)
    return paths
