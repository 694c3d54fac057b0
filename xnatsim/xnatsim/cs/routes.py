"""Container Service REST routes under ``/xapi`` (spec C.1-C.5)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import TYPE_CHECKING, Any

from xnatsim.cs.backend import LaunchError
from xnatsim.cs.db import DocumentDB
from xnatsim.cs.images import save_image_commands
from xnatsim.cs.registry import CommandError, Registry
from xnatsim.cs.service import ContainerService, LaunchRefused
from xnatsim.cs.settings import SettingsError
from xnatsim.routing import HTTPError, Request, Response, Routes

if TYPE_CHECKING:
    from xnatsim.server import App

__all__ = ["DB_FILE", "register", "routes", "service", "setup"]

DB_FILE = "cs.sqlite"
routes = Routes()
Doc = dict[str, Any]


def setup(app: App) -> None:
    """Open the CS database beside the store and start the service (``app.state["cs"]``)."""
    if "cs" in app.state:
        return
    db = DocumentDB(app.store.data_dir / DB_FILE)
    cs = ContainerService(app.store, db, server_url=lambda: app.url)
    app.state["cs-db"] = db
    app.state["cs"] = cs
    app.on_close(db.close)
    app.on_close(cs.shutdown)  # runs first: queued and running containers finish


def service(request: Request) -> ContainerService:
    cs: ContainerService = request.app.state["cs"]
    return cs


def _registry(request: Request) -> Registry:
    return service(request).registry


def _json_body(request: Request, *, required: bool = True) -> Any:
    data = request.read_body(64 * 1024 * 1024)
    if not data.strip():
        if required:
            raise HTTPError(400, "A JSON body is required.")
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise HTTPError(400, f"Could not parse the JSON body: {exc}") from exc


def _int(value: str, what: str) -> int:
    if not value.isdigit():
        raise HTTPError(404, f"No {what} with id {value}.")
    return int(value)


def _command_error(exc: CommandError) -> Response:
    return Response.text(exc.body, exc.status)


def _require_manager(request: Request) -> str:
    user = request.require_user()
    if not request.store.is_admin(user):
        raise HTTPError(403, "Only Container Managers can do this.")
    return user


def _require_project(request: Request, project: str, *, owner: bool = False) -> str:
    user = request.require_user()
    if request.store.get_project(project) is None:
        raise HTTPError(404, f"No project {project}.")
    if request.store.is_admin(user):
        return user
    role = request.store.role(project, user)
    if role is None or (owner and role != "owner"):
        raise HTTPError(403, f"User {user} cannot do this on project {project}.")
    return user


def _command_ref(request: Request) -> Doc:
    """The command named by the ``{cid}`` path parameter, or 404."""
    doc = _registry(request).get(_int(request.params["cid"], "command"))
    if doc is None:
        raise HTTPError(404, f"No command with id {request.params['cid']}.")
    return doc


def _wrapper_ref(request: Request) -> tuple[Doc, Doc]:
    reg = _registry(request)
    params = request.params
    if "cid" in params:
        found = reg.wrapper_by_name(_int(params["cid"], "command"), params["wname"])
    else:
        found = reg.wrapper(_int(params["wid"], "wrapper"))
    if found is None:
        raise HTTPError(404, "No such wrapper.")
    return found


# -------------------- images (C.1)
@routes.route("POST", "/xapi/docker/images/save", "/xapi/docker/pull")
def save_image(request: Request) -> Response:
    _require_manager(request)
    image = request.query.get("image")
    if not image:
        raise HTTPError(400, "Query parameter image is required.")
    cs = service(request)
    try:
        saved, _errors = save_image_commands(cs.registry, cs.backend, image)
    except LookupError as exc:
        raise HTTPError(404, str(exc)) from exc
    return Response.json(saved)


@routes.route("DELETE", "/xapi/docker/images/{id}")
def delete_image(request: Request) -> Response:
    """Remove the image from the engine, and the commands XNAT holds for it (``removeImageById``)."""
    _require_manager(request)
    cs = service(request)
    try:
        image_id, gone = cs.backend.remove_image(request.params["id"], force=request.query.flag("force"))
    except LookupError as exc:
        raise HTTPError(404, str(exc)) from exc
    except LaunchError as exc:
        raise HTTPError(500, str(exc)) from exc
    for command in cs.registry.commands():
        if command.get("image") in gone or (command.get("hash") == image_id and not cs.backend.has_image(image_id)):
            cs.registry.delete(command["id"])
    return Response.empty(204)


@routes.route("GET", "/xapi/docker/images")
def list_images(request: Request) -> Response:
    return Response.json(service(request).backend.list_images())


@routes.route("GET", "/xapi/docker/image-summaries")
def image_summaries(request: Request) -> Response:
    summaries: dict[str, Doc] = {}
    for command in _registry(request).commands():
        entry = summaries.setdefault(command["image"], {"image-id": None, "names": [command["image"]],
                                                         "commands": [], "server": "local"})
        entry["commands"].append(command)
    return Response.json(list(summaries.values()))


@routes.route("GET", "/xapi/docker/server")
def get_server(request: Request) -> Response:
    return Response.json(service(request).settings.as_json())


@routes.route("POST", "/xapi/docker/server")
def set_server(request: Request) -> Response:
    _require_manager(request)
    body = _json_body(request)
    if not isinstance(body, dict):
        raise HTTPError(400, "The body must be a JSON object.")
    try:
        service(request).save_settings(body)
    except SettingsError as exc:
        raise HTTPError(400, str(exc)) from exc
    return Response.json(service(request).settings.as_json(), 201)


# -------------------- commands (C.1)
@routes.route("GET", "/xapi/commands")
def list_commands(request: Request) -> Response:
    q = request.query
    if q.get("version") is not None and q.get("name") is None:
        raise HTTPError(400, "The version filter requires name.")
    return Response.json(_registry(request).commands(name=q.get("name"), version=q.get("version"),
                                                 image=q.get("image")))


@routes.route("POST", "/xapi/commands")
def create_command(request: Request) -> Response:
    _require_manager(request)
    body = _json_body(request)
    try:
        doc = _registry(request).create(body, image=request.query.get("image"))
    except CommandError as exc:
        return _command_error(exc)
    return Response.json(doc["id"], 201)


@routes.route("GET", "/xapi/commands/available")
def available(request: Request) -> Response:
    xsi = request.query.get("xsiType") or ""
    project = request.query.get("project")
    return Response.json(_registry(request).available(xsi, project))


@routes.route("GET", "/xapi/projects/{project}/commands/available")
def available_project(request: Request) -> Response:
    _require_project(request, request.params["project"])
    xsi = request.query.get("xsiType") or ""
    return Response.json(_registry(request).available(xsi, request.params["project"]))


@routes.route("GET", "/xapi/commands/available/site")
def available_site(request: Request) -> Response:
    xsi = request.query.get("xsiType") or "site"
    return Response.json(_registry(request).available(xsi, None, site=True))


@routes.route("GET", "/xapi/commands/{cid}")
def get_command(request: Request) -> Response:
    doc = _command_ref(request)
    return Response.json(doc)


@routes.route("POST", "/xapi/commands/{cid}")
def update_command(request: Request) -> Response:
    _require_manager(request)
    body = _json_body(request)
    try:
        _registry(request).update(_int(request.params["cid"], "command"), body)
    except CommandError as exc:
        return _command_error(exc)
    return Response.empty(200)


@routes.route("DELETE", "/xapi/commands/{cid}")
def delete_command(request: Request) -> Response:
    _require_manager(request)
    if not _registry(request).delete(_int(request.params["cid"], "command")):
        raise HTTPError(404, f"No command with id {request.params['cid']}.")
    return Response.empty(204)


@routes.route("POST", "/xapi/commands/{cid}/wrappers")
def add_wrapper(request: Request) -> Response:
    _require_manager(request)
    reg = _registry(request)
    command = _command_ref(request)
    body = _json_body(request)
    command["xnat"].append(body)
    try:
        doc = reg.update(command["id"], command)
    except CommandError as exc:
        return _command_error(exc)
    return Response.json(doc["xnat"][-1]["id"], 201)


@routes.route("POST", "/xapi/commands/{cid}/wrappers/{wid}")
def update_wrapper(request: Request) -> Response:
    _require_manager(request)
    reg = _registry(request)
    command = reg.get(_int(request.params["cid"], "command"))
    wid = _int(request.params["wid"], "wrapper")
    if command is None or not any(w["id"] == wid for w in command["xnat"]):
        raise HTTPError(404, "No such wrapper.")
    body = _json_body(request)
    body["id"] = wid
    command["xnat"] = [body if w["id"] == wid else w for w in command["xnat"]]
    try:
        reg.update(command["id"], command)
    except CommandError as exc:
        return _command_error(exc)
    return Response.empty(200)


@routes.route("DELETE", "/xapi/wrappers/{wid}")
def delete_wrapper(request: Request) -> Response:
    _require_manager(request)
    command, wrapper = _wrapper_ref(request)
    command["xnat"] = [w for w in command["xnat"] if w["id"] != wrapper["id"]]
    reg = _registry(request)
    reg.update(command["id"], command)
    reg.db.delete("wrapper-owner", wrapper["id"])
    return Response.empty(204)


@routes.route("POST", "/xapi/command/{cid}/visibility/{visibility}")
def set_visibility(request: Request) -> Response:
    _require_manager(request)
    reg = _registry(request)
    command = _command_ref(request)
    command["visibility"] = request.params["visibility"]
    try:
        reg.update(command["id"], command)
    except CommandError as exc:
        return _command_error(exc)
    return Response.empty(200)


# -------------------- enablement (C.2)
def _set_site_enabled(request: Request, on: bool) -> Response:
    _require_manager(request)
    _command, wrapper = _wrapper_ref(request)
    _registry(request).set_enabled(wrapper["id"], on)
    return Response.empty(200)


def _set_project_enabled(request: Request, on: bool) -> Response:
    _require_project(request, request.params["project"], owner=True)
    _command, wrapper = _wrapper_ref(request)
    _registry(request).set_enabled(wrapper["id"], on, request.params["project"])
    return Response.empty(200)


def enable_on_site(request: Request) -> Response:
    return _set_site_enabled(request, True)


def disable_on_site(request: Request) -> Response:
    return _set_site_enabled(request, False)


def enable_on_project(request: Request) -> Response:
    return _set_project_enabled(request, True)


def disable_on_project(request: Request) -> Response:
    return _set_project_enabled(request, False)


for _state, _site, _project in (("enabled", enable_on_site, enable_on_project),
                                ("disabled", disable_on_site, disable_on_project)):
    routes.add("PUT", f"/xapi/wrappers/{{wid}}/{_state}", _site)
    routes.add("PUT", f"/xapi/commands/{{cid}}/wrappers/{{wname}}/{_state}", _site)
    routes.add("PUT", f"/xapi/projects/{{project}}/wrappers/{{wid}}/{_state}", _project)
    routes.add("PUT", f"/xapi/projects/{{project}}/commands/{{cid}}/wrappers/{{wname}}/{_state}", _project)


@routes.route("GET", "/xapi/wrappers/{wid}/enabled", "/xapi/commands/{cid}/wrappers/{wname}/enabled")
def site_enabled(request: Request) -> Response:
    _command, wrapper = _wrapper_ref(request)
    return Response.json(_registry(request).enabled_for_site(wrapper["id"]))


@routes.route("GET", "/xapi/projects/{project}/wrappers/{wid}/enabled",
              "/xapi/projects/{project}/commands/{cid}/wrappers/{wname}/enabled")
def project_enabled(request: Request) -> Response:
    _require_project(request, request.params["project"])
    _command, wrapper = _wrapper_ref(request)
    reg = _registry(request)
    project = request.params["project"]
    return Response.json({"enabled-for-site": reg.enabled_for_site(wrapper["id"]),
                          "enabled-for-project": reg.enabled_for_project(wrapper["id"], project),
                          "project": project})


@routes.route("GET", "/xapi/wrappers/{wid}/projects")
def wrapper_projects(request: Request) -> Response:
    _command, wrapper = _wrapper_ref(request)
    projects = [p.id for p in request.store.list_projects()]
    return Response.json(_registry(request).projects_enabled(wrapper["id"], projects))


def config_handler(request: Request) -> Response:
    project = request.params.get("project")
    if project is not None:
        _require_project(request, project, owner=request.method != "GET")
    elif request.method != "GET":
        _require_manager(request)
    _command, wrapper = _wrapper_ref(request)
    reg = _registry(request)
    if request.method == "GET":
        return Response.json(reg.config(wrapper["id"], project))
    if request.method == "DELETE":
        reg.delete_config(wrapper["id"], project)
        return Response.empty(204)
    body = _json_body(request)
    if not isinstance(body, dict):
        raise HTTPError(400, "The configuration must be a JSON object.")
    reg.set_config(wrapper["id"], {"inputs": body.get("inputs") or {}, "outputs": body.get("outputs") or {}},
                   project)
    if (request.query.get("enable") or "true").lower() == "true":
        reg.set_enabled(wrapper["id"], True, project)
    return Response.empty(201)


for _method in ("GET", "POST", "DELETE"):
    routes.add(_method, "/xapi/wrappers/{wid}/config", config_handler)
    routes.add(_method, "/xapi/projects/{project}/wrappers/{wid}/config", config_handler)
    routes.add(_method, "/xapi/commands/{cid}/wrappers/{wname}/config", config_handler)
    routes.add(_method, "/xapi/projects/{project}/commands/{cid}/wrappers/{wname}/config", config_handler)


# -------------------- launching (C.3)
def launch_params(request: Request, *, body_allowed: bool = True) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query.items)
    if body_allowed and request.content_length:
        body = _json_body(request, required=False)
        if body is not None:
            if not isinstance(body, dict):
                raise HTTPError(400, "Launch parameters must be a JSON object.")
            params.update(body)
    return params


def launch_handler(request: Request) -> Response:
    user = request.require_user()
    project = request.params.get("project")
    if project is not None:
        _require_project(request, project)
    _command, wrapper = _wrapper_ref(request)
    root = request.params.get("root")
    params = launch_params(request)
    cs = service(request)
    try:
        if request.path.endswith("/bulklaunch"):
            if not root:
                raise LaunchRefused("Bulk launch needs a root element.")
            return Response.json(cs.bulk_launch(wrapper["id"], params, user, project=project, root_element=root))
        return Response.json(cs.launch(wrapper["id"], params, user, project=project, root_element=root))
    except LaunchRefused as exc:
        return Response.json({"status": "failure", "message": str(exc), "params": params}, 500)


for _verb in ("launch", "bulklaunch"):
    for _base in ("/xapi/wrappers/{wid}", "/xapi/commands/{cid}/wrappers/{wname}",
                  "/xapi/projects/{project}/wrappers/{wid}", "/xapi/projects/{project}/wrapper/{wid}",
                  "/xapi/projects/{project}/commands/{cid}/wrappers/{wname}"):
        routes.add("POST", f"{_base}/root/{{root}}/{_verb}", launch_handler)
    if _verb == "launch":
        for _base in ("/xapi/wrappers/{wid}", "/xapi/commands/{cid}/wrappers/{wname}",
                      "/xapi/projects/{project}/wrappers/{wid}"):
            routes.add("POST", f"{_base}/launch", launch_handler)


# -------------------- containers (C.4)
@routes.route("GET", "/xapi/containers")
def list_containers(request: Request) -> Response:
    user = request.require_user()
    docs = service(request).containers(nonfinalized=request.query.flag("nonfinalized"))
    if not request.store.is_admin(user):
        docs = [d for d in docs if d.get("user-id") == user]
    return Response.json(docs)


@routes.route("GET", "/xapi/projects/{project}/containers")
def project_containers(request: Request) -> Response:
    _require_project(request, request.params["project"])
    return Response.json(service(request).containers(project=request.params["project"]))


@routes.route("GET", "/xapi/containers/version")
def version(request: Request) -> Response:
    return Response.json({"version": "3.7.3", "xnat-version": request.app.config.xnat_version,
                          "simulator": "xnatsim"})


def _container(request: Request) -> Doc:
    user = request.require_user()
    doc = service(request).find_container(request.params["id"])
    if doc is None:
        raise HTTPError(404, f"No container {request.params['id']}.")
    if not request.store.is_admin(user) and doc.get("user-id") != user:
        raise HTTPError(403, "Not your container.")
    return doc


@routes.route("GET", "/xapi/containers/{id}")
def get_container(request: Request) -> Response:
    return Response.json(_container(request))


@routes.route("GET", "/xapi/container/name/{name}", "/xapi/projects/{project}/containers/name/{name}")
def container_by_name(request: Request) -> Response:
    request.params["id"] = request.params["name"]
    return Response.json(_container(request))


@routes.route("GET", "/xapi/containers/{id}/logs/{stream}")
def container_log(request: Request) -> Response:
    doc = _container(request)
    if request.params["stream"] not in ("stdout", "stderr"):
        raise HTTPError(404, "Log must be stdout or stderr.")
    text = service(request).log_text(doc["id"], request.params["stream"])
    if text is None:
        raise HTTPError(404, "No log.")
    return Response.text(text)


@routes.route("GET", "/xapi/containers/{id}/logs")
def container_logs_zip(request: Request) -> Response:
    doc = _container(request)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for stream in ("stdout", "stderr"):
            text = service(request).log_text(doc["id"], stream)
            if text:
                zf.writestr(f"{stream}.log", text)
    return Response(200, buffer.getvalue(), "application/zip")


@routes.route("POST", "/xapi/containers/{id}/kill", "/xapi/projects/{project}/containers/{id}/kill")
def kill(request: Request) -> Response:
    doc = _container(request)
    try:
        service(request).kill(doc["id"])
    except LaunchRefused as exc:
        raise HTTPError(exc.status, str(exc)) from exc
    return Response.text(str(doc.get("container-id") or doc["id"]))


@routes.route("GET", "/xapi/workflows/{wfid}")
def workflow(request: Request) -> Response:
    request.require_user()
    doc = service(request).workflow(_int(request.params["wfid"], "workflow"))
    if doc is None:
        raise HTTPError(404, f"No workflow {request.params['wfid']}.")
    return Response.json(doc)


@routes.route("GET", "/xapi/workflows")
def workflows(request: Request) -> Response:
    request.require_user()
    ident = request.query.get("id")
    if not ident:
        raise HTTPError(400, "Query parameter id (the object's id) is required.")
    return Response.json(service(request).workflows_for(ident))


register = routes.register
