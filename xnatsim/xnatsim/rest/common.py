"""Shared by the REST modules: URL families, resolving path parameters to objects, access checks, bodies."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from xnatsim import access
from xnatsim.access import Action
from xnatsim.routing import HTTPError, Query, Request
from xnatsim.store import MAX_NAME_BYTES, Experiment, Parent, Project, Scan, Subject

PROJECT = "/data/projects/{project}"
SUBJECT_BASES = (PROJECT + "/subjects/{subject}", "/data/subjects/{subject}")
EXPERIMENT_BASES = (
    PROJECT + "/subjects/{subject}/experiments/{experiment}",
    PROJECT + "/experiments/{experiment}",
    "/data/experiments/{experiment}",
)
#: scans hang under the project+subject form and the site form only (no /projects/P/experiments/E/scans)
SCAN_BASES = (EXPERIMENT_BASES[0] + "/scans/{scan}", EXPERIMENT_BASES[2] + "/scans/{scan}")
ASSESSOR_BASES = tuple(base + "/assessors/{assessor}" for base in EXPERIMENT_BASES)
#: every parent a resource can hang on
RESOURCE_PARENTS: tuple[str, ...] = (PROJECT, *SUBJECT_BASES, *EXPERIMENT_BASES, *SCAN_BASES, *ASSESSOR_BASES,
                                     *(b + "/out" for b in ASSESSOR_BASES), *(b + "/in" for b in ASSESSOR_BASES))

_STRICT_LABEL = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class Context:
    """The objects named by a request's path parameters."""

    project: Project | None = None
    subject: Subject | None = None
    experiment: Experiment | None = None
    scan: Scan | None = None
    #: the path form used, for URIs in answers: "subject" (/projects/P/subjects/S/…),
    #: "project" (/projects/P/experiments/E) or "site" (/experiments/E)
    form: str = "site"

    def parent(self) -> Parent:
        """The resource parent these objects denote (the innermost one)."""
        if self.scan is not None and self.experiment is not None:
            return Parent("scan", self.experiment.project, self.experiment.subject_id, self.experiment.id,
                          self.scan.pk)
        if self.experiment is not None:
            return Parent("experiment", self.experiment.project, self.experiment.subject_id, self.experiment.id)
        if self.subject is not None:
            return Parent("subject", self.subject.project, self.subject.id)
        assert self.project is not None
        return Parent("project", self.project.id)

    def base_uri(self) -> str:
        """``/data/…`` URI of the innermost object in the form the request used."""
        if self.experiment is not None:
            exp = self.experiment
            if self.form == "subject":
                base = f"/data/projects/{exp.project}/subjects/{exp.subject_id}/experiments/{exp.id}"
            elif self.form == "project":
                base = f"/data/projects/{exp.project}/experiments/{exp.id}"
            else:
                base = f"/data/experiments/{exp.id}"
            if self.scan is not None:
                base += f"/scans/{self.scan.id}"
            return base
        if self.subject is not None:
            return f"/data/projects/{self.subject.project}/subjects/{self.subject.id}"
        assert self.project is not None
        return f"/data/projects/{self.project.id}"


def get_project(request: Request, action: Action = "read", ref: str | None = None) -> Project:
    """The project in the path (ID, secondary ID or alias), checked for ``action``."""
    store = request.store
    project = store.get_project(ref or request.params["project"])
    if project is None:
        raise HTTPError(404, "Unable to find the specified experiment." if ref is None else
                        f"Unable to find project {ref}.")
    access.require(store, request.user, project, action)
    return project


def resolve(request: Request, action: Action = "read", *, need_scan: bool = True) -> Context:
    """Resolve ``project``/``subject``/``experiment``/``assessor``/``scan`` path parameters."""
    store = request.store
    params = request.params
    ctx = Context()
    if "project" in params:
        ctx.project = get_project(request, "read")
        ctx.form = "project"
    if "subject" in params:
        subject = store.get_subject(params["subject"], ctx.project.id if ctx.project else None)
        if subject is None:
            raise HTTPError(404, "Unable to find the specified subject.")
        ctx.subject = subject
        ctx.form = "subject"
    if "experiment" in params:
        ref = params["experiment"]
        exp = store.get_experiment(ref, ctx.project.id if ctx.project else None)
        if exp is None or (ctx.subject is not None and exp.subject_id != ctx.subject.id):
            raise HTTPError(404, "Unable to find the specified experiment.")
        ctx.experiment = exp
        if "assessor" in params:
            assessor = store.get_experiment(params["assessor"], exp.project)
            if assessor is None or assessor.session_id != exp.id:
                raise HTTPError(404, "Unable to find the specified experiment.")
            ctx.experiment = assessor
    if ctx.experiment is not None and ctx.project is None:
        ctx.project = store.get_project(ctx.experiment.project)
    if ctx.subject is not None and ctx.project is None:
        ctx.project = store.get_project(ctx.subject.project)
    if ctx.project is None:
        raise HTTPError(404, "Unable to find the specified experiment.")
    access.require(store, request.user, ctx.project, action)
    if "scan" in params and need_scan:
        assert ctx.experiment is not None
        scan = store.get_scan(ctx.experiment.id, params["scan"])
        if scan is None:
            raise HTTPError(404, "Unable to find the specified scan.")
        ctx.scan = scan
    return ctx


def check_label(request: Request, label: str, what: str) -> None:
    """Refuse labels that would escape a folder (400) and, in strict mode, odd characters (417)."""
    if not label or label in (".", "..") or any(c in label for c in "/\\\x00") or label != label.strip():
        raise HTTPError(400, f"Invalid {what} label: {label!r}.")
    if len(label.encode("utf-8")) > MAX_NAME_BYTES:
        raise HTTPError(400, f"Invalid {what} label: longer than {MAX_NAME_BYTES} bytes.")
    if request.app.config.strict_labels and not _STRICT_LABEL.match(label):
        raise HTTPError(417, f"Invalid character in {what} label.")


def id_response(value: str, created: bool) -> tuple[int, str]:
    return (201 if created else 200), value


#: the largest form-encoded body an object PUT reads
MAX_FORM_BODY = 1024**2
#: the largest JSON body of a settings or control request
MAX_JSON_OBJECT_BODY = 1 << 16


def json_object_body(request: Request) -> dict[str, Any]:
    """The JSON object a settings or control request sends (an empty body is ``{}``); 400 otherwise."""
    try:
        values = json.loads(request.read_body(MAX_JSON_OBJECT_BODY) or b"{}")
    except ValueError as exc:
        raise HTTPError(400, f"Body must be a JSON object: {exc}") from exc
    if not isinstance(values, dict):
        raise HTTPError(400, "Body must be a JSON object.")
    return values


def read_put_body(request: Request) -> None:
    """The body of an object PUT/POST: form fields join the query parameters (later ones win);
    any other body (an XML document) is refused with 400 before anything is written, because
    xnatsim sets fields from parameters only and would otherwise drop the document's fields silently.
    """
    if request.content_length <= 0:
        return
    if request.content_type == "application/x-www-form-urlencoded":
        form = request.read_body(MAX_FORM_BODY).decode("utf-8", "replace")
        request.query = Query("&".join(part for part in (request.query.raw, form) if part))
        return
    raise HTTPError(400, "xnatsim does not read XML documents in PUT/POST bodies: send the fields as query "
                         "parameters (xsiType=…, label=…, xpaths); nothing was stored.")
