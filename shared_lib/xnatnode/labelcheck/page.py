"""Writers of findings.json and findings.csv (findings.html: see write_reports)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

from xnatnode.labelcheck.rules import FINDING_FIELDS

if TYPE_CHECKING:
    from xnatnode.labelcheck.report import Outcome


def _cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def write_reports(outcome: Outcome, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    path = out_dir / "findings.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(outcome.document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    tmp.replace(path)
    paths.append(path)
    path = out_dir / "findings.csv"
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FINDING_FIELDS)
        writer.writerows([_cell(str(getattr(f, n))) for n in FINDING_FIELDS] for f in outcome.findings)
    tmp.replace(path)
    paths.append(path)
    return paths
