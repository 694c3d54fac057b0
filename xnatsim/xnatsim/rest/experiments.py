"""Experiments and image assessors (xnat-rest-spec §5): listings with columns/filters, read,
create/update (201/200 + ID; an unknown subject label is created in the same call), delete."""

from __future__ import annotations

import datetime
import re

from xnatsim import access, items, listings
from xnatsim import xsitypes as T
from xnatsim.fields import put_fields, xpath_type
from xnatsim.rest.common import (
    EXPERIMENT_BASES,
    PROJECT,
    check_label,
    get_project,
    read_put_body,
    resolve,
)
from xnatsim.rest.projects import single
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes
from xnatsim.store import Experiment

_DATE_US = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_DATE_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")


def normalize_values(values: dict[str, str | None]) -> None:
    """Dates to ``YYYY-MM-DD`` (XNAT accepts ``MM/DD/YYYY`` too); 400 for what XNAT would refuse."""
    for key, value in list(values.items()):
        if value is None or value == "":
            continue
        if key == "date" or key.endswith("/date"):
            found = _DATE_US.match(value)
            if found:
                values[key] = f"{found.group(3)}-{int(found.group(1)):02d}-{int(found.group(2)):02d}"
            elif not _DATE_ISO.match(value):
                raise HTTPError(400, f"Invalid date for {key}: {value} (use YYYY-MM-DD or MM/DD/YYYY)")
            try:  # a real calendar day, not just the shape (2020-13-45)
                datetime.date.fromisoformat(values[key] or "")
            except ValueError as exc:
                raise HTTPError(400, f"Invalid date for {key}: {value} (use YYYY-MM-DD or MM/DD/YYYY)") from exc
        elif key == "time" and not _valid_time(value):
            raise HTTPError(400, f"Invalid time: {value} (use HH:MM:SS)")


def _valid_time(value: str) -> bool:
    if not _TIME.match(value):
        return False
    hours, minutes, *rest = value.split(":")
    return int(hours) < 24 and int(minutes) < 60 and (not rest or float(rest[0]) < 61)


def _xsi_type(request: Request, allowed: frozenset[str]) -> str | None:
    raw = request.query.get("xsiType") or xpath_type(request.query)
    if raw is None:
        return None
    canonical = T.canonical(raw, allowed)
    if canonical is None:
        if T.canonical(raw, T.EXPERIMENT_TYPES | T.SCAN_TYPES) is not None:
            raise HTTPError(400, f"Data type {raw} cannot be stored at this address.")
        raise HTTPError(400, f"Unknown data type: {raw}")
    return canonical


def _assessor_rows(request: Request, session: Experiment) -> list[tuple[str, ...]]:
    return [(a.id, a.label, a.xsi_type, a.project, a.insert_date, a.fields.get("date", ""),
             f"/data/experiments/{session.id}/assessors/{a.id}")
            for a in request.store.list_experiments(session_id=session.id)]


routes = Routes()


@routes.route("GET", "/data/experiments")
def list_site(request: Request) -> Response:
    keys, rows = listings.experiments(request, visible=access.visible_projects(request.store, request.user))
    return table_response(request, keys, rows, title="Matching experiments")


@routes.route("GET", PROJECT + "/experiments")
def list_project(request: Request) -> Response:
    project = get_project(request)
    keys, rows = listings.experiments(request, project=project.id)
    return table_response(request, keys, rows)


@routes.route("GET", PROJECT + "/subjects/{subject}/experiments")
def list_subject(request: Request) -> Response:
    subject = resolve(request).subject
    assert subject is not None
    keys, rows = listings.experiments(request, project=subject.project, subject_id=subject.id)
    return table_response(request, keys, rows)


@routes.route("GET", *EXPERIMENT_BASES, *(b + "/assessors/{assessor}" for b in EXPERIMENT_BASES))
def get(request: Request) -> Response:
    exp = resolve(request).experiment
    assert exp is not None
    return single(request, items.experiment_item(request.store, exp), items.experiment_xml(request.store, exp))


@routes.route("GET", *(b + "/status" for b in EXPERIMENT_BASES))
def status(request: Request) -> Response:
    exp = resolve(request).experiment
    assert exp is not None
    return Response.text(exp.fields.get("status", "active"))


