"""NIfTI inspection with nibabel, in the same single streaming pass that hashes the file.

:func:`scan_image` reads a file once, in 1 MiB chunks (memory flat in file size): it computes the
MD5 (compared later with XNAT's ``digest``) and the CRC-32 (needed by the stored zip that carries
the file), decompresses ``.nii.gz`` on the fly (a truncated or corrupt gzip stream is found here,
where reading only the header would miss it), and parses the header with nibabel's
``Nifti1Header``/``Nifti2Header``. The data block is checked for length against the header
(``vox_offset`` + shape x item size), which finds truncated ``.nii`` files without loading them.

Supported: NIfTI-1 and NIfTI-2 single files (``.nii``, ``.nii.gz``), 3D and 4D. Refused with a
reason: zero-byte and short files, other formats (Analyze, a ``.hdr``/``.img`` pair), corrupt
headers, unknown data types, other dimensionalities, truncated data.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import struct
import zlib
from dataclasses import dataclass
from typing import IO, Any

CHUNK = 1 << 20
#: Bytes of (decompressed) file kept for the header: NIfTI-2's header is 540 bytes.
HEAD = 540
NIFTI1_MAGIC = (b"n+1\x00",)
NIFTI1_PAIR_MAGIC = b"ni1\x00"
NIFTI2_MAGIC = b"n+2\x00"


class NiftiError(Exception):
    """The file is not a NIfTI image this importer accepts; the message is the reason."""


@dataclass(frozen=True, slots=True)
class Digest:
    """What a read of the whole file found."""

    size: int  #: bytes as stored
    md5: str  #: hex; "" when not read yet (:func:`scan_header`)
    crc32: int  #: of the stored bytes (for the zip header)


@dataclass(frozen=True, slots=True)
class Inspection:
    """What the header says about an image."""

    version: int  #: 1 or 2
    shape: tuple[int, ...]
    voxel_size: tuple[float, float, float]  #: mm (as stored in pixdim)
    orientation: str  #: axis codes of the best affine, e.g. "RAS"
    dtype: str  #: numpy name, e.g. "int16"
    frames: int  #: 4th dimension, 1 for 3D

    def as_dict(self) -> dict[str, object]:
        return {"nifti_version": self.version, "shape": list(self.shape),
                "voxel_size": [round(v, 6) for v in self.voxel_size],
                "orientation": self.orientation, "dtype": self.dtype, "frames": self.frames}


@dataclass(frozen=True, slots=True)
class Scanned:
    """The result of :func:`scan_image` or :func:`scan_file`."""

    digest: Digest
    inspection: Inspection | None = None
    problem: str | None = None  #: why the file is refused (None: accepted)
    content: bytes | None = None  #: the bytes of a small file, when asked for


def scan_file(stream: IO[bytes], *, keep: int = 0) -> Scanned:
    """Hash a non-image file; keep its bytes when it is at most ``keep`` bytes long."""
    md5 = hashlib.md5()
    crc = 0
    size = 0
    kept = bytearray()
    while chunk := stream.read(CHUNK):
        md5.update(chunk)
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        if size <= keep:
            kept += chunk
    return Scanned(Digest(size, md5.hexdigest(), crc), content=bytes(kept) if size <= keep else None)


class _Gunzip:
    """Incremental gzip decompression that counts the output and keeps its first bytes."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(31)
        self.size = 0
        self.head = bytearray()
        self.problem: str | None = None

    def feed(self, data: bytes) -> None:
        if self.problem is not None:
            return
        try:
            while data:
                out = self._z.decompress(data, CHUNK)
                self._take(out)
                data = self._z.unconsumed_tail
                if self._z.eof:  # a further gzip member may follow (concatenated .gz)
                    data = self._z.unused_data + data
                    if data:
                        self._z = zlib.decompressobj(31)
        except zlib.error as exc:
            self.problem = f"corrupt gzip data ({exc})"

    def _take(self, out: bytes) -> None:
        if len(self.head) < HEAD:
            self.head += out[: HEAD - len(self.head)]
        self.size += len(out)

    def finish(self) -> None:
        if self.problem is None and not self._z.eof:
            self.problem = "truncated gzip stream (the file ends before its compressed data does)"


def scan_image(stream: IO[bytes], *, gzipped: bool) -> Scanned:
    """Hash and inspect one ``.nii`` (``gzipped=False``) or ``.nii.gz`` image."""
    md5 = hashlib.md5()
    crc = 0
    size = 0
    head = bytearray()
    gunzip = _Gunzip() if gzipped else None
    while chunk := stream.read(CHUNK):
        md5.update(chunk)
        crc = zlib.crc32(chunk, crc)
        if size == 0 and gunzip is not None and chunk[:2] != b"\x1f\x8b":
            gunzip.problem = "named .nii.gz but not gzip-compressed"
        size += len(chunk)
        if gunzip is not None:
            gunzip.feed(chunk)
        elif len(head) < HEAD:
            head += chunk[: HEAD - len(head)]
    digest = Digest(size, md5.hexdigest(), crc)
    if size == 0:
        return Scanned(digest, problem="empty file (0 bytes)")
    data_size = size
    if gunzip is not None:
        gunzip.finish()
        if gunzip.problem is not None:
            return Scanned(digest, problem=gunzip.problem)
        head, data_size = gunzip.head, gunzip.size
    try:
        return Scanned(digest, inspect_header(bytes(head), data_size))
    except NiftiError as exc:
        return Scanned(digest, problem=str(exc))


