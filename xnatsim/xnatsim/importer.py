"""The import service (``POST /data/services/import``): DICOM archives into sessions.

What XNAT does and this follows (spec §10.2, wiki "Image session import service" and "How XNAT
scans DICOM to map to project/subject/session"):

* body: a zip / tar / tar.gz of DICOM files, or one DICOM file (``gradual-DICOM``), sent raw
  (any media type, ``inbody=true`` optional) or as the first file part of ``multipart/form-data``;
* handlers ``DICOM-zip``, ``SI`` and ``gradual-DICOM`` (all DICOM); others answer 400;
* destination ``dest=/archive[/projects/P[/subjects/S[/experiments/E]]]`` or ``/prearchive[/projects/P]``
  (default: the prearchive, or the archive with ``Direct-Archive=true`` or a project whose
  ``prearchive_code`` is 4/5); ``project``/``PROJECT_ID``, ``subject``/``SUBJECT_ID``,
  ``session``/``EXPT_LABEL`` override;
* routing, per study (StudyInstanceUID), each value independently: explicit parameter →
  ``Project:``/``Subject:``/``Session:`` in PatientComments (0010,4000) → the same in
  StudyComments (0032,4000) → StudyDescription (0008,1030), then AccessionNumber (0008,0050)
  when it names an existing project / PatientName (0010,0010) / PatientID (0010,0020); labels from
  headers get characters outside ``[A-Za-z0-9_-]`` replaced by ``_``;
* a session per study, a scan per SeriesNumber (type and series_description = SeriesDescription)
  with a ``DICOM`` resource, files named ``<StudyUID>-<Series>-<Instance>-<hash>.dcm``;
* ``overwrite=none`` (default) refuses an existing session (409), ``append`` merges, ``delete``
  replaces it;
* response 200 ``text/plain``: the URI of each session, CRLF-terminated when several
  (``/data/archive/projects/P/subjects/S/experiments/E`` or ``/data/prearchive/projects/P/TS/E``).

Session creation goes through the store in one transaction, so the store's listeners (the Event
Service) see the finished session once, after its scans and files are in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from xnatsim import access, archives, multipart, prearchive
from xnatsim.dicomhdr import read_routing
from xnatsim.routing import HTTPError, Request, Response, Router
from xnatsim.store import Experiment, Parent, StagedFile, Store, StoreError, md5_file
from xnatsim.synth import OTHER_SCAN, OTHER_SESSION, SCAN_TYPES, SESSION_TYPES

HANDLERS = {"dicom-zip", "si", "gradual-dicom", "dicom"}
OVERWRITE = ("none", "append", "delete")
_COMMENT = re.compile(r"\b(Project|Subject|Session)\s*:\s*([^\s;,]+)", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


# --------------------------------------------------------------------------- parsed uploads


@dataclass
class DicomFile:
    """One parsed DICOM file waiting in the staging folder."""

    path: Path
    headers: dict[str, str]


@dataclass
class Study:
    """The files of one StudyInstanceUID, with what routing decided for them."""

    uid: str
    files: list[DicomFile] = field(default_factory=list)
    project: str = ""
    subject: str = ""
    session: str = ""

    @property
    def first(self) -> dict[str, str]:
        return self.files[0].headers

    def series(self) -> dict[str, list[DicomFile]]:
        """Files by scan ID (SeriesNumber; series without a number get ``0``), in upload order."""
        out: dict[str, list[DicomFile]] = {}
        for item in self.files:
            number = item.headers.get("SeriesNumber", "").strip() or "0"
            out.setdefault(number, []).append(item)
        return out


@dataclass
class Destination:
    """Where the import goes and what the request fixed explicitly."""

    archive: bool
    project: str = ""
    subject: str = ""
    session: str = ""
    overwrite: str = "none"


def clean_label(value: str) -> str:
    """A DICOM-derived label as XNAT stores it (``Doe^John`` → ``Doe_John``)."""
    return _UNSAFE.sub("_", value.strip())


def _comment_values(text: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for m in _COMMENT.finditer(text or "")}


def route(study: Study, dest: Destination, store: Store) -> None:
    """Fill ``study.project/subject/session`` by XNAT's default rules (see module doc)."""
    headers = study.first
    patient = _comment_values(headers.get("PatientComments", ""))
    comments = _comment_values(headers.get("StudyComments", ""))
    project = dest.project or patient.get("project") or comments.get("project") or ""
    if not project:
        for key in ("StudyDescription", "AccessionNumber"):
            candidate = headers.get(key, "").strip()
            if candidate and store.get_project(candidate) is not None:
                project = candidate
                break
    found = store.get_project(project) if project else None
    study.project = found.id if found is not None else project
    study.subject = dest.subject or clean_label(
        patient.get("subject") or comments.get("subject") or headers.get("PatientName", ""))
    study.session = dest.session or clean_label(
        patient.get("session") or comments.get("session") or headers.get("PatientID", ""))


