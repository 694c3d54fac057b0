"""DICOM intake shared by the import service and the C-STORE receiver (no HTTP in here).

What XNAT does and this follows (``../shared/reference/dicom-upload.md`` §2-§3):

* **Routing**, each value independently, first non-blank wins (dicom-xnat-util
  ``XnatDefaultDicomObjectIdentifier``): explicit values (import-service parameters) → the
  receiver's routing expressions (when enabled) → the site rules ``/data/config/dicom/
  projectRules|subjectRules|sessionRules`` → ``Project:``/``Subject:``/``Session:`` in
  PatientComments (0010,4000), StudyComments (0032,4000), AdditionalPatientHistory (0010,21B0) →
  for the project StudyDescription (0008,1030) then AccessionNumber (0008,0050), for the subject
  PatientName (0010,0010), for the session PatientID (0010,0020). A project candidate counts only
  when it names an existing project; none → the ``Unassigned`` prearchive. Subject and session
  labels are cleaned to ``[A-Za-z0-9_-]`` (``Labels.toLabelChars``). ``AA:`` in the comment tags
  asks for auto-archiving.
* **Rules** are ``(GGGG,EEEE):<regex>[:<group>]``, one per line (``ExtractorFromRuleProvider``);
  the ``t:``/``r:`` replacement form is not modelled.
* **Grouping**: one session per StudyInstanceUID.
* **Archiving** into the store in one transaction with XNAT's conflict checks and texts
  (``PrearcSessionArchiver.checkForConflicts``), each a 409 :class:`IntakeError`.

Failures are :class:`IntakeError` carrying the status XNAT answers on REST; the receiver maps
them to DIMSE statuses, the REST modules to HTTP answers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xnatsim.store import Experiment, Parent, StagedFile, Store, StoreError, md5_file
from xnatsim.synth import OTHER_SCAN, OTHER_SESSION, SCAN_TYPES, SESSION_TYPES

UNASSIGNED = "Unassigned"
#: ``overwrite`` values: ``none`` refuses an existing session, ``append`` merges with the conflict
#: checks, ``override`` merges without them, ``delete`` replaces the session.
OVERWRITE = ("none", "append", "override", "delete")
COMMENT_TAGS = ("PatientComments", "StudyComments", "AdditionalPatientHistory")
_ASSIGNMENT = re.compile(r"(?:^|[\s,;])(Project|Subject|Session|AA)\s*:\s*([\w\-]*)", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_RULE = re.compile(r"^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\):(.*?)(?::(\d+))?$")

# XNAT's archive conflict texts (PrearcSessionArchiver.checkForConflicts).
SESSION_EXISTS = "Session already exists, retry with overwrite enabled"
UID_CHANGED = "Invalid modification of session UID via archive process."
MODALITY_CHANGED = "Invalid modification of session modality via archive process.  Data may require a manual merge."
SUBJECT_CHANGED = "Invalid modification of session subject via archive process.: {label} Already Exists for another Subject"


class IntakeError(Exception):
    """An intake failure with the status XNAT answers on REST (400 unparsable, 409 conflict …)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_overwrite(value: str | None) -> str:
    """XNAT's ``Importer.parseOverrideValue``: absent → ``none``; unknown values act like ``append``."""
    text = (value or "").strip().lower()
    if not text or text in ("none", "false"):
        return "none"
    return text if text in OVERWRITE else "append"


# --------------------------------------------------------------------------- files and studies


@dataclass
class DicomFile:
    """One parsed DICOM file on disk with its routing headers (see ``dicomhdr.ROUTING_KEYWORDS``).

    ``md5`` is the file's digest when it was computed on the way in (an upload's extraction
    hashes each member), so archiving need not read the file again; "" = not known yet.
    """

    path: Path
    headers: dict[str, str]
    md5: str = ""


@dataclass
class Labels:
    """Where a study goes: project, subject, session, and an ``AA:`` auto-archive request."""

    project: str = ""
    subject: str = ""
    session: str = ""
    auto_archive: bool | None = None


