"""The simulator's own control API: ``/xnatsim/stats``, ``/xnatsim/stats/reset``, ``/xnatsim/faults``.

Public (no login) and never counted or faulted, so a test can read how many requests a command
made and switch faults on and off on a running server.
"""

from __future__ import annotations

from xnatsim.rest.common import json_object_body
from xnatsim.routing import HTTPError, Request, Response, Routes

routes = Routes()


@routes.route("GET", "/xnatsim/stats", auth="public")
def stats(request: Request) -> Response:
    return Response.json(request.app.controls.stats(with_log=request.query.flag("log")))


@routes.route("POST", "/xnatsim/stats/reset", auth="public")
def reset(request: Request) -> Response:
    request.app.controls.reset_stats()
    return Response.json(request.app.controls.stats())


@routes.route("GET", "/xnatsim/faults", auth="public")
def get_faults(request: Request) -> Response:
    return Response.json(request.app.controls.faults())


@routes.route("POST", "/xnatsim/faults", auth="public")
@routes.route("PUT", "/xnatsim/faults", auth="public")
def set_faults(request: Request) -> Response:
    values = json_object_body(request)
    try:
        return Response.json(request.app.controls.set_faults(values))
    except ValueError as exc:
        raise HTTPError(400, str(exc)) from exc


@routes.route("GET", "/xnatsim/health", auth="public")
def health(request: Request) -> Response:
    return Response.json({"status": "ok", "url": request.app.url})


register = routes.register
