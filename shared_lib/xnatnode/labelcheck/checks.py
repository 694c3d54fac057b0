"""The checks: a :class:`~xnatnode.labelcheck.records.Snapshot` and a convention in, findings out.
Pure functions, no I/O.

DICOM comparisons follow how XNAT makes labels (reference §2): the subject label comes from
PatientName and the session label from PatientID, both cleaned with ``Labels.toLabelChars``; so a
header value is cleaned the same way before it is compared.  XNAT's default site anonymisation
script then *writes* PatientName := subject label and PatientID := session label into the
archived files, so on a default site a mismatch in the archive means the script was off or
changed, or the session was renamed afterwards (``rerunProjectAnonOnRename`` is false by
default).  Each message says which value was compared: the archived file on the mount, or the
``dcmPatientId``/``dcmPatientName`` fields XNAT stored when the session was archived.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from xnatnode.labelcheck.convention import NO_CONVENTION, Convention, parse_date_token
from xnatnode.labelcheck.records import ScanRec, SeriesHeader, SessionRec, Snapshot, SubjectRec
from xnatnode.labelcheck.rules import Collector, Finding, ObjectType
from xnatnode.labels import Kind, check_label, clean_label, near_duplicate_key

#: DICOM modalities that do not make a session's type (reports, presentation states, derived).
NON_IMAGING = frozenset({"SR", "PR", "KO", "OT", "SEG", "REG", "RTSTRUCT", "RTPLAN", "RTDOSE", "DOC", ""})
#: Session xsiType (lower-cased) -> DICOM modalities that make it.
XSI_MODALITIES: dict[str, frozenset[str]] = {
    "xnat:mrsessiondata": frozenset({"MR"}),
    "xnat:petsessiondata": frozenset({"PT"}),
    "xnat:ctsessiondata": frozenset({"CT"}),
    "xnat:petmrsessiondata": frozenset({"PT", "MR"}),
    "xnat:ussessiondata": frozenset({"US"}),
    "xnat:crsessiondata": frozenset({"CR"}),
    "xnat:dxsessiondata": frozenset({"DX"}),
    "xnat:mgsessiondata": frozenset({"MG"}),
    "xnat:nmsessiondata": frozenset({"NM"}),
    "xnat:xasessiondata": frozenset({"XA"}),
    "xnat:rfsessiondata": frozenset({"RF"}),
}
_XNAT_RULE = {"label-characters": "xnat-characters", "label-length": "xnat-length",
              "label-empty": "xnat-empty", "label-placeholder": "xnat-placeholder"}


def run_checks(snap: Snapshot, convention: Convention = NO_CONVENTION) -> list[Finding]:
    """Every finding for the sessions in ``snap.targets`` (and their subjects and scans)."""
    out = Collector(convention.severity)
    by_id = {s.id: s for s in snap.sessions}
    targets = [by_id[t] for t in snap.targets if t in by_id]
    target_subjects = {s.subject_id for s in targets}
    subjects = [s for s in snap.subjects if snap.context == "project" or s.id in target_subjects]
    scans: dict[str, list[ScanRec]] = defaultdict(list)
    for scan in snap.scans:
        scans[scan.session_id].append(scan)

    if snap.context == "project" and convention.project and not re.fullmatch(
            convention.project, snap.project, convention.flags):
        out.add("project-pattern", "project", snap.project, snap.project,
                f"project ID {snap.project!r} does not match {convention.project!r}")
    for subject in subjects:
        _xnat_rules(out, "subject", subject.id, subject.label, Kind.SUBJECT)
        if convention.subject and not re.fullmatch(convention.subject, subject.label, convention.flags):
            out.add("subject-pattern", "subject", subject.id, subject.label,
                    f"subject label {subject.label!r} does not match {convention.subject!r}",
                    _suggest(subject.label, convention.subject, convention.flags))
    for session in targets:
        _xnat_rules(out, "session", session.id, session.label, Kind.SESSION)
        for scan in scans[session.id]:
            _xnat_rules(out, "scan", f"{session.id}/{scan.id}", scan.id, Kind.SCAN,
                        shown=f"{session.label}/{scan.id}")
            _scan_type(out, convention, session, scan)
        if session.is_image_session:
            _template(out, convention, session)
            if session.date is None:
                out.add("date-missing", "session", session.id, session.label,
                        f"session {session.label!r} has no date")
            _dicom(out, convention, session, snap.headers.get(session.id), scans[session.id])
    _uniqueness(out, snap, convention, targets, subjects)
    _unreadable(out, snap)
    return out.findings


def _xnat_rules(out: Collector, object_type: ObjectType, object_id: str, label: str, kind: Kind,
                shown: str | None = None) -> None:
    for problem in check_label(label, kind):
        out.add(_XNAT_RULE[problem.code], object_type, object_id, shown or label, problem.message,
                problem.suggestion and f"rename to {problem.suggestion!r} (as XNAT's DICOM import would)")


def _suggest(label: str, pattern: str, flags: int) -> str | None:
    """A nearby label that matches ``pattern`` (XNAT-cleaned, or separators made ``_``)."""
    for candidate in _candidates(label):
        if re.fullmatch(pattern, candidate, flags):
            return f"rename to {candidate!r}"
    return None


def _candidates(label: str) -> list[str]:
    cleaned = clean_label(label.strip())
    seps = re.sub(r"[-.\s]+", "_", label.strip())
    return list(dict.fromkeys(c for c in (cleaned, seps, seps.lower(), re.sub(r"_+", "_", cleaned))
                              if c != label))


def _same(a: str, b: str, convention: Convention) -> bool:
    return a == b if convention.case_sensitive else a.lower() == b.lower()


def _template(out: Collector, convention: Convention, session: SessionRec) -> None:
    if convention.loose is None or convention.strict is None:
        return
    label = session.label
    strict = convention.strict.fullmatch(label)
    # Split the label with its own subject label first; only a label that does not contain that
    # label at all is split anyhow (then the {subject} part is another subject's label).
    pinned = convention.loose_for(session.subject_label)
    loose = strict
    if loose is None and pinned is not None:
        loose = pinned.fullmatch(label)
    if loose is None and (pinned is None or not _contains(label, session.subject_label, convention)):
        loose = convention.loose.fullmatch(label)
    if loose is None:
        suggestion = next((f"rename to {c!r}" for c in _candidates(label)
                           if (m := convention.strict.fullmatch(c))
                           and ("subject" not in m.groupdict() or _same(m["subject"], session.subject_label, convention))),
                          None)
        out.add("session-template", "session", session.id, label,
                f"session label {label!r} does not follow the template {convention.session!r}", suggestion)
        return
    groups = loose.groupdict()
    flagged = False
    if "subject" in groups and not _same(groups["subject"], session.subject_label, convention):
        flagged = True
        out.add("session-subject", "session", session.id, label,
                f"session label {label!r} names subject {groups['subject']!r} but belongs to subject "
                f"{session.subject_label!r}",
                f"rename to {label[:loose.start('subject')] + session.subject_label + label[loose.end('subject'):]!r} "
                "or move the session to its subject")
    for name, values in convention.fields.items():
        value = groups.get(name)
        if value is not None and not values.allows(value, case_sensitive=convention.case_sensitive):
            flagged = True
            out.add("session-field", "session", session.id, label,
                    f"{name} {value!r} in session label {label!r} is not allowed (allowed: {values.describe()})")
    if "modality" in groups:
        flagged |= _modality_token(out, convention, session, loose)
    for name, fmt in convention.dates.items():
        value = groups.get(name)
        if value is None:
            continue
        when = parse_date_token(value, fmt)
        if when is None:
            flagged = True
            out.add("session-field", "session", session.id, label,
                    f"{name} {value!r} in session label {label!r} is not a date in the form {fmt}")
        elif session.date is not None and when != session.date:
            flagged = True
            fixed = label[:loose.start(name)] + session.date.strftime(fmt) + label[loose.end(name):]
            out.add("date-mismatch", "session", session.id, label,
                    f"session label {label!r} says {when.isoformat()} but the session date is "
                    f"{session.date.isoformat()}", f"rename to {fixed!r} or correct the session date")
    if strict is None and not flagged:
        out.add("session-template", "session", session.id, label,
                f"session label {label!r} does not follow the template {convention.session!r}")


def _contains(label: str, part: str, convention: Convention) -> bool:
    return part in label if convention.case_sensitive else part.lower() in label.lower()


def _modality_token(out: Collector, convention: Convention, session: SessionRec, m: re.Match[str]) -> bool:
    token = m["modality"]
    lookup = {k if convention.case_sensitive else k.lower(): v for k, v in convention.modality.items()}
    expected = lookup.get(token if convention.case_sensitive else token.lower())
    label = session.label
    if expected is None:
        out.add("session-field", "session", session.id, label,
                f"modality {token!r} in session label {label!r} is not one of "
                f"{', '.join(convention.modality)}")
        return True
    if expected.lower() == session.xsi_type.lower():
        return False
    right = next((k for k, v in convention.modality.items() if v.lower() == session.xsi_type.lower()), None)
    suggestion = (f"rename to {label[:m.start('modality')] + right + label[m.end('modality'):]!r}"
                  if right else None)
    out.add("session-modality", "session", session.id, label,
            f"modality {token!r} in session label {label!r} means {expected}, but the session is "
            f"{session.xsi_type}", suggestion)
    return True


def _scan_type(out: Collector, convention: Convention, session: SessionRec, scan: ScanRec) -> None:
    allowed = convention.scan_types
    if allowed is None or allowed.allows(scan.type, case_sensitive=convention.case_sensitive):
        return
    what = f"type {scan.type!r}" if scan.type else "no type"
    out.add("scan-type", "scan", f"{session.id}/{scan.id}", f"{session.label}/{scan.id}",
            f"scan {scan.id} of {session.label!r} has {what}, not in the allowed scan types "
            f"({allowed.describe()})")


# --------------------------------------------------------------------------- uniqueness


def _uniqueness(out: Collector, snap: Snapshot, convention: Convention, targets: Sequence[SessionRec],
                subjects: Sequence[SubjectRec]) -> None:
    target_ids = {s.id for s in targets}
    _duplicates(out, "session", [(s.id, s.label) for s in snap.sessions], target_ids)
    subject_scope = {s.id for s in subjects}
    _duplicates(out, "subject", [(s.id, s.label) for s in snap.subjects], subject_scope)
    if convention.uniqueness != "site" or snap.site_labels is None:
        return
    others: dict[str, list[str]] = defaultdict(list)
    for item in snap.site_labels:
        if item.project != snap.project:
            others[item.label.lower()].append(f"{item.project}/{item.label}")
    for session in targets:
        clash = others.get(session.label.lower())
        if clash:
            out.add("duplicate-site", "session", session.id, session.label,
                    f"session label {session.label!r} is also used in {', '.join(sorted(clash)[:5])}"
                    + (f" and {len(clash) - 5} more" if len(clash) > 5 else ""))


def _duplicates(out: Collector, object_type: ObjectType, items: Iterable[tuple[str, str]],
                scope: set[str]) -> None:
    exact: dict[str, list[str]] = defaultdict(list)
    near: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for oid, label in items:
        exact[label].append(oid)
        near[near_duplicate_key(label)].append((oid, label))
    for label, ids in exact.items():
        if len(ids) > 1:
            for oid in ids:
                if oid in scope:
                    out.add("duplicate-label", object_type, oid, label,
                            f"{object_type} label {label!r} is used by {len(ids)} {object_type}s "
                            f"({', '.join(sorted(ids))})")
    for group in near.values():
        labels = sorted({label for _, label in group})
        if len(labels) < 2:
            continue
        for oid, label in group:
            if oid in scope:
                others = [x for x in labels if x != label]
                out.add("near-duplicate", object_type, oid, label,
                        f"{object_type} label {label!r} differs from {', '.join(repr(x) for x in others)} only in "
                        "case, separators or leading zeros")


# --------------------------------------------------------------------------- DICOM


def expected_modalities(xsi_type: str) -> frozenset[str]:
    """DICOM modalities that make a session of ``xsi_type`` (empty: not known)."""
    return XSI_MODALITIES.get(xsi_type.lower(), frozenset())


def _expected_label(which: str, session: SessionRec) -> str | None:
    return {"session": session.label, "subject": session.subject_label}.get(which)


def _dicom(out: Collector, convention: Convention, session: SessionRec,
           headers: list[SeriesHeader] | None, scans: Sequence[ScanRec]) -> None:
    if headers:
        _dicom_mount(out, convention, session, headers)
        return
    # Nothing mounted: XNAT's stored header fields, and the scans' modality column.
    where = "XNAT's stored {field} (set from the headers when the session was archived)"
    for tag, value, which, rule in (
        ("PatientID", session.dcm_patient_id, convention.patient_id, "dicom-patient-id"),
        ("PatientName", session.dcm_patient_name, convention.patient_name, "dicom-patient-name"),
    ):
        expected = _expected_label(which, session)
        if value and expected is not None and not _header_matches(value, expected, convention):
            field = "dcmPatientId" if tag == "PatientID" else "dcmPatientName"
            out.add(rule, "session", session.id, session.label,
                    f"{tag} {value!r} ({where.format(field=field)}) is not the {which} label {expected!r}",
                    _patient_suggestion(tag, which))
    _modality_check(out, session, {s.modality.upper() for s in scans},
                    "the scans' modality fields in XNAT")


def _header_matches(value: str, expected: str, convention: Convention) -> bool:
    """A header value names the label when it is the label, or becomes it by XNAT's cleaning."""
    value = value.strip()
    return _same(value, expected, convention) or _same(clean_label(value), expected, convention)


