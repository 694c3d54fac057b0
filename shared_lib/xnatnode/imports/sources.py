"""Where a batch comes from: a folder or a ``.zip``, read safely.

Both kinds list their files as POSIX paths relative to the source root and open them for
reading; nothing is extracted to disk. Entries that could reach outside the source are never
read and are listed in :attr:`Source.rejected` with the reason:

* zip members with absolute paths (``/x``, ``C:/x``), ``..`` components, backslashes that would
  become separators, or encrypted content;
* two members (or files) with the same path after normalisation: all copies are rejected, since
  which one is meant cannot be known;
* links whose target lies outside the source (zip symlink members, folder symlinks); a link
  inside the source stands for its target; links to folders are not followed.

A folder that holds exactly one file, a ``.zip``, is read as that zip (the usual shape of an
XNAT resource that received one uploaded archive).
"""

from __future__ import annotations

import os
import posixpath
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

#: Names that never carry data: macOS resource forks and Finder files, Windows thumbnails, and
#: the catalog XNAT keeps in a mounted resource's folder (``<label>_catalog.xml``).
NOISE = ("__MACOSX/", ".DS_Store", "Thumbs.db")
CATALOG_SUFFIX = "_catalog.xml"


class SourceError(Exception):
    """The source as a whole cannot be read (missing, not a folder or zip, a broken zip)."""


@dataclass(frozen=True, slots=True)
class Member:
    """One file of a source."""

    path: str  #: POSIX path relative to the source root
    size: int  #: bytes as stored (compressed ``.nii.gz`` bytes for a gzip file)


