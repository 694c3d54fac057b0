"""Configuration storage (``ConfigResource``, xnat-rest-spec §11): site and project config entries."""

from __future__ import annotations

import json
import shutil

from xnatsim import access, multipart
from xnatsim.rest.common import get_project
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes
from xnatsim.store import ConfigEntry, StoreError

COLUMNS = ("tool", "path", "project", "user", "create_date", "reason", "contents", "unversioned", "version",
           "status")
MAX_CONFIG = 16 * 1024 * 1024


def _scope(request: Request, action: str) -> str:
    """The project ID of a project config route ("" for site config), checked for ``action``."""
    if "project" in request.params:
        project = get_project(request, "read")
        if action != "read" and not access.can(request.store, request.user, project, "edit"):
            raise HTTPError(403, "User does not have privileges to modify config for this project")
        return project.id
    if action != "read" and not request.store.is_admin(request.user):
        raise HTTPError(403, "Only site administrators can modify the site configuration.")
    return ""


def _row(entry: ConfigEntry, blank: bool) -> tuple[str, ...]:
    return (entry.tool, entry.path, entry.project, entry.user, entry.create_date, entry.reason,
            "" if blank else entry.contents, str(entry.unversioned).lower(), str(entry.version), entry.status)


def _body_contents(request: Request) -> str | None:
    if request.content_length <= 0:
        return None
    if request.content_length > MAX_CONFIG:
        raise HTTPError(413, "Config contents too large.")
    if request.content_type == "multipart/form-data":
        folder = request.store.stage()
        try:
            boundary = multipart.boundary_of(request.headers.get("content-type", ""))
            parts = list(multipart.read_parts(request.body, request.content_length, boundary, folder))
            if len(parts) != 1:
                raise HTTPError(400, "Send exactly one file as the config contents.")
            return parts[0].path.read_text(encoding="utf-8", errors="replace")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    text = request.read_body(MAX_CONFIG).decode("utf-8", errors="replace")
    if request.content_type == "application/json":
        try:
            document = json.loads(text)
        except ValueError:
            return text
        if isinstance(document, dict) and "contents" in document and set(document) <= {"contents", "status",
                                                                                       "reason", "unversioned"}:
            return str(document["contents"])
    return text


routes = Routes()

#: the site-wide and the project config routes share every handler
SITE_CONFIG = "/data/config"
PROJECT_CONFIG = "/data/projects/{project}/config"


@routes.route("GET", SITE_CONFIG, PROJECT_CONFIG)
def tools(request: Request) -> Response:
    scope = _scope(request, "read")
    names = sorted({e.tool for e in request.store.list_configs(scope)})
    return table_response(request, ("tool",), [(n,) for n in names], title="Configurations")


@routes.route("GET", SITE_CONFIG + "/{tool}", PROJECT_CONFIG + "/{tool}")
def paths(request: Request) -> Response:
    scope = _scope(request, "read")
    entries = request.store.list_configs(scope, request.params["tool"])
    if not entries:
        raise HTTPError(404, f"Couldn't find config for user {request.user} on tool [{request.params['tool']}]")
    return table_response(request, COLUMNS, [_row(e, request.query.flag("meta")) for e in entries],
                          title="Configurations")


@routes.route("GET", SITE_CONFIG + "/{tool}/{path:path}", PROJECT_CONFIG + "/{tool}/{path:path}")
def get(request: Request) -> Response:
    scope = _scope(request, "read")
    store = request.store
    tool, path = request.params["tool"], request.params["path"]
    if request.query.get_ci("action") == "getHistory":
        history = store.config_history(scope, tool, path)
        return table_response(request, COLUMNS, [_row(e, request.query.flag("meta")) for e in history],
                              title="Configurations")
    version = request.query.get("version")
    entry = store.get_config(scope, tool, path, int(version) if version and version.isdigit() else None)
    if (entry is None or entry.status != "enabled") and scope and request.query.flag("defaultToSiteWide"):
        entry = store.get_config("", tool, path)
    if entry is None or (entry.status != "enabled" and request.query.flag("contents")):
        if request.query.flag("accept-not-found"):
            return Response.empty(204)
        if request.query.flag("contents"):
            raise HTTPError(404, f"Config not found for user {request.user} and project {scope or '-'} on "
                                 f"tool [{tool}] path [{path}]")
        raise HTTPError(404, f"Couldn't find config for user {request.user} on tool [{tool}] path [{path}]")
    if request.query.flag("contents"):
        return Response.text(entry.contents)
    return table_response(request, COLUMNS, [_row(entry, request.query.flag("meta"))], title="Configurations")


@routes.route("PUT", SITE_CONFIG + "/{tool}/{path:path}", PROJECT_CONFIG + "/{tool}/{path:path}")
@routes.route("POST", SITE_CONFIG + "/{tool}/{path:path}", PROJECT_CONFIG + "/{tool}/{path:path}")
def put(request: Request) -> Response:
    scope = _scope(request, "edit")
    status = request.query.get("status")
    if status is not None and status not in ("enabled", "disabled"):
        raise HTTPError(400, f"Invalid status: {status}")
    contents = _body_contents(request)
    if contents is None and status is None:
        raise HTTPError(400, "No body contents.")
    if contents is not None and contents == "":
        raise HTTPError(400, "No body contents.")
    try:
        created = request.store.put_config(
            scope, request.params["tool"], request.params["path"], contents, user=request.require_user(),
            reason=request.query.get("reason") or "", status=status,
            unversioned=request.query.flag("unversioned"))
    except StoreError as exc:  # a status toggle of a missing entry
        raise HTTPError(404 if contents is None else exc.status, exc.message) from exc
    return Response.empty(201 if created else 200)


@routes.route("DELETE", SITE_CONFIG + "/{tool}/{path:path}", PROJECT_CONFIG + "/{tool}/{path:path}")
def delete(request: Request) -> Response:
    scope = _scope(request, "edit")
    if not request.store.disable_config(scope, request.params["tool"], request.params["path"],
                                        user=request.require_user()):
        raise HTTPError(404, "Couldn't find config.")
    return Response.empty()


register = routes.register
