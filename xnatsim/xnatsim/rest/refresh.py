"""``POST /data/services/refresh/catalog``: sync a resource's catalog with its folder on disk.

``resource=`` takes one or more comma-separated resource URIs (``/archive/experiments/E/resources/R``,
``/data/projects/P/resources/R`` …); ``options=`` any of ``append``, ``delete``, ``checksum``,
``populateStats`` (stats are always refreshed).
"""

from __future__ import annotations

from dataclasses import replace

from xnatsim.rest.common import resolve
from xnatsim.rest.resources import get_resource
from xnatsim.routing import HTTPError, Request, Response, Routes

OPTIONS = frozenset({"append", "delete", "checksum", "populatestats"})


def _resource_request(request: Request, uri: str) -> Request:
    path = uri.strip()
    if path.startswith("/data/"):
        path = path[len("/data"):]
    if path.startswith("/archive/"):
        path = path[len("/archive"):]
    matched = request.app.router.match("GET", "/data" + path)
    if not matched or not matched[0].pattern.endswith("/resources/{resource}"):
        raise HTTPError(400, f"Not a resource URI: {uri}")
    route, params = matched
    return replace(request, params=params, route=route.name)


routes = Routes()


@routes.route("POST", "/data/services/refresh/catalog")
def refresh(request: Request) -> Response:
    uris = [u for u in (request.query.get("resource") or "").split(",") if u.strip()]
    if not uris:
        raise HTTPError(400, "The resource parameter is required.")
    options = {o.strip().lower() for o in (request.query.get("options") or "").split(",") if o.strip()}
    if options - OPTIONS:
        raise HTTPError(400, f"Unknown refresh options: {', '.join(sorted(options - OPTIONS))}")
    for uri in uris:
        sub = _resource_request(request, uri)
        resource = get_resource(sub, resolve(sub, "edit"))
        request.store.refresh_catalog(resource, append="append" in options, delete="delete" in options,
                                      checksum="checksum" in options)
    return Response.empty()


register = routes.register