# --------------------------------------------------------------------------- reading the upload


def spool_body(request: Request, folder: Path) -> Path:
    """The uploaded archive as a file in ``folder`` (raw body or the first multipart file part)."""
    if request.content_length <= 0:
        raise HTTPError(400, "You tried to POST to this service, but didn't provide any data.")
    if request.content_type == "multipart/form-data":
        if request.query.flag("inbody"):
            raise HTTPError(406, "Multipart bodies cannot be combined with inbody=true.")
        boundary = multipart.boundary_of(request.headers.get("content-type", ""))
        parts = [p for p in multipart.read_parts(request.body, request.content_length, boundary, folder)
                 if p.size > 0]
        files = [p for p in parts if p.filename is not None] or parts
        if not files:
            raise HTTPError(400, "The multipart request holds no file.")
        return files[0].path
    target = folder / "upload.bin"
    remaining = request.content_length
    with target.open("wb") as out:
        while remaining > 0:
            chunk = request.body.read(min(remaining, 1 << 20))
            if not chunk:
                break
            out.write(chunk)
            remaining -= len(chunk)
    return target


def unpack(upload: Path, folder: Path, *, max_bytes: int) -> list[tuple[str, Path]]:
    """``(member name, path)`` of every file of a zip / tar(.gz) upload (sniffed), else the upload itself.

    Extraction is :func:`xnatsim.archives.extract` (refuses unsafe members, bounded size).
    """
    kind = ""
    if zipfile.is_zipfile(upload):
        kind = "upload.zip"
    else:
        with contextlib.suppress(tarfile.TarError, OSError):
            if tarfile.is_tarfile(upload):
                kind = "upload.tar.gz"
    if not kind:
        return [("upload.dcm", upload)]
    target = folder / "members"
    target.mkdir()
    return archives.extract(upload, kind, target, max_bytes=max_bytes)


def parse_upload(upload: Path, folder: Path, *, ignore_unparsable: bool, max_bytes: int) -> list[Study]:
    """Studies found in the upload; unparsable members → 400 unless ``ignore_unparsable``."""
    studies: dict[str, Study] = {}
    for name, path in unpack(upload, folder, max_bytes=max_bytes):
        headers = read_routing(path)
        if headers is None:
            if ignore_unparsable:
                path.unlink(missing_ok=True)
                continue
            raise HTTPError(400, f"Unable to parse {name} as DICOM (send Ignore-Unparsable=true to skip it).")
        uid = headers.get("StudyInstanceUID", "")
        studies.setdefault(uid, Study(uid)).files.append(DicomFile(path, headers))
    if not studies:
        raise HTTPError(400, "The upload contains no DICOM files.")
    return list(studies.values())


# --------------------------------------------------------------------------- archiving


def _primary_modality(modalities: set[str]) -> str:
    for code in ("PT", "MR", "CT"):
        if code in modalities:
            return code
    return ""


def _iso_date(value: str) -> str:
    value = value.strip()
    if re.fullmatch(r"\d{8}", value):
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return ""


