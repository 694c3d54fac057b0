"""The import service (``POST /data/services/import``): DICOM archives into sessions, over HTTP.

What XNAT does and this follows (spec §10.2, ``../shared/reference/dicom-upload.md`` §4):

* body: a zip / tar / tar.gz of DICOM files, or one DICOM file (``gradual-DICOM``), sent raw
  (any media type, ``inbody=true`` optional) or as the only file part of ``multipart/form-data``
  (more than one → 400 "Importer is limited to one uploaded resource at a time.");
* handlers ``DICOM-zip`` (default), ``SI`` and ``gradual-DICOM``; ``XAR``, ``inbox`` and
  ``automation`` exist on XNAT but not here (400); any other name → 404 "Unknown importer
  implementation specified: X";
* destination ``dest=/archive[/projects/P[/subjects/S[/experiments/E]]]`` or ``/prearchive[/projects/P]``
  (default: the prearchive, or the archive with ``Direct-Archive=true`` or a project whose
  ``prearchive_code`` is 4/5); labels: ``DICOM-zip``/``SI`` take ``project``/``subject``/``session``
  or ``PROJECT_ID``/``SUBJECT_ID``/``EXPT_LABEL``, ``gradual-DICOM`` only the upper-case names (the
  lower-case ones are ignored there, as on XNAT);
* non-DICOM members of an archive are skipped (as tests against a real XNAT show); an upload with
  no DICOM at all → 400 "Upload did not include parsable files for session generation.";
* routing, grouping and archiving: :mod:`xnatsim.intake` (shared with the C-STORE receiver);
* ``overwrite`` as ``Importer.parseOverrideValue`` reads it: absent → an existing session is a
  409 "Session already exists, retry with overwrite enabled"; ``append`` (and any unknown value,
  e.g. ``true``) merges with the conflict checks; ``override`` merges without them; ``delete``
  replaces the session; an auto-archiving project merges (``append``) when none is given;
* response 200 ``text/plain``: the URI of each session, CRLF-terminated when several
  (``/data/archive/projects/P/subjects/S/experiments/E`` or ``/data/prearchive/projects/P/TS/E``).
"""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from xnatsim import access, archives, intake, multipart, prearcstore
from xnatsim.dicomhdr import read_routing
from xnatsim.intake import DicomFile, IntakeError, Labels, Study
from xnatsim.routing import HTTPError, Request, Response, Routes

HANDLERS = {"dicom-zip", "si", "gradual-dicom", "dicom"}
#: XNAT handlers xnatsim does not model (400 rather than XNAT's 404 for unknown names).
UNSUPPORTED = {"xar", "inbox", "automation"}

routes = Routes()


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
            raise HTTPError(400, "Unable to identify upload format.")
        if len(files) > 1:
            raise HTTPError(400, "Importer is limited to one uploaded resource at a time.")
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


def unpack(upload: Path, folder: Path, *, max_bytes: int) -> list[tuple[Path, str]]:
    """``(path, md5)`` of every file of a zip / tar(.gz) upload (sniffed), else of the upload itself.

    Extraction is :func:`xnatsim.archives.extract_hashed` (refuses unsafe members, bounded size);
    it hashes each member as it writes it, so archiving does not read the file again ("" = the
    upload itself, hashed when archived).
    """
    kind = ""
    if zipfile.is_zipfile(upload):
        kind = "upload.zip"
    else:
        with contextlib.suppress(tarfile.TarError, OSError):
            if tarfile.is_tarfile(upload):
                kind = "upload.tar.gz"
    if not kind:
        return [(upload, "")]
    target = folder / "members"
    target.mkdir()
    return [(path, md5) for _, path, _, md5 in archives.extract_hashed(upload, kind, target, max_bytes=max_bytes)]


def parse_upload(upload: Path, folder: Path, *, max_bytes: int) -> list[Study]:
    """Studies found in the upload (non-DICOM members skipped); none → 400."""
    files: list[DicomFile] = []
    for path, md5 in unpack(upload, folder, max_bytes=max_bytes):
        headers = read_routing(path)
        if headers is None:
            path.unlink(missing_ok=True)
            continue
        files.append(DicomFile(path, headers, md5))
    if not files:
        raise HTTPError(400, "Upload did not include parsable files for session generation.")
    return intake.group(files)


