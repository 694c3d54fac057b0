"""Resources (xnat-rest-spec §7): listing (fixed columns), catalog XML, create (409 on existing), delete."""

from __future__ import annotations

from xnatsim.rest.common import RESOURCE_PARENTS, Context, check_label, read_put_body, resolve
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes
from xnatsim.store import Resource

RESOURCE_COLUMNS = ("xnat_abstractresource_id", "label", "element_name", "category", "cat_id", "cat_desc",
                    "file_count", "file_size", "tags", "content", "format")


def category(ctx: Context) -> tuple[str, str, str]:
    """``(category, cat_id, cat_desc)`` of the resources of ``ctx``'s innermost object."""
    if ctx.scan is not None:
        return "scans", ctx.scan.id, ctx.scan.fields.get("type", "")
    if ctx.experiment is not None and ctx.experiment.session_id:
        return "assessors", ctx.experiment.id, ctx.experiment.label
    return "resources", "", ""


def resource_row(resource: Resource, ctx: Context) -> tuple[str, ...]:
    cat, cat_id, cat_desc = category(ctx)
    return (str(resource.id), resource.label, resource.element_name, cat, cat_id, cat_desc,
            str(resource.file_count), str(resource.file_size), resource.tags, resource.content, resource.format)


def get_resource(request: Request, ctx: Context) -> Resource:
    resource = request.store.get_resource(ctx.parent(), request.params["resource"])
    if resource is None:
        raise HTTPError(404, "Unable to find the specified catalog.")
    return resource


routes = Routes()


@routes.route("GET", *(p + "/resources" for p in RESOURCE_PARENTS))
def list_resources(request: Request) -> Response:
    scan = request.params.get("scan", "")
    if scan.upper() == "ALL" or "," in scan:
        return list_scan_set(request, scan)
    ctx = resolve(request)
    rows = [resource_row(r, ctx) for r in request.store.list_resources(ctx.parent())]
    return table_response(request, RESOURCE_COLUMNS, rows, title="Resources")


def list_scan_set(request: Request, scan: str) -> Response:
    """``…/scans/ALL/resources`` (or ``1,2``): every scan's resources, ``cat_id`` = scan ID
    [inferred: XNATCatalogTemplate parses scan sets for resource listings as for files]."""
    ctx = resolve(request, need_scan=False)
    assert ctx.experiment is not None
    wanted = {s.strip() for s in scan.split(",")}
    scans = [s for s in request.store.list_scans(ctx.experiment.id) if scan.upper() == "ALL" or s.id in wanted]
    if not scans and scan.upper() != "ALL":
        raise HTTPError(404, "Unable to find the specified scan.")
    contexts = [Context(ctx.project, ctx.subject, ctx.experiment, s, ctx.form) for s in scans]
    rows = [resource_row(r, c) for c in contexts for r in request.store.list_resources(c.parent())]
    return table_response(request, RESOURCE_COLUMNS, rows, title="Resources")


@routes.route("GET", *(p + "/resources/{resource}" for p in RESOURCE_PARENTS))
def catalog(request: Request) -> Response:
    ctx = resolve(request)
    resource = get_resource(request, ctx)
    return Response.xml(request.store.catalog_xml(resource))


@routes.route("PUT", *(p + "/resources/{resource}" for p in RESOURCE_PARENTS))
@routes.route("POST", *(p + "/resources/{resource}" for p in RESOURCE_PARENTS))
def create(request: Request) -> Response:
    read_put_body(request)
    ctx = resolve(request, "edit")
    label = request.params["resource"]
    check_label(request, label, "resource")
    if request.store.get_resource(ctx.parent(), label) is not None:
        raise HTTPError(409, "Specified resource already exists.")
    query = request.query
    request.store.create_resource(ctx.parent(), label, format=query.get("format") or "",
                                  content=query.get("content") or "",
                                  description=query.get("description") or "", tags=query.get("tags") or "")
    return Response.empty()


@routes.route("DELETE", *(p + "/resources/{resource}" for p in RESOURCE_PARENTS))
def delete(request: Request) -> Response:
    ctx = resolve(request, "edit")
    resource = get_resource(request, ctx)
    request.store.delete_resource(resource, remove_files=True)
    return Response.empty()


@routes.route("GET", *(p + "/resources/{resource}/{rest:path}" for p in RESOURCE_PARENTS))
def below(request: Request) -> Response:
    if request.params["rest"].split("/", 1)[0] == "files":
        raise HTTPError(404, "Unable to find file.")
    raise HTTPError(400, "This resource works at the catalog level only; add /files to reach files.")


register = routes.register
