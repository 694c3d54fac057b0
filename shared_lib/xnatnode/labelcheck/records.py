"""What label-validation looks at: typed records of a project's (or one session's) labels, the
DICOM header fields that bear on them, and the site's other labels.  Filled by
:mod:`xnatnode.labelcheck.source` (REST) and :mod:`xnatnode.labelcheck.headers` (the mount)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

HeaderSource = Literal["mount", "xnat", "none"]


@dataclass(frozen=True, slots=True)
class SubjectRec:
    id: str
    label: str


@dataclass(frozen=True, slots=True)
class SessionRec:
    """An experiment with the fields the checks need; ``dcm_*``/``uid`` are XNAT's stored header
    fields (``dcmPatientId``, ``dcmPatientName``, ``UID``), blank when XNAT holds none."""

    id: str
    label: str
    subject_id: str
    subject_label: str
    xsi_type: str
    date: dt.date | None = None
    dcm_patient_id: str = ""
    dcm_patient_name: str = ""
    uid: str = ""

    @property
    def is_image_session(self) -> bool:
        return self.xsi_type.lower().endswith("sessiondata")


@dataclass(frozen=True, slots=True)
class ScanRec:
    session_id: str
    id: str
    type: str = ""
    modality: str = ""


@dataclass(frozen=True, slots=True)
class SeriesHeader:
    """Header fields of the first DICOM file of one scan (one series), read from the mount."""

    session_id: str
    scan_id: str
    file: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    modality: str = ""
    study_uid: str = ""


@dataclass(frozen=True, slots=True)
class SiteLabel:
    """A session label anywhere on the site (for site-wide uniqueness)."""

    project: str
    id: str
    label: str


@dataclass(slots=True)
class Snapshot:
    """Everything read for one run.  ``targets``: IDs of the sessions under check (all of the
    project's in project context, one in session context); subjects and sessions hold the whole
    project so that uniqueness can be judged."""

    project: str
    context: Literal["project", "session"]
    subjects: list[SubjectRec] = field(default_factory=list)
    sessions: list[SessionRec] = field(default_factory=list)
    scans: list[ScanRec] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    #: session ID -> first-file headers per series (sessions read from the mount only)
    headers: dict[str, list[SeriesHeader]] = field(default_factory=dict)
    #: (session ID, relative path, reason) of DICOM files that could not be read
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)
    site_labels: list[SiteLabel] | None = None
    requests: int = 0

    def header_source(self, session: SessionRec) -> HeaderSource:
        """Where the session's header fields come from: the mount, XNAT's stored fields, none."""
        if session.id in self.headers:
            return "mount"
        if session.dcm_patient_id or session.dcm_patient_name or session.uid:
            return "xnat"
        return "none"
