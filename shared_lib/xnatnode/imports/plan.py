"""The import plan: per source file, create / skip / reject / conflict / ignore, and the XNAT
objects (sessions, scans, resource files) the creates need.

Built in three steps, each pure (no request):

1. :func:`group` turns the source's files into :class:`Acquisition` s (an image and its
   sidecars) with their subject, session and scan names, from BIDS names or the mapping CSV;
   everything else becomes an ``ignored`` or ``rejected`` row.
2. The caller reads and inspects every file (:mod:`xnatnode.nifti`); images that fail become
   ``rejected`` rows with their sidecars.
3. :func:`build` checks labels, matches the batch against what XNAT holds (:mod:`.state`) and
   gives every image a scan ID.

Scan IDs are deterministic: within a session, an image whose scan type (or explicit ``scan``
ID) already exists keeps that scan's ID; the others are numbered 1, 2, ... in the order
(datatype, scan type, path), skipping IDs in use. A re-run of the same batch therefore maps
every image to the same scan, and a run that was killed half-way continues where it stopped.

Resource layout (configurable with ``--image-resource`` / ``--sidecar-resource``): images go to
the scan resource ``NIFTI``; ``.json``, ``.bval``, ``.bvec`` and ``.tsv`` sidecars to ``BIDS``
(the OASIS-3 / NRG dcm2bids convention; give ``NIFTI`` for both to keep sidecars beside the
image as NRG's dcm2niix image does). Files keep their base name.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from xnatnode import labels
from xnatnode.imports import bids
from xnatnode.imports.defaults import (
    DEFAULT_IMAGE_RESOURCE,
    DEFAULT_SESSION_TEMPLATE,
    DEFAULT_SIDECAR_RESOURCE,
    DEFAULT_SUBJECT_TEMPLATE,
    TEMPLATE_FIELDS,
)
from xnatnode.imports.mapping import Mapping, MappingRow
from xnatnode.imports.sources import Member, Source, stem_of, suffix_of
from xnatnode.imports.state import ExistingSession, ProjectState
from xnatnode.nifti import Inspection, Scanned

#: Order of datatypes when numbering scans (anatomy first, as a scanner usually runs it).
DATATYPE_ORDER = ("anat", "func", "fmap", "dwi", "perf", "pet", "ct")


class Outcome(StrEnum):
    """What happened (or, in a dry run, would happen) to one source file."""

    IMPORTED = "imported"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    CONFLICT = "conflict"
    IGNORED = "ignored"


class Action(StrEnum):
    """The planned action for one file (the dry run prints these)."""

    CREATE = "create"
    SKIP = "skip"
    REJECT = "reject"
    CONFLICT = "conflict"
    IGNORE = "ignore"


#: xsiTypes and the scan ``modality`` value per session-label modality token.
XSI = {
    "mr": ("xnat:mrSessionData", "xnat:mrScanData", "MR"),
    "pet": ("xnat:petSessionData", "xnat:petScanData", "PT"),
    "ct": ("xnat:ctSessionData", "xnat:ctScanData", "CT"),
}
#: Session type when a session mixes modalities (xnat-ingest's precedence MR > PT > CT).
PRECEDENCE = ("mr", "pet", "ct")


@dataclass
class FileRow:
    """One row of the report: a source file and its outcome."""

    source: str
    outcome: str
    reason: str = ""
    subject: str = ""
    session: str = ""
    scan: str = ""
    resource: str = ""
    bytes: int | None = None
    md5: str = ""


@dataclass
class PlannedFile:
    """A file that belongs in a scan resource."""

    source: str
    name: str  #: file name inside the resource
    resource: str
    scanned: Scanned
    action: Action = Action.CREATE
    reason: str = ""
    overwrite: bool = False  #: replaces a file of other content (``--overwrite``)
    md5: str = ""  #: from the reading pass, or computed while it was uploaded

    def __post_init__(self) -> None:
        self.md5 = self.md5 or self.scanned.digest.md5


@dataclass
class Acquisition:
    """An image with its sidecars and the names it maps to (before checks)."""

    image: str
    sidecars: list[str]
    subject: str
    session: str
    modality: str  #: mr / pet / ct
    datatype: str
    scan_type: str
    scan: str | None = None  #: explicit scan ID (mapping)
    series_description: str | None = None
    date: str | None = None


@dataclass
class PlannedScan:
    scan_id: str
    xsi_type: str
    fields: dict[str, str]  #: query parameters of the scan PUT (type, parameters ...)
    files: list[PlannedFile]
    exists: bool
    write: bool  #: the scan PUT is needed (new scan, or --overwrite of its fields)
    inspection: Inspection | None = None


@dataclass
class PlannedSession:
    subject: str
    label: str
    xsi_type: str
    date: str | None
    exists: bool
    xnat_id: str | None
    scans: list[PlannedScan] = field(default_factory=list)

    @property
    def write(self) -> bool:
        return not self.exists


@dataclass
class Plan:
    """Everything a run will do; ``rows`` has a row for every file that is not written."""

    project: str
    sessions: list[PlannedSession] = field(default_factory=list)
    rows: list[FileRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def files(self) -> list[tuple[PlannedSession, PlannedScan, PlannedFile]]:
        return [(s, c, f) for s in self.sessions for c in s.scans for f in c.files]

    def writes(self) -> int:
        """Write requests the plan needs (before zip bundling: files counted per resource)."""
        count = 0
        for session in self.sessions:
            count += session.write
            for scan in session.scans:
                count += scan.write
                count += len({f.resource for f in scan.files if f.action is Action.CREATE})
        return count


# --------------------------------------------------------------------------- step 1: grouping


@dataclass
class Grouping:
    acquisitions: list[Acquisition] = field(default_factory=list)
    rows: list[FileRow] = field(default_factory=list)
    mapping_file: str | None = None


def fill_template(template: str, values: dict[str, str | None]) -> str:
    """``template`` with ``{sub}``/``{ses}``/``{modality}``/``{datatype}`` filled; a field that
    has no value is dropped together with one separator next to it (``{sub}_{ses}_{modality}``
    without a session gives ``{sub}_{modality}``)."""
    text = template
    for name, value in values.items():
        if value is None:  # the separator before it, else the one after it, goes with it
            field_re = r"\{" + name + r"\}"
            text, found = re.subn(r"[_\-.]" + field_re, "", text, count=1)
            if not found:
                text = re.sub(field_re + r"[_\-.]?", "", text, count=1)
    try:
        return text.format(**{k: v for k, v in values.items() if v is not None})
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"label template {template!r}: unknown or bad field {exc}; fields: "
                         f"{', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}") from None


def check_template(template: str) -> None:
    """Raise ValueError when ``template`` uses a field other than :data:`TEMPLATE_FIELDS`."""
    fill_template(template, {"sub": "s", "ses": "v", "modality": "mr", "datatype": "anat"})


def _sidecar_owner(name: bids.BidsName, images: dict[str, bids.BidsName]) -> str | None:
    candidates = [path for path, image in images.items() if bids.sidecar_matches(name, image)]
    exact = [p for p in candidates if images[p].suffix == name.suffix]
    if len(exact) == 1:
        return exact[0]
    if len(candidates) == 1:
        return candidates[0]
    primary = [p for p in candidates if images[p].suffix in ("bold", "asl", "pet", "dwi", "cbv")]
    return primary[0] if len(primary) == 1 else None


def group(source: Source, *, mapping: Mapping | None, mapping_file: str | None,
          session_context: str | None, subject_template: str = DEFAULT_SUBJECT_TEMPLATE,
          session_template: str = DEFAULT_SESSION_TEMPLATE) -> Grouping:
    """Step 1 (see the module docstring)."""
    result = Grouping(mapping_file=mapping_file)
    result.rows += [FileRow(path, Outcome.REJECTED, reason) for path, reason in source.rejected]
    members = dict(source.members)
    if mapping_file is not None:
        members.pop(mapping_file, None)
    if mapping is not None:
        _group_mapping(result, members, mapping)
    else:
        _group_bids(result, members, session_context, subject_template, session_template)
    return result


def _group_bids(result: Grouping, members: dict[str, Member], session_context: str | None,
                subject_template: str, session_template: str) -> None:
    names = {path: bids.parse(path) for path in members}
    images = {p: n for p, n in names.items() if n is not None and bids.is_image(p)}
    owned: dict[str, list[str]] = defaultdict(list)
    for path in sorted(members):
        name = names[path]
        if path in images:
            continue
        if bids.is_image(path):
            if session_context is None:
                result.rows.append(FileRow(path, Outcome.IGNORED, "not a BIDS image name "
                                           "(sub-<s>/[ses-<v>/]<datatype>/sub-<s>_..._<suffix>.nii[.gz]) "
                                           "and no --mapping row"))
            else:  # into one given session: any NIfTI is a scan, its type the file stem
                owned.setdefault(path, [])
            continue
        owner = _sidecar_owner(name, images) if name is not None and bids.is_sidecar(path) else None
        if owner is None:
            result.rows.append(FileRow(path, Outcome.IGNORED, "not an image or a sidecar of one"))
        else:
            owned[owner].append(path)
    for path, name in sorted(images.items()):
        modality = name.modality
        if modality is None:
            result.rows.append(FileRow(path, Outcome.IGNORED,
                                       f"BIDS datatype {name.datatype!r} is not MR, PET or CT imaging"))
            result.rows += [FileRow(s, Outcome.IGNORED, f"sidecar of ignored {path}") for s in owned.pop(path, [])]
            continue
        values: dict[str, str | None] = {"sub": name.sub, "ses": name.ses, "modality": modality,
                                         "datatype": name.datatype}
        result.acquisitions.append(Acquisition(
            path, owned.pop(path, []), fill_template(subject_template, values),
            session_context or fill_template(session_template, values), modality, name.datatype,
            name.scan_type))
    for path, sidecars in sorted(owned.items()):  # non-BIDS images, session context only
        result.acquisitions.append(Acquisition(path, sidecars, "", session_context or "", "mr", "",
                                               stem_of(path)))


def _group_mapping(result: Grouping, members: dict[str, Member], mapping: Mapping) -> None:
    result.rows += [FileRow(src, Outcome.REJECTED, reason) for src, reason in mapping.bad_rows]
    claimed: dict[str, MappingRow] = {}
    for row in mapping.rows:
        if row.source in members:
            matched = [row.source]
        else:
            prefix = row.source.rstrip("/") + "/"
            matched = [p for p in members if p.startswith(prefix)]
            if not matched:
                result.rows.append(FileRow(row.source, Outcome.REJECTED,
                                           f"mapping line {row.line}: no such file or folder in the source"))
                continue
        for path in matched:
            # a file row wins over a folder row that also covers it
            if path not in claimed or claimed[path].source != path:
                claimed[path] = row
    images = {p: bids.parse(p) for p in claimed if bids.is_image(p)}
    by_row: dict[int, list[str]] = defaultdict(list)
    sidecars: dict[str, list[str]] = defaultdict(list)
    for path in images:
        by_row[claimed[path].line].append(path)
    for path in sorted(members):
        if path in images:
            continue
        name = bids.parse(path)
        owner = None
        if bids.is_sidecar(path):
            owner = next((p for p in images if PurePosixPath(p).parent == PurePosixPath(path).parent
                          and stem_of(p) == stem_of(path)), None)
            if owner is None and name is not None:
                owner = _sidecar_owner(name, {p: n for p, n in images.items() if n is not None})
        if owner is None:
            reason = "not named in the mapping" if path not in claimed else "not an image or a sidecar of one"
            result.rows.append(FileRow(path, Outcome.IGNORED, reason))
        else:
            sidecars[owner].append(path)
    for path in sorted(images):
        row = claimed[path]
        name = images[path]
        if row.scan is not None and len(by_row[row.line]) > 1:
            result.rows.append(FileRow(path, Outcome.REJECTED,
                                       f"mapping line {row.line} gives scan {row.scan} to a folder of "
                                       f"{len(by_row[row.line])} images"))
            continue
        modality = row.modality or (name.modality if name else None) or "mr"
        scan_type = row.scan_type or (name.scan_type if name else stem_of(path))
        result.acquisitions.append(Acquisition(
            path, sidecars.get(path, []), row.subject, row.session, modality,
            name.datatype if name else "", scan_type, row.scan, row.series_description, row.date))

# --------------------------------------------------------------------------- step 3: the plan

#: Label problems that stop a write (a placeholder label is legal, if odd).
BLOCKING = frozenset({"label-empty", "label-characters", "label-length"})


@dataclass
class Settings:
    """The choices of a run that shape the plan."""

    overwrite: bool = False
    image_resource: str = DEFAULT_IMAGE_RESOURCE
    sidecar_resource: str = DEFAULT_SIDECAR_RESOURCE


def _seconds_to_ms(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return f"{value * 1000:.6g}"


def _number(value: float) -> str:
    return f"{value:.6g}"


def scan_fields(acq: Acquisition, xsi_type: str, modality_code: str, inspection: Inspection | None,
                sidecar: dict[str, Any]) -> dict[str, str]:
    """Query parameters of the scan PUT: type, series description, modality, frames and the
    parameters XNAT stores (TR/TE/TI in ms from BIDS seconds, flip angle, voxel size), plus the
    NIfTI facts without an XNAT field as ``parameters/addParam`` entries (MR scans)."""
    description = acq.series_description or sidecar.get("SeriesDescription") \
        or sidecar.get("ProtocolName") or stem_of(acq.image)
    fields = {"type": acq.scan_type, "series_description": str(description)[:255],
              "modality": modality_code, "quality": "usable"}
    if inspection is not None:
        fields["frames"] = str(inspection.frames)
    element = xsi_type
    if xsi_type in ("xnat:mrScanData", "xnat:ctScanData") and inspection is not None:
        for axis, size in zip("xyz", inspection.voxel_size, strict=True):
            fields[f"{element}/parameters/voxelRes/{axis}"] = _number(size)
    if xsi_type == "xnat:mrScanData":
        for key, name in (("RepetitionTime", "tr"), ("EchoTime", "te"), ("InversionTime", "ti")):
            value = _seconds_to_ms(sidecar.get(key))
            if value is not None:
                fields[f"{element}/parameters/{name}"] = value
        flip = sidecar.get("FlipAngle")
        if isinstance(flip, int | float) and not isinstance(flip, bool):
            fields[f"{element}/parameters/flip"] = _number(flip)
        if inspection is not None:
            extra = {"nifti_orientation": inspection.orientation, "nifti_datatype": inspection.dtype,
                     "nifti_shape": "x".join(str(n) for n in inspection.shape),
                     "nifti_version": str(inspection.version)}
            for key, value in extra.items():
                fields[f"{element}/parameters/addParam[name={key}]/addField"] = value
    return fields


def _row(plan_file: PlannedFile, outcome: Outcome | str, reason: str, subject: str = "",
         session: str = "", scan: str = "") -> FileRow:
    return FileRow(plan_file.source, str(outcome), reason, subject, session, scan, plan_file.resource,
                   plan_file.scanned.digest.size, plan_file.md5)


def _scanned_row(path: str, scanned: Scanned | None, outcome: Outcome, reason: str,
                 subject: str = "", session: str = "") -> FileRow:
    if scanned is None:
        return FileRow(path, str(outcome), reason, subject, session)
    return FileRow(path, str(outcome), reason, subject, session, "", "", scanned.digest.size,
                   scanned.digest.md5)


@dataclass
class _Item:
    acq: Acquisition
    image: PlannedFile
    sidecars: list[PlannedFile]
    sidecar_json: dict[str, Any]


def _prepare(acq: Acquisition, scanned: dict[str, Scanned], settings: Settings,
             rows: list[FileRow]) -> _Item | None:
    """The image and sidecars of ``acq`` as planned files; None (with rows) when the image is refused."""
    image_scan = scanned[acq.image]
    if image_scan.problem is not None:
        rows.append(_scanned_row(acq.image, image_scan, Outcome.REJECTED, image_scan.problem,
                                 acq.subject, acq.session))
        rows += [_scanned_row(s, scanned.get(s), Outcome.REJECTED, f"its image {acq.image} was rejected",
                              acq.subject, acq.session) for s in acq.sidecars]
        return None
    image = PlannedFile(acq.image, PurePosixPath(acq.image).name, settings.image_resource, image_scan)
    sidecars: list[PlannedFile] = []
    sidecar_json: dict[str, Any] = {}
    for path in acq.sidecars:
        found = scanned[path]
        if found.problem is not None:
            rows.append(_scanned_row(path, found, Outcome.REJECTED, found.problem, acq.subject, acq.session))
            continue
        if suffix_of(path) == ".json":
            try:
                document = json.loads((found.content or b"").decode("utf-8-sig"))
                if not isinstance(document, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                rows.append(_scanned_row(path, found, Outcome.REJECTED, f"sidecar is not valid JSON: {exc}",
                                         acq.subject, acq.session))
                continue
            if stem_of(path) == stem_of(acq.image):
                sidecar_json = document
        sidecars.append(PlannedFile(path, PurePosixPath(path).name, settings.sidecar_resource, found))
    return _Item(acq, image, sidecars, sidecar_json)


def _sort_key(item: _Item) -> tuple[int, str, str]:
    order = DATATYPE_ORDER.index(item.acq.datatype) if item.acq.datatype in DATATYPE_ORDER else len(DATATYPE_ORDER)
    return (order, item.acq.scan_type, item.acq.image)


def _label_problem(label: str, kind: labels.Kind) -> str | None:
    problems = [p for p in labels.check_label(label, kind) if p.code in BLOCKING]
    return labels.problems_text(problems) if problems else None


def build(project: str, grouping: Grouping, scanned: dict[str, Scanned], state: ProjectState,
          settings: Settings, *, context: ExistingSession | None = None) -> Plan:
    """Step 3 (see the module docstring). ``context``: the one existing session of a session launch."""
    plan = Plan(project)
    plan.rows += grouping.rows
    by_session: dict[str, list[_Item]] = defaultdict(list)
    for acq in grouping.acquisitions:
        if context is not None:
            acq.subject, acq.session = context.subject_label, context.label
        item = _prepare(acq, scanned, settings, plan.rows)
        if item is not None:
            by_session[acq.session].append(item)
    for label, items in sorted(by_session.items()):
        subjects = sorted({i.acq.subject for i in items})
        session = _plan_session(project, label, subjects, items, state, settings, plan.rows, context)
        if session is not None:
            plan.sessions.append(session)
    return plan


def _refuse(items: list[_Item], outcome: Outcome, reason: str, rows: list[FileRow]) -> None:
    rows.extend(_row(f, outcome, reason, item.acq.subject, item.acq.session)
                for item in items for f in [item.image, *item.sidecars])


def _plan_session(project: str, label: str, subjects: list[str], items: list[_Item], state: ProjectState,
                  settings: Settings, rows: list[FileRow], context: ExistingSession | None) -> PlannedSession | None:
    if len(subjects) > 1:
        _refuse(items, Outcome.CONFLICT, f"session {label} is mapped to several subjects: "
                f"{', '.join(subjects)}", rows)
        return None
    subject = subjects[0]
    if context is None:
        problem = _label_problem(subject, labels.Kind.SUBJECT) or _label_problem(label, labels.Kind.SESSION)
        if problem is not None:
            _refuse(items, Outcome.REJECTED, problem, rows)
            return None
    existing = context or state.sessions.get(label)
    if existing is not None and existing.subject_label != subject:
        _refuse(items, Outcome.CONFLICT,
                f"session {label} already exists in {project} under subject {existing.subject_label}; "
                f"writing it under {subject} would move it (XNAT re-parents it silently)", rows)
        return None
    modalities = {i.acq.modality for i in items}
    session_modality = next(m for m in PRECEDENCE if m in modalities)
    dates = sorted(i.acq.date for i in items if i.acq.date)
    session = PlannedSession(subject, label, XSI[session_modality][0], dates[0] if dates else None,
                             existing is not None, existing.xnat_id if existing else None)
    _plan_scans(session, sorted(items, key=_sort_key), existing, settings, rows)
    return session


def _plan_scans(session: PlannedSession, items: list[_Item], existing: ExistingSession | None,
                settings: Settings, rows: list[FileRow]) -> None:
    scans = existing.scans if existing else {}
    by_type: dict[str, str] = {}
    for scan_id, (scan_type, _) in sorted(scans.items(), key=lambda kv: _id_order(kv[0])):
        by_type.setdefault(scan_type, scan_id)
    used = set(scans) | {i.acq.scan for i in items if i.acq.scan}
    seen_keys: dict[str, str] = {}
    next_number = 1
    for item in items:
        acq = item.acq
        key = f"id:{acq.scan}" if acq.scan else f"type:{acq.scan_type}"
        if key in seen_keys:
            _refuse([item], Outcome.CONFLICT, f"{seen_keys[key]} maps to the same scan "
                    f"({acq.scan or acq.scan_type}) of session {session.label}", rows)
            continue
        seen_keys[key] = acq.image
        if acq.scan:
            problem = _label_problem(acq.scan, labels.Kind.SCAN)
            if problem is not None:
                _refuse([item], Outcome.REJECTED, problem, rows)
                continue
            scan_id = acq.scan
        elif acq.scan_type in by_type:
            scan_id = by_type[acq.scan_type]
        else:
            while str(next_number) in used:
                next_number += 1
            scan_id = str(next_number)
            used.add(scan_id)
        _, xsi_type, modality_code = XSI[acq.modality]
        exists = scan_id in scans
        if exists:
            old_type, old_xsi = scans[scan_id]
            if old_xsi and old_xsi != xsi_type:
                _refuse([item], Outcome.CONFLICT, f"scan {scan_id} exists as {old_xsi}, not {xsi_type}", rows)
                continue
            if old_type != acq.scan_type and not settings.overwrite:
                _refuse([item], Outcome.CONFLICT, f"scan {scan_id} exists with type {old_type!r}, not "
                        f"{acq.scan_type!r} (--overwrite updates it)", rows)
                continue
        files = [item.image, *item.sidecars]
        _plan_files(scan_id, files, existing, settings, exists)
        planned = PlannedScan(scan_id, xsi_type,
                              scan_fields(acq, xsi_type, modality_code, item.image.scanned.inspection,
                                          item.sidecar_json),
                              files, exists, write=not exists or settings.overwrite,
                              inspection=item.image.scanned.inspection)
        session.scans.append(planned)


def _id_order(scan_id: str) -> tuple[int, str]:
    return (int(scan_id), "") if scan_id.isdigit() else (1 << 30, scan_id)


def _plan_files(scan_id: str, files: list[PlannedFile], existing: ExistingSession | None, settings: Settings,
                scan_exists: bool) -> None:
    seen: set[tuple[str, str]] = set()
    for f in files:
        key = (f.resource, f.name)
        if key in seen:
            f.action, f.reason = Action.CONFLICT, f"another file of this scan is also {f.resource}/{f.name}"
            continue
        seen.add(key)
        there = existing.files.get((scan_id, f.resource, f.name)) if existing and scan_exists else None
        if there is None:
            continue
        digest = f.scanned.digest
        # the command reads every file of an existing session in full, so its MD5 is known
        same = there.digest == digest.md5 if there.digest and digest.md5 else there.size == digest.size
        if same:
            f.action = Action.SKIP
            f.reason = "identical file already in XNAT" + ("" if there.digest else " (same size; XNAT has no digest)")
        elif settings.overwrite:
            f.overwrite = True
            f.reason = "replaces a file of other content (--overwrite)"
        else:
            f.action = Action.CONFLICT
            f.reason = (f"{f.resource}/{f.name} exists in scan {scan_id} with other content "
                        f"(XNAT md5 {there.digest or '?'}, size {there.size}); --overwrite replaces it")
