"""A stored (uncompressed) zip archive produced on the fly as a rewindable request body.

Hand-written because :mod:`zipfile` cannot give what an upload of 200 MB images needs: a body of
known length (so the request has a ``Content-Length`` and XNAT its size up front) that is never
held in memory nor written to disk, and that can be rewound for a retry. :mod:`zipfile` writing
to a non-seekable stream marks stored members with a trailing data descriptor, which Java's
``ZipInputStream`` (how XNAT extracts uploads) refuses for stored entries; here the CRC-32 and
sizes, known from the hashing pass, go in the local headers. Members are ``ZIP_STORED`` (NIfTI
is mostly gzip already, see performance-anchors.md §2.2); names are UTF-8 (flag bit 11). Limits
of the classic format, checked: < 65,535 members and < 4 GiB in all (:data:`MAX_ZIP_BYTES`);
:func:`batches` splits a resource's files to fit.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

try:  # zlib-ng's CRC-32 (folded with PCLMULQDQ) is ~3x zlib's: the dicom extra installs it
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - the same function, slower
    from zlib import crc32

#: Largest archive built (the classic format's 32-bit offsets, with room for headers).
MAX_ZIP_BYTES = (1 << 32) - (1 << 26)
MAX_MEMBERS = 65_000
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_UTF8 = 0x800
_READ = 1 << 20
#: Members up to this size whose CRC-32 is computed on the way are read once, into memory.
BUFFERED = 16 << 20
#: Such members in a row are read into pieces of up to this size (a bigger member is a piece of
#: its own): one send for several small objects. All such pieces are built in one reused buffer
#: of this size. The HTTP client reads 1 MiB blocks (``client.UPLOAD_BLOCK``), so a piece is
#: handed on whole. Measured on 132 KB DICOM objects against the 512 KiB pieces of freshly
#: allocated buffers before: 12 % less CPU, 73 → 83 % of the raw loopback rate (8 interleaved
#: rounds, ``benchmarks/dicom_upload.md``); 2 and 4 MiB pieces did worse.
PIECE = 1 << 20


@dataclass(frozen=True, slots=True)
class ZipMember:
    name: str
    size: int
    crc32: int | None  # None: computed when the archive reaches the member
    open: Callable[[], IO[bytes]]


def _dos_time(when: float) -> tuple[int, int]:
    t = time.localtime(when)
    year = max(t.tm_year, 1980)
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday


def zip_size(members: Sequence[ZipMember]) -> int:
    """Bytes of the archive holding ``members``."""
    total = _END.size
    for m in members:
        name = len(m.name.encode("utf-8"))
        total += _LOCAL.size + _CENTRAL.size + 2 * name + m.size
    return total


def batches(members: Sequence[ZipMember]) -> Iterator[list[ZipMember]]:
    """``members`` in groups that each fit one archive (a member too big alone is its own group)."""
    group: list[ZipMember] = []
    for member in members:
        if group and (zip_size([*group, member]) > MAX_ZIP_BYTES or len(group) >= MAX_MEMBERS):
            yield group
            group = []
        group.append(member)
    if group:
        yield group


class StoredZip:
    """The archive as a file-like body: ``read``, ``tell``, ``seek`` (to any position; forward
    from the start), ``len()``, ``close()``.

    A member whose ``crc32`` is None has it computed when the archive reaches it: a member of at
    most :data:`BUFFERED` bytes is read once into memory (CRC, then sent from there), a bigger one
    is read twice (a CRC pass, then the bytes). Its local header is written then, so the archive
    still has no data descriptors; the length is known up front either way.

    Built for an HTTP client that sends each block it reads (urllib3 reads ``read(blocksize)``
    and passes the block to ``sendall``): the archive is made of pieces (small members in a row,
    local headers and bytes, up to :data:`PIECE` bytes, or one such member if bigger; a header;
    a block of a big member; the central directory) and ``read`` returns at most the rest of the
    current piece, the piece itself when it is read whole. So each object is copied once, from
    the file into its piece, as a raw socket upload copies it; no blocks are joined, and memory
    holds one piece (at most :data:`BUFFERED` bytes plus a header) at a time. Every piece of
    small members up to :data:`PIECE` bytes is built in the same reused buffer (no zeroed
    allocation, page faults and release per piece), so what ``read`` returns is valid until the
    next ``read``: send or copy it first, as an HTTP client does.
    """

    def __init__(self, members: Sequence[ZipMember], *, mtime: float | None = None) -> None:
        self._length = zip_size(members)
        if self._length > MAX_ZIP_BYTES + (1 << 26) or len(members) > MAX_MEMBERS:
            raise ValueError("too much for one zip: split the members with batches()")
        self._time = _dos_time(time.time() if mtime is None else mtime)
        self._members = list(members)
        self._names = [m.name.encode("utf-8") for m in members]
        self._crcs: list[int | None] = [m.crc32 for m in members]
        self._offsets: list[int] = []
        offset = 0
        for name, m in zip(self._names, members, strict=True):
            self._offsets.append(offset)
            offset += _LOCAL.size + len(name) + m.size
        self._central_at = offset
        self._pieces: Generator[bytes | bytearray | memoryview, None, None] | None = None
        self._buffer: bytearray | None = None  # the pieces of small members, reused
        self._reset()

    def _local(self, index: int, into: bytearray | memoryview | None = None, at: int = 0) -> bytes:
        """Member ``index``'s local header (its CRC-32 known by now), or written into ``into`` at
        ``at`` (then ``b""``)."""
        m, name = self._members[index], self._names[index]
        fields = (0x04034B50, 20, _flags(m.name), 0, *self._time, self._crcs[index], m.size,
                  m.size, len(name), 0)
        if into is None:
            return _LOCAL.pack(*fields) + name
        _LOCAL.pack_into(into, at, *fields)
        into[at + _LOCAL.size:at + _LOCAL.size + len(name)] = name
        return b""

    def _central(self) -> bytes:
        central = bytearray()
        for index, m in enumerate(self._members):
            name = self._names[index]
            central += _CENTRAL.pack(0x02014B50, (3 << 8) | 20, 20, _flags(m.name), 0, *self._time,
                                     self._crcs[index], m.size, m.size, len(name), 0, 0, 0, 0, 0o100644 << 16,
                                     self._offsets[index]) + name
        n = len(self._members)
        return bytes(central) + _END.pack(0x06054B50, 0, 0, n, n, len(central), self._central_at, 0)

    def _small_piece(self, index: int) -> tuple[memoryview, int]:
        """Members from ``index`` on whose CRC-32 is unknown and that fit in memory, as many as
        fit in one piece (at least one), read into it: (the piece, the index after them)."""
        end, total, n = index, 0, len(self._members)  # the members [index, end) go into one piece
        while end < n and self._members[end].crc32 is None and self._members[end].size <= BUFFERED:
            more = _LOCAL.size + len(self._names[end]) + self._members[end].size
            if total and total + more > PIECE:
                break
            total, end = total + more, end + 1
        if total <= PIECE:
            if self._buffer is None:
                self._buffer = bytearray(PIECE)
            piece = memoryview(self._buffer)[:total]
        else:  # one member bigger than a piece
            piece = memoryview(bytearray(total))
        at = 0
        for i in range(index, end):
            m = self._members[i]
            head = at + _LOCAL.size + len(self._names[i])
            data = piece[head:head + m.size]
            with m.open() as handle:
                _check_size(m, _read_into(handle, data) + len(handle.read(1)))
            self._crcs[i] = crc32(data)
            data.release()
            self._local(i, piece, at)
            at = head + m.size
        return piece, end

    def _generate(self) -> Generator[bytes | bytearray | memoryview, None, None]:
        """The archive in pieces, each object read once (twice for a big one without its CRC)."""
        index, n = 0, len(self._members)
        while index < n:
            m = self._members[index]
            if m.crc32 is None and m.size <= BUFFERED:  # (again on a retry: read once, the same pieces)
                piece, index = self._small_piece(index)
                yield piece
                del piece  # (before a big member's blocks: the buffer can go then)
                continue
            self._buffer = None  # a big member streams in blocks: memory holds those alone
            if self._crcs[index] is None:
                crc, seen = 0, 0
                with m.open() as handle:
                    while block := handle.read(_READ):
                        crc, seen = crc32(block, crc), seen + len(block)
                _check_size(m, seen)
                self._crcs[index] = crc
            yield self._local(index)
            seen = 0
            with m.open() as handle:
                while seen < m.size and (block := handle.read(min(_READ, m.size - seen))):
                    seen += len(block)
                    yield block
            _check_size(m, seen)
            index += 1
        yield self._central()

    def __len__(self) -> int:
        return self._length

    def _reset(self) -> None:
        self.close()
        self._position = 0
        self._piece: bytes | bytearray | memoryview = b""
        self._offset = 0  # within the current piece
        self._pieces = self._generate()

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self._position + offset if whence == 1 else self._length + offset
        if target < self._position:
            self._reset()
        while self._position < target:
            if not self.read(min(_READ, target - self._position)):
                break
        return self._position

    def read(self, size: int = -1) -> bytes | bytearray | memoryview:
        """Up to ``size`` bytes (all that is left if ``size`` is None or negative), fewer at the end
        of a piece; empty only at the end. A piece read whole is returned as it is: for small
        members a ``memoryview`` of the reused buffer, valid until the next ``read`` and not to
        be changed."""
        if size is None or size < 0:
            rest = []
            while chunk := self.read(_READ):
                rest.append(bytes(chunk))
            return b"".join(rest)
        if self._offset >= len(self._piece) and self._pieces is not None:
            self._piece = b""  # (the last piece is not kept while the next one is made)
            self._piece, self._offset = next(self._pieces, b""), 0
        if self._offset == 0 and len(self._piece) <= size:
            chunk = self._piece
        else:
            chunk = self._piece[self._offset:self._offset + size]
        self._offset += len(chunk)
        self._position += len(chunk)
        return chunk

    def close(self) -> None:
        """Close the member being read (its file), if any; ``seek(0)`` starts again."""
        if self._pieces is not None:
            self._pieces.close()
            self._pieces = None


def _flags(name: str) -> int:
    """A member's general purpose flags: the UTF-8 bit for a name that is not ASCII."""
    return 0 if name.isascii() else _UTF8


