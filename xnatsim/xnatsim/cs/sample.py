"""A few small sessions for Container Service tests and benchmarks (independent of the seeds)."""

from __future__ import annotations

from xnatsim.store import Parent, Store

__all__ = ["add_sessions"]

_SESSION_TYPES = {"MR": ("xnat:mrSessionData", "xnat:mrScanData"), "CT": ("xnat:ctSessionData", "xnat:ctScanData"),
                  "PT": ("xnat:petSessionData", "xnat:petScanData")}


def add_sessions(store: Store, project: str, count: int, *, modality: str = "MR", start: int = 1,
                 user: str = "admin") -> list[str]:
    """Create ``project`` (if needed) and ``count`` sessions, one per subject, each with scan 1
    holding a two-file ``DICOM`` resource; returns the experiment ids."""
    session_type, scan_type = _SESSION_TYPES[modality]
    if store.get_project(project) is None:
        store.put_project(project, {"name": f"{project} project", "secondary_ID": project}, user=user)
    ids = []
    for n in range(start, start + count):
        subject, _ = store.put_subject(project, f"{project}_S{n:03d}", {}, user=user)
        exp, _ = store.put_experiment(project, subject.id, f"{project}_S{n:03d}_{modality}1", session_type,
                                      {"date": "2024-01-02", "modality": modality}, user=user)
        scan, _ = store.put_scan(exp.id, "1", scan_type, {"type": "T1w", "series_description": "T1 MPRAGE",
                                                          "modality": modality, "quality": "usable"})
        parent = Parent("scan", project, experiment_id=exp.id, scan_pk=scan.pk)
        resource, _ = store.create_resource(parent, "DICOM", format="DICOM", content="RAW")
        for i in (1, 2):
            store.put_file(resource, f"1-{i}.dcm", b"DICM" + bytes(124) + f"{exp.label}-{i}".encode())
        ids.append(exp.id)
    return ids