def scan_header(stream: IO[bytes], size: int) -> Scanned:
    """Inspect an uncompressed ``.nii`` of ``size`` bytes from its header alone (the data length is
    checked against ``size``); the MD5 is left to be computed while the file is uploaded."""
    digest = Digest(size, "", 0)
    if size == 0:
        return Scanned(digest, problem="empty file (0 bytes)")
    try:
        return Scanned(digest, inspect_header(stream.read(HEAD), size))
    except NiftiError as exc:
        return Scanned(digest, problem=str(exc))


def orientation_of(affine: Any) -> str:
    """The axis codes of a 4x4 affine, e.g. ``"RAS"`` (nibabel's ``aff2axcodes``; ``?`` for an
    axis without one).

    They depend only on the affine's rotation and zoom part, not on its translation, and the
    images of a batch mostly share that part (one orientation and voxel size per protocol), so the
    codes are computed once per distinct part (:func:`_orientation`): nibabel's computation (an
    SVD and a dozen small numpy operations) was more than half of a header's inspection.
    """
    import numpy as np

    return _orientation(np.ascontiguousarray(affine[:3, :3], dtype=np.float64).tobytes())


@functools.lru_cache(maxsize=1024)
def _orientation(rotation_zoom: bytes) -> str:
    import nibabel as nib
    import numpy as np

    affine = np.eye(4)
    affine[:3, :3] = np.frombuffer(rotation_zoom, dtype=np.float64).reshape(3, 3)
    codes = nib.aff2axcodes(affine)  # type: ignore[no-untyped-call]
    return "".join(c or "?" for c in codes)


def _sizeof_hdr(head: bytes) -> tuple[int, str]:
    for order in ("<", ">"):
        value = struct.unpack(order + "i", head[:4])[0]
        if value in (348, 540):
            return value, order
    return 0, "<"


def inspect_header(head: bytes, data_size: int) -> Inspection:
    """Parse the header bytes ``head`` with nibabel and check the data length ``data_size``."""
    import nibabel as nib
    from nibabel.spatialimages import HeaderDataError

    if len(head) < 348:
        raise NiftiError(f"not a NIfTI image: only {data_size} bytes (a NIfTI-1 header alone is 348)")
    sizeof_hdr, _ = _sizeof_hdr(head)
    if sizeof_hdr == 348:
        magic = head[344:348]
        if magic == NIFTI1_PAIR_MAGIC:
            raise NiftiError("NIfTI-1 header of a .hdr/.img pair: unsupported (convert to a single .nii)")
        if magic not in NIFTI1_MAGIC:
            raise NiftiError("not a NIfTI image (348-byte header without the n+1 magic: Analyze 7.5?)")
        header_class, version = nib.Nifti1Header, 1
    elif sizeof_hdr == 540:
        if head[4:8] != NIFTI2_MAGIC:
            raise NiftiError("not a NIfTI-2 single-file image (540-byte header without the n+2 magic)")
        if len(head) < 540:
            raise NiftiError(f"truncated NIfTI-2 header ({len(head)} of 540 bytes)")
        header_class, version = nib.Nifti2Header, 2
    else:
        raise NiftiError("not a NIfTI image (no NIfTI-1 or NIfTI-2 header)")
    try:
        header = header_class.from_fileobj(io.BytesIO(head), check=True)  # type: ignore[no-untyped-call]
        shape = tuple(int(n) for n in header.get_data_shape())
        dtype = header.get_data_dtype()
        zooms = header.get_zooms()
        orientation = orientation_of(header.get_best_affine())
        offset = int(header["vox_offset"])
    except (HeaderDataError, ValueError, KeyError, TypeError) as exc:
        raise NiftiError(f"corrupt NIfTI-{version} header: {exc}") from None
    if len(shape) not in (3, 4):
        raise NiftiError(f"{len(shape)}D image: unsupported (3D and 4D only)")
    if any(n <= 0 for n in shape):
        raise NiftiError(f"corrupt NIfTI-{version} header: shape {shape} has an empty axis")
    expected = offset + math.prod(shape) * dtype.itemsize
    if data_size < expected:
        raise NiftiError(f"truncated: the header promises {expected} bytes, the file holds {data_size}")
    voxel = tuple(float(z) for z in zooms[:3])
    return Inspection(version, shape, (voxel[0], voxel[1], voxel[2]), orientation, str(dtype),
                      shape[3] if len(shape) == 4 else 1)
