"""``dicomhdr.read_routing`` gives what pydicom's full read gives, on files with odd content.

The oracle is the straightforward reading (``dcmread`` of every element, ``Dataset.get(keyword)``)
that ``read_routing`` replaced for speed: both must agree value for value, or fail alike.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from xnatsim.dicomhdr import ROUTING_KEYWORDS, read_routing

from xnatsim import synth

MR = "1.2.840.10008.5.1.4.1.1.4"
SIEMENS_CSA = "1.3.12.2.1107.5.9.1"  # a private SOP class (Siemens CSA Non-Image)
#: the odd values are on purpose: pydicom's warnings about them are noise here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def full_read(data: bytes | Path) -> dict[str, str] | None:
    """The reference: every element read, values through ``Dataset.get(keyword)``."""
    source: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError):
        return None
    if "SOPInstanceUID" not in ds and "StudyInstanceUID" not in ds:
        return None
    values: dict[str, str] = {}
    for keyword in ROUTING_KEYWORDS:
        value = ds.get(keyword)
        values[keyword] = "" if value is None else str(value).strip()
    return values


def outcome(read: Callable[[bytes | Path], dict[str, str] | None], data: bytes | Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return read(data)
        except Exception as exc:  # both readers must fail the same way
            return ("raised", type(exc).__name__)


def encode(ds: Dataset, syntax: str = ExplicitVRLittleEndian, sop_class: str = MR) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(str(ds.get("SOPInstanceUID") or "1.2.3.4"))
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd values on purpose
        ds.save_as(out, enforce_file_format=True,
                   implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=syntax != ExplicitVRBigEndian)
    return out.getvalue()


def base(**values: Any) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = MR
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.3"
    ds.PatientName = "Doe^John"
    ds.PatientID = "S01_MR1"
    ds.PatientComments = "Project: P1 Subject: S01 Session: S01_MR1"
    ds.Modality = "MR"
    ds.SeriesNumber = "3"
    ds.InstanceNumber = "12"
    ds.StudyDate = "20240102"
    ds.StudyTime = "093000.123456"
    for keyword, value in values.items():
        if value is None:
            ds.pop(keyword, None)
        else:
            setattr(ds, keyword, value)
    return ds


def raw_element(ds: Dataset, tag: int, vr: str, value: bytes) -> Dataset:
    ds[tag] = DataElement(tag, vr, value)
    return ds


def undefined_length_sequence() -> Dataset:
    ds = base()
    item = Dataset()
    item.ReferencedSOPClassUID = MR
    item.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ds.ReferencedStudySequence = Sequence([item])
    ds["ReferencedStudySequence"].is_undefined_length = True
    return ds


CASES: dict[str, Callable[[], bytes]] = {
    "synthetic MR (xnatsim.synth)": lambda: synth.dicom_bytes(synth.DicomLabels("P1", "S 01", "S01_MR1", "4", "t1 mprage", date="2024-01-02")),
    "synthetic PET": lambda: synth.dicom_bytes(synth.DicomLabels("P1", "S01", "S01_PET", "1", "pet", modality="PT")),
    "implicit VR little endian": lambda: encode(base(), ImplicitVRLittleEndian),
    "explicit VR big endian": lambda: encode(base(MagneticFieldStrength="1.5", InstanceNumber="-2"), ExplicitVRBigEndian),
    "deflated explicit VR": lambda: encode(base(), DeflatedExplicitVRLittleEndian),
    "private SOP class (Siemens CSA Non-Image)": lambda: encode(base(SOPClassUID=SIEMENS_CSA), sop_class=SIEMENS_CSA),
    "PN with all components": lambda: encode(base(PatientName="Doe^John^Q^Dr.^Jr.")),
    "PN with ideographic and phonetic groups (ISO 2022)": lambda: encode(base(
        SpecificCharacterSet=["", "ISO 2022 IR 87"], PatientName="Yamada^Tarou=山田^太郎=やまだ^たろう")),
    "latin-1 text (ISO_IR 100)": lambda: encode(base(
        SpecificCharacterSet="ISO_IR 100", PatientName="Müller^Jürgen", InstitutionName="Hôpital Saint-Éloi")),
    "UTF-8 text (ISO_IR 192)": lambda: encode(base(
        SpecificCharacterSet="ISO_IR 192", PatientName="Ñandú^Zoë", StudyDescription="Études ☃")),
    "multi-valued fields": lambda: encode(base(
        PatientID=["A", "B"], Modality=["MR", "PT"], MagneticFieldStrength=["1.5", "3"],
        StationName=["ST1", "ST2", "ST3"], PatientComments="Project: P1\\Subject: S2")),
    "padded, empty and odd values": lambda: encode(base(
        PatientID=" S01 ", SeriesNumber="+7", InstanceNumber="  5", StudyDescription="",
        AccessionNumber="", MagneticFieldStrength="3.00000000000000", StudyTime="1010",
        PatientBirthDate="19700101", ManufacturerModelName="model\x00")),
    "invalid values (IS 1.5, DA with dashes, long UID)": lambda: encode(base(
        SeriesNumber="1.5", StudyDate="2024-01-02", SeriesInstanceUID="1." + "2" * 70)),
    "wrong explicit VRs (UN, LO for IS, SH for PN)": lambda: encode(raw_element(raw_element(raw_element(
        base(PatientName=None, SeriesNumber=None, StudyDescription=None),
        0x00100010, "UN", b"Un^Known"), 0x00200011, "LO", b"9 "), 0x00081030, "SH", b"desc ")),
    "routing tags missing": lambda: encode(base(
        PatientName=None, PatientID=None, PatientComments=None, Modality=None, SeriesNumber=None,
        StudyDate=None, StudyTime=None, InstanceNumber=None)),
    "only a SOPInstanceUID": lambda: encode(base(StudyInstanceUID=None, SeriesInstanceUID=None)),
    "no SOP or Study UID": lambda: encode(base(SOPInstanceUID=None, StudyInstanceUID=None)),
    "undefined-length sequence before the routing tags": lambda: encode(undefined_length_sequence()),
    "all three comment tags": lambda: encode(base(
        StudyComments="Project: P2", AdditionalPatientHistory="Session: X")),
    "truncated in the dataset": lambda: encode(base())[:300],
    "truncated in the file meta": lambda: encode(base())[:150],
    "not DICOM": lambda: b"hello, this is not DICOM\n" * 20,
    "empty": lambda: b"",
}


@pytest.mark.parametrize("name", list(CASES))
def test_read_routing_agrees_with_a_full_read(name: str, tmp_path: Path) -> None:
    data = CASES[name]()
    path = tmp_path / "f.dcm"
    path.write_bytes(data)
    expected = outcome(full_read, data)
    assert outcome(read_routing, data) == expected
    assert outcome(read_routing, path) == expected


def test_cases_cover_what_they_say() -> None:
    """The oracle sees the odd content (so agreement above is not agreement on nothing)."""
    read = {name: outcome(full_read, make()) for name, make in CASES.items()}
    assert read["PN with ideographic and phonetic groups (ISO 2022)"]["PatientName"] == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert read["latin-1 text (ISO_IR 100)"]["PatientName"] == "Müller^Jürgen"
    assert read["multi-valued fields"]["Modality"] == "['MR', 'PT']"
    assert read["explicit VR big endian"]["MagneticFieldStrength"] == "1.5"
    assert read["private SOP class (Siemens CSA Non-Image)"]["SOPClassUID"] == SIEMENS_CSA
    assert read["wrong explicit VRs (UN, LO for IS, SH for PN)"]["PatientName"] == "Un^Known"
    assert read["routing tags missing"]["PatientComments"] == ""
    assert read["only a SOPInstanceUID"]["StudyInstanceUID"] == ""
    assert read["undefined-length sequence before the routing tags"]["PatientID"] == "S01_MR1"
    for name in ("no SOP or Study UID", "not DICOM", "empty", "truncated in the file meta"):
        assert read[name] is None, name
    assert isinstance(read["deflated explicit VR"], dict)
