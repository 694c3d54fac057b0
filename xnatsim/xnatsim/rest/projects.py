"""Projects (xnat-rest-spec §3): listing, read, create/update, delete, accessibility, users."""

from __future__ import annotations

from xml.sax.saxutils import escape

from xnatsim import access, items, listings
from xnatsim.fields import put_fields, xpath_type
from xnatsim.rest.common import get_project, read_put_body
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes

ACCESSIBILITY = ("private", "protected", "public")
#: settings changed through ``PUT /data/projects/P/<name>/<value>`` (first value = default);
#: prearchive_code 0 = prearchive, 4 = auto-archive, 5 = auto-archive overwriting; a new project has 4
#: (XNAT's ``XnatProjectdata.initArcProject`` sets it, see ``xnatsim.intake.prearchive_code``)
PROJECT_SETTINGS: dict[str, tuple[str, ...]] = {
    "prearchive_code": ("4", "0", "5"),
    "quarantine_code": ("0", "1"),
    "scan_type_mapping": ("true", "false"),
    "current_arc": ("arc001",),
}


def single(request: Request, item: items.Item, xml: str) -> Response:
    """An object document in the requested format (json, xml; html refused)."""
    fmt = request.format("html")
    if fmt == "xml":
        return Response.xml(xml)
    if fmt == "json":
        return Response.json(items.items_json(item))
    if fmt == "html":
        # XNAT's default representation of a single object is its web page; send format=json
        title = escape(str(item["data_fields"].get("label") or item["data_fields"].get("ID", "")))
        page = (f"<!DOCTYPE html>\n<html><head><title>XNAT - {title}</title></head><body><h1>{title}</h1>"
                "<p>xnatsim serves no web pages; ask for format=json or format=xml.</p></body></html>\n")
        return Response.text(page, content_type="text/html;charset=UTF-8")
    raise HTTPError(400, f"Unsupported format for this object: {fmt} (use format=json or format=xml)")


routes = Routes()


@routes.route("GET", "/data/projects")
def list_projects(request: Request) -> Response:
    keys, rows = listings.projects(request, access.listed_projects(request.store, request.user))
    return table_response(request, keys, rows)


@routes.route("GET", "/data/projects/{project}")
def get(request: Request) -> Response:
    project = get_project(request)
    return single(request, items.project_item(request.store, project), items.project_xml(request.store, project))


@routes.route("PUT", "/data/projects/{project}")
@routes.route("POST", "/data/projects/{project}")
def put(request: Request) -> Response:
    read_put_body(request)
    store = request.store
    user = request.require_user()
    project_id = request.params["project"]
    existing = store.get_project(project_id)
    values, identity = put_fields(request.query, "project")
    xsi_type = request.query.get("xsiType") or xpath_type(request.query)
    if existing is None:
        if xsi_type is None or xsi_type.lower() != "xnat:projectdata":
            raise HTTPError(417, "Need PUT Contents")
        if identity.get("ID") and identity["ID"] != project_id:
            raise HTTPError(417, "Project ID in the document does not match the URL.")
    else:
        access.require(store, user, existing, "edit")
    accessibility = request.query.get("accessibility")
    if accessibility is not None:
        if accessibility not in ACCESSIBILITY:
            raise HTTPError(400, f"Invalid accessibility: {accessibility}")
        values["accessibility"] = accessibility
    if "secondary_ID" in request.query:
        values["secondary_ID"] = request.query.get("secondary_ID")
    store.put_project(existing.id if existing else project_id, values, user=user)
    return Response.empty()


@routes.route("DELETE", "/data/projects/{project}")
def delete(request: Request) -> Response:
    project = get_project(request, "delete")
    request.store.delete_project(project.id, remove_files=True)
    return Response.empty()


@routes.route("GET", "/data/projects/{project}/accessibility")
def get_accessibility(request: Request) -> Response:
    return Response.text(get_project(request).accessibility)


@routes.route("PUT", "/data/projects/{project}/accessibility/{value}")
def set_accessibility(request: Request) -> Response:
    project = get_project(request, "delete")
    value = request.params["value"]
    if value not in ACCESSIBILITY:
        raise HTTPError(400, f"Invalid accessibility: {value}")
    request.store.put_project(project.id, {"accessibility": value}, user=request.require_user())
    return Response.empty()


@routes.route("PUT", *(f"/data/projects/{{project}}/{name}/{{value}}" for name in PROJECT_SETTINGS))
def put_setting(request: Request) -> Response:
    project = get_project(request, "delete")
    name = request.route.split("/")[4]
    value = request.params["value"]
    if value not in PROJECT_SETTINGS[name]:
        raise HTTPError(400, f"Invalid {name}: {value} (one of {', '.join(PROJECT_SETTINGS[name])})")
    request.store.put_project(project.id, {name: value}, user=request.require_user())
    return Response.empty()


@routes.route("GET", *(f"/data/projects/{{project}}/{name}" for name in PROJECT_SETTINGS))
def get_setting(request: Request) -> Response:
    project = get_project(request)
    name = request.route.split("/")[4]
    return Response.text(project.fields.get(name, PROJECT_SETTINGS[name][0]))


@routes.route("GET", "/data/projects/{project}/users")
def project_users(request: Request) -> Response:
    project = get_project(request)
    rows = [(str(r[0]), r[1], r[2], r[3], r[4], r[5], r[5].capitalize() + "s", f"{project.id}_{r[5]}")
            for r in request.store.query(
                "SELECT u.rowid, u.login, u.first_name, u.last_name, u.email, r.role FROM roles r "
                "JOIN users u ON u.login = r.login WHERE r.project=? ORDER BY r.login", (project.id,))]
    return table_response(request, ("xdat_user_id", "login", "firstname", "lastname", "email", "role",
                                    "displayname", "GROUP_ID"), rows, title="Project Users")


@routes.route("PUT", "/data/projects/{project}/users/{group}/{login}")
def add_user(request: Request) -> Response:
    project = get_project(request, "delete")
    group = request.params["group"].lower().rstrip("s")
    if group not in ("owner", "member", "collaborator"):
        raise HTTPError(400, f"Unknown group {request.params['group']}")
    if not request.store.user_exists(request.params["login"]):
        raise HTTPError(404, f"User {request.params['login']} not found.")
    request.store.set_role(project.id, request.params["login"], group)  # type: ignore[arg-type]
    return Response.empty()


@routes.route("DELETE", "/data/projects/{project}/users/{group}/{login}")
def remove_user(request: Request) -> Response:
    project = get_project(request, "delete")
    request.store.set_role(project.id, request.params["login"], None)
    return Response.empty()


register = routes.register
