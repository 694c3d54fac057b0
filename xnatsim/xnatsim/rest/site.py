"""Site information: version, build info, schemas, search elements (xnat-rest-spec §2).

``/data/version`` answers 404 as XNAT ≥1.7 does, so clients fall back to
``/xapi/siteConfig/buildInfo`` exactly as against a real 1.8 server.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from xnatsim import xsitypes as T
from xnatsim.rest.search import DISPLAY_FIELDS
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes
from xnatsim.schemas import SCHEMA_NAMES, Schemas

if TYPE_CHECKING:
    from xnatsim.server import App

_STARTED = time.time()

#: searchable data types listed by /data/search/elements: (name, singular, plural)
SEARCH_ELEMENTS: tuple[tuple[str, str, str], ...] = (
    ("xnat:projectData", "Project", "Projects"),
    ("xnat:subjectData", "Subject", "Subjects"),
    ("xnat:mrSessionData", "MR Session", "MR Sessions"),
    ("xnat:petSessionData", "PET Session", "PET Sessions"),
    ("xnat:ctSessionData", "CT Session", "CT Sessions"),
    ("xnat:petmrSessionData", "PET/MR Session", "PET/MR Sessions"),
    ("xnat:usSessionData", "US Session", "US Sessions"),
    ("xnat:crSessionData", "CR Session", "CR Sessions"),
    ("xnat:dxSessionData", "DX Session", "DX Sessions"),
    ("xnat:mgSessionData", "MG Session", "MG Sessions"),
    ("xnat:nmSessionData", "NM Session", "NM Sessions"),
    ("xnat:xaSessionData", "XA Session", "XA Sessions"),
    ("xnat:otherDicomSessionData", "Other DICOM Session", "Other DICOM Sessions"),
    ("xnat:subjectVariablesData", "Subject Variables", "Subject Variables"),
    ("xnat:qcManualAssessorData", "Manual QC", "Manual QCs"),
    ("xnat:qcAssessmentData", "Auto QC", "Auto QCs"),
    ("xnat:mrScanData", "MR Scan", "MR Scans"),
    ("xnat:petScanData", "PET Scan", "PET Scans"),
    ("xnat:ctScanData", "CT Scan", "CT Scans"),
)
_SCAN_FIELDS = ("ID", "TYPE", "SERIES_DESCRIPTION", "QUALITY", "NOTE")


def setup(app: App) -> None:
    app.state["schemas"] = Schemas(app.config.schema_cache, fetch_missing=app.config.fetch_schemas)


def _schemas(request: Request) -> Schemas:
    schemas: Schemas = request.app.state["schemas"]
    return schemas


routes = Routes()


@routes.route("GET", "/data/version", auth="public")
def version(request: Request) -> Response:
    raise HTTPError(404, "The requested resource does not exist.")


@routes.route("GET", "/xapi/siteConfig/buildInfo")
def build_info(request: Request) -> Response:
    version = request.app.config.xnat_version
    return Response.json({
        "version": version, "buildNumber": "xnatsim", "buildDate": time.strftime(
            "%a %b %d %H:%M:%S UTC %Y", time.gmtime(_STARTED)),
        "sha": "0000000000", "isDirty": "false", "commit": "0", "tag": version,
        "shaFull": "0" * 40, "branch": "master", "timestamp": str(int(_STARTED * 1000)),
    })


@routes.route("GET", "/xapi/siteConfig/buildInfo/{prop}")
def build_info_prop(request: Request) -> Response:
    if request.params["prop"] != "version":
        raise HTTPError(404, f"No build property named {request.params['prop']}")
    return Response.text(request.app.config.xnat_version)


@routes.route("GET", "/xapi/siteConfig")
def site_config(request: Request) -> Response:
    return Response.json(_preferences(request))


@routes.route("GET", "/xapi/siteConfig/{prop}")
def site_property(request: Request) -> Response:
    prefs = _preferences(request)
    name = request.params["prop"]
    if name not in prefs:
        raise HTTPError(404, f"No site configuration property named {name}")
    value = prefs[name]
    return Response.text(value if isinstance(value, str) else json.dumps(value),
                         content_type="application/json;charset=UTF-8")


@routes.route("GET", "/xapi/siteConfig/uptime")
def uptime(request: Request) -> Response:
    seconds = int(time.time() - _STARTED)
    return Response.json({"days": seconds // 86400, "hours": seconds // 3600 % 24,
                          "minutes": seconds // 60 % 60, "seconds": seconds % 60})


@routes.route("GET", "/xapi/schemas")
def schema_list(request: Request) -> Response:
    return Response.json(list(SCHEMA_NAMES))


@routes.route("GET", "/xapi/schemas/{name}", "/xapi/schemas/{namespace}/{name}")
def schema(request: Request) -> Response:
    name = request.params["name"]
    if "namespace" in request.params:
        name = f"{request.params['namespace']}/{name}"
    document = _schemas(request).get(name)
    if document is None:
        raise HTTPError(404, f"Schema {name} not found.")
    return Response.xml(document, content_type="application/xml")


@routes.route("GET", "/data/search/elements")
def elements(request: Request) -> Response:
    counts = _counts(request)
    rows = [(name, singular, plural, "true", str(counts.get(name, 0)))
            for name, singular, plural in SEARCH_ELEMENTS]
    return table_response(request, ("ELEMENT_NAME", "SINGULAR", "PLURAL", "SECURED", "COUNT"), rows)


@routes.route("GET", "/data/search/elements/{element}")
def element_fields(request: Request) -> Response:
    element = T.canonical(request.params["element"], frozenset(n for n, _, _ in SEARCH_ELEMENTS))
    if element is None:
        raise HTTPError(404, f"Unknown data type {request.params['element']}.")
    if element in T.SCAN_TYPES:
        names: tuple[str, ...] = _SCAN_FIELDS
    else:
        kind = {"xnat:projectData": "project", "xnat:subjectData": "subject"}.get(element, "experiment")
        names = tuple(DISPLAY_FIELDS[kind])
    rows = [(f, f.replace("_", " ").title(), f.replace("_", " ").title(), "string", "0", "", element, "")
            for f in names]
    return table_response(request, ("FIELD_ID", "HEADER", "SUMMARY", "TYPE", "REQUIRES_VALUE", "DESC",
                                     "ELEMENT_NAME", "SRC"), rows)


register = routes.register


def _preferences(request: Request) -> dict[str, object]:
    """The site preferences xnatsim knows (a small subset of XNAT's)."""
    return {"siteId": request.app.config.site_id, "siteUrl": request.app.url, "initialized": True,
            "requireLogin": True, "enableCsrfToken": False, "checksums": True,
            "sessionTimeout": "15 minutes", "zipExtensions": "zip,jar,rar,ar,gz,tar,tgz,tar.gz"}


def _counts(request: Request) -> dict[str, int]:
    store = request.store
    counts = {"xnat:projectData": store.query("SELECT count(*) FROM projects")[0][0],
              "xnat:subjectData": store.query("SELECT count(*) FROM subjects")[0][0]}
    for table in ("experiments", "scans"):
        counts.update(dict(store.query(f"SELECT xsi_type, count(*) FROM {table} GROUP BY xsi_type")))
    return counts
