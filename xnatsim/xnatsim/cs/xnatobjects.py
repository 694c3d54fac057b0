"""XNAT objects in the Container Service's JSON form (spec A.13), read from the store.

Used for matchers, ``derived-from-xnat-object-property``, mounts (``directory`` is the archive
path as xnatsim sees it) and the Event Service payload (sessions add ``modalities-in-study``).
"""

from __future__ import annotations

from typing import Any

from xnatsim.store import Experiment, Parent, Project, Resource, Scan, Store, Subject

__all__ = ["StoreLoader", "parse_uri"]

Doc = dict[str, Any]

_MODALITY_BY_XSI = {"mr": "MR", "ct": "CT", "pet": "PT", "pt": "PT", "us": "US", "xa": "XA", "cr": "CR",
                    "dx": "DX", "mg": "MG", "nm": "NM", "ot": "OT", "rt": "RT", "sr": "SR"}


def _drop_none(doc: Doc) -> Doc:
    """Null properties are omitted (a matcher on them never matches)."""
    return {k: v for k, v in doc.items() if v is not None and v != ""}


def _modality_of(xsi_type: str) -> str | None:
    name = xsi_type.split(":", 1)[-1].lower()
    for suffix in ("sessiondata", "scandata"):
        if name.endswith(suffix):
            return _MODALITY_BY_XSI.get(name[: -len(suffix)])
    return None


def parse_uri(uri: str) -> list[str]:
    """The path segments of an archive URI without ``/archive`` (``/data`` and ``/REST`` too)."""
    parts = [p for p in uri.split("?", 1)[0].split("/") if p]
    if parts and parts[0] in ("archive", "data", "REST"):
        parts = parts[1:]
    if parts and parts[0] == "archive":
        parts = parts[1:]
    return parts