@routes.route("PUT", *EXPERIMENT_BASES)
@routes.route("POST", *EXPERIMENT_BASES)
def put(request: Request) -> Response:
    read_put_body(request)
    store = request.store
    user = request.require_user()
    params = request.params
    xsi_type = _xsi_type(request, T.SUBJECT_ASSESSOR_TYPES)
    values, identity = put_fields(request.query, "experiment")
    normalize_values(values)
    for flag, status in (("activate", "active"), ("quarantine", "quarantine")):
        if request.query.flag(flag):
            values["status"] = status
    label = request.query.get("label") or identity.get("label")
    if "project" not in params:
        existing = store.get_experiment(params["experiment"])
        if existing is None:
            raise HTTPError(404, "Unable to find the specified experiment.")
        project = get_project(request, "edit", existing.project)
    else:
        project = get_project(request, "edit")
        existing = store.get_experiment(params["experiment"], project.id)
    if identity.get("project") and identity["project"] != project.id:
        raise HTTPError(409, "Project must be modified through separate URI.")
    if existing is not None and identity.get("ID") and identity["ID"] != existing.id:
        raise HTTPError(400, "ID cannot be modified")
    subject_ref = params.get("subject") or request.query.get("subject_ID") or identity.get("subject_ID")
    if existing is None:
        if xsi_type is None:
            raise HTTPError(417, "Need PUT Contents")
        check_label(request, label or params["experiment"], "experiment")
        if not subject_ref:
            raise HTTPError(422, "Submitted experiment record must include the subject.")
        if store.get_subject(subject_ref, project.id) is None:
            check_label(request, subject_ref, "subject")
    else:
        if existing.session_id is not None:
            raise HTTPError(404, "Unable to find the specified experiment.")
        if label is not None and label != existing.label:
            check_label(request, label, "experiment")
        if "subject" not in params:
            subject_ref = request.query.get("subject_ID") or identity.get("subject_ID")
    exp, created = store.put_experiment(project.id, subject_ref, existing.id if existing else params["experiment"],
                                        xsi_type, values, user=user, label=label)
    return Response.text(exp.id, 201 if created else 200)


@routes.route("DELETE", *EXPERIMENT_BASES, *(b + "/assessors/{assessor}" for b in EXPERIMENT_BASES))
def delete(request: Request) -> Response:
    exp = resolve(request, "delete").experiment
    assert exp is not None
    request.store.delete_experiment(exp.id, remove_files=True)
    return Response.empty()


@routes.route("GET", *(b + "/reconstructions" for b in EXPERIMENT_BASES))
def list_reconstructions(request: Request) -> Response:
    # reconstructions are not modelled: every session has none (XNAT answers an empty table)
    assert resolve(request).experiment is not None
    return table_response(request, ("xnat_reconstructedimagedata_id", "ID", "type", "baseScanType", "URI"), [])


@routes.route("GET", *(b + "/assessors" for b in EXPERIMENT_BASES))
def list_assessors(request: Request) -> Response:
    session = resolve(request).experiment
    assert session is not None
    return table_response(request, ("ID", "label", "xsiType", "project", "insert_date", "date", "URI"),
                          _assessor_rows(request, session))


@routes.route("PUT", *(b + "/assessors/{assessor}" for b in EXPERIMENT_BASES))
@routes.route("POST", *(b + "/assessors/{assessor}" for b in EXPERIMENT_BASES))
def put_assessor(request: Request) -> Response:
    read_put_body(request)
    store = request.store
    user = request.require_user()
    assessor_ref = request.params.pop("assessor")
    ctx = resolve(request, "edit")
    session = ctx.experiment
    assert session is not None
    if session.xsi_type not in T.SESSION_TYPES:
        raise HTTPError(400, "Assessors can only be added to image sessions.")
    xsi_type = _xsi_type(request, T.IMAGE_ASSESSOR_TYPES)
    values, identity = put_fields(request.query, "experiment")
    normalize_values(values)
    label = request.query.get("label") or identity.get("label")
    existing = store.get_experiment(assessor_ref, session.project)
    if existing is not None and existing.session_id != session.id:
        raise HTTPError(409, "Specified label is already in use.")
    if existing is None:
        if xsi_type is None:
            raise HTTPError(417, "Need PUT Contents")
        check_label(request, label or assessor_ref, "experiment")
    exp, created = store.put_experiment(session.project, None, existing.id if existing else assessor_ref,
                                        xsi_type, values, user=user, label=label, session_id=session.id)
    return Response.text(exp.id, 201 if created else 200)


register = routes.register
