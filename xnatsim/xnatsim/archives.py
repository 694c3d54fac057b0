"""Archives: streamed zip/tar(.gz) downloads and safe extraction of uploads.

Extraction refuses (400, nothing written) members that are absolute, contain ``..``, are links,
devices or FIFOs, or that would exceed the size/count limits.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from xnatsim.routing import HTTPError

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
_STORED = (".gz", ".zip", ".png", ".jpg", ".jpeg", ".bz2", ".xz", ".zst", ".7z")
CHUNK = 1 << 20
MAX_MEMBERS = 200_000


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


class _Sink:
    """A write-only file object collecting bytes for a generator to hand out."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.offset = 0

    def write(self, b: bytes) -> int:
        self.data += b
        self.offset += len(b)
        return len(b)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


def stream_zip(entries: Iterable[tuple[str, Path]]) -> Iterator[bytes]:
    """Zip ``(archive name, file)`` pairs on the fly (zip64, data descriptors, no seeking)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:  # type: ignore[call-overload]
        for name, path in entries:
            method = zipfile.ZIP_STORED if name.lower().endswith(_STORED) else zipfile.ZIP_DEFLATED
            try:  # a file deleted since the listing is left out, not a broken download
                src = path.open("rb")
            except FileNotFoundError:
                continue
            st = os.fstat(src.fileno())
            info = zipfile.ZipInfo(name, time.localtime(st.st_mtime)[:6])  # as ZipInfo.from_file does
            info.external_attr = (st.st_mode & 0xFFFF) << 16
            info.file_size = st.st_size
            info.compress_type = method
            if method == zipfile.ZIP_DEFLATED:
                info._compresslevel = 1  # type: ignore[attr-defined]
            with src, archive.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    if len(sink.data) >= CHUNK:
                        yield sink.take()
            if sink.data:
                yield sink.take()
    if sink.data:
        yield sink.take()


def stream_tar(entries: Iterable[tuple[str, Path]], *, gzip: bool) -> Iterator[bytes]:
    """Tar (optionally gzipped) ``(archive name, file)`` pairs on the fly, in bounded memory."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None

    def out(data: bytes) -> bytes:
        return compressor.compress(data) if compressor is not None else data

    written = 0
    for name, path in entries:
        info = tarfile.TarInfo(name)
        try:  # a file deleted since the listing is left out, not a broken download
            src = path.open("rb")
        except FileNotFoundError:
            continue
        stat_result = os.fstat(src.fileno())
        info.size, info.mtime, info.mode = stat_result.st_size, int(stat_result.st_mtime), 0o644
        header = info.tobuf(tarfile.PAX_FORMAT)
        written += len(header)
        yield out(header)
        with src:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                piece = out(chunk)
                if piece:
                    yield piece
        padding = -info.size % tarfile.BLOCKSIZE
        written += padding
        yield out(b"\0" * padding)
    end = 2 * tarfile.BLOCKSIZE
    end += -(written + end) % tarfile.RECORDSIZE
    tail = out(b"\0" * end)
    if compressor is not None:
        tail += compressor.flush()
    yield tail


def _safe_member(name: str) -> str:
    name = name.replace("\\", "/")
    path = PurePosixPath(name)
    if name in ("", "."):
        return ""
    if name.startswith("/") or path.is_absolute() or ".." in path.parts or "\x00" in name \
            or (len(name) > 1 and name[1] == ":"):
        raise HTTPError(400, f"Archive entry {name!r} points outside the resource; nothing was stored.")
    parts = [p for p in path.parts if p not in ("", ".")]
    return "/".join(parts)


_LOCAL_HEADER = struct.Struct("<4sHHH")


