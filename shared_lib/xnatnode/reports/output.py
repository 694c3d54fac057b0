"""Writing a command's report files: JSON (with a ``schema_version``), CSV (safe to open in a
spreadsheet) and the HTML page, each written with :func:`xnatnode.safefiles.open_output` (an
exclusive temporary name, then one rename; links never followed).

A command declares its rows (dataclass instances or mappings) and its document; these functions
do the rest, the same way for every command.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import enum
import json
import operator
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from xnatnode.reports.page import Page, render
from xnatnode.safefiles import open_output, write_text

#: The key every report document starts with; bump the major part on incompatible changes.
SCHEMA_KEY = "schema_version"
_SCHEMA_VERSION = re.compile(r"^\d+\.\d+$")
#: First characters that make a spreadsheet run a cell as a formula (CSV injection).
_FORMULA_START = frozenset({"=", "+", "-", "@", "\t", "\r"})

Fields = Sequence[str] | type


def field_names(fields: Fields) -> list[str]:
    """Column names: the fields of a dataclass type, or the names given."""
    if isinstance(fields, type):
        if not dataclasses.is_dataclass(fields):
            raise TypeError(f"{fields.__name__} is not a dataclass: pass the column names")
        return [f.name for f in dataclasses.fields(fields)]
    return list(fields)


def _values(rows: Iterable[Any], names: Sequence[str]) -> Iterator[Sequence[Any]]:
    """The ``names`` values of each row (an object's attributes, a mapping's keys: missing keys
    are None). Whether a row is a mapping is asked once per row type: tables run to millions of
    cells."""
    if not names:
        yield from ([] for _ in rows)
        return
    attributes = operator.attrgetter(*names)
    single = len(names) == 1
    is_mapping: dict[type, bool] = {}
    for row in rows:
        kind = type(row)
        mapping = is_mapping.get(kind)
        if mapping is None:
            mapping = is_mapping[kind] = isinstance(row, Mapping)
        if mapping:
            yield [row.get(n) for n in names]
        else:
            got = attributes(row)
            yield (got,) if single else got


def records(rows: Iterable[Any], fields: Fields) -> list[dict[str, Any]]:
    """Rows (dataclass instances or mappings) as plain dicts of ``fields``, for a JSON document."""
    names = field_names(fields)
    return [dict(zip(names, values, strict=True)) for values in _values(rows, names)]


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: ``None`` empty; lists and mappings as JSON; text a spreadsheet would
    run as a formula prefixed with ``'`` (CSV injection)."""
    kind = type(value)
    if kind is int or kind is float:
        return value
    if kind is str:
        return "'" + value if value[:1] in _FORMULA_START else value
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, list | tuple | Mapping):
        value = json.dumps(value, ensure_ascii=False, default=_json_default)
    if isinstance(value, str) and value[:1] in _FORMULA_START:
        return "'" + value
    return value


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, Path | set | frozenset):
        return sorted(value) if isinstance(value, set | frozenset) else str(value)
    raise TypeError(f"not JSON data: {type(value).__name__}")


def write_json(path: Path, document: Mapping[str, Any]) -> Path:
    """Write ``document`` (which must hold ``schema_version``, ``"MAJOR.MINOR"``) as UTF-8 JSON,
    indented, keys in the given order; dataclasses, enums, dates and paths become JSON data."""
    version = document.get(SCHEMA_KEY)
    if not isinstance(version, str) or not _SCHEMA_VERSION.match(version):
        raise ValueError(f'a report document needs "{SCHEMA_KEY}": "MAJOR.MINOR", not {version!r}')
    text = json.dumps(document, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    return write_text(path, text)


def write_csv(path: Path, rows: Iterable[Any], *, fields: Fields) -> Path:
    """Write one row per item of ``rows`` (dataclass instances or mappings), columns ``fields``
    (a dataclass type or names; the header is written even when there are no rows)."""
    names = field_names(fields)
    with open_output(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        writer.writerows([csv_cell(v) for v in values] for values in _values(rows, names))
    return path


def write_html(path: Path, page: Page) -> Path:
    """Render ``page`` (:func:`xnatnode.reports.page.render`) and write it."""
    return write_text(path, render(page))


def write_report(
    out_dir: Path,
    stem: str,
    *,
    document: Mapping[str, Any],
    rows: Iterable[Any],
    fields: Fields,
    page: Page,
) -> list[Path]:
    """``<stem>.json``, ``<stem>.csv`` and ``<stem>.html`` in ``out_dir`` (created if missing);
    returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_json(out_dir / f"{stem}.json", document),
        write_csv(out_dir / f"{stem}.csv", rows, fields=fields),
        write_html(out_dir / f"{stem}.html", page),
    ]
