"""DICOM header rows as XNAT's ``DicomHeaderDump`` renders them, and label reading for routing.

Row shape (XNAT ``org.nrg.xnat.helpers.dicom.DicomHeaderDump``): columns ``tag1, tag2, vr,
value, desc``; ``tag1`` is ``(GGGG,EEEE)`` (upper-case hex), ``tag2`` is empty for top-level
elements; a sequence writes one row per item for itself (``tag1`` = ``tag2`` = the sequence tag)
followed by its item's elements with ``tag1`` = the sequence tag; values are cut to 64
characters (dcm4che2 default ``valueLength``), sequences have an empty value, multi-values are
joined with ``\\``, binary values are hex bytes joined with ``\\``; ``desc`` is the dictionary name.
File meta elements (group 0002) come first: dcm4che2's ``readDicomObject`` keeps them in the
same object.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

COLUMNS = ("tag1", "tag2", "vr", "value", "desc")
#: dcm4che2 DicomObjectToStringParam default valueLength.
VALUE_LENGTH = 64
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}


class BadField(ValueError):
    """A ``field=`` value that is neither a dictionary keyword nor an 8-hex-digit tag."""


def tag_text(tag: int) -> str:
    """``0x00100010`` → ``(0010,0010)``."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def parse_fields(values: Iterable[str]) -> set[int]:
    """Tags selected by ``field=`` values (keyword such as ``PatientName`` or ``00100010``)."""
    from pydicom.datadict import tag_for_keyword

    tags: set[int] = set()
    for raw in values:
        name = raw.split(":", 1)[0].strip()
        tag = tag_for_keyword(name)
        if tag is None:
            try:
                tag = int(name, 16)
            except ValueError:
                raise BadField(f"not a valid DICOM attribute tag: {name}") from None
        tags.add(int(tag))
    return tags


def _value_text(element: Any) -> str:
    value = element.value
    if element.VR in _BINARY_VRS:
        data = bytes(value or b"")
        text = "\\".join(f"{b:02X}" for b in data[: VALUE_LENGTH // 3 + 1])
    elif value is None:
        text = ""
    elif isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    elif isinstance(value, bytes):
        text = value.decode("latin-1", "replace")
    else:
        text = str(value)
    return _escape(text[:VALUE_LENGTH])


def _escape(text: str) -> str:
    """Commons-text ``escapeHtml4``: ``& < > "`` (not the apostrophe)."""
    return html.escape(text, quote=False).replace('"', "&quot;")


def _name(element: Any) -> str:
    from pydicom.datadict import dictionary_description

    try:
        return _escape(str(dictionary_description(element.tag)))
    except KeyError:
        return "Private Tag" if element.tag.is_private else "?"


def _row(element: Any, parent: str | None) -> dict[str, str]:
    tag = tag_text(int(element.tag))
    value = "" if element.VR == "SQ" else _value_text(element)
    first, second = (tag, "") if parent is None else (parent, tag)
    return {"tag1": first, "tag2": second, "vr": str(element.VR), "value": value, "desc": _name(element)}


def dump_rows(path: Path, fields: set[int] | None = None) -> list[dict[str, str]]:
    """Rows for one DICOM file (pixel data is never read), optionally only ``fields``."""
    import pydicom

    stop = (max(fields) + 1) if fields else 0x7FE00010
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=None)
    rows: list[dict[str, str]] = []
    elements = [*getattr(ds, "file_meta", []), *ds]
    for element in elements:
        if int(element.tag) >= stop:
            break
        if fields and int(element.tag) not in fields:
            continue
        if element.VR == "SQ":
            parent = tag_text(int(element.tag))
            for item in element.value:
                rows.append(_row(element, parent))
                rows.extend(_row(child, parent) for child in item)
        else:
            rows.append(_row(element, None))
    return rows


#: Headers the import service routes by, keyword → attribute name.
ROUTING_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientComments",
    "StudyComments",
    "StudyDescription",
    "AccessionNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "StudyDate",
    "StudyTime",
    "Manufacturer",
    "ManufacturerModelName",
    "InstanceNumber",
    "SOPInstanceUID",
    "SOPClassUID",
    "MagneticFieldStrength",
    "InstitutionName",
    "StationName",
    "PatientBirthDate",
)
_SOP_INSTANCE_UID = 0x00080018
_STUDY_INSTANCE_UID = 0x0020000D


@functools.cache
def _routing_tags() -> tuple[tuple[str, int], ...]:
    """``(keyword, tag)`` of :data:`ROUTING_KEYWORDS` (pydicom's dictionary knows every one)."""
    from pydicom.datadict import keyword_dict

    return tuple((keyword, keyword_dict[keyword]) for keyword in ROUTING_KEYWORDS)


def read_routing(data: bytes | Path) -> dict[str, str] | None:
    """The routing headers of one file, or ``None`` when it is not parseable DICOM.

    Values are ``str(value).strip()`` of pydicom's value for each keyword ("" when absent), as
    ``Dataset.get(keyword)`` gives them. Cheap per file (it runs for every object received):
    pydicom keeps only the routing tags (``specific_tags``; it adds SpecificCharacterSet itself)
    and each is converted once with :func:`pydicom.dataelem.convert_raw_data_element`, the function
    ``Dataset.__getitem__`` uses, without the dataset's per-access bookkeeping (the ambiguous-VR and
    sequence handling there never applies: no routing keyword has an ambiguous VR or is a sequence).
    pydicom's value validation stays on: its mode is process-wide only (no per-call setting in
    pydicom 3), and the simulator may share its process with a client.
    """
    import io

    import pydicom
    from pydicom.dataelem import DataElement, convert_raw_data_element
    from pydicom.errors import InvalidDicomError

    tags = _routing_tags()
    source: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True, specific_tags=[tag for _, tag in tags])
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError):
        return None
    if _SOP_INSTANCE_UID not in ds and _STUDY_INSTANCE_UID not in ds:
        return None
    encoding = ds.original_character_set
    values: dict[str, str] = {}
    for keyword, tag in tags:
        element = ds.get_item(tag)
        if element is not None and not isinstance(element, DataElement):
            element = convert_raw_data_element(element, encoding=encoding, ds=ds)
        value = None if element is None else element.value
        values[keyword] = "" if value is None else str(value).strip()
    return values


def first_value(rows: Iterable[Mapping[str, str]], tag: str) -> str | None:
    """The ``value`` of the first row whose ``tag1`` is ``tag`` (a test convenience)."""
    for row in rows:
        if row["tag1"] == tag and not row["tag2"]:
            return row["value"]
    return None
