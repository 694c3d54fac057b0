"""``/xapi/dicomscp``: the DICOM receivers' settings (XNAT ``DicomSCPApi``), plus test controls.

XNAT routes modelled: ``GET`` all; ``POST`` create; ``GET|PUT|DELETE /{id}``;
``GET /title/{title}/{port}``; ``GET|PUT /{id}/enabled[/{flag}]``; ``PUT /start``, ``PUT /stop``;
``GET /identifiers``. Reads need a login, changes an administrator (403 otherwise).
xnatsim only: ``GET|POST /xnatsim/dicomscp/faults`` (see :class:`xnatsim.dicomscp.Faults`) and
``POST /xnatsim/dicomscp/build`` (one session-builder pass now, for tests; body: the lines).
The receivers themselves live in :mod:`xnatsim.dicomscp`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from xnatsim.dicomscp import DicomService, SettingsError
from xnatsim.rest.common import json_object_body
from xnatsim.routing import HTTPError, Request, Response, Routes

if TYPE_CHECKING:
    from xnatsim.server import App

IDENTIFIERS = {"dicomObjectIdentifier": "Default DICOM object identifier (ClassicDicomObjectIdentifier)"}

routes = Routes()


def setup(app: App) -> None:
    """Create the DICOM service; start the receiver given by ``serve --dicom-port``."""
    config = app.config
    service = DicomService(app.store, host=config.host, idle_seconds=config.session_idle_seconds,
                           processes=config.dicom_processes)
    app.state["dicomscp"] = service
    app.on_close(service.close)
    if config.dicom_port is not None:
        service.ensure(config.dicom_ae, config.dicom_port)


def service(request: Request) -> DicomService:
    found: DicomService = request.app.state["dicomscp"]
    return found


def _admin(request: Request) -> None:
    if not request.store.is_admin(request.require_user()):
        raise HTTPError(403, "Only site administrators can change DICOM receivers.")


def _id(request: Request) -> int:
    try:
        return int(request.params["id"])
    except ValueError:
        raise HTTPError(400, f"Invalid DICOM SCP instance ID: {request.params['id']}") from None


def _one(request: Request) -> dict[str, Any]:
    found = service(request).get(_id(request))
    if found is None:
        raise HTTPError(404, f"No DICOM SCP instance with ID {request.params['id']}")
    return found


@routes.route("GET", "/xapi/dicomscp")
def list_all(request: Request) -> Response:
    request.require_user()
    return Response.json(service(request).settings)


@routes.route("GET", "/xapi/dicomscp/{id}")
def get_one(request: Request) -> Response:
    request.require_user()
    return Response.json(_one(request))


@routes.route("POST", "/xapi/dicomscp")
def create(request: Request) -> Response:
    _admin(request)
    try:
        return Response.json(service(request).create(json_object_body(request)))
    except SettingsError as exc:
        raise HTTPError(400, str(exc)) from exc
    except OSError as exc:
        raise HTTPError(500, f"Unable to start the DICOM SCP instance: {exc}") from exc


def _update(request: Request, values: dict[str, Any]) -> Response:
    _admin(request)
    try:
        updated = service(request).update(_id(request), values)
    except SettingsError as exc:
        raise HTTPError(400, str(exc)) from exc
    except OSError as exc:
        raise HTTPError(500, f"Unable to start the DICOM SCP instance: {exc}") from exc
    if updated is None:
        raise HTTPError(404, f"No DICOM SCP instance with ID {request.params['id']}")
    return Response.json(updated)


@routes.route("PUT", "/xapi/dicomscp/{id}")
def update(request: Request) -> Response:
    return _update(request, json_object_body(request))


@routes.route("DELETE", "/xapi/dicomscp/{id}")
def delete(request: Request) -> Response:
    _admin(request)
    if not service(request).delete(_id(request)):
        raise HTTPError(404, f"No DICOM SCP instance with ID {request.params['id']}")
    return Response.empty()


@routes.route("GET", "/xapi/dicomscp/title/{title}/{port}")
def by_title(request: Request) -> Response:
    request.require_user()
    for settings in service(request).settings:
        if settings["aeTitle"] == request.params["title"] and str(settings["port"]) == request.params["port"]:
            return Response.json(settings)
    raise HTTPError(404, f"No DICOM SCP instance {request.params['title']}:{request.params['port']}")


@routes.route("GET", "/xapi/dicomscp/{id}/enabled")
def get_enabled(request: Request) -> Response:
    request.require_user()
    return Response.json(bool(_one(request).get("enabled", True)))


@routes.route("PUT", "/xapi/dicomscp/{id}/enabled/{flag}")
def set_enabled(request: Request) -> Response:
    flag = request.params["flag"].lower()
    if flag not in ("true", "false"):
        raise HTTPError(400, f"Invalid flag: {flag} (true or false)")
    return _update(request, {"enabled": flag == "true"})


@routes.route("PUT", "/xapi/dicomscp/start")
def start(request: Request) -> Response:
    _admin(request)
    service(request).start_all()
    return Response.json([s["aeTitle"] + ":" + str(s["port"]) for s in service(request).settings
                          if s.get("enabled", True)])


@routes.route("PUT", "/xapi/dicomscp/stop")
def stop(request: Request) -> Response:
    _admin(request)
    service(request).stop_all()
    return Response.json([s["aeTitle"] + ":" + str(s["port"]) for s in service(request).settings])


@routes.route("GET", "/xapi/dicomscp/identifiers")
def identifiers(request: Request) -> Response:
    request.require_user()
    return Response.json(IDENTIFIERS)


@routes.route("GET", "/xnatsim/dicomscp/faults", auth="public")
def get_faults(request: Request) -> Response:
    return Response.json(asdict(service(request).faults))


@routes.route("POST", "/xnatsim/dicomscp/faults", auth="public")
def set_faults(request: Request) -> Response:
    faults = service(request).faults
    for key, value in json_object_body(request).items():
        if not hasattr(faults, key) or not isinstance(value, int) or value < 0:
            raise HTTPError(400, f"Unknown or invalid fault: {key}={value!r}")
        setattr(faults, key, value)
    return Response.json(asdict(faults))


@routes.route("POST", "/xnatsim/dicomscp/build", auth="public")
def build(request: Request) -> Response:
    """One builder pass; ``idle=0`` (default) builds every receiving session now."""
    svc = service(request)
    try:
        idle = float(request.query.get("idle") or 0)
    except ValueError:
        raise HTTPError(400, "idle must be a number of seconds") from None
    from xnatsim import prearcstore

    return Response.json(prearcstore.build_idle(svc.receiving, idle))


register = routes.register