@dataclass
class Study:
    """The files of one StudyInstanceUID, with what routing decided for them."""

    uid: str
    files: list[DicomFile] = field(default_factory=list)
    project: str = ""
    subject: str = ""
    session: str = ""
    auto_archive: bool | None = None

    @property
    def first(self) -> dict[str, str]:
        return self.files[0].headers

    def series(self) -> dict[str, list[DicomFile]]:
        """Files by scan ID (SeriesNumber; series without a number get ``0``), in upload order."""
        out: dict[str, list[DicomFile]] = {}
        for item in self.files:
            out.setdefault(scan_id(item.headers), []).append(item)
        return out

    def apply(self, labels: Labels) -> None:
        self.project, self.subject, self.session = labels.project, labels.subject, labels.session
        self.auto_archive = labels.auto_archive


def scan_id(headers: Mapping[str, str]) -> str:
    return headers.get("SeriesNumber", "").strip() or "0"


def group(files: Iterable[DicomFile]) -> list[Study]:
    """Files grouped into one :class:`Study` per StudyInstanceUID, in first-seen order."""
    studies: dict[str, Study] = {}
    for item in files:
        uid = item.headers.get("StudyInstanceUID", "")
        studies.setdefault(uid, Study(uid)).files.append(item)
    return list(studies.values())


# --------------------------------------------------------------------------- routing


def clean_label(value: str) -> str:
    """A DICOM-derived label as XNAT stores it (``Doe^John`` → ``Doe_John``)."""
    return _UNSAFE.sub("_", value.strip())


def assignments(text: str) -> dict[str, str]:
    """``Project: P Subject: S Session: E AA:true`` → ``{"project": "P", …}`` (keys lower-case)."""
    out: dict[str, str] = {}
    for match in _ASSIGNMENT.finditer(text or ""):
        out.setdefault(match.group(1).lower(), match.group(2))
    return out


def apply_rules(rules: str, headers: Mapping[str, str]) -> str:
    """The first value a rule list yields from ``headers`` ("" when none matches).

    ``headers`` maps keywords; a rule names its tag by number, translated with pydicom's dictionary.
    """
    from pydicom.datadict import keyword_for_tag

    for line in rules.splitlines():
        match = _RULE.match(line.strip())
        if match is None:
            continue
        keyword = keyword_for_tag(int(match.group(1) + match.group(2), 16))
        value = headers.get(keyword, "") if keyword else ""
        try:
            found = re.search(match.group(3), value)
        except re.error:
            continue
        if found is not None:
            index = int(match.group(4)) if match.group(4) else (1 if found.groups() else 0)
            result = found.group(index) or ""
            if result.strip():
                return result.strip()
    return ""


@dataclass
class RoutingRules:
    """Rule lists that come before the headers: the receiver's, then the site's (newline-separated)."""

    project: list[str] = field(default_factory=list)
    subject: list[str] = field(default_factory=list)
    session: list[str] = field(default_factory=list)

    @classmethod
    def site(cls, store: Store, receiver: Mapping[str, object] | None = None) -> RoutingRules:
        """Receiver expressions (when enabled) followed by ``/data/config/dicom/<kind>Rules``."""
        rules = cls()
        for kind in ("project", "subject", "session"):
            found: list[str] = getattr(rules, kind)
            if receiver and receiver.get("routingExpressionsEnabled"):
                expression = str(receiver.get(f"{kind}RoutingExpression") or "")
                if expression.strip():
                    found.append(expression)
            entry = store.get_config("", "dicom", f"{kind}Rules")
            if entry is not None and entry.contents and entry.status != "disabled":
                found.append(entry.contents)
        return rules


