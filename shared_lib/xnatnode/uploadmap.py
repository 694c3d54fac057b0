"""dicom-upload's inputs: the CSV map of sessions and the resume state file.

The CSV (read with pandas: separator sniffed, BOM and CRLF accepted, every value a string) has
one row per session with the columns ``source``, ``project``, ``subject``, ``session`` and
optionally ``modality``, ``date``, ``notes``. :func:`read_map` returns the rows and, separately,
the rows that cannot be sent (missing source, an illegal label per :mod:`xnatnode.labels`, the
same session twice) with the reason. Restricted to one project (``--project P``, which the
project-context wrapper always passes), a row whose ``project`` cell is empty takes ``P`` and a row
naming another project is one that cannot be sent: a batch launched on a project stays in it.
The comparison is exact: a row for ``p`` on a launch for ``P`` is refused rather than guessed at.

The state file (``upload-state.json`` in the output folder) keeps, per row key
(project/subject/session) and StudyInstanceUID, the SOP instances the receiver stored and the
last outcome, written atomically after every batch: a re-run skips verified rows and sends only
what is missing, a run killed half-way loses nothing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xnatnode.labels import Kind, check_label, problems_text

log = logging.getLogger(__name__)

REQUIRED = ("source", "project", "subject", "session")
OPTIONAL = ("modality", "date", "notes")
STATE_FILE = "upload-state.json"
STATE_VERSION = 1


class MapError(ValueError):
    """A CSV that cannot be used at all (unreadable, missing columns)."""


@dataclass(frozen=True)
class Row:
    """One CSV row (``line`` is its line number in the file, the header being line 1)."""

    line: int
    source: str
    project: str
    subject: str
    session: str
    modality: str = ""
    date: str = ""
    notes: str = ""

    @property
    def key(self) -> str:
        return f"{self.project}/{self.subject}/{self.session}"


@dataclass(frozen=True)
class BadRow:
    row: Row
    reason: str


def read_map(path: Path, project: str | None = None) -> tuple[list[Row], list[BadRow]]:
    """The rows of the CSV map that can go on, and those that cannot (with why); with ``project``
    only rows for that project go on, and an empty ``project`` cell means it."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep=None, engine="python", dtype=str, keep_default_na=False,
                            encoding="utf-8-sig", skipinitialspace=True)
    except FileNotFoundError:
        raise MapError(f"CSV map {path} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise MapError(f"cannot read CSV map {path}: {exc}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise MapError(f"CSV map {path} lacks the column(s) {', '.join(missing)} "
                       f"(found: {', '.join(frame.columns) or 'none'})")
    unknown = [c for c in frame.columns if c not in (*REQUIRED, *OPTIONAL)]
    if unknown:  # most often a typo of an optional column, which would otherwise be lost silently
        log.warning("CSV map %s: unknown column(s) ignored: %s (known: %s)", path.name, ", ".join(unknown),
                    ", ".join((*REQUIRED, *OPTIONAL)))
    good: list[Row] = []
    bad: list[BadRow] = []
    seen: dict[tuple[str, str], int] = {}
    for number, record in enumerate(frame.to_dict("records"), start=2):
        values = {k: str(record.get(k, "") or "").strip() for k in (*REQUIRED, *OPTIONAL)}
        if project is not None and not values["project"]:
            values["project"] = project
        row = Row(number, **values)
        reason = _outside(row, project) or _row_problem(row)
        key = (row.project, row.session)
        if not reason and key in seen:
            reason = f"the same session as line {seen[key]}"
        if reason:
            bad.append(BadRow(row, reason))
            continue
        seen[key] = number
        good.append(row)
    return good, bad


def _outside(row: Row, project: str | None) -> str:
    if project is None or row.project == project:
        return ""
    return (f"the row is for project {row.project!r} but this run is restricted to project {project} "
            f"(--project {project}): skipped, nothing sent")


def _row_problem(row: Row) -> str:
    if not row.source:
        return "no source given"
    for kind, value in ((Kind.PROJECT, row.project), (Kind.SUBJECT, row.subject), (Kind.SESSION, row.session)):
        problems = check_label(value, kind)
        if problems:
            return f"illegal {kind.value} {value!r}: {problems_text(problems)}"
    return ""


class State:
    """The resume state (see module docstring); safe to update from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.rows: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == STATE_VERSION:
                self.rows = dict(data.get("rows", {}))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            raise MapError(f"the state file {path} is unreadable ({exc}); move it away to start afresh") from None

    @staticmethod
    def key(row: Row, study_uid: str) -> str:
        return f"{row.key}|{study_uid}"

    def entry(self, row: Row, study_uid: str) -> dict[str, Any]:
        with self._lock:
            return self.rows.setdefault(self.key(row, study_uid), {"source": row.source, "stored": [],
                                                                    "outcome": "", "via": ""})

    def stored(self, row: Row, study_uid: str) -> set[str]:
        return set(self.entry(row, study_uid)["stored"])

    def add_stored(self, row: Row, study_uid: str, sop_uids: list[str]) -> None:
        with self._lock:
            entry = self.rows[self.key(row, study_uid)]
            entry["stored"] = sorted(set(entry["stored"]) | set(sop_uids))

    def set_outcome(self, row: Row, study_uid: str, outcome: str, via: str = "") -> None:
        entry = self.entry(row, study_uid)
        with self._lock:
            entry["outcome"] = outcome
            if via:
                entry["via"] = via

    def outcome(self, row: Row, study_uid: str) -> str:
        return str(self.rows.get(self.key(row, study_uid), {}).get("outcome", ""))

    def save(self) -> None:
        with self._lock:
            text = json.dumps({"version": STATE_VERSION, "rows": self.rows}, indent=1)
            tmp = self.path.with_name(self.path.name + ".part")
            with tmp.open("w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(self.path)
