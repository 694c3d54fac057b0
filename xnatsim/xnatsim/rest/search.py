"""``POST /data/search`` with an ``xdat:bundle`` document (xnat-rest-spec §9; xnatpy's ``query()``).

Supported: root elements ``xnat:projectData``, ``xnat:subjectData`` and experiment types; search
fields given as xpaths (``xnat:mrSessionData/label``, what xnatpy sends) or as common display
field IDs (``LABEL``, ``SUBJECT_LABEL``, ``GENDER_TEXT``, …); ``search_where`` criteria with
``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE``, ``IS NULL``/``IS NOT NULL`` and nested
``child_set`` groups. Column keys follow the spec: root-element fields by their (lower-cased)
display field ID (``session_id``, ``subject_id``, ``label``, ``project``), fields of other
elements as ``<element sql name>_<field>`` (``xnat_mrscandata_id``); scan fields give one row per
scan. Results are not cached (no ``GET /data/search/{ID}`` paging).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from xnatsim import access, listings
from xnatsim import xsitypes as T
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes

XDAT = "{http://nrg.wustl.edu/security}"
MAX_BUNDLE = 1 << 20
_OPERATORS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
              "LIKE": "LIKE", "ILIKE": "LIKE", "NOT LIKE": "NOT LIKE"}
#: display field IDs → field names, per root family
DISPLAY_FIELDS: dict[str, dict[str, str]] = {
    "experiment": {"SESSION_ID": "ID", "EXPT_ID": "ID", "ID": "ID", "LABEL": "label", "PROJECT": "project",
                   "SUBJECT_ID": "subject_ID", "SUBJECT_LABEL": "subject_label", "DATE": "date", "TIME": "time",
                   "AGE": "age", "SCANNER": "scanner", "TYPE": "session_type", "MODALITY": "modality",
                   "INSERT_DATE": "insert_date", "INSERT_USER": "insert_user", "NOTE": "note", "MR_NOTES": "note",
                   "UID": "UID", "VISIT_ID": "visit_id", "XSI_TYPE": "xsiType"},
    "subject": {"SUBJECT_ID": "ID", "SUBJECTID": "ID", "ID": "ID", "SUBJECT_LABEL": "label", "LABEL": "label",
                "PROJECT": "project", "GENDER": "gender", "GENDER_TEXT": "gender", "HANDEDNESS": "handedness",
                "HANDEDNESS_TEXT": "handedness", "DOB": "dob", "YOB": "yob", "AGE": "age", "GROUP": "group",
                "SRC": "src", "INSERT_DATE": "insert_date", "INSERT_USER": "insert_user"},
    "project": {"ID": "ID", "NAME": "name", "SECONDARY_ID": "secondary_ID", "DESCRIPTION": "description",
                "KEYWORDS": "keywords", "PI_FIRSTNAME": "pi_firstname", "PI_LASTNAME": "pi_lastname",
                "INSERT_DATE": "insert_date", "INSERT_USER": "insert_user"},
}
#: key of a root-element field given as an xpath (XNAT answers with the display field's ID)
_ROOT_KEYS = {"experiment": {"id": "session_id", "subject_id": "subject_id"},
              "subject": {"id": "subjectid"}, "project": {"id": "id"}}
_DEFAULTS = {"experiment": ("ID", "project", "subject_ID", "label", "date", "xsiType", "insert_date"),
             "subject": ("ID", "project", "label", "insert_date"),
             "project": ("ID", "secondary_ID", "name", "description")}


@dataclass
class Family:
    kind: str
    spec: listings.Spec
    project_column: str
    order: str


def _family(root: str) -> tuple[Family, str | None]:
    """The listing family of a root element and the xsi type filter it implies."""
    if root.lower() == "xnat:projectdata":
        return Family("project", listings.PROJECTS, "p.id", "p.id"), None
    if root.lower() == "xnat:subjectdata":
        return Family("subject", listings.SUBJECTS, "s.project", "s.id"), None
    canonical = T.canonical(root, T.EXPERIMENT_TYPES | T.ABSTRACT_EXPERIMENT_TYPES)
    if canonical is None:
        raise HTTPError(400, f"Unsupported root element for a search: {root}")
    return Family("experiment", listings.EXPERIMENTS, "e.project", "e.id"), canonical


def _sql_name(element: str) -> str:
    return element.lower().replace(":", "_")


def _resolve(family: Family, root: str, element: str, field_id: str, q: listings.Query) -> tuple[str, str] | None:
    """``(key, sql)`` of a search field or criterion; None when unknown (XNAT ignores those)."""
    if "/" in field_id:
        element, _, path = field_id.partition("/")
        is_display = False
    elif "." in field_id and ":" in field_id:
        element, _, path = field_id.partition(".")
        is_display = True
    else:
        path, is_display = field_id, True
    root_like = element.lower() == root.lower() or (
        family.kind == "experiment" and element.lower() in {t.lower() for t in T.ABSTRACT_EXPERIMENT_TYPES})
    if is_display:
        other, _ = _family(element) if element.lower() != root.lower() else (family, None)
        name = DISPLAY_FIELDS[other.kind].get(path.upper())
        if name is None:
            return None
        if root_like:
            expr = family.spec.field(name, q)
            return (path.lower(), expr) if expr is not None else None
        expr = family.spec.xpath(element, name, q)
        return (f"{_sql_name(element)}_{path.lower()}", expr) if expr is not None else None
    if root_like:
        expr = family.spec.field(path, q) or family.spec.xpath(root, path, q)
        key = _ROOT_KEYS[family.kind].get(path.lower(), path.lower().replace("/", "_"))
        return (key, expr) if expr is not None else None
    expr = family.spec.xpath(element, path, q)
    return (f"{_sql_name(element)}_{path.lower().replace('/', '_')}", expr) if expr is not None else None


def _where(node: ET.Element, family: Family, root: str, q: listings.Query) -> str | None:
    method = " OR " if (node.get("method") or "AND").upper() == "OR" else " AND "
    parts: list[str] = []
    for child in node:
        tag = child.tag.replace(XDAT, "")
        if tag == "criteria":
            field_id = (child.findtext(f"{XDAT}schema_field") or "").strip()
            comparison = (child.findtext(f"{XDAT}comparison_type") or "=").strip().upper()
            value = child.findtext(f"{XDAT}value") or ""
            resolved = _resolve(family, root, root, field_id, q)
            if resolved is None:
                raise HTTPError(400, f"Unknown search field: {field_id}")
            expr = f"coalesce(CAST({resolved[1]} AS TEXT), '')"
            if comparison in ("IS NULL", " IS NULL", "IS"):
                parts.append(f"{expr} = ''")
            elif comparison in ("IS NOT NULL", " IS NOT NULL"):
                parts.append(f"{expr} <> ''")
            elif comparison in _OPERATORS:
                parts.append(f"{expr} {_OPERATORS[comparison]} ?")
                q.params.append(value.replace("*", "%") if "LIKE" in comparison else value)
            else:
                raise HTTPError(400, f"Unsupported comparison: {comparison}")
        elif tag == "child_set":
            nested = _where(child, family, root, q)
            if nested:
                parts.append(nested)
    return "(" + method.join(parts) + ")" if parts else None


routes = Routes()


@routes.route("POST", "/data/search")
def search(request: Request) -> Response:
    body = request.read_body(MAX_BUNDLE)
    try:
        bundle = ET.fromstring(body)
    except ET.ParseError as exc:
        raise HTTPError(400, f"The search document is not valid XML: {exc}") from exc
    root = (bundle.findtext(f"{XDAT}root_element_name") or "").strip()
    if not root:
        raise HTTPError(400, "The search document has no root_element_name.")
    family, xsi_type = _family(root)
    q = listings.Query()
    fields = sorted(bundle.findall(f"{XDAT}search_field"),
                    key=lambda f: int(f.findtext(f"{XDAT}sequence") or 0))
    columns: list[dict[str, str]] = []
    for field in fields:
        element = (field.findtext(f"{XDAT}element_name") or root).strip()
        field_id = (field.findtext(f"{XDAT}field_ID") or "").strip()
        resolved = _resolve(family, root, element, field_id, q)
        if resolved is None:
            continue
        q.add_column(*resolved)
        columns.append({"key": resolved[0], "header": field.findtext(f"{XDAT}header") or field_id,
                        "type": field.findtext(f"{XDAT}type") or "string", "element_name": element,
                        "id": field_id.split("/")[-1].upper(), "xPATH": field_id})
    if not fields:
        for name in _DEFAULTS[family.kind]:
            resolved = _resolve(family, root, root, f"{root}/{name}", q)
            if resolved is not None:
                q.add_column(*resolved)
                columns.append({"key": resolved[0], "header": name, "type": "string", "element_name": root,
                                "id": name.upper(), "xPATH": f"{root}/{name}"})
    if not q.select:
        raise HTTPError(400, "The search selects no known fields.")
    if xsi_type is not None:
        if xsi_type in T.IMAGE_ASSESSOR_TYPES or xsi_type == "xnat:imageAssessorData":
            q.where.append("e.session_id IS NOT NULL")
        elif xsi_type not in T.ABSTRACT_EXPERIMENT_TYPES:
            q.where.append("e.xsi_type = ?")
            q.params.append(xsi_type)
        elif xsi_type == "xnat:imageSessionData":
            q.where.append(f"e.xsi_type IN ({', '.join('?' * len(T.SESSION_TYPES))})")
            q.params += sorted(T.SESSION_TYPES)
    for where in bundle.findall(f"{XDAT}search_where"):
        clause = _where(where, family, root, q)
        if clause:
            q.where.append(clause)
    visible = access.visible_projects(request.store, request.user)
    if visible is not None:
        if not visible:
            q.where.append("0")
        else:
            q.where.append(f"{family.project_column} IN ({', '.join('?' * len(visible))})")
            q.params += visible
    keys, rows = listings.run(request.store, q, family.spec.table, family.order, "")
    return table_response(request, keys, rows, column_props=columns if request.format() == "json" else None,
                          title="Search results")


register = routes.register