@dataclass
class Source:
    """Files of a batch; subclasses know how to open them."""

    name: str
    members: dict[str, Member] = field(default_factory=dict)
    #: ``(path, reason)`` of entries that were refused and are never read
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def open(self, path: str) -> IO[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds open."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add(self, paths: dict[str, list[Member]]) -> None:
        for path, found in sorted(paths.items()):
            if len(found) > 1:
                self.rejected.append((path, f"duplicate path: {len(found)} entries share it"))
            else:
                self.members[path] = found[0]


def _is_noise(path: str) -> bool:
    return (path.startswith(NOISE[0]) or posixpath.basename(path) in NOISE[1:]
            or ("/" not in path and path.endswith(CATALOG_SUFFIX)))


def normalise(raw: str) -> str | None:
    """``raw`` as a safe relative POSIX path, or None when it is absolute or climbs out."""
    if not raw or "\x00" in raw:
        return None
    text = raw.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


# --------------------------------------------------------------------------- folder


class FolderSource(Source):
    """Files under a folder, found without following links out of it."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
        self.root = root.resolve()
        self._targets: dict[str, Path] = {}
        found: dict[str, list[Member]] = {}
        self._walk(self.root, "", found)
        self._add(found)

    def _walk(self, folder: Path, prefix: str, found: dict[str, list[Member]]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            self.rejected.append((prefix.rstrip("/") or ".", f"folder cannot be read: {exc.strerror}"))
            return
        for entry in entries:
            rel = prefix + entry.name
            if _is_noise(rel):
                continue
            try:
                if entry.is_symlink():
                    self._link(entry, rel, found)
                elif entry.is_dir(follow_symlinks=False):
                    self._walk(Path(entry.path), rel + "/", found)
                elif entry.is_file(follow_symlinks=False):
                    found.setdefault(rel, []).append(Member(rel, entry.stat(follow_symlinks=False).st_size))
                    self._targets[rel] = Path(entry.path)
                else:
                    self.rejected.append((rel, "not a regular file (device, pipe or socket)"))
            except OSError as exc:
                self.rejected.append((rel, f"cannot be read: {exc.strerror}"))

    def _link(self, entry: os.DirEntry[str], rel: str, found: dict[str, list[Member]]) -> None:
        target = Path(os.path.realpath(entry.path))
        if not target.is_relative_to(self.root):
            self.rejected.append((rel, "link points outside the source"))
            return
        if target.is_dir():
            self.rejected.append((rel, "link to a folder inside the source: not followed"))
            return
        if not target.is_file():
            self.rejected.append((rel, "broken link"))
            return
        found.setdefault(rel, []).append(Member(rel, target.stat().st_size))
        self._targets[rel] = target

    def open(self, path: str) -> IO[bytes]:
        target = self._targets[path]
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(target, flags)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{path} is no longer a regular file")
        return os.fdopen(fd, "rb")


# --------------------------------------------------------------------------- zip


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0


class ZipSource(Source):
    """Members of a zip archive, read in place (nothing extracted to disk).

    ``prefix`` limits the source to members under that folder (e.g. the ``…/files/`` part of a
    zip XNAT produced for a resource) and strips it from their paths.
    """

    def __init__(self, path: Path, prefix: str = "") -> None:
        super().__init__(str(path))
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError(f"{path} is not a readable zip archive: {exc}") from None
        self._infos: dict[str, zipfile.ZipInfo] = {}
        found: dict[str, list[Member]] = {}
        links: list[tuple[str, zipfile.ZipInfo]] = []
        for info in self._zip.infolist():
            if info.is_dir():
                continue
            rel = normalise(info.filename)
            if rel is None:
                self.rejected.append((info.filename, "path escapes the archive root (absolute or ..)"))
                continue
            if prefix:
                if not rel.startswith(prefix):
                    continue
                rel = rel[len(prefix):]
            if _is_noise(rel):
                continue
            if info.flag_bits & 0x1:
                self.rejected.append((rel, "encrypted zip member"))
                continue
            if stat.S_ISLNK(_zip_mode(info)):
                links.append((rel, info))
                continue
            found.setdefault(rel, []).append(Member(rel, info.file_size))
            self._infos.setdefault(rel, info)
        for rel, info in links:
            self._zip_link(rel, info, found)
        self._add(found)

    def _zip_link(self, rel: str, info: zipfile.ZipInfo, found: dict[str, list[Member]]) -> None:
        target_text = self._zip.read(info).decode("utf-8", "replace") if info.file_size < 4096 else ""
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target_text))
        if not target_text or target_text.startswith("/") or joined.startswith(".."):
            self.rejected.append((rel, "link points outside the source"))
            return
        target = self._infos.get(joined)
        if target is None:
            self.rejected.append((rel, "link to nothing in the archive (or to a folder): not followed"))
            return
        found.setdefault(rel, []).append(Member(rel, target.file_size))
        self._infos[rel] = target

    def open(self, path: str) -> IO[bytes]:
        return self._zip.open(self._infos[path])

    def close(self) -> None:
        self._zip.close()


def open_source(path: Path) -> Source:
    """A :class:`FolderSource` or :class:`ZipSource` for ``path`` (see the module docstring)."""
    if path.is_dir():
        entries = [e for e in path.iterdir() if not _is_noise(e.name)]
        if len(entries) == 1 and entries[0].is_file() and not entries[0].is_symlink() \
                and entries[0].suffix.lower() == ".zip":
            return ZipSource(entries[0])
        return FolderSource(path)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise SourceError(f"{path} is neither a folder nor a zip archive")
        return ZipSource(path)
    if not path.exists():
        raise SourceError(f"source {path} does not exist")
    raise SourceError(f"source {path} is neither a folder nor a zip archive")


def suffix_of(path: str) -> str:
    """The lower-case extension, with ``.gz`` kept together with the one before it."""
    name = PurePosixPath(path).name.lower()
    for double in (".nii.gz", ".tsv.gz"):
        if name.endswith(double):
            return double
    return PurePosixPath(name).suffix


def stem_of(path: str) -> str:
    """The file name without :func:`suffix_of`."""
    name = PurePosixPath(path).name
    return name[: len(name) - len(suffix_of(path))]