def _iso_time(value: str) -> str:
    value = value.strip().split(".", 1)[0]
    if re.fullmatch(r"\d{6}", value):
        return f"{value[:2]}:{value[2:4]}:{value[4:]}"
    return ""


def file_name(headers: dict[str, str]) -> str:
    """XNAT's default DICOM file naming: ``<StudyUID>-<Series>-<Instance>-<hash>.dcm``."""
    digest = hashlib.sha1((headers.get("SOPClassUID", "") + headers.get("SOPInstanceUID", "")).encode())
    number = headers.get("InstanceNumber", "").strip() or "0"
    series = headers.get("SeriesNumber", "").strip() or "0"
    return f"{headers.get('StudyInstanceUID', 'study')}-{series}-{number}-{digest.hexdigest()[:8]}.dcm"


def session_fields(study: Study) -> dict[str, str | None]:
    """Session fields from the headers, mapped as XNAT's DICOM session builder does."""
    h = study.first
    values: dict[str, str | None] = {
        "date": _iso_date(h.get("StudyDate", "")) or None,
        "time": _iso_time(h.get("StudyTime", "")) or None,
        "modality": _primary_modality({f.headers.get("Modality", "") for f in study.files}) or None,
        "UID": study.uid or None,
        "dcmPatientName": h.get("PatientName") or None,
        "dcmPatientId": h.get("PatientID") or None,
        "dcmAccessionNumber": h.get("AccessionNumber") or None,
        "dcmPatientBirthDate": _iso_date(h.get("PatientBirthDate", "")) or None,
        "session_type": h.get("StudyDescription") or None,
        "acquisition_site": h.get("InstitutionName") or None,
        "scanner": h.get("StationName") or None,
        "scanner/manufacturer": h.get("Manufacturer") or None,
        "scanner/model": h.get("ManufacturerModelName") or None,
        "fieldStrength": h.get("MagneticFieldStrength") or None,
    }
    return {k: v for k, v in values.items() if v is not None}


def archive_study(store: Store, study: Study, *, user: str, overwrite: str,
                  extra: dict[str, str | None] | None = None) -> Experiment:
    """Create (or extend/replace) the session of ``study`` in the archive, in one transaction.

    ``extra`` adds session fields (the prearchive passes ``prearchivePath``).
    """
    modalities = {f.headers.get("Modality", "") for f in study.files}
    session_type = SESSION_TYPES.get(_primary_modality(modalities), OTHER_SESSION)
    with store.write():
        existing = store.get_experiment(study.session, study.project)
        if existing is not None:
            if overwrite == "none":
                raise HTTPError(409, f"Session {study.session} already exists in project {study.project} "
                                     "(use overwrite=append or overwrite=delete).")
            if overwrite == "delete":
                store.delete_experiment(existing.id)
                existing = None
        if existing is not None:
            session_type = existing.xsi_type
        exp, _ = store.put_experiment(study.project, study.subject, study.session, session_type,
                                      {**session_fields(study), **(extra or {})}, user=user)
        for scan_id, items in study.series().items():
            h = items[0].headers
            scan_type = SCAN_TYPES.get(h.get("Modality", ""), OTHER_SCAN)
            current = store.get_scan(exp.id, scan_id)
            values: dict[str, str | None] = {
                "type": h.get("SeriesDescription") or None, "series_description": h.get("SeriesDescription") or None,
                "UID": h.get("SeriesInstanceUID") or None, "modality": h.get("Modality") or None}
            scan, _ = store.put_scan(exp.id, scan_id, None if current else scan_type,
                                     {k: v for k, v in values.items() if v is not None})
            resource, _ = store.create_resource(Parent("scan", exp.project, exp.subject_id, exp.id, scan.pk),
                                                "DICOM", format="DICOM", content="RAW", exist_ok=True)
            staged = [StagedFile(file_name(item.headers), item.path, item.path.stat().st_size,
                                 md5_file(item.path), format="DICOM", content="RAW") for item in items]
            store.add_files(resource, staged, overwrite=True)
            count = len(store.list_files(resource.id))
            store.put_scan(exp.id, scan_id, None, {"frames": str(count)})
    return exp


