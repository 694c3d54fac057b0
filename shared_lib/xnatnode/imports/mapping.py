"""The ``--mapping`` CSV: which subject, session and scan each file or folder of the source becomes.

Columns: ``source`` (a file or folder inside the source), ``subject``, ``session`` (required);
``scan``, ``scan_type``, ``series_description``, ``modality``, ``date`` (optional). Read with
pandas: the separator is the one of ``,`` ``;`` and tab that the header line uses most; UTF-8
with or without a BOM; CRLF or LF; every value a string (``001`` stays ``001``). Header names
are matched without case and surrounding blanks.

A missing required column or an unreadable file is an error for the whole run
(:class:`MappingError`); unknown columns, empty required values, bad dates or modalities and
duplicate rows are problems of that row only, reported and not fatal to the rest.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

from xnatnode.imports.sources import normalise

REQUIRED = ("source", "subject", "session")
OPTIONAL = ("scan", "scan_type", "series_description", "modality", "date")
SEPARATORS = (",", ";", "\t")
#: accepted spellings of a modality -> the session-label token
MODALITIES = {"mr": "mr", "mri": "mr", "pet": "pet", "pt": "pet", "ct": "ct"}


class MappingError(Exception):
    """The mapping file as a whole cannot be used."""


@dataclass(frozen=True, slots=True)
class MappingRow:
    """One usable row (``line`` counts from 1 = the header)."""

    line: int
    source: str
    subject: str
    session: str
    scan: str | None = None
    scan_type: str | None = None
    series_description: str | None = None
    modality: str | None = None
    date: str | None = None


@dataclass
class Mapping:
    rows: list[MappingRow] = field(default_factory=list)
    #: problems of the file or of single rows, as report lines
    problems: list[str] = field(default_factory=list)
    #: ``(source as written, reason)`` of rows that were not used
    bad_rows: list[tuple[str, str]] = field(default_factory=list)


def _separator(text: str) -> str:
    header = text.splitlines()[0] if text else ""
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _date(text: str) -> str:
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    raise ValueError(f"date {text!r} is not YYYY-MM-DD (or YYYYMMDD)")


def read_mapping(data: bytes, name: str = "mapping") -> Mapping:
    """Parse the mapping file's bytes (see the module docstring)."""
    import pandas as pd

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MappingError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise MappingError(f"{name} is empty")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=_separator(text), dtype=str,
                            keep_default_na=False, skipinitialspace=True, engine="python")
    except (ValueError, pd.errors.ParserError) as exc:
        raise MappingError(f"{name} cannot be read as CSV: {exc}") from None
    columns = {str(c).strip().lower(): str(c) for c in frame.columns}
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise MappingError(
            f"{name} lacks the required column(s) {', '.join(missing)} (it has: "
            f"{', '.join(map(str, frame.columns)) or 'none'}); required: {', '.join(REQUIRED)}")
    result = Mapping()
    unknown = sorted(set(columns) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        result.problems.append(f"{name}: unknown column(s) ignored: {', '.join(unknown)}")
    seen: dict[str, MappingRow] = {}
    for index, record in enumerate(frame.to_dict("records")):
        line = index + 2
        values = {key: str(record[col]).strip() for key, col in columns.items()
                  if key in REQUIRED or key in OPTIONAL}
        raw_source = values["source"]
        try:
            row = _row(line, values)
        except ValueError as exc:
            result.bad_rows.append((raw_source, f"{name} line {line}: {exc}"))
            continue
        earlier = seen.get(row.source)
        if earlier is not None:
            if _target(earlier) == _target(row):
                result.problems.append(f"{name} line {line}: duplicate of line {earlier.line}, ignored")
            else:
                result.bad_rows.append((row.source, f"{name} lines {earlier.line} and {line} map "
                                        f"{row.source} to different targets"))
                result.rows = [r for r in result.rows if r.source != row.source]
            continue
        seen[row.source] = row
        result.rows.append(row)
    return result


def _target(row: MappingRow) -> tuple[str | None, ...]:
    return (row.subject, row.session, row.scan, row.scan_type, row.series_description, row.modality, row.date)


def _row(line: int, values: dict[str, str]) -> MappingRow:
    for column in REQUIRED:
        if not values.get(column):
            raise ValueError(f"empty {column}")
    source = normalise(values["source"])
    if source is None:
        raise ValueError(f"source {values['source']!r} is not a path inside the source")
    modality = values.get("modality") or None
    if modality is not None:
        token = MODALITIES.get(modality.lower())
        if token is None:
            raise ValueError(f"modality {modality!r} is not MR, PET (PT) or CT")
        modality = token
    date = _date(values["date"]) if values.get("date") else None
    return MappingRow(line, source, values["subject"], values["session"],
                      values.get("scan") or None, values.get("scan_type") or None,
                      values.get("series_description") or None, modality, date)