@dataclass
class Destination:
    """Where the import goes and what the request fixed explicitly."""

    archive: bool
    labels: Labels = field(default_factory=Labels)
    overwrite: str = "none"


def destination(request: Request, handler: str) -> Destination:
    """Parse ``dest=``, the explicit labels and ``overwrite``."""
    q = request.query
    dest_text = (q.get_ci("dest") or "").strip()
    if dest_text.startswith("/data/"):
        dest_text = dest_text[5:]
    parts = [p for p in dest_text.split("/") if p]
    dest = Destination(archive=False, overwrite=intake.parse_overwrite(q.get_ci("overwrite")))
    labels = dest.labels
    if parts:
        if parts[0] not in ("archive", "prearchive"):
            raise HTTPError(400, f"Invalid destination: {dest_text}")
        dest.archive = parts[0] == "archive"
        keys = {"projects": "project", "subjects": "subject", "experiments": "session"}
        for key, value in zip(parts[1::2], parts[2::2], strict=False):
            if key in keys:
                setattr(labels, keys[key], value)
    elif q.flag("Direct-Archive"):
        dest.archive = True
    lower = handler != "gradual-dicom"
    for name, upper in (("project", "PROJECT_ID"), ("subject", "SUBJECT_ID"), ("session", "EXPT_LABEL")):
        value = q.get(upper) or ((q.get_ci(name) or "") if lower else "")
        if value:
            setattr(labels, name, value)
    return dest


def _import_study(request: Request, study: Study, dest: Destination, handler: str, user: str) -> str:
    store = request.store
    study.apply(intake.identify(study.first, store, dest.labels, intake.RoutingRules.site(store)))
    if not study.subject or not study.session:
        raise HTTPError(400, "Unable to identify subject and session labels for study "
                             f"{study.uid or '(no StudyInstanceUID)'}.")
    project = store.get_project(study.project) if study.project else None
    if project is None and study.project and (dest.archive or dest.labels.project):
        raise HTTPError(404, f"Unable to find project {study.project} for the session {study.session}.")
    if project is None and dest.archive:
        raise HTTPError(400, f"Unable to identify a project for the session {study.session}.")
    if project is not None:
        access.require(store, user, project, "edit")
    auto = intake.auto_archive_overwrite(store, project.id) if project is not None else None
    explicit_prearchive = bool(request.query.get_ci("dest")) and not dest.archive
    if project is not None and (dest.archive or (auto and not explicit_prearchive)):
        overwrite = dest.overwrite if dest.archive or dest.overwrite != "none" else (auto or "none")
        try:
            exp = intake.archive_study(store, study, user=user, overwrite=overwrite)
        except IntakeError as exc:
            raise HTTPError(exc.status, exc.message) from exc
        return intake.archive_uri(exp)
    return prearcstore.receive(store, study, user=user, merge=handler == "gradual-dicom")


@routes.route("POST", "/data/services/import")
def import_service(request: Request) -> Response:
    user = request.require_user()
    handler = (request.query.get_ci("import-handler") or "DICOM-zip").lower()
    if handler in UNSUPPORTED:
        raise HTTPError(400, f"Unsupported import handler in xnatsim: {handler}")
    if handler not in HANDLERS:
        raise HTTPError(404, f"Unknown importer implementation specified: {request.query.get_ci('import-handler')}")
    dest = destination(request, handler)
    folder = Path(tempfile.mkdtemp(prefix="import-", dir=request.store.tmp_dir))
    try:
        upload = spool_body(request, folder)
        studies = parse_upload(upload, folder, max_bytes=request.app.config.max_body * 10)
        uris = [_import_study(request, study, dest, handler, user) for study in studies]
        body = uris[0] if len(uris) == 1 else "".join(u + "\r\n" for u in uris)
        return Response.text(body)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


register = routes.register
