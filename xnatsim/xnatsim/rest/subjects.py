"""Subjects (xnat-rest-spec §4): listings, read, create/update (201/200 + ID), rename, delete."""

from __future__ import annotations

from xnatsim import access, items, listings
from xnatsim.fields import put_fields, xpath_type
from xnatsim.rest.common import check_label, get_project, read_put_body, resolve
from xnatsim.rest.projects import single
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes

GENDERS = ("male", "female", "other", "unknown", "M", "F", "m", "f")
HANDEDNESS = ("left", "right", "ambidextrous", "unknown")


routes = Routes()


@routes.route("GET", "/data/subjects")
def list_all(request: Request) -> Response:
    keys, rows = listings.subjects(request, None, access.visible_projects(request.store, request.user))
    return table_response(request, keys, rows)


@routes.route("GET", "/data/projects/{project}/subjects")
def list_project(request: Request) -> Response:
    project = get_project(request)
    keys, rows = listings.subjects(request, project.id, None)
    return table_response(request, keys, rows)


@routes.route("GET", "/data/projects/{project}/subjects/{subject}", "/data/subjects/{subject}")
def get(request: Request) -> Response:
    subject = resolve(request).subject
    assert subject is not None
    return single(request, items.subject_item(request.store, subject), items.subject_xml(request.store, subject))


@routes.route("PUT", "/data/projects/{project}/subjects/{subject}", "/data/subjects/{subject}")
@routes.route("POST", "/data/projects/{project}/subjects/{subject}")
def put(request: Request) -> Response:
    read_put_body(request)
    store = request.store
    user = request.require_user()
    ref = request.params["subject"]
    if "project" in request.params:
        project = get_project(request, "edit")
    else:
        found = store.get_subject(ref)
        if found is None:
            raise HTTPError(404, "Unable to find the specified subject.")
        project = get_project(request, "edit", found.project)
    xsi_type = request.query.get("xsiType") or xpath_type(request.query)
    if xsi_type is not None and xsi_type.lower() != "xnat:subjectdata":
        raise HTTPError(422, f"Submitted document is not a subject ({xsi_type}).")
    values, identity = put_fields(request.query, "subject")
    _validate(values)
    if identity.get("project") and identity["project"] != project.id:
        raise HTTPError(409, "Project must be modified through separate URI.")
    existing = store.get_subject(ref, project.id)
    label = request.query.get("label") or identity.get("label")
    if existing is None:
        check_label(request, label or ref, "subject")
    elif label is not None and label != existing.label:
        check_label(request, label, "subject")
    subject, created = store.put_subject(project.id, ref, values, user=user, label=label)
    return Response.text(subject.id, 201 if created else 200)


@routes.route("DELETE", "/data/projects/{project}/subjects/{subject}", "/data/subjects/{subject}")
def delete(request: Request) -> Response:
    subject = resolve(request, "delete").subject
    assert subject is not None
    request.store.delete_subject(subject.id, remove_files=True)
    return Response.empty()


register = routes.register


def _validate(values: dict[str, str | None]) -> None:
    gender = values.get("gender")
    if gender and gender not in GENDERS:
        raise HTTPError(400, f"Invalid value for xnat:demographicData/gender: {gender}")
    handedness = values.get("handedness")
    if handedness and handedness not in HANDEDNESS:
        raise HTTPError(400, f"Invalid value for xnat:demographicData/handedness: {handedness}")
    for key in ("yob", "age", "height", "weight"):
        value = values.get(key)
        if value:
            try:
                float(value)
            except ValueError:
                raise HTTPError(400, f"Invalid value for xnat:demographicData/{key}: {value}") from None
