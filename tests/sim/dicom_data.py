"""Deep-storage DICOM for dicom-upload's tests: folders and zips written by pydicom.

Several patients, studies, series and modalities; transfer syntaxes Explicit LE (default),
Implicit LE, Explicit BE and RLE Lossless; a Siemens CSA Non-Image object (a private SOP class
XNAT accepts) and an unknown private SOP class (XNAT's receiver refuses its context).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from xnatsim import synth

IMPLICIT = "1.2.840.10008.1.2"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
RLE = "1.2.840.10008.1.2.5"
SIEMENS_CSA = "1.3.12.2.1107.5.9.1"
UNKNOWN_PRIVATE = "1.2.826.0.1.3680043.8.498.999.1"


def dataset(labels: synth.DicomLabels, *, rows: int = 16) -> Any:
    import pydicom

    return pydicom.dcmread(io.BytesIO(synth.dicom_bytes(labels, rows=rows, columns=rows)))


def encode(ds: Any, syntax: str | None = None) -> bytes:
    """``ds`` as a Part-10 file in ``syntax`` (default: as it is)."""
    from pydicom.uid import UID

    if syntax == RLE:
        ds.compress(UID(RLE), encoding_plugin="pydicom")
    elif syntax in (IMPLICIT, BIG_ENDIAN):
        ds.file_meta.TransferSyntaxUID = UID(syntax)
    out = io.BytesIO()
    if syntax == BIG_ENDIAN:
        from pydicom.filewriter import dcmwrite

        dcmwrite(out, ds, implicit_vr=False, little_endian=False, force_encoding=True)
    else:
        ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def session(folder: Path, study: str, subject: str, series: dict[str, int], *, modality: str = "MR",
            syntax: str | None = None, edit: Callable[[Any], None] | None = None,
            rows: int = 16) -> list[Path]:
    """Write ``{scan: count}`` objects of one study (labels in the headers are NOT the CSV's)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    base = synth.DicomLabels("DEEPSTORE", subject, study, "1", "", modality, "2023-05-06")
    for scan_id, count in series.items():
        for k in range(1, count + 1):
            ds = dataset(replace(base, scan_id=scan_id, series_description=f"series {scan_id}", instance=k), rows=rows)
            if edit is not None:
                edit(ds)
            path = folder / f"{scan_id}_{k:04d}.dcm"
            path.write_bytes(encode(ds, syntax))
            paths.append(path)
    return paths


def write_csv(path: Path, rows: list[tuple[str, str, str, str]], *, sep: str = ",", bom: bool = False,
              crlf: bool = False) -> Path:
    eol = "\r\n" if crlf else "\n"
    lines = [sep.join(("source", "project", "subject", "session"))] + [sep.join(r) for r in rows]
    text = eol.join(lines) + eol
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def upload_batch(http: Any, url: str, project: str, files: Iterable[Path]) -> None:
    """PUT a batch (the CSV and the zips it names) into the project's ``DICOM_UPLOAD`` resource,
    which dicom-upload's project wrapper mounts at /input; ``http`` is an authenticated
    ``requests.Session``."""
    resource = f"{url}/data/projects/{project}/resources/DICOM_UPLOAD"
    r = http.put(resource, timeout=30)
    assert r.status_code == 200, r.text
    for path in files:
        r = http.put(f"{resource}/files/{path.name}", data=path.read_bytes(), params={"inbody": "true"}, timeout=60)
        assert r.status_code in (200, 201), r.text
