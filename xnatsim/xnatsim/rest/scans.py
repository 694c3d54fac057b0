"""Scans (xnat-rest-spec §6): listing, read, create/update (200, empty body), delete."""

from __future__ import annotations

from xnatsim import items, listings
from xnatsim import xsitypes as T
from xnatsim.fields import put_fields, xpath_type
from xnatsim.rest.common import EXPERIMENT_BASES, SCAN_BASES, read_put_body, resolve
from xnatsim.rest.projects import single
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes

_LIST_BASES = (EXPERIMENT_BASES[0] + "/scans", EXPERIMENT_BASES[2] + "/scans")


routes = Routes()


@routes.route("GET", *_LIST_BASES)
def list_scans(request: Request) -> Response:
    exp = resolve(request).experiment
    if exp is None:
        raise HTTPError(404, "Specified image session doesn't exist.")
    keys, rows = listings.scans(request, exp.id)
    return table_response(request, keys, rows)


@routes.route("GET", *SCAN_BASES)
def get(request: Request) -> Response:
    ctx = resolve(request)
    assert ctx.scan is not None
    assert ctx.experiment is not None
    return single(request, items.scan_item(request.store, ctx.scan, ctx.experiment),
                  items.scan_xml(request.store, ctx.scan, ctx.experiment))


@routes.route("PUT", *SCAN_BASES)
@routes.route("POST", *SCAN_BASES)
def put(request: Request) -> Response:
    read_put_body(request)
    ctx = resolve(request, "edit", need_scan=False)
    exp = ctx.experiment
    assert exp is not None
    if exp.xsi_type not in T.SESSION_TYPES:
        raise HTTPError(400, "Only image sessions have scans.")
    raw = request.query.get("xsiType") or xpath_type(request.query)
    xsi_type = None
    if raw is not None:
        xsi_type = T.canonical(raw, T.SCAN_TYPES)
        if xsi_type is None:
            if T.canonical(raw, T.EXPERIMENT_TYPES) is not None or raw.lower() == "xnat:projectdata":
                raise HTTPError(400, "Only Scan documents can be PUT to this address.")
            raise HTTPError(400, f"Unknown data type: {raw}")
    values, identity = put_fields(request.query, "scan")
    scan_id = request.params["scan"]
    if identity.get("ID") and identity["ID"] != scan_id:
        raise HTTPError(400, "ID cannot be modified")
    request.store.put_scan(exp.id, scan_id, xsi_type, values)
    return Response.empty()


@routes.route("DELETE", *SCAN_BASES)
def delete(request: Request) -> Response:
    ctx = resolve(request, "delete")
    assert ctx.scan is not None
    assert ctx.experiment is not None
    request.store.delete_scan(ctx.experiment.id, ctx.scan.id, remove_files=True)
    return Response.empty()


register = routes.register
