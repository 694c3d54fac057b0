"""Synthetic imaging files: small but valid DICOM (pydicom) and NIfTI (nibabel) files.

Headers carry the archive labels the way XNAT's default DICOM routing reads them
(wiki "How XNAT scans DICOM to map to project/subject/session"):

* ``(0010,4000) PatientComments`` = ``Project:<P> Subject:<S> Session:<E>`` (first pass),
* ``(0008,1030) StudyDescription`` = project ID (third pass),
* ``(0010,0010) PatientName`` = subject label, ``(0010,0020) PatientID`` = session label,
* ``(0008,0050) AccessionNumber`` = session label,
* ``(0020,0011) SeriesNumber`` = scan ID, ``(0008,103E) SeriesDescription``, ``Modality``,
  ``(0008,0020) StudyDate`` = session date.

Everything is deterministic: UIDs and pixel values derive from the labels and a seed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from dataclasses import dataclass

#: SOP class UIDs by modality (MR/CT/PET Image Storage).
SOP_CLASSES = {
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "PT": "1.2.840.10008.5.1.4.1.1.128",
}
#: XNAT session and scan types per DICOM modality (others map to ``otherDicom``)
SESSION_TYPES = {"MR": "xnat:mrSessionData", "PT": "xnat:petSessionData", "CT": "xnat:ctSessionData"}
SCAN_TYPES = {"MR": "xnat:mrScanData", "PT": "xnat:petScanData", "CT": "xnat:ctScanData"}
OTHER_SESSION = "xnat:otherDicomSessionData"
OTHER_SCAN = "xnat:otherDicomScanData"
#: pydicom's own UID root (2.25-style derivation would make UIDs too long to read).
UID_ROOT = "1.2.826.0.1.3680043.8.498."


@dataclass(frozen=True)
class DicomLabels:
    """What one synthetic DICOM instance says about where it belongs."""

    project: str
    subject: str
    session: str
    scan_id: str
    series_description: str
    modality: str = "MR"
    date: str | None = None  # ISO YYYY-MM-DD; None leaves StudyDate empty
    instance: int = 1
    time: str = "093000"


def uid(*parts: str) -> str:
    """A deterministic DICOM UID (≤ 64 characters) derived from ``parts``."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    number = str(int.from_bytes(digest[:16], "big"))
    return (UID_ROOT + number)[:64].rstrip(".")


def routing_comment(project: str, subject: str, session: str) -> str:
    """The ``Project:… Subject:… Session:…`` text XNAT's first routing pass reads."""
    return f"Project:{project} Subject:{subject} Session:{session}"


def dicom_bytes(labels: DicomLabels, *, rows: int = 16, columns: int = 16, seed: int = 0) -> bytes:
    """A valid DICOM Part-10 file (explicit VR little endian, 16-bit pixels) for ``labels``."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

    modality = labels.modality.upper()
    sop_class = SOP_CLASSES.get(modality, SOP_CLASSES["MR"])
    study_uid = uid(labels.project, labels.session)
    series_uid = uid(labels.project, labels.session, labels.scan_id)
    instance_uid = uid(labels.project, labels.session, labels.scan_id, str(labels.instance))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = instance_uid
    ds.StudyDate = (labels.date or "").replace("-", "")
    ds.SeriesDate = ds.StudyDate
    ds.StudyTime = labels.time
    ds.AccessionNumber = labels.session
    ds.Modality = modality
    ds.Manufacturer = "XNATSIM"
    ds.InstitutionName = "xnatsim synthetic site"
    ds.StudyDescription = labels.project
    ds.SeriesDescription = labels.series_description
    ds.ManufacturerModelName = "synthetic"
    ds.PatientName = labels.subject
    ds.PatientID = labels.session
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientComments = routing_comment(labels.project, labels.subject, labels.session)
    if modality == "MR":
        ds.MagneticFieldStrength = "3"
        ds.RepetitionTime = "2300"
        ds.EchoTime = "2.98"
    ds.SliceThickness = "1"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = labels.session[:16]
    ds.SeriesNumber = labels.scan_id if labels.scan_id.isdigit() else "0"
    ds.InstanceNumber = str(labels.instance)
    ds.ImagePositionPatient = ["0", "0", str(labels.instance)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = ["1", "1"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    rng = np.random.default_rng([seed, labels.instance, len(labels.session)])
    ds.PixelData = rng.integers(0, 4096, size=(rows, columns), dtype=np.uint16).tobytes()

    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def nifti_bytes(
    description: str, *, shape: tuple[int, int, int] = (16, 16, 8), seed: int = 0
) -> bytes:
    """A gzipped NIfTI-1 volume (int16) whose header ``descrip`` is ``description``."""
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng([seed, len(description)])
    data = rng.integers(0, 1000, size=shape, dtype=np.int16)
    image = nib.Nifti1Image(data, np.diag([1.0, 1.0, 1.5, 1.0]))  # type: ignore[no-untyped-call]
    image.header["descrip"] = description.encode()[:79]
    image.header.set_xyzt_units("mm", "sec")  # type: ignore[no-untyped-call]
    return gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)


def tiny_bytes(name: str, size: int = 64) -> bytes:
    """Placeholder content of exactly ``size`` bytes (deterministic from ``name``)."""
    head = f"xnatsim placeholder {name}\n".encode()
    if size <= len(head):
        return head[:size]
    return head + b"." * (size - len(head))
