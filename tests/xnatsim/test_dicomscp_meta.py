"""The receiver's File Meta Information: from a template, byte for byte what pynetdicom encodes."""

from __future__ import annotations

import pytest
from pydicom.uid import UID
from pynetdicom.dsutils import create_file_meta, encode_file_meta
from xnatsim.scpworker import PRIVATE_SOP_CLASSES, FileMetaEncoder

MR = "1.2.840.10008.5.1.4.1.1.4"
CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
JPEG2000 = "1.2.840.10008.1.2.4.90"


def pynetdicom_meta(sop_class: str, instance: str, syntax: str, calling_ae: str) -> bytes:
    """What the receiver wrote before: ``event.file_meta`` with the calling AE, encoded."""
    meta = create_file_meta(sop_class_uid=UID(sop_class), sop_instance_uid=UID(instance), transfer_syntax=UID(syntax))
    meta.SourceApplicationEntityTitle = calling_ae
    return encode_file_meta(meta)


INSTANCES = [
    "1.2.826.0.1.3680043.8.498.1",  # odd length (padded)
    "1.2.826.0.1.3680043.8.498.12",  # even length
    "1.2.826.0.1.3680043.8.498.13",  # same length as the one before: the template is reused
    "1.2.826.0.1.3680043.8.498.99999999999999999999999999999999999999",  # 64 characters
    "1",
    "2.25.329800735698586629295641978511506172918",
    "1.2.3.999",  # holds the placeholder's digit
]


@pytest.mark.parametrize("sop_class", [MR, CT, PRIVATE_SOP_CLASSES[0], "1.2.3.4.5.6.7.8.9.99"])
@pytest.mark.parametrize("syntax", [EXPLICIT, IMPLICIT, JPEG2000])
@pytest.mark.parametrize("calling_ae", ["DCMTK", "STORESCU", "A B", "SIXTEEN_CHARS_AE"])
def test_templates_give_pynetdicoms_bytes(sop_class: str, syntax: str, calling_ae: str) -> None:
    encoder = FileMetaEncoder()
    for instance in INSTANCES * 2:
        assert encoder.encode(sop_class, instance, syntax, calling_ae) == \
            pynetdicom_meta(sop_class, instance, syntax, calling_ae), instance


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the invalid UIDs
def test_odd_uids_fall_back_to_pydicom() -> None:
    encoder = FileMetaEncoder()
    for instance in ("1." + "2" * 70, "1.2.3 ", "1.2.3\u00e9"):
        assert encoder.encode(MR, instance, EXPLICIT, "AE") == pynetdicom_meta(MR, instance, EXPLICIT, "AE")
    with pytest.raises(AttributeError, match="Media Storage SOP Instance UID"):  # as pynetdicom's meta fails
        encoder.encode(MR, "", EXPLICIT, "AE")


def test_templates_are_bounded() -> None:
    encoder = FileMetaEncoder()
    for n in range(FileMetaEncoder.LIMIT + 10):
        encoder.encode(MR, "1.2.3", EXPLICIT, f"AE{n}")
    assert len(encoder._templates) <= FileMetaEncoder.LIMIT
