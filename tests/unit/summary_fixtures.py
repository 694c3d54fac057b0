"""In-memory project records of exactly known content, shared by the summary/report unit tests."""

from __future__ import annotations

import datetime as dt

from xnatnode.listings import ProjectData, Resource, Scan, Session, Subject


def small_project(sizes: str = "rest") -> ProjectData:
    """3 subjects (one without sessions), 5 sessions (MR, PET, CT, other; one undated, one odd
    label, one without scans), 6 scans (one without files) and 9 resources (one per level kind)."""
    d = dt.date
    return ProjectData(
        project="PRJ",
        sizes=sizes,
        subjects=[
            Subject("S1", "subj001", "control"),
            Subject("S2", "subj002", "patient"),
            Subject("S3", "subj003", ""),
        ],
        sessions=[
            Session("E1", "subj001_baseline_mr", "S1", "xnat:mrSessionData", d(2023, 1, 15), d(2023, 1, 16)),
            Session("E2", "subj001_followup_pet", "S1", "xnat:petSessionData", d(2023, 3, 2)),
            Session("E3", "subj002_baseline_ct", "S2", "xnat:ctSessionData", None),
            Session("E4", "weird label!", "S2", "xnat:mrSessionData", d(2024, 2, 29), d(2024, 3, 1)),
            Session("E5", "subj002_notes", "S2", "xnat:subjectVariablesData", None),
        ],
        scans=[
            Scan("E1", "1", "T1w", "MPRAGE", "usable"),
            Scan("E1", "2", "T2w", "T2 SPACE", "usable"),
            Scan("E1", "3", "dwi", "DTI 64dir", "questionable"),
            Scan("E2", "1", "PET", "FDG static", "usable"),
            Scan("E4", "1", "T1w", "MPRAGE", ""),
            Scan("E4", "10", "T1w", "", "unusable"),
        ],
        resources=[
            Resource("project", "PROTOCOLS", "PRJ", "", 2, 1000),
            Resource("subject", "CONSENT", "S1", "", 1, 50),
            Resource("session", "NOTES", "E1", "", 1, 10),
            Resource("scan", "DICOM", "E1", "1", 100, 1_000_000),
            Resource("scan", "NIFTI", "E1", "1", 2, 500_000),
            Resource("scan", "DICOM", "E1", "2", 50, 400_000),
            Resource("scan", "DICOM", "E1", "3", 0, 0),
            Resource("scan", "DICOM", "E2", "1", 10, 2_000_000),
            Resource("scan", "DICOM", "E4", "1", 3, 3000),
        ],
    )
