"""Seeding a store: synthetic projects of any size and the small realistic ``demo`` project.

:func:`apply` is what ``serve --seed NAME`` and ``python -m xnatsim seed`` call. It accepts a preset
name (:data:`PRESETS`), a :class:`SeedSpec` or a mapping of ``SeedSpec`` fields, writes through the
store's bulk path (:meth:`xnatsim.store.Store.bulk`, no listener events) and returns the
**manifest**: the truth it built (counts and bytes per level, per project and per session, and the
sessions whose DICOM headers were made to disagree with their labels) as a JSON-able dict.

Manifest keys: ``seed``, ``spec``, ``totals`` (``projects, subjects, sessions, scans, resources,
files, bytes``), ``projects`` (``{ID: {subjects, sessions, scans, resources, files, bytes}}``, all
levels below the project including project and session resources), ``sessions`` (one entry per
session: project, subject, label, ID, date, modality and its own counts) and ``inconsistent``
(``{project, session, subject, field, header}`` for every session whose DICOM ``field`` says
``header`` instead of the label or date).

Labels (synthetic): project ``PREFIX`` (or ``PREFIX01``… when several), subject ``<P>_S0001``,
session ``<subject>_<MOD><n>`` (``MR1``, ``MR2``…), scan IDs ``1``…``N``. DICOM headers follow
:mod:`xnatsim.synth` (PatientName = subject, PatientID = session, StudyDescription = project …).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from xnatsim import synth
from xnatsim.store import BulkLoader, Parent, Store
from xnatsim.synth import SCAN_TYPES, SESSION_TYPES

log = logging.getLogger("xnatsim.seed")

FileKind = Literal["dicom", "nifti", "tiny", "none"]
FILE_KINDS: tuple[str, ...] = ("dicom", "nifti", "tiny", "none")

#: (scan type, series description) catalogue per modality, cycled through a session's scans
SERIES: dict[str, tuple[tuple[str, str], ...]] = {
    "MR": (
        ("localizer", "AAHead_Scout_32ch"),
        ("T1w", "T1w_MPRAGE_sag_1mm"),
        ("T2w", "T2w_SPACE_sag_1mm"),
        ("FLAIR", "t2_flair_tra_3mm"),
        ("DWI", "dMRI_dir98_AP"),
        ("fmap", "SpinEchoFieldMap_AP"),
        ("fmap", "SpinEchoFieldMap_PA"),
        ("bold", "rfMRI_REST_AP"),
        ("bold", "rfMRI_REST_PA"),
        ("SWI", "swi_tra_1.5mm"),
        ("ASL", "pcasl_tra_mb"),
        ("T1w", "T1w_MPRAGE_sag_1mm_ND"),
    ),
    "PT": (
        ("CTAC", "CT_AC_2.5mm"),
        ("PET_AC", "PET_FDG_AC_3D"),
        ("PET_NAC", "PET_FDG_NAC"),
        ("dyn", "PET_FDG_dynamic_20x60s"),
    ),
    "CT": (
        ("topogram", "Topogram_0.6_T20s"),
        ("head", "Head_1.0_H31s"),
        ("head_bone", "Head_1.0_H70h_bone"),
        ("angio", "CTA_0.75_Bv36"),
    ),
}
RESOURCE_LABELS = {"dicom": "DICOM", "nifti": "NIFTI", "tiny": "DATA"}


class SeedError(ValueError):
    """A seed spec or preset name that cannot be built (message is for the user)."""


@dataclass(frozen=True)
class SeedSpec:
    """What to build. Counts are per parent (subjects per project, sessions per subject …)."""

    projects: int = 1
    subjects: int = 10
    sessions_per_subject: int = 2
    scans_per_session: int = 4
    files_per_scan: int = 2
    files: FileKind = "tiny"
    #: size of each ``tiny`` placeholder file in bytes
    tiny_size: int = 64
    #: fraction of sessions whose DICOM headers disagree with their labels (needs ``files="dicom"``)
    inconsistent_headers: float = 0.0
    random_seed: int = 0
    project_prefix: str = "SYN"
    #: session modalities, chosen per session in turn (``MR``, ``PT``, ``CT``)
    modalities: tuple[str, ...] = ("MR",)
    #: rows and columns of each DICOM frame / edge of each NIfTI volume
    image_size: int = 16

    def check(self) -> SeedSpec:
        """Validate; raises :class:`SeedError` with a clear message."""
        for name in ("projects", "subjects", "sessions_per_subject", "scans_per_session", "files_per_scan",
                     "tiny_size", "image_size"):
            if getattr(self, name) < 0:
                raise SeedError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.projects < 1:
            raise SeedError("projects must be ≥ 1")
        if self.files not in FILE_KINDS:
            raise SeedError(f"files must be one of {', '.join(FILE_KINDS)}, got {self.files!r}")
        if not 0.0 <= self.inconsistent_headers <= 1.0:
            raise SeedError(f"inconsistent_headers must be within 0..1, got {self.inconsistent_headers}")
        if self.inconsistent_headers > 0 and self.files != "dicom":
            raise SeedError("inconsistent headers need DICOM files (files='dicom')")
        bad = [m for m in self.modalities if m not in SESSION_TYPES]
        if bad or not self.modalities:
            raise SeedError(f"modalities must be among {', '.join(SESSION_TYPES)}, got {bad or 'none'}")
        if self.image_size < 2 or self.image_size > 512:
            raise SeedError("image_size must be within 2..512")
        return self

    def project_ids(self) -> list[str]:
        if self.projects == 1:
            return [self.project_prefix]
        return [f"{self.project_prefix}{n:02d}" for n in range(1, self.projects + 1)]


#: named specs; ``demo`` is special (see :func:`seed_demo`)
PRESETS: dict[str, SeedSpec] = {
    "empty": SeedSpec(subjects=0),
    "small": SeedSpec(subjects=4, sessions_per_subject=2, scans_per_session=3, files_per_scan=2, files="dicom"),
    "medium": SeedSpec(subjects=100, sessions_per_subject=2, scans_per_session=6, files_per_scan=2),
    "bench": SeedSpec(project_prefix="BENCH", subjects=5000, sessions_per_subject=2, scans_per_session=12,
                      files_per_scan=1, files="tiny"),
}
PRESET_NAMES: tuple[str, ...] = ("demo", *PRESETS)


# --------------------------------------------------------------------------- manifest


@dataclass
class Tally:
    """Counts and bytes below one object."""

    subjects: int = 0
    sessions: int = 0
    scans: int = 0
    resources: int = 0
    files: int = 0
    bytes: int = 0

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class Manifest:
    """The truth a seed built; :meth:`as_dict` is what gets written as JSON."""

    seed: str
    spec: dict[str, Any]
    totals: Tally = field(default_factory=Tally)
    projects: dict[str, Tally] = field(default_factory=dict)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    inconsistent: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "spec": self.spec,
            "totals": {"projects": len(self.projects), **asdict(self.totals)},
            "projects": {p: asdict(t) for p, t in self.projects.items()},
            "sessions": self.sessions,
            "inconsistent": self.inconsistent,
        }


class _Writer:
    """Bulk writes plus bookkeeping for the manifest."""

    def __init__(self, store: Store, bulk: BulkLoader, manifest: Manifest) -> None:
        self.store, self.bulk, self.manifest = store, bulk, manifest

    def project(self, project: str, name: str, description: str) -> Tally:
        self.store.put_project(project, {"name": name, "description": description}, user="admin")
        return self.manifest.projects.setdefault(project, Tally())

    def resource(self, parent: Parent, label: str, files: Iterator[tuple[str, bytes]], tally: Tally, *,
                 format: str = "", content: str = "") -> None:
        rid = self.bulk.resource(parent, label, format=format, content=content)
        tally.resources += 1
        for path, data in files:
            self.bulk.file(rid, path, data, format=format, content=content)
            tally.files += 1
            tally.bytes += len(data)


def write_manifest(manifest: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- synthetic projects


def _subject_label(project: str, n: int, width: int) -> str:
    return f"{project}_S{n:0{width}d}"


def _scan_files(spec: SeedSpec, labels: synth.DicomLabels, scan_type: str) -> Iterator[tuple[str, bytes]]:
    if spec.files == "dicom":
        for k in range(1, spec.files_per_scan + 1):
            one = replace(labels, instance=k)
            data = synth.dicom_bytes(one, rows=spec.image_size, columns=spec.image_size, seed=spec.random_seed)
            yield f"{labels.scan_id}-{k}.dcm", data
    elif spec.files == "nifti":
        stem = f"{labels.session}_{labels.scan_id}_{scan_type}"
        for k in range(1, spec.files_per_scan + 1):
            if k == 2:
                sidecar = {"SeriesDescription": labels.series_description, "SeriesNumber": labels.scan_id,
                           "Modality": labels.modality, "AcquisitionDate": labels.date or ""}
                yield f"{stem}.json", (json.dumps(sidecar, indent=1) + "\n").encode()
            else:
                name = f"{stem}.nii.gz" if k == 1 else f"{stem}_run-{k}.nii.gz"
                edge = spec.image_size
                yield name, synth.nifti_bytes(labels.series_description, shape=(edge, edge, max(2, edge // 2)),
                                              seed=spec.random_seed + k)
    elif spec.files == "tiny":
        for k in range(1, spec.files_per_scan + 1):
            name = f"file_{k:04d}.dat"
            yield name, synth.tiny_bytes(f"{labels.session}/{labels.scan_id}/{name}", spec.tiny_size)


def _mismatch(kind: int, labels: synth.DicomLabels, other_subject: str) -> tuple[synth.DicomLabels, str, str]:
    """A copy of ``labels`` with one header made wrong: ``(labels, field, header value)``."""
    if kind == 0:
        return replace(labels, subject=other_subject), "PatientName", other_subject
    if kind == 1:
        wrong = labels.session + "X"
        return replace(labels, session=wrong), "PatientID", wrong
    day = dt.date.fromisoformat(labels.date or "2020-01-01") + dt.timedelta(days=1)
    return replace(labels, date=day.isoformat()), "StudyDate", day.strftime("%Y%m%d")


def seed_synthetic(store: Store, spec: SeedSpec, name: str = "custom") -> dict[str, Any]:
    """Build ``spec`` into ``store``; returns the manifest dict."""
    spec.check()
    rng = random.Random(spec.random_seed)
    odd_rng = random.Random(spec.random_seed + 7919)
    manifest = Manifest(name, {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items()})
    width = max(4, len(str(spec.subjects)))
    session_counter = 0
    for project in spec.project_ids():
        if store.get_project(project) is not None:
            raise SeedError(f"project {project} already exists in this store")
    with store.bulk() as bulk:
        writer = _Writer(store, bulk, manifest)
        for project in spec.project_ids():
            ptally = writer.project(project, f"Synthetic {project}",
                                    f"xnatsim synthetic project (seed {spec.random_seed})")
            for s in range(1, spec.subjects + 1):
                subject = _subject_label(project, s, width)
                sid = bulk.subject(project, subject, {"gender": rng.choice(("male", "female")),
                                                      "yob": str(rng.randint(1940, 2005))})
                ptally.subjects += 1
                first = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(0, 1500))
                per_modality: dict[str, int] = {}
                for k in range(spec.sessions_per_subject):
                    modality = spec.modalities[session_counter % len(spec.modalities)]
                    session_counter += 1
                    per_modality[modality] = per_modality.get(modality, 0) + 1
                    label = f"{subject}_{modality}{per_modality[modality]}"
                    date = (first + dt.timedelta(days=k * rng.randint(150, 400))).isoformat()
                    stally = Tally(sessions=1)
                    odd = spec.inconsistent_headers > 0 and odd_rng.random() < spec.inconsistent_headers
                    header_labels = synth.DicomLabels(project, subject, label, "1", "", modality, date)
                    wrong_field = wrong_value = ""
                    if odd:
                        other = _subject_label(project, s % max(spec.subjects, 1) + 1, width)
                        header_labels, wrong_field, wrong_value = _mismatch(
                            len(manifest.inconsistent) % 3, header_labels, other if other != subject else subject + "X")
                        manifest.inconsistent.append({"project": project, "session": label, "subject": subject,
                                                      "field": wrong_field, "header": wrong_value})
                    eid = bulk.experiment(project, sid, label, SESSION_TYPES[modality], {
                        "date": date, "modality": modality, "UID": synth.uid(project, header_labels.session),
                        "dcmPatientName": header_labels.subject, "dcmPatientId": header_labels.session,
                        "scanner/manufacturer": "XNATSIM"})
                    catalogue = SERIES[modality]
                    for n in range(1, spec.scans_per_session + 1):
                        scan_type, description = catalogue[(n - 1) % len(catalogue)]
                        scan_id = str(n)
                        frames = spec.files_per_scan if spec.files == "dicom" else 0
                        pk = bulk.scan(eid, scan_id, SCAN_TYPES[modality], {
                            "type": scan_type, "series_description": description, "quality": "usable",
                            "frames": str(frames), "modality": modality,
                            "UID": synth.uid(project, header_labels.session, scan_id)})
                        stally.scans += 1
                        if spec.files == "none" or spec.files_per_scan == 0:
                            continue
                        labels = replace(header_labels, scan_id=scan_id, series_description=description)
                        writer.resource(Parent("scan", project, sid, eid, pk), RESOURCE_LABELS[spec.files],
                                        _scan_files(spec, labels, scan_type), stally,
                                        format=RESOURCE_LABELS[spec.files] if spec.files != "tiny" else "",
                                        content="RAW" if spec.files == "dicom" else "")
                    manifest.sessions.append({"project": project, "subject": subject, "label": label, "ID": eid,
                                              "date": date, "modality": modality, "scans": stally.scans,
                                              "resources": stally.resources, "files": stally.files,
                                              "bytes": stally.bytes})
                    ptally.add(stally)
        for tally in manifest.projects.values():
            manifest.totals.add(tally)
    return manifest.as_dict()


# --------------------------------------------------------------------------- demo project

DEMO_PROJECT = "DEMO"


@dataclass(frozen=True)
class _DemoSession:
    subject: str
    label: str
    modality: str
    date: str | None
    scans: tuple[tuple[str, str, str], ...]  # (scan id, type, series description)
    nifti: bool = True


_MR_SCANS = (("1", "localizer", "AAHead_Scout_32ch"), ("2", "T1w", "T1w_MPRAGE_sag_1mm"),
             ("3", "T2w", "T2w_SPACE_sag_1mm"), ("4", "FLAIR", "t2_flair_tra_3mm"),
             ("5", "bold", "rfMRI_REST_AP"))
_PET_SCANS = (("1", "CTAC", "CT_AC_2.5mm"), ("2", "PET_AC", "PET_FDG_AC_3D"))
_CT_SCANS = (("1", "topogram", "Topogram_0.6_T20s"), ("2", "head", "Head_1.0_H31s"))

DEMO_SESSIONS: tuple[_DemoSession, ...] = (
    _DemoSession("DEMO_001", "DEMO_001_MR1", "MR", "2023-02-14", _MR_SCANS),
    _DemoSession("DEMO_001", "DEMO_001_MR2", "MR", "2024-02-20", _MR_SCANS[:4]),
    _DemoSession("DEMO_001", "DEMO_001_PET1", "PT", "2023-02-16", _PET_SCANS, nifti=False),
    _DemoSession("DEMO_002", "DEMO_002_MR1", "MR", "2023-03-01", _MR_SCANS),
    _DemoSession("DEMO_002", "DEMO_002_MR2", "MR", "2024-03-05", _MR_SCANS[1:3]),
    _DemoSession("DEMO_003", "DEMO_003_MR1", "MR", "2023-04-11", _MR_SCANS[:4]),
    _DemoSession("DEMO_003", "DEMO_003_CT1", "CT", "2023-04-12", _CT_SCANS, nifti=False),
    _DemoSession("DEMO_004", "DEMO_004_MR1", "MR", None, _MR_SCANS[:3]),  # no date
    _DemoSession("DEMO_005", "DEMO_005_MR1", "MR", "2023-06-30", _MR_SCANS[:3]),
    _DemoSession("DEMO_005", "DEMO_005_MR2", "MR", "2024-07-02", ()),  # no scans
    _DemoSession("DEMO_006", "DEMO_006_PET1", "PT", "2023-09-09", _PET_SCANS, nifti=False),
    _DemoSession("demo008", "demo008_mr1.v2", "MR", "2023-10-10", _MR_SCANS[1:3]),  # odd labels
)
#: subjects with no sessions at all
DEMO_EMPTY_SUBJECTS = ("DEMO_007",)
#: (session, scan ID) that exist without any resource or file
DEMO_SCANS_WITHOUT_FILES = (("DEMO_003_MR1", "4"),)
DEMO_DICOM_PER_SCAN = 3


def seed_demo(store: Store) -> dict[str, Any]:
    """The ``demo`` project: small, varied, real DICOM and NIfTI (see the README for the tour)."""
    manifest = Manifest("demo", {"project": DEMO_PROJECT})
    if store.get_project(DEMO_PROJECT) is not None:
        raise SeedError(f"project {DEMO_PROJECT} already exists in this store")
    rng = random.Random(2024)
    with store.bulk() as bulk:
        writer = _Writer(store, bulk, manifest)
        ptally = writer.project(DEMO_PROJECT, "xnatsim demo project",
                                "Small realistic project: MR baseline/follow-up, PET and CT sessions.")
        protocol = {"project": DEMO_PROJECT, "sessions": ["MR baseline", "MR follow-up", "PET", "CT"],
                    "conventions": {"subject": "DEMO_NNN", "session": "<subject>_<MOD><n>"}}
        writer.resource(Parent("project", DEMO_PROJECT), "PROTOCOLS", iter([
            ("README.txt", b"Demo project seeded by xnatsim. Labels follow DEMO_NNN / <subject>_<MOD><n>.\n"),
            ("protocol.json", (json.dumps(protocol, indent=1) + "\n").encode()),
        ]), ptally, format="MISC")
        subject_ids: dict[str, str] = {}
        subjects = [s.subject for s in DEMO_SESSIONS] + list(DEMO_EMPTY_SUBJECTS)
        for subject in dict.fromkeys(subjects):
            subject_ids[subject] = bulk.subject(DEMO_PROJECT, subject, {
                "gender": rng.choice(("male", "female")), "yob": str(rng.randint(1950, 2000))})
            ptally.subjects += 1
        for session in DEMO_SESSIONS:
            sid = subject_ids[session.subject]
            values = {"modality": session.modality, "UID": synth.uid(DEMO_PROJECT, session.label),
                      "dcmPatientName": session.subject, "dcmPatientId": session.label,
                      "scanner/manufacturer": "XNATSIM"}
            if session.date:
                values["date"] = session.date
            eid = bulk.experiment(DEMO_PROJECT, sid, session.label, SESSION_TYPES[session.modality], values)
            stally = Tally(sessions=1)
            for scan_id, scan_type, description in session.scans:
                pk = bulk.scan(eid, scan_id, SCAN_TYPES[session.modality], {
                    "type": scan_type, "series_description": description, "quality": "usable",
                    "frames": str(DEMO_DICOM_PER_SCAN), "modality": session.modality,
                    "UID": synth.uid(DEMO_PROJECT, session.label, scan_id)})
                stally.scans += 1
                if (session.label, scan_id) in DEMO_SCANS_WITHOUT_FILES:
                    continue
                labels = synth.DicomLabels(DEMO_PROJECT, session.subject, session.label, scan_id, description,
                                           session.modality, session.date)
                parent = Parent("scan", DEMO_PROJECT, sid, eid, pk)
                spec = SeedSpec(files="dicom", files_per_scan=DEMO_DICOM_PER_SCAN, image_size=32)
                writer.resource(parent, "DICOM", _scan_files(spec, labels, scan_type), stally,
                                format="DICOM", content="RAW")
                if session.nifti and scan_type != "localizer":
                    nspec = SeedSpec(files="nifti", files_per_scan=2, image_size=24)
                    writer.resource(parent, "NIFTI", _scan_files(nspec, labels, scan_type), stally,
                                    format="NIFTI", content="NIFTI_RAW")
            if session.label == "DEMO_001_MR1":
                qc = {"session": session.label, "motion_mm": 0.31, "snr": 18.2, "pass": True}
                writer.resource(Parent("experiment", DEMO_PROJECT, sid, eid), "QC", iter([
                    ("qc.json", (json.dumps(qc, indent=1) + "\n").encode())]), stally, format="JSON")
            manifest.sessions.append({"project": DEMO_PROJECT, "subject": session.subject, "label": session.label,
                                      "ID": eid, "date": session.date or "", "modality": session.modality,
                                      "scans": stally.scans, "resources": stally.resources,
                                      "files": stally.files, "bytes": stally.bytes})
            ptally.add(stally)
        manifest.totals.add(ptally)
    return manifest.as_dict()


# --------------------------------------------------------------------------- entry point


def spec_from(value: SeedSpec | Mapping[str, Any]) -> SeedSpec:
    """A :class:`SeedSpec` from itself or a mapping of its fields (unknown keys are an error)."""
    if isinstance(value, SeedSpec):
        return value.check()
    known = {f.name for f in fields(SeedSpec)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise SeedError(f"unknown seed spec keys: {', '.join(unknown)}")
    data = dict(value)
    if "modalities" in data:
        data["modalities"] = tuple(data["modalities"])
    return SeedSpec(**data).check()


def apply(store: Store, name_or_spec: str | SeedSpec | Mapping[str, Any]) -> dict[str, Any]:
    """Seed ``store`` with a preset name (:data:`PRESET_NAMES`), a spec or a spec mapping.

    Returns the manifest; raises :class:`SeedError` for unknown names, bad specs or when only some
    of the projects exist. When all of them exist already nothing is written and the manifest says
    ``"skipped": true`` (so ``serve --seed demo`` can be re-run on the same data folder).
    """
    if isinstance(name_or_spec, str):
        if name_or_spec == "demo":
            if store.get_project(DEMO_PROJECT) is not None:
                return _already("demo", [DEMO_PROJECT])
            return seed_demo(store)
        preset = PRESETS.get(name_or_spec)
        if preset is None:
            raise SeedError(f"unknown seed {name_or_spec!r}; choose one of {', '.join(PRESET_NAMES)}")
        name, spec = name_or_spec, preset
    else:
        name, spec = "custom", spec_from(name_or_spec)
    projects = spec.project_ids()
    if all(store.get_project(p) is not None for p in projects):
        return _already(name, projects)
    return seed_synthetic(store, spec, name)


def _already(name: str, projects: list[str]) -> dict[str, Any]:
    """The manifest of a seed whose projects are all there already (re-running serve --seed)."""
    log.info("seed %s: projects %s already exist; nothing to do", name, ", ".join(projects))
    return {"seed": name, "skipped": True, "existing": projects, "projects": {}, "sessions": [],
            "inconsistent": [], "totals": {"projects": 0, **asdict(Tally())}}