def identify(headers: Mapping[str, str], store: Store, explicit: Labels | None = None,
             rules: RoutingRules | None = None) -> Labels:
    """Project, subject and session of one object by XNAT's default identifier (module doc)."""
    explicit = explicit or Labels()
    rules = rules or RoutingRules()
    comments = [assignments(headers.get(tag, "")) for tag in COMMENT_TAGS]

    def first(kind: str, rule_lists: list[str], fallbacks: tuple[str, ...]) -> list[str]:
        candidates = [getattr(explicit, kind)]
        candidates += [apply_rules(r, headers) for r in rule_lists]
        candidates += [c.get(kind, "") for c in comments]
        candidates += [headers.get(key, "") for key in fallbacks]
        return [c.strip() for c in candidates if c and c.strip()]

    project = ""
    explicit_project = explicit.project.strip()
    if explicit_project:
        found = store.get_project(explicit_project)
        project = found.id if found is not None else explicit_project
    else:
        for candidate in first("project", rules.project, ("StudyDescription", "AccessionNumber")):
            found = store.get_project(candidate)
            if found is not None:
                project = found.id
                break
    subjects = first("subject", rules.subject, ("PatientName",))
    sessions = first("session", rules.session, ("PatientID",))
    subject = explicit.subject or clean_label(subjects[0] if subjects else "")
    session = explicit.session or clean_label(sessions[0] if sessions else "")
    aa_text = next((c["aa"] for c in comments if c.get("aa")), "").lower()
    auto = True if aa_text in ("true", "t") else False if aa_text in ("false", "f") else None
    return Labels(project, subject, session, auto)


# --------------------------------------------------------------------------- archiving


def primary_modality(modalities: Iterable[str]) -> str:
    present = set(modalities)
    for code in ("PT", "MR", "CT"):
        if code in present:
            return code
    return ""


def iso_date(value: str) -> str:
    value = value.strip()
    if re.fullmatch(r"\d{8}", value):
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return ""


def iso_time(value: str) -> str:
    value = value.strip().split(".", 1)[0]
    if re.fullmatch(r"\d{6}", value):
        return f"{value[:2]}:{value[2:4]}:{value[4:]}"
    return ""


def file_name(headers: Mapping[str, str]) -> str:
    """XNAT's default DICOM file naming: ``<StudyUID>-<Series>-<Instance>-<hash>.dcm``."""
    digest = hashlib.sha1((headers.get("SOPClassUID", "") + headers.get("SOPInstanceUID", "")).encode())
    number = headers.get("InstanceNumber", "").strip() or "0"
    return f"{headers.get('StudyInstanceUID', 'study')}-{scan_id(headers)}-{number}-{digest.hexdigest()[:8]}.dcm"


def session_fields(study: Study) -> dict[str, str | None]:
    """Session fields from the headers, mapped as XNAT's DICOM session builder does."""
    h = study.first
    values: dict[str, str | None] = {
        "date": iso_date(h.get("StudyDate", "")) or None,
        "time": iso_time(h.get("StudyTime", "")) or None,
        "modality": primary_modality(f.headers.get("Modality", "") for f in study.files) or None,
        "UID": study.uid or None,
        "dcmPatientName": h.get("PatientName") or None,
        "dcmPatientId": h.get("PatientID") or None,
        "dcmAccessionNumber": h.get("AccessionNumber") or None,
        "dcmPatientBirthDate": iso_date(h.get("PatientBirthDate", "")) or None,
        "session_type": h.get("StudyDescription") or None,
        "acquisition_site": h.get("InstitutionName") or None,
        "scanner": h.get("StationName") or None,
        "scanner/manufacturer": h.get("Manufacturer") or None,
        "scanner/model": h.get("ManufacturerModelName") or None,
        "fieldStrength": h.get("MagneticFieldStrength") or None,
    }
    return {k: v for k, v in values.items() if v is not None}


def check_conflicts(store: Store, existing: Experiment, study: Study, overwrite: str) -> None:
    """XNAT's archive conflict checks for ``study`` landing on ``existing`` (409 texts)."""
    if overwrite == "none":
        raise IntakeError(409, SESSION_EXISTS)
    if overwrite in ("override", "delete"):
        return
    old_uid = existing.fields.get("UID", "")
    if old_uid and study.uid and old_uid != study.uid:
        raise IntakeError(409, UID_CHANGED)
    if existing.subject_label and existing.subject_label != study.subject:
        raise IntakeError(409, SUBJECT_CHANGED.format(label=study.session))
    old_modality = existing.fields.get("modality", "")
    new_modality = primary_modality(f.headers.get("Modality", "") for f in study.files)
    if old_modality and new_modality and old_modality != new_modality:
        raise IntakeError(409, MODALITY_CHANGED)