def _as_zip_input_stream(archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse what XNAT's reader refuses: XNAT unpacks uploads (import service, ``extract=true``)
    with Java's ``java.util.zip.ZipInputStream``, which reads each member's local header in turn
    and throws "only DEFLATED entries can have EXT descriptor" for a stored member whose local
    header defers its CRC and sizes to a data descriptor (flag bit 3), as :mod:`zipfile` writes
    when it streams to an unseekable output. Read here from the local headers, as Java does."""
    with archive.open("rb") as raw:
        for info in infos:
            raw.seek(info.header_offset)
            signature, _, flags, method = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size).ljust(10, b"\0"))
            if signature != b"PK\x03\x04":
                raise zipfile.BadZipFile("invalid LOC header (bad signature)")
            if flags & 0x8 and method != zipfile.ZIP_DEFLATED:
                raise zipfile.BadZipFile("only DEFLATED entries can have EXT descriptor")


def extract_hashed(archive: Path, name: str, target: Path, *, max_bytes: int) -> list[tuple[str, Path, int, str]]:
    """Unpack ``archive`` (named ``name``) into the empty folder ``target``; ``(relative path, file,
    size, md5)`` of each file, hashed while unpacking."""
    lowered = name.lower()
    total = 0
    out: list[tuple[str, Path, int, str]] = []
    made: set[Path] = set()
    try:
        if lowered.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                if len(infos) > MAX_MEMBERS:
                    raise HTTPError(400, "Too many entries in the archive.")
                _as_zip_input_stream(archive, infos)
                for info in infos:
                    rel = _safe_member(info.filename)
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        raise HTTPError(400, f"Archive entry {info.filename!r} is a symbolic link; nothing was stored.")
                    if info.is_dir():
                        continue
                    if not rel:
                        raise HTTPError(400, "Archive entry without a name; nothing was stored.")
                    total += info.file_size
                    if total > max_bytes:
                        raise HTTPError(413, "The archive unpacks to more than the size limit.")
                    dest = _destination(target, rel, made)
                    with zf.open(info) as src, dest.open("wb") as dst:
                        written, md5 = _copy_bounded(src, dst, max_bytes - total + info.file_size)
                    total += written - info.file_size
                    out.append((rel, dest, written, md5))
        elif lowered.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive, "r:*") as tf:
                count = 0
                for member in tf:
                    count += 1
                    if count > MAX_MEMBERS:
                        raise HTTPError(400, "Too many entries in the archive.")
                    rel = _safe_member(member.name)
                    if member.isdir():
                        continue
                    if not rel:
                        raise HTTPError(400, "Archive entry without a name; nothing was stored.")
                    if not member.isfile():
                        raise HTTPError(400, f"Archive entry {member.name!r} is not a regular file "
                                             "(link or device); nothing was stored.")
                    total += member.size
                    if total > max_bytes:
                        raise HTTPError(413, "The archive unpacks to more than the size limit.")
                    member_file = tf.extractfile(member)
                    if member_file is None:
                        continue
                    dest = _destination(target, rel, made)
                    with member_file, dest.open("wb") as dst:
                        written, md5 = _copy_bounded(member_file, dst, member.size)
                    out.append((rel, dest, written, md5))
        else:
            raise HTTPError(400, f"Cannot extract {name}: not a .zip, .tar, .tar.gz or .tgz file.")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise HTTPError(400, f"Cannot extract {name}: {exc}") from exc
    except OSError as exc:  # without the staging path, which is no business of the client
        raise HTTPError(400, f"Cannot extract {name}: {exc.strerror or type(exc).__name__}") from exc
    seen: set[str] = set()
    for rel, *_ in out:
        if rel in seen:
            raise HTTPError(400, f"Archive entry {rel!r} appears twice; nothing was stored.")
        seen.add(rel)
    return out


def _destination(target: Path, rel: str, made: set[Path]) -> Path:
    """The staging file for member ``rel``; 400 when it clashes with another member (file vs folder).

    ``made`` holds the folders this extraction has made, so members of one folder cost one ``mkdir``.
    """
    dest = target / rel
    if dest.parent not in made:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise HTTPError(400, f"Archive entry {rel!r} lies inside another entry that is a file; "
                                 "nothing was stored.") from exc
        made.add(dest.parent)
    if dest.is_dir():
        raise HTTPError(400, f"Archive entry {rel!r} is also a folder of other entries; nothing was stored.")
    return dest


def _copy_bounded(src: IO[bytes], dst: IO[bytes], limit: int) -> tuple[int, str]:
    """Copy at most ``limit`` bytes (413 beyond), hashing on the way: ``(bytes, md5 hex)``."""
    written = 0
    digest = hashlib.md5()
    while chunk := src.read(CHUNK):
        written += len(chunk)
        if written > limit:
            raise HTTPError(413, "The archive unpacks to more than the size limit.")
        digest.update(chunk)
        dst.write(chunk)
    return written, digest.hexdigest()
