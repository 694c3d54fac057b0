"""XNAT's table ("ResultSet") representations: JSON, XML, CSV and HTML, streamed.

JSON matches ``JSONTableRepresentation``: ``{"ResultSet":{["Columns":[…],]"Result":[rows…], "totalRecords":
"N","title": "T"}}`` — compact rows, every value a string, meta pairs after ``Result`` with the
first one preceded by ``", "`` and a space after each colon (xnat-rest-spec §0.2).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from xnatsim.routing import HTTPError, Request, Response

CHUNK_ROWS = 2000
Row = Sequence[str]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _chunks(rows: Iterable[Row], size: int = CHUNK_ROWS) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def json_table(columns: Sequence[str], rows: Iterable[Row], meta: dict[str, str], *,
               column_props: list[dict[str, str]] | None = None, count_key: str | None = "totalRecords") -> Iterator[bytes]:
    """Stream a JSON ResultSet; ``count_key`` (totalRecords) is filled in after the rows."""
    head = '{"ResultSet":{'
    if column_props is not None:
        head += '"Columns":' + _dumps(column_props) + ","
    yield (head + '"Result":[').encode()
    count = 0
    first = True
    cols = list(columns)
    for chunk in _chunks(rows):
        count += len(chunk)
        text = _dumps([dict(zip(cols, row, strict=False)) for row in chunk])[1:-1]
        yield (text if first else "," + text).encode("utf-8")
        first = False
    pairs: list[tuple[str, str]] = []
    if count_key:
        pairs.append((count_key, str(count)))
    pairs += list(meta.items())
    tail = "]"
    for i, (key, value) in enumerate(pairs):
        tail += (", " if i == 0 else ",") + f"{_dumps(key)}: {_dumps(value)}"
    yield (tail + "}}").encode("utf-8")


def xml_table(columns: Sequence[str], rows: list[Row], meta: dict[str, str]) -> bytes:
    attrs = f' totalRecords="{len(rows)}"' + "".join(f" {k}={quoteattr(v)}" for k, v in meta.items())
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<ResultSet{attrs}><results><columns>']
    out += [f"<column>{escape(c)}</column>" for c in columns]
    out.append("</columns>\n<rows>")
    for row in rows:
        out.append("<row>" + "".join(f"<cell>{escape(v)}</cell>" for v in row) + "</row>\n")
    out.append("</rows></results></ResultSet>")
    return "".join(out).encode("utf-8")


def csv_table(columns: Sequence[str], rows: Iterable[Row]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for chunk in _chunks(rows):
        writer.writerows(chunk)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue().encode("utf-8")


def html_table(columns: Sequence[str], rows: Iterable[Row], title: str) -> bytes:
    out = [f"<html><head><title>{escape(title)}</title></head><body><table><tr>"]
    out += [f"<th>{escape(c)}</th>" for c in columns]
    out.append("</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>")
    out.append("</table></body></html>")
    return "".join(out).encode("utf-8")


def sort_rows(request: Request, columns: Sequence[str], rows: list[Row]) -> list[Row]:
    """Apply ``sortBy=a,b`` / ``sortOrder=DESC`` (XNAT honours them on every table)."""
    sort_by = request.query.get_ci("sortBy")
    if not sort_by:
        return rows
    index = {c.lower(): i for i, c in enumerate(columns)}
    keys = [index[k.strip().lower()] for k in sort_by.split(",") if k.strip().lower() in index]
    if not keys:
        return rows
    reverse = (request.query.get_ci("sortOrder") or "").upper() == "DESC"
    return sorted(rows, key=lambda r: tuple(r[i] for i in keys), reverse=reverse)


def table_response(request: Request, columns: Sequence[str], rows: Iterable[Row], *, title: str | None = None,
                   column_props: list[dict[str, str]] | None = None, count: bool = True,
                   default_format: str = "json") -> Response:
    """Encode a table in the requested ``format`` (json, xml, csv, html)."""
    fmt = request.format(default_format)
    meta = {"title": title} if title else {}
    if request.query.get_ci("sortBy"):
        rows = sort_rows(request, columns, list(rows))
    if fmt == "json":
        body = json_table(columns, rows, meta, column_props=column_props, count_key="totalRecords" if count else None)
        return Response(200, body, "application/json;charset=UTF-8")
    if fmt == "xml":
        return Response(200, xml_table(columns, list(rows), meta), "text/xml;charset=UTF-8")
    if fmt == "csv":
        return Response(200, csv_table(columns, rows), "text/csv;charset=UTF-8")
    if fmt == "html":
        return Response(200, html_table(columns, rows, title or ""), "text/html;charset=UTF-8")
    raise HTTPError(400, f"Unsupported format for a table: {fmt}")