def archive_uri(exp: Experiment) -> str:
    return f"/data/archive/projects/{exp.project}/subjects/{exp.subject_label}/experiments/{exp.label}"


# --------------------------------------------------------------------------- the service


def destination(request: Request) -> Destination:
    """Parse ``dest=``, the explicit labels and ``overwrite`` (400 on bad values)."""
    q = request.query
    overwrite = (q.get_ci("overwrite") or "none").lower()
    if overwrite not in OVERWRITE:
        raise HTTPError(400, f"Unsupported overwrite value: {overwrite} (use none, append or delete).")
    dest_text = (q.get_ci("dest") or "").strip()
    if dest_text.startswith("/data/"):
        dest_text = dest_text[5:]
    parts = [p for p in dest_text.split("/") if p]
    dest = Destination(archive=False, overwrite=overwrite)
    if parts:
        if parts[0] not in ("archive", "prearchive"):
            raise HTTPError(400, f"Invalid destination: {dest_text}")
        dest.archive = parts[0] == "archive"
        keys = {"projects": "project", "subjects": "subject", "experiments": "session"}
        for key, value in zip(parts[1::2], parts[2::2], strict=False):
            if key in keys:
                setattr(dest, keys[key], value)
    elif q.flag("Direct-Archive"):
        dest.archive = True
    dest.project = q.get_ci("PROJECT_ID") or q.get_ci("project") or dest.project
    dest.subject = q.get_ci("SUBJECT_ID") or q.get_ci("subject") or dest.subject
    dest.session = q.get_ci("EXPT_LABEL") or q.get_ci("session") or dest.session
    return dest


def auto_archives(store: Store, project: str) -> bool:
    """Whether a project sends received sessions straight to the archive (prearchive_code 4/5)."""
    found = store.get_project(project)
    return found is not None and found.fields.get("prearchive_code", "") in ("4", "5")


def import_service(request: Request) -> Response:
    user = request.require_user()
    handler = (request.query.get_ci("import-handler") or "DICOM-zip").lower()
    if handler not in HANDLERS:
        raise HTTPError(400, f"Unsupported import handler in xnatsim: {handler}")
    dest = destination(request)
    store = request.store
    folder = Path(tempfile.mkdtemp(prefix="import-", dir=store.tmp_dir))
    try:
        upload = spool_body(request, folder)
        studies = parse_upload(upload, folder, ignore_unparsable=request.query.flag("Ignore-Unparsable"),
                               max_bytes=request.app.config.max_body * 10)
        uris: list[str] = []
        for study in studies:
            route(study, dest, store)
            if not study.subject or not study.session:
                raise HTTPError(400, "Unable to identify subject and session labels for study "
                                     f"{study.uid or '(no StudyInstanceUID)'}.")
            project = store.get_project(study.project) if study.project else None
            if project is None and study.project and (dest.archive or dest.project):
                raise HTTPError(404, f"Unable to find project {study.project} for the session {study.session}.")
            if project is None and dest.archive:
                raise HTTPError(400, f"Unable to identify a project for the session {study.session}.")
            if project is not None:
                access.require(store, user, project, "edit")
            if project is not None and (dest.archive or auto_archives(store, project.id)):
                try:
                    exp = archive_study(store, study, user=user, overwrite=dest.overwrite)
                except StoreError as exc:
                    raise HTTPError(exc.status, exc.message) from exc
                uris.append(archive_uri(exp))
            else:
                uris.append(prearchive.receive(store, study, user=user, merge=handler == "gradual-dicom"))
        body = uris[0] if len(uris) == 1 else "".join(u + "\r\n" for u in uris)
        return Response.text(body)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def register(router: Router) -> None:
    router.add("POST", "/data/services/import", import_service)