class StoreLoader:
    """Implements :class:`xnatsim.cs.resolution.Loader` over a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ------------------------------------------------------------------------------ lookups
    def by_id(self, xnat_type: str, ident: str, *, children: bool = True) -> Doc | None:
        store = self.store
        if xnat_type == "Project":
            project = store.get_project(ident)
            return self.project(project, children) if project else None
        if xnat_type == "Subject":
            subject = store.get_subject(ident)
            return self.subject(subject, children) if subject else None
        if xnat_type in ("Session", "SubjectAssessor", "Assessor"):
            exp = store.get_experiment(ident)
            return self.experiment(exp, children) if exp else None
        if xnat_type == "Resource" and ident.isdigit():
            resource = store.get_resource_by_id(int(ident))
            return self.resource(resource, children) if resource else None
        return None

    def load(self, uri: str, *, children: bool = True) -> Doc | None:
        """The object at an archive URI, or None (also when the URI is malformed)."""
        parts = parse_uri(uri)
        store = self.store
        obj: Doc | None = None
        parent: Parent | None = None
        i = 0
        if len(parts) >= 2 and parts[0] == "projects":
            project = store.get_project(parts[1])
            if project is None:
                return None
            obj, parent, i = None, Parent("project", project.id), 2
            if len(parts) == 2:
                return self.project(project, children)
            if parts[2] == "subjects" and len(parts) >= 4:
                subject = store.get_subject(parts[3], project.id)
                if subject is None:
                    return None
                if len(parts) == 4:
                    return self.subject(subject, children)
                parent, i = Parent("subject", project.id, subject_id=subject.id), 4
                if parts[4] == "experiments" and len(parts) >= 6:
                    parts = ["experiments", self._exp_id(parts[5], project.id), *parts[6:]]
                    i = 0
        elif len(parts) >= 2 and parts[0] == "subjects":
            subject = store.get_subject(parts[1])
            if subject is None:
                return None
            if len(parts) == 2:
                return self.subject(subject, children)
            parent, i = Parent("subject", subject.project, subject_id=subject.id), 2
        if i == 0 and len(parts) >= 2 and parts[0] == "experiments":
            exp = store.get_experiment(parts[1])
            if exp is None:
                return None
            if len(parts) == 2:
                return self.experiment(exp, children)
            parent, i = Parent("experiment", exp.project, experiment_id=exp.id), 2
            if parts[2] == "scans" and len(parts) >= 4:
                scan = store.get_scan(exp.id, parts[3])
                if scan is None:
                    return None
                if len(parts) == 4:
                    return self.scan(scan, exp, children)
                parent, i = Parent("scan", exp.project, experiment_id=exp.id, scan_pk=scan.pk), 4
            elif parts[2] == "assessors" and len(parts) >= 4:
                assessor = store.get_experiment(parts[3], exp.project)
                if assessor is None or assessor.session_id != exp.id:
                    return None
                if len(parts) == 4:
                    return self.experiment(assessor, children)
                parent, i = Parent("experiment", exp.project, experiment_id=assessor.id), 4
        if parent is None or len(parts) < i + 2 or parts[i] != "resources":
            return obj
        resource = store.get_resource(parent, parts[i + 1])
        if resource is None:
            return None
        if len(parts) == i + 2:
            return self.resource(resource, children)
        if parts[i + 2] != "files" or len(parts) < i + 4:
            return None
        path = "/".join(parts[i + 3 :])
        return next((f for f in self.resource(resource, True)["files"] if f["path-in-resource"] == path), None)

    def _exp_id(self, ref: str, project: str) -> str:
        exp = self.store.get_experiment(ref, project)
        return exp.id if exp else ref

    # -------------------------------------------------------------------------------- JSON
    def project(self, project: Project, children: bool = True) -> Doc:
        uri = f"/archive/projects/{project.id}"
        doc: Doc = {
            "type": "Project", "id": project.id, "label": project.name or project.id,
            "xsiType": "xnat:projectData", "uri": uri,
            "directory": str(self.store.archive_dir / project.id / "arc001"),
            "title": project.name, "running-title": project.secondary_id,
            "description": project.description, "keywords": project.keywords,
            "accessibility": project.accessibility, "aliases": [],
        }
        if children:
            doc["resources"] = [self.resource(r) for r in self.store.list_resources(Parent("project", project.id))]
            doc["subjects"] = [self.subject(s) for s in self.store.list_subjects(project.id)]
            doc["project-assets"] = []
        return _drop_none(doc)

    def subject(self, subject: Subject, children: bool = True) -> Doc:
        f = subject.fields
        doc: Doc = {
            "type": "Subject", "id": subject.id, "label": subject.label, "xsiType": "xnat:subjectData",
            "uri": f"/archive/subjects/{subject.id}", "project-id": subject.project,
            "group": f.get("group"), "source": f.get("src"), "initials": f.get("initials"),
        }
        if children:
            exps = self.store.list_experiments(subject_id=subject.id)
            doc["sessions"] = [self.experiment(e) for e in exps if e.xsi_type.lower().endswith("sessiondata")]
            doc["subject-assessors"] = [
                self.experiment(e) for e in exps if not e.xsi_type.lower().endswith("sessiondata")
            ]
            doc["resources"] = [
                self.resource(r)
                for r in self.store.list_resources(Parent("subject", subject.project, subject_id=subject.id))
            ]
        return _drop_none(doc)

    def experiment(self, exp: Experiment, children: bool = True) -> Doc:
        """A Session, SubjectAssessor or (with a session) Assessor."""
        f = exp.fields
        session = exp.xsi_type.lower().endswith("sessiondata")
        kind = "Assessor" if exp.session_id else "Session" if session else "SubjectAssessor"
        uri = f"/archive/experiments/{exp.id}"
        if exp.session_id:
            uri = f"/archive/experiments/{exp.session_id}/assessors/{exp.id}"
        directory = self.store.session_dir(exp)
        doc: Doc = {
            "type": kind, "id": exp.id, "label": exp.label, "xsiType": exp.xsi_type, "uri": uri,
            "directory": str(directory) if (session or exp.session_id) else None,
            "project-id": exp.project, "subject-id": exp.subject_id, "session-id": exp.session_id,
            "datatype-string": exp.xsi_type, "visit-id": f.get("visit_id"), "date": f.get("date"),
        }
        parent = Parent("experiment", exp.project, experiment_id=exp.id)
        if children:
            doc["resources"] = [self.resource(r) for r in self.store.list_resources(parent)]
            if session:
                scans = self.store.list_scans(exp.id)
                doc["scans"] = [self.scan(s, exp) for s in scans]
                doc["assessors"] = [self.experiment(a) for a in self.store.list_experiments(session_id=exp.id)]
                modalities = [s.get("modality") for s in doc["scans"] if s.get("modality")]
                own = f.get("modality") or _modality_of(exp.xsi_type)
                found = list(dict.fromkeys([*([own] if own else []), *modalities]))
                doc["modalities-in-study"] = found
                doc["modality"] = own
        return _drop_none(doc)

    def scan(self, scan: Scan, exp: Experiment, children: bool = True) -> Doc:
        f = scan.fields
        doc: Doc = {
            "type": "Scan", "id": scan.id, "label": scan.id, "xsiType": scan.xsi_type,
            "uri": f"/archive/experiments/{exp.id}/scans/{scan.id}",
            "directory": str(self.store.session_dir(exp) / "SCANS" / scan.id),
            "integer-id": scan.pk, "scan-type": f.get("type"), "project-id": exp.project,
            "session-id": exp.id, "frames": f.get("frames"), "note": f.get("note"),
            "modality": f.get("modality") or _modality_of(scan.xsi_type), "quality": f.get("quality"),
            "scanner": f.get("scanner"), "scanner-manufacturer": f.get("scanner/manufacturer"),
            "scanner-model": f.get("scanner/model"), "series-description": f.get("series_description"),
            "start-time": f.get("startTime"), "uid": f.get("UID"), "datatype-string": scan.xsi_type,
        }
        if children:
            parent = Parent("scan", exp.project, experiment_id=exp.id, scan_pk=scan.pk)
            doc["resources"] = [self.resource(r, parent_uri=doc["uri"]) for r in self.store.list_resources(parent)]
        return _drop_none(doc)

    def _parent_uri(self, parent: Parent) -> str:
        if parent.kind == "project":
            return f"/archive/projects/{parent.project}"
        if parent.kind == "subject":
            return f"/archive/subjects/{parent.subject_id}"
        exp = self.store.get_experiment(parent.experiment_id or "")
        base = f"/archive/experiments/{parent.experiment_id}"
        if exp is not None and exp.session_id:
            base = f"/archive/experiments/{exp.session_id}/assessors/{exp.id}"
        if parent.kind == "scan":
            scan = self.store.get_scan_by_pk(parent.scan_pk or -1)
            return f"{base}/scans/{scan.id if scan else parent.scan_pk}"
        return base

    def resource(self, resource: Resource, children: bool = True, parent_uri: str | None = None) -> Doc:
        puri = parent_uri or self._parent_uri(resource.parent)
        uri = f"{puri}/resources/{resource.label}"
        directory = self.store.resource_dir(resource)
        doc: Doc = {
            "type": "Resource", "id": str(resource.id), "label": resource.label,
            "xsiType": resource.element_name, "uri": uri, "directory": str(directory),
            "integer-id": resource.id, "datatype-string": resource.element_name, "parent-uri": puri,
            "format": resource.format, "content": resource.content,
        }
        if children:
            doc["files"] = [
                _drop_none({
                    "type": "File", "id": f.path, "label": f.name, "name": f.name,
                    "uri": f"{uri}/files/{f.path}", "path": str(directory / f.path),
                    "path-in-resource": f.path, "tags": [t for t in f.tags.split(",") if t],
                    "format": f.format, "content": f.content, "size": f.size, "checksum": f.md5,
                })
                for f in self.store.list_files(resource.id)
            ]
        return _drop_none(doc)
