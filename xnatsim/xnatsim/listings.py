"""Project, subject, experiment and scan listings: ``columns=``, filters, ``limit``/``offset``.

Every listing is one SQL query whose columns are already strings (SQL NULL → ``""``), streamed to
the ResultSet encoder. Column names follow XNAT (xnat-rest-spec §0.2, §5.1): shortcuts keep their
name, xpaths come back as the lower-cased xpath, ``URI`` is always last. Scan xpaths
(``xnat:mrScanData/type``) on experiment listings join the scans: one row per (session, scan),
sessions without scans once with empty scan columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from xnatsim import fields as F
from xnatsim import xsitypes as T
from xnatsim.routing import HTTPError, Request
from xnatsim.store import Store, scan_order

#: query parameters that are never filters
#: SQLite's largest integer (larger limit/offset values mean "all" / "none")
_SQL_MAX = 2**63 - 1
NOT_FILTERS = frozenset({"format", "columns", "limit", "offset", "sortby", "sortorder", "req_format", "recent",
                         "accept-not-found", "_", "includehistory", "cache"})

_EXPERIMENT_ELEMENTS = frozenset({t.lower() for t in T.EXPERIMENT_TYPES | T.ABSTRACT_EXPERIMENT_TYPES})
_SCAN_ELEMENTS = frozenset({t.lower() for t in T.SCAN_TYPES | T.ABSTRACT_SCAN_TYPES})
_SAFE_KEY = re.compile(r"^[^\"\\\x00]+$")


def _json(table: str, name: str) -> str:
    if not _SAFE_KEY.match(name):
        raise HTTPError(400, f"Invalid field name: {name!r}")
    return f"json_extract({table}.fields, '$.\"{name.replace(chr(39), chr(39) * 2)}\"')"


@dataclass
class Query:
    """The SQL being built for one listing."""

    select: list[tuple[str, str]] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    scan_join: str | None = None

    def add_column(self, key: str, expr: str) -> None:
        if key not in (k for k, _ in self.select):
            self.select.append((key, expr))


Resolver = Callable[[str, "Query"], str | None]


# --------------------------------------------------------------------------- resolvers


def _project_field(name: str, q: Query) -> str | None:
    core = {"id": "p.id", "secondary_id": "p.secondary_id", "name": "p.name", "description": "p.description",
            "keywords": "p.keywords", "pi_firstname": "p.pi_firstname", "pi_lastname": "p.pi_lastname",
            "insert_date": "p.insert_date", "insert_user": "p.insert_user", "accessibility": "p.accessibility"}
    if name.lower() in core:
        return core[name.lower()]
    if name in F.SHORTCUTS["project"] or name in F.READ_ONLY["project"]:
        return _json("p", name)
    return None


def _project_xpath(element: str, path: str, q: Query) -> str | None:
    if element.lower() != "xnat:projectdata":
        return None
    if path.lower() == "pi/firstname":
        return "p.pi_firstname"
    if path.lower() == "pi/lastname":
        return "p.pi_lastname"
    return _project_field(path, q) or _json("p", F.xpath_field(path))


def _subject_field(name: str, q: Query) -> str | None:
    core = {"id": "s.id", "project": "s.project", "label": "s.label", "insert_date": "s.insert_date",
            "insert_user": "s.insert_user", "last_modified": "s.last_modified"}
    if name.lower() in core:
        return core[name.lower()]
    if name in F.SHORTCUTS["subject"]:
        return _json("s", F.shortcut_field("subject", name))
    return None


def _subject_xpath(element: str, path: str, q: Query) -> str | None:
    if element.lower() != "xnat:subjectdata":
        return None
    return _subject_field(path, q) or _json("s", F.xpath_field(path))


def _experiment_field(name: str, q: Query) -> str | None:
    core = {"id": "e.id", "project": "e.project", "label": "e.label", "xsitype": "e.xsi_type",
            "insert_date": "e.insert_date", "insert_user": "e.insert_user", "last_modified": "e.last_modified",
            "subject_id": "e.subject_id", "subject_label": "s.label", "subject_project": "s.project",
            "session_id": "e.session_id", "session_label": "ss.label", "session_project": "ss.project"}
    if name.lower() in core:
        return core[name.lower()]
    if name in F.SHORTCUTS["experiment"]:
        return _json("e", F.shortcut_field("experiment", name))
    return None


def _scan_field(name: str, q: Query) -> str:
    core = {"id": "sc.id", "xsitype": "sc.xsi_type", "xnat_imagescandata_id": "sc.pk",
            "image_session_id": "sc.experiment_id"}
    if name.lower() in core:
        return core[name.lower()]
    return _json("sc", F.shortcut_field("scan", name) if name in F.SHORTCUTS["scan"] else name)


def _experiment_xpath(element: str, path: str, q: Query) -> str | None:
    low = element.lower()
    if low in _EXPERIMENT_ELEMENTS:
        return _experiment_field(path, q) or _json("e", F.xpath_field(path))
    if low in _SCAN_ELEMENTS:
        if q.scan_join is None or q.scan_join == "xnat:imagescandata":
            q.scan_join = low
        return _scan_field(path, q)
    if low == "xnat:subjectdata":
        return _subject_field(path, q) or _json("s", F.xpath_field(path))
    return None


@dataclass
class Spec:
    table: str
    defaults: tuple[str, ...]
    field: Resolver
    xpath: Callable[[str, str, Query], str | None]
    uri: str
    kind: F.Kind


PROJECTS = Spec("projects p", ("ID", "secondary_ID", "name", "description", "pi_firstname", "pi_lastname"),
                _project_field, _project_xpath, "'/data/projects/' || p.id", "project")
SUBJECTS = Spec("subjects s", ("ID", "project", "label", "insert_date", "insert_user"),
                _subject_field, _subject_xpath, "'/data/subjects/' || s.id", "subject")
EXPERIMENTS = Spec(
    "experiments e LEFT JOIN subjects s ON s.id = e.subject_id LEFT JOIN experiments ss ON ss.id = e.session_id",
    ("ID", "project", "date", "xsiType", "label", "insert_date"), _experiment_field, _experiment_xpath,
    "'/data/experiments/' || e.id", "experiment")


# --------------------------------------------------------------------------- filters


def _date_value(value: str) -> str:
    found = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", value.strip())
    if found:
        return f"{found.group(3)}-{int(found.group(1)):02d}-{int(found.group(2)):02d}"
    return value.strip()


def _filter(expr: str, raw: str, q: Query, *, is_date: bool) -> None:
    ors: list[str] = []
    for value in raw.split(","):
        value = value.strip()
        dates = re.fullmatch(r"(\d{1,2}/\d{1,2}/\d{4})-(\d{1,2}/\d{1,2}/\d{4})", value) if is_date else None
        if dates:
            ors.append(f"{expr} BETWEEN ? AND ?")
            q.params += [_date_value(dates.group(1)), _date_value(dates.group(2))]
        elif "*" in value or "%" in value:
            ors.append(f"{expr} LIKE ?")
            q.params.append(value.replace("*", "%"))
        else:
            ors.append(f"{expr} = ?")
            q.params.append(_date_value(value) if is_date else value)
    if ors:
        q.where.append("(" + " OR ".join(ors) + ")")


def _filters(request: Request, spec: Spec, q: Query, skip: frozenset[str] = frozenset()) -> None:
    for key, value in request.query.items:
        low = key.lower()
        if low in NOT_FILTERS or key in skip:
            continue
        xpath = F.split_xpath(key)
        if xpath is not None:
            expr = spec.xpath(xpath[0], xpath[1], q)
        elif key in F.SHORTCUTS[spec.kind] or key in F.READ_ONLY[spec.kind]:
            expr = spec.field(key, q)
        else:
            expr = None
        if expr is not None:
            _filter(f"coalesce(CAST({expr} AS TEXT), '')", value, q,
                    is_date=low.endswith("date"))


# --------------------------------------------------------------------------- columns


def _columns(request: Request, spec: Spec, q: Query, defaults: tuple[str, ...]) -> None:
    wanted = request.query.get("columns")
    names = list(defaults) if not wanted or wanted.strip().upper() == "DEFAULT" else [
        c.strip() for c in wanted.split(",") if c.strip()]
    q.add_column("ID", spec.field("ID", q) or "''")
    for name in names:
        if name == "URI":
            continue
        xpath = F.split_xpath(name)
        if xpath is not None:
            expr = spec.xpath(xpath[0], xpath[1], q)
            if expr is not None:
                q.add_column(name.lower(), expr)
        else:
            expr = spec.field(name, q)
            if expr is not None:
                q.add_column(name, expr)
    q.add_column("URI", spec.uri)
    # keep ID where XNAT puts the key column: first, unless columns= omitted it (it is still present)


def _paging(request: Request) -> str:
    sql = ""
    limit = request.query.get_ci("limit")
    offset = request.query.get_ci("offset")
    try:
        if limit is not None and limit not in ("", "*"):  # limit=* = all rows (XNAT wiki, Experiment API)
            sql += f" LIMIT {min(max(int(limit), 0), _SQL_MAX)}"
        if offset is not None and offset != "":
            sql += ("" if sql else " LIMIT -1") + f" OFFSET {min(max(int(offset), 0), _SQL_MAX)}"
    except ValueError as exc:
        raise HTTPError(400, "limit and offset must be integers") from exc
    return sql


def _order(request: Request, q: Query, default: str) -> str:
    sort_by = request.query.get_ci("sortBy")
    if not sort_by:
        return default
    exprs = {k.lower(): e for k, e in q.select}
    parts = [exprs[k.strip().lower()] for k in sort_by.split(",") if k.strip().lower() in exprs]
    if not parts:
        return default
    direction = " DESC" if (request.query.get_ci("sortOrder") or "").upper() == "DESC" else ""
    return ", ".join(p + direction for p in parts)


def run(store: Store, q: Query, table: str, order: str, paging: str) -> tuple[list[str], Iterator[tuple[str, ...]]]:
    """Execute the listing: ``(column keys, row iterator)`` with every value a string."""
    keys = [k for k, _ in q.select]
    select = ", ".join(f"coalesce(CAST({e} AS TEXT), '')" for _, e in q.select)
    join = ""
    if q.scan_join is not None:
        join = " LEFT JOIN scans sc ON sc.experiment_id = e.id"
        if q.scan_join not in {t.lower() for t in T.ABSTRACT_SCAN_TYPES}:
            join += " AND lower(sc.xsi_type) = ?"
    where = (" WHERE " + " AND ".join(q.where)) if q.where else ""
    params = ([q.scan_join] if q.scan_join is not None and "?" in join else []) + q.params
    sql = f"SELECT {select} FROM {table}{join}{where} ORDER BY {order}{paging}"
    cursor = store.cursor(sql, params)

    def rows() -> Iterator[tuple[str, ...]]:
        try:
            while batch := cursor.fetchmany(2000):
                yield from batch
        finally:
            cursor.close()

    return keys, rows()


def _restrict(q: Query, column: str, projects: list[str] | None) -> None:
    if projects is None:
        return
    if not projects:
        q.where.append("0")
        return
    q.where.append(f"{column} IN ({', '.join('?' * len(projects))})")
    q.params += projects


# --------------------------------------------------------------------------- listings


def projects(request: Request, listed: list[str] | None) -> tuple[list[str], Iterator[tuple[str, ...]]]:
    q = Query()
    _columns(request, PROJECTS, q, PROJECTS.defaults)
    _filters(request, PROJECTS, q)
    _restrict(q, "p.id", listed)
    return run(request.store, q, PROJECTS.table, _order(request, q, "p.id"), _paging(request))


def subjects(request: Request, project: str | None, visible: list[str] | None) -> tuple[list[str], Iterator[tuple[str, ...]]]:
    q = Query()
    _columns(request, SUBJECTS, q, SUBJECTS.defaults)
    _filters(request, SUBJECTS, q, skip=frozenset({"project"}) if project else frozenset())
    if project is not None:
        q.where.append("s.project = ?")
        q.params.append(project)
    _restrict(q, "s.project", visible)
    return run(request.store, q, SUBJECTS.table, _order(request, q, "s.id"), _paging(request))


def experiments(request: Request, *, project: str | None = None, subject_id: str | None = None,
                visible: list[str] | None = None) -> tuple[list[str], Iterator[tuple[str, ...]]]:
    """``/data/experiments`` (site-wide) or the project/subject listings (subject assessors only)."""
    q = Query()
    xsi_type = request.query.get("xsiType")
    defaults = EXPERIMENTS.defaults
    site_wide = project is None and subject_id is None
    if xsi_type:
        canonical = T.canonical(xsi_type, T.EXPERIMENT_TYPES | T.ABSTRACT_EXPERIMENT_TYPES)
        if canonical is None:
            raise HTTPError(400, f"Unknown xsiType: {xsi_type}")
        if canonical in T.IMAGE_ASSESSOR_TYPES or canonical == "xnat:imageAssessorData":
            q.where.append("e.session_id IS NOT NULL")
            defaults = (*defaults, "session_ID", "session_label") if site_wide else defaults
        else:
            if canonical != "xnat:experimentData":
                q.where.append("e.session_id IS NULL")
            if site_wide:
                defaults = (*defaults, "subject_ID", "subject_label")
        if canonical == "xnat:imageSessionData":
            q.where.append(f"e.xsi_type IN ({', '.join('?' * len(T.SESSION_TYPES))})")
            q.params += sorted(T.SESSION_TYPES)
        elif canonical == "xnat:subjectAssessorData":
            pass
        elif canonical not in T.ABSTRACT_EXPERIMENT_TYPES:
            q.where.append("e.xsi_type = ?")
            q.params.append(canonical)
    elif not site_wide:
        q.where.append("e.session_id IS NULL")
    _columns(request, EXPERIMENTS, q, defaults)
    skip = {"xsiType"}
    if project is not None:
        q.where.append("e.project = ?")
        q.params.append(project)
        skip.add("project")
    if subject_id is not None:
        q.where.append("e.subject_id = ?")
        q.params.append(subject_id)
    _filters(request, EXPERIMENTS, q, frozenset(skip))
    _restrict(q, "e.project", visible)
    order = "e.id"
    if q.scan_join is not None:
        order += (", CASE WHEN sc.id GLOB '[0-9]*' AND sc.id NOT GLOB '*[^0-9]*' THEN 0 ELSE 1 END,"
                  " CAST(sc.id AS INTEGER), sc.id")
    return run(request.store, q, EXPERIMENTS.table, _order(request, q, order), _paging(request))


def _scan_column(name: str, q: Query) -> str | None:
    if name in F.SHORTCUTS["scan"] or name in F.READ_ONLY["scan"]:
        return _scan_field(name, q)
    return None


def _scan_xpath(element: str, path: str, q: Query) -> str | None:
    return _scan_field(path, q) if element.lower() in _SCAN_ELEMENTS else None


SCANS = Spec("scans sc", ("xnat_imagescandata_id", "ID", "type", "quality", "xsiType", "note", "series_description"),
             _scan_column, _scan_xpath, "'/data/experiments/' || sc.experiment_id || '/scans/' || sc.id", "scan")
_SCAN_ORDER = scan_order("sc.id")


def scans(request: Request, experiment_id: str) -> tuple[list[str], Iterator[tuple[str, ...]]]:
    """``…/experiments/E/scans``: default columns per xnat-rest-spec §6.1."""
    q = Query()
    wanted = request.query.get("columns")
    if not wanted or wanted.strip().upper() == "DEFAULT":
        for name in SCANS.defaults:
            q.add_column(name, _scan_field(name, q))
        q.add_column("URI", SCANS.uri)
    else:
        _columns(request, SCANS, q, SCANS.defaults)
    q.where.append("sc.experiment_id = ?")
    q.params.append(experiment_id)
    _filters(request, SCANS, q)
    return run(request.store, q, SCANS.table, _order(request, q, _SCAN_ORDER), _paging(request))