def _read_into(handle: IO[bytes], view: memoryview) -> int:
    """Fill ``view`` from ``handle`` (several reads if a read returns less); the bytes read."""
    got = 0
    while got < len(view):
        n = handle.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def _check_size(member: ZipMember, seen: int) -> None:
    if seen < member.size:
        raise OSError(f"{member.name} ended after {seen} of {member.size} bytes (changed since it was read?)")
    if seen > member.size:
        raise OSError(f"{member.name} is longer than the {member.size} bytes read before (changed since it was read?)")


class HashingFile:
    """One file as a request body of known length that computes its MD5 as it is read (so a file
    is read once, while it is sent); rewinding to 0 for a retry starts the hash again."""

    def __init__(self, opener: Callable[[], IO[bytes]], size: int) -> None:
        self._opener = opener
        self._size = size
        self._handle: IO[bytes] | None = None
        self._reset()

    def __len__(self) -> int:
        return self._size

    def _reset(self) -> None:
        self.close()
        self._hash = hashlib.md5()
        self._position = 0

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) != (self._position, 0) and (offset, whence) != (0, 1):
            if (offset, whence) != (0, 0):
                raise OSError("a hashing body can only be rewound to its start")
            self._reset()
        return self._position

    def read(self, size: int = -1) -> bytes:
        if self._handle is None:
            self._handle = self._opener()
        left = self._size - self._position
        chunk = self._handle.read(left if size is None or size < 0 else min(size, left))
        if not chunk and left > 0:
            raise OSError(f"the file ended after {self._position} of {self._size} bytes (changed since it was read?)")
        self._hash.update(chunk)
        self._position += len(chunk)
        return chunk

    def md5(self) -> str:
        """The MD5 of what was read; only meaningful once the whole file was read."""
        if self._position != self._size:
            raise OSError(f"only {self._position} of {self._size} bytes were sent")
        return self._hash.hexdigest()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
