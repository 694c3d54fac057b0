"""A project with good and bad labels, DICOM written with pydicom, and its expected findings:
shared by label-validation's tests against xnatsim, its docker tests and its benchmark."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

CONVENTION = """\
# label convention of the test project
subject: '^sub[0-9]{3}$'
session: '{subject}_{visit}_{modality}'
fields:
  visit: [baseline, m12, m24]
modality:
  mr: xnat:mrSessionData
  pet: xnat:petSessionData
scan-types: [T1w, T2w, FLAIR, PET]
uniqueness: site
"""


@dataclass
class Series:
    scan: str
    type: str
    modality: str = "MR"
    patient_id: str | None = None  # None: the session label (as XNAT's anonymisation writes it)
    patient_name: str | None = None  # None: the subject label
    study_date: str | None = None  # None: the session date as YYYYMMDD
    study_uid: str = "1.2.826.0.1.3680043.2.1125.1"


@dataclass
class SessionSpec:
    subject: str
    label: str
    xsi_type: str = "xnat:mrSessionData"
    date: str = "2024-01-02"
    series: list[Series] = field(default_factory=list)
    #: rules this session must break (and no others)
    expect: set[str] = field(default_factory=set)


def _ok(*types: str) -> list[Series]:
    return [Series(str(i + 1), t) for i, t in enumerate(types)]


SUBJECTS = ("sub001", "sub002", "Sub 3")
SESSIONS: list[SessionSpec] = [
    SessionSpec("sub001", "sub001_baseline_mr", series=_ok("T1w", "T2w")),
    SessionSpec("sub001", "sub001_m12_pet", expect={"session-modality"}, series=_ok("T1w")),
    SessionSpec("sub002", "sub002_m36_mr", expect={"session-field"}, series=_ok("FLAIR")),
    SessionSpec("sub002", "sub001_m24_mr", expect={"session-subject"}),
    SessionSpec("sub002", "sub002 m12.mr", expect={"xnat-characters", "session-template"}),
    SessionSpec("sub002", "sub002_m12_mr", date="", expect={"date-missing", "scan-type"},
                series=_ok("localizer")),
    SessionSpec("sub002", "sub002_baseline_mr",
                expect={"dicom-patient-id", "dicom-patient-name", "dicom-study-date",
                        "dicom-modality", "dicom-study-uid"},
                series=[Series("1", "T1w", modality="CT", patient_id="OTHER", patient_name="DOE^JANE",
                               study_date="20230101"),
                        Series("2", "T2w", modality="CT", study_uid="1.2.826.0.1.3680043.2.1125.2")]),
]
#: the subject with an illegal label breaks these
SUBJECT_EXPECT = {"Sub 3": {"xnat-characters", "subject-pattern"}}
#: a second project that reuses a label of the first (site-wide uniqueness)
OTHER_PROJECT_LABEL = "sub001_baseline_mr"


def dicom_bytes(series: Series, session: SessionSpec) -> bytes:
    """A small but complete DICOM file (pydicom) with the series' header values."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = session.label if series.patient_id is None else series.patient_id
    ds.PatientName = session.subject if series.patient_name is None else series.patient_name
    ds.StudyDate = session.date.replace("-", "") if series.study_date is None else series.study_date
    ds.Modality = series.modality
    ds.StudyInstanceUID = series.study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = int(series.scan)
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.SamplesPerPixel = 1
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\0" * 8
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def build_project(http: Any, url: str, project: str, *, convention: str | None = CONVENTION,
                  sessions: list[SessionSpec] | None = None, subjects: tuple[str, ...] = SUBJECTS) -> dict[str, str]:
    """Create ``project`` over REST (``http``: a requests session logged in); returns label -> ID."""

    def put(path: str, **kw: Any) -> Any:
        r = http.put(url + path, timeout=60, **kw)
        assert r.status_code in (200, 201), (path, r.status_code, r.text[:200])
        return r

    p = f"/data/projects/{project}"
    put(p, params={"xsiType": "xnat:projectData"})
    for subject in subjects:
        put(f"{p}/subjects/{subject}")
    if convention is not None:
        put(f"{p}/config/xnatnode/labels", params={"inbody": "true"}, data=convention.encode())
    ids: dict[str, str] = {}
    for s in SESSIONS if sessions is None else sessions:
        params = {"xsiType": s.xsi_type}
        if s.date:
            params["date"] = s.date
        r = put(f"{p}/subjects/{s.subject}/experiments/{s.label}", params=params)
        ids[s.label] = r.text.strip().rsplit("/", 1)[-1]
        for series in s.series:
            scan = f"{p}/subjects/{s.subject}/experiments/{ids[s.label]}/scans/{series.scan}"
            put(scan, params={"xsiType": "xnat:mrScanData", "type": series.type,
                              "xnat:mrScanData/modality": series.modality})
            put(f"{scan}/resources/DICOM/files/{series.scan}-1.dcm", data=dicom_bytes(series, s),
                headers={"Content-Type": "application/dicom"})
    return ids