def archive_study(store: Store, study: Study, *, user: str, overwrite: str,
                  extra: dict[str, str | None] | None = None) -> Experiment:
    """Create (or extend/replace) the session of ``study`` in the archive, in one transaction.

    ``append`` keeps files already archived under the same name (an identical SOP instance sent
    again changes nothing); ``extra`` adds session fields (the prearchive passes ``prearchivePath``).
    """
    if store.get_project(study.project) is None:
        raise IntakeError(400, f"Unable to identify a project for the session {study.session}.")
    if not study.subject or not study.session:
        raise IntakeError(400, "Unable to identify subject and session labels for study "
                               f"{study.uid or '(no StudyInstanceUID)'}.")
    modality = primary_modality(f.headers.get("Modality", "") for f in study.files)
    session_type = SESSION_TYPES.get(modality, OTHER_SESSION)
    try:
        with store.write():
            existing = store.get_experiment(study.session, study.project)
            if existing is not None:
                check_conflicts(store, existing, study, overwrite)
                if overwrite == "delete":
                    store.delete_experiment(existing.id)
                    existing = None
            if existing is not None:
                session_type = existing.xsi_type
            exp, _ = store.put_experiment(study.project, study.subject, study.session, session_type,
                                          {**session_fields(study), **(extra or {})}, user=user)
            for number, items in study.series().items():
                _archive_scan(store, exp, number, items)
    except StoreError as exc:
        raise IntakeError(exc.status, exc.message) from exc
    return exp


def _archive_scan(store: Store, exp: Experiment, number: str, items: list[DicomFile]) -> None:
    h = items[0].headers
    current = store.get_scan(exp.id, number)
    values: dict[str, str | None] = {
        "type": h.get("SeriesDescription") or None, "series_description": h.get("SeriesDescription") or None,
        "UID": h.get("SeriesInstanceUID") or None, "modality": h.get("Modality") or None}
    scan, _ = store.put_scan(exp.id, number, None if current else SCAN_TYPES.get(h.get("Modality", ""), OTHER_SCAN),
                             {k: v for k, v in values.items() if v is not None})
    resource, _ = store.create_resource(Parent("scan", exp.project, exp.subject_id, exp.id, scan.pk),
                                        "DICOM", format="DICOM", content="RAW", exist_ok=True)
    present = {entry.path for entry in store.list_files(resource.id)}
    staged: dict[str, StagedFile] = {}
    for item in items:
        name = file_name(item.headers)
        if name not in present:
            staged[name] = StagedFile(name, item.path, item.path.stat().st_size, item.md5 or md5_file(item.path),
                                      format="DICOM", content="RAW")
    if staged:
        store.add_files(resource, staged.values(), overwrite=True)
    store.put_scan(exp.id, number, None, {"frames": str(len(present) + len(staged))})


def archive_uri(exp: Experiment) -> str:
    return f"/data/archive/projects/{exp.project}/subjects/{exp.subject_label}/experiments/{exp.label}"


def prearchive_code(store: Store, project: str) -> str:
    """The project's ``prearchive_code``: 0 manual, 4 auto-archive (append), 5 auto-archive overwriting."""
    found = store.get_project(project) if project else None
    # XNAT 1.7 XnatProjectdata.initArcProject sets 4 on every new project (1.8 moved the body to
    # initArcProjectImpl, not read): a project without an explicit code auto-archives.
    return found.fields.get("prearchive_code", "4") if found is not None else "0"


def auto_archive_overwrite(store: Store, project: str) -> str | None:
    """The ``overwrite`` an auto-archive uses for ``project``, or None when it does not auto-archive."""
    return {"4": "append", "5": "delete"}.get(prearchive_code(store, project))