def _patient_suggestion(tag: str, which: str) -> str:
    return (f"check whether the session was renamed after archiving or the anonymisation script "
            f"does not set {tag} := {which} label")


def _dicom_mount(out: Collector, convention: Convention, session: SessionRec,
                 headers: list[SeriesHeader]) -> None:
    where = "archived DICOM header, first file of scan {scan}: {file}"
    for tag, attr, which, rule in (
        ("PatientID", "patient_id", convention.patient_id, "dicom-patient-id"),
        ("PatientName", "patient_name", convention.patient_name, "dicom-patient-name"),
    ):
        expected = _expected_label(which, session)
        if expected is None:
            continue
        seen: dict[str, SeriesHeader] = {}
        for h in headers:
            seen.setdefault(getattr(h, attr), h)
        for value, h in seen.items():
            if value and not _header_matches(value, expected, convention):
                out.add(rule, "session", session.id, session.label,
                        f"{tag} {value!r} ({where.format(scan=h.scan_id, file=h.file)}) is not the "
                        f"{which} label {expected!r}", _patient_suggestion(tag, which))
    if session.date is not None:
        wrong: dict[str, list[str]] = defaultdict(list)
        for h in headers:
            when = parse_date_token(h.study_date, "%Y%m%d") if h.study_date else None
            if when is not None and when != session.date:
                wrong[when.isoformat()].append(h.scan_id)
        for day, scan_ids in sorted(wrong.items()):
            out.add("dicom-study-date", "session", session.id, session.label,
                    f"StudyDate {day} (archived DICOM header, scans {', '.join(scan_ids)}) differs from "
                    f"the session date {session.date.isoformat()}",
                    "correct the session date, or check whether the scans belong to this session")
    _modality_check(out, session, {h.modality.upper() for h in headers}, "the archived DICOM headers")
    uids: dict[str, list[str]] = defaultdict(list)
    for h in headers:
        if h.study_uid:
            uids[h.study_uid].append(h.scan_id)
    if len(uids) > 1:
        parts = "; ".join(f"{uid}: scans {', '.join(ids)}" for uid, ids in sorted(uids.items()))
        out.add("dicom-study-uid", "session", session.id, session.label,
                f"session {session.label!r} holds {len(uids)} studies (StudyInstanceUID {parts})",
                "split the session: XNAT expects one study per session")


def _modality_check(out: Collector, session: SessionRec, found: set[str], where: str) -> None:
    expected = expected_modalities(session.xsi_type)
    imaging = found - NON_IMAGING
    if not expected or not imaging or imaging & expected:
        return
    out.add("dicom-modality", "session", session.id, session.label,
            f"Modality {', '.join(sorted(imaging))} ({where}) does not make a {session.xsi_type}",
            "check the session type (xsiType)")


def _unreadable(out: Collector, snap: Snapshot) -> None:
    labels = {s.id: s.label for s in snap.sessions}
    for session_id, path, reason in snap.unreadable:
        out.add("dicom-unreadable", "session", session_id, labels.get(session_id, session_id),
                f"could not read DICOM header of {path}: {reason}")
