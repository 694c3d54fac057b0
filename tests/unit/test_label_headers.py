"""First-file DICOM headers from a mounted archive (pydicom, headers only, links not followed)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from xnatnode.labelcheck.headers import read_first_header, read_headers
from xnatnode.labelcheck.records import SessionRec


def _dicom(patient_id: str = "sub001_mr", *, study_uid: str = "1.2.3") -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = patient_id
    ds.StudyDate = "20240102"
    ds.Modality = "MR"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = "9" * 60
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _session(root: Path, label: str, files: dict[str, bytes]) -> Path:
    folder = root / label
    for rel, data in files.items():
        path = folder / "SCANS" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def test_reading_stops_after_the_last_tag_needed(tmp_path: Path) -> None:
    # cut inside SeriesInstanceUID (0020,000E): everything up to StudyInstanceUID is intact
    data = _dicom()
    cut = data[: data.index(b"9" * 60) + 10]
    _session(tmp_path, "s", {"1/DICOM/a.dcm": cut})
    found = read_first_header(str(tmp_path / "s" / "SCANS" / "1"))
    assert found is not None
    path, fields = found
    assert path.endswith("a.dcm")
    assert fields == {"PatientID": "sub001_mr", "PatientName": "DOE^JOHN", "StudyDate": "20240102",
                      "Modality": "MR", "StudyInstanceUID": "1.2.3"}


def test_first_file_per_series_dicom_resource_first_and_bad_files(tmp_path: Path) -> None:
    _session(tmp_path, "s", {
        "1/SNAPSHOTS/x.dcm": _dicom("from-snapshots"),
        "1/DICOM/b.dcm": _dicom("second"),
        "1/DICOM/a.dcm": _dicom("first"),
        "1/DICOM/scan_catalog.xml": b"<catalog/>",
        "2/DICOM/bad1.dcm": b"not dicom",
        "2/DICOM/bad2.dcm": b"not dicom either",
        "2/DICOM/bad3.dcm": b"still not",
        "2/DICOM/good.dcm": _dicom("late"),
        "3/NIFTI/x.nii.gz": b"\x1f\x8b",
    })
    os.symlink("/etc", tmp_path / "s" / "SCANS" / "4")  # a link out of the mount: never read
    unreadable: list[tuple[str, str, str]] = []
    session = SessionRec("E1", "s", "S1", "sub", "xnat:mrSessionData")
    headers = read_headers(tmp_path, str(tmp_path), [session], unreadable, workers=1)
    assert [(h.scan_id, h.patient_id) for h in headers["E1"]] == [("1", "first")]
    assert [(sid, path) for sid, path, _ in unreadable] == [("E1", "s/SCANS/2/DICOM/bad1.dcm")]


def test_a_mounted_session_folder_is_used_directly(tmp_path: Path) -> None:
    folder = _session(tmp_path, "whatever", {"1/DICOM/a.dcm": _dicom()})
    session = SessionRec("E1", "sub001_mr", "S1", "sub001", "xnat:mrSessionData")
    headers = read_headers(folder, None, [session], [], workers=1)
    assert headers["E1"][0].file == "SCANS/1/DICOM/a.dcm"


def test_many_sessions_through_worker_processes(tmp_path: Path) -> None:
    data = _dicom()
    sessions = []
    for i in range(300):
        _session(tmp_path, f"s{i}", {"1/DICOM/a.dcm": data})
        sessions.append(SessionRec(f"E{i}", f"s{i}", "S", "sub", "xnat:mrSessionData"))
    counted: list[int] = []
    headers = read_headers(tmp_path, str(tmp_path), sessions, [], progress=counted.append, workers=2)
    assert len(headers) == 300
    assert sum(counted) == 300


def test_scans_without_a_dicom_resource_are_not_read(tmp_path: Path) -> None:
    _session(tmp_path, "s", {"1/NIFTI/a.nii.gz": b"\x1f\x8b", "1/BIDS/events.tsv": b"onset\n",
                             "2/secondary/a.dcm": _dicom("sc")})
    unreadable: list[tuple[str, str, str]] = []
    session = SessionRec("E1", "s", "S1", "sub", "xnat:mrSessionData")
    headers = read_headers(tmp_path, str(tmp_path), [session], unreadable, workers=1)
    assert [(h.scan_id, h.patient_id) for h in headers["E1"]] == [("2", "sc")]
    assert unreadable == []
