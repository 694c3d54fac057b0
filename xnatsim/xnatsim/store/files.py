"""A resource's files: staging uploads, moving them into place, catalogs and statistics."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from .base import StoreBase
from .checks import CATALOG_SUFFIX, check_relpath
from .models import FileEntry, Resource, StagedFile, StoreError
from .rows import FILE_COLS, RESOURCE_COLS, file_row, resource_row


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Files(StoreBase):
    """The files table and each resource folder on disk, kept in step with its catalog file."""

    def resource_dir(self, resource: Resource) -> Path:
        return self.archive_dir / resource.directory

    def _delete_resources(self, where: str, params: tuple[Any, ...], *, remove_files: bool = True) -> None:
        db = self.db
        rows = db.execute(f"SELECT {RESOURCE_COLS} FROM resources WHERE {where}", params).fetchall()
        for row in rows:
            resource = resource_row(row)
            db.execute("DELETE FROM files WHERE resource_id=?", (resource.id,))
            db.execute("DELETE FROM resources WHERE id=?", (resource.id,))
            self._emit("deleted", resource.element_name, resource.as_dict())
            if remove_files:
                shutil.rmtree(self.resource_dir(resource), ignore_errors=True)


    def list_files(self, resource_id: int, prefix: str = "") -> list[FileEntry]:
        """Files of a resource (optionally under folder ``prefix``), ordered by path."""
        sql = f"SELECT {FILE_COLS} FROM files WHERE resource_id=?"
        params: list[Any] = [resource_id]
        if prefix:
            sql += " AND substr(path, 1, ?)=?"
            params += [len(prefix.rstrip("/")) + 1, prefix.rstrip("/") + "/"]
        return [file_row(r) for r in self.db.execute(sql + " ORDER BY path", params)]

    def get_file(self, resource_id: int, path: str) -> FileEntry | None:
        row = self.db.execute(f"SELECT {FILE_COLS} FROM files WHERE resource_id=? AND path=?",
                              (resource_id, path)).fetchone()
        return file_row(row) if row else None

    def file_path(self, resource: Resource, entry: FileEntry) -> Path:
        return self.resource_dir(resource) / entry.path

    def stage(self) -> Path:
        """A fresh private folder under :attr:`tmp_dir` (same filesystem as the archive)."""
        return Path(tempfile.mkdtemp(prefix="upload-", dir=self.tmp_dir))

    def stage_path(self) -> Path:
        """A fresh, not yet existing path under :attr:`tmp_dir` for one upload's body (create it with
        mode ``"xb"``; the umask's permissions then apply, as for every other archive file).

        Cheaper than :meth:`stage` for a single file: no folder to make and remove per request
        (``mkdir``/``rmdir`` in the shared staging folder were a large part of a small upload's cost).
        """
        return self.tmp_dir / f"upload-{uuid.uuid4().hex}"

    def stage_bytes(self, path: str, data: bytes, folder: Path | None = None) -> StagedFile:
        """Write ``data`` to a staging file for :meth:`add_files`."""
        check_relpath(path)
        target = (folder or self.stage()) / uuid.uuid4().hex
        target.write_bytes(data)
        return StagedFile(path, target, len(data), hashlib.md5(data).hexdigest())

    def add_files(self, resource: Resource, staged: Iterable[StagedFile], *,
                  overwrite: bool = False) -> list[str]:
        """Move staged files into the resource; returns the paths skipped as duplicates.

        Without ``overwrite`` an existing path is left alone and reported (XNAT's duplicates reply).
        The staging files are consumed (moved or deleted).
        """
        duplicates: list[str] = []
        added: list[FileEntry] = []
        replaced = False
        folder = self.resource_dir(resource)
        with self.write() as db:
            if db.execute("SELECT 1 FROM resources WHERE id=?", (resource.id,)).fetchone() is None:
                raise StoreError(404, "Unable to find the specified catalog.")  # deleted meanwhile
            for item in staged:
                check_relpath(item.path)
                exists = db.execute("SELECT 1 FROM files WHERE resource_id=? AND path=?",
                                    (resource.id, item.path)).fetchone()
                if exists and not overwrite:
                    duplicates.append(item.path)
                    item.source.unlink(missing_ok=True)
                    continue
                replaced = replaced or exists is not None
                target = folder / item.path
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir():
                    raise StoreError(409, f"A folder already exists at {item.path}.")
                os.replace(item.source, target)
                db.execute(
                    "INSERT OR REPLACE INTO files(resource_id, path, size, md5, format, content, tags)"
                    " VALUES(?, ?, ?, ?, ?, ?, ?)",
                    (resource.id, item.path, item.size, item.md5, item.format, item.content, item.tags),
                )
                added.append(FileEntry(resource.id, item.path, item.size, item.md5, item.format, item.content,
                                       item.tags))
            if added:
                self._refresh_stats(resource, None if replaced else added)
        return duplicates

    def path_conflicts(self, resource_id: int, paths: Iterable[str]) -> str | None:
        """A message when a new file path would sit where a folder is (or below a file), else None."""
        db = self.db
        wanted = list(paths)
        new = set(wanted)
        for path in wanted:
            parts = path.split("/")
            ancestors = ["/".join(parts[:i]) for i in range(1, len(parts))]
            for ancestor in ancestors:
                if ancestor in new or (db.execute("SELECT 1 FROM files WHERE resource_id=? AND path=?",
                                                  (resource_id, ancestor)).fetchone()):
                    return f"Cannot store {path}: {ancestor} is a file."
            below = db.execute("SELECT 1 FROM files WHERE resource_id=? AND path > ? AND path < ? LIMIT 1",
                               (resource_id, path + "/", path + "0")).fetchone()
            if below is not None:
                return f"Cannot store {path}: it is a folder."
        return None

    def put_file(self, resource: Resource, path: str, data: bytes, *, overwrite: bool = False,
                 format: str = "", content: str = "", tags: str = "") -> bool:
        """Store one file from bytes; False when it existed and ``overwrite`` was not given."""
        folder = self.stage()
        try:
            item = self.stage_bytes(path, data, folder)
            item.format, item.content, item.tags = format, content, tags
            return not self.add_files(resource, [item], overwrite=overwrite)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def delete_files(self, resource: Resource, path: str) -> int:
        """Delete a file, or every file under folder ``path``; returns how many (0 → caller 404s)."""
        folder = self.resource_dir(resource)
        with self.write() as db:
            entries = [e for e in (self.get_file(resource.id, path),) if e] or self.list_files(resource.id, path)
            for entry in entries:
                db.execute("DELETE FROM files WHERE resource_id=? AND path=?", (resource.id, entry.path))
                (folder / entry.path).unlink(missing_ok=True)
            if entries:
                self._refresh_stats(resource)
            _prune_empty(folder)  # under the write lock: an upload may be about to fill a folder
        return len(entries)

    def refresh_catalog(self, resource: Resource, *, append: bool = False, delete: bool = False,
                        checksum: bool = False) -> dict[str, int]:
        """XNAT's catalog refresh: sync the file table with the resource folder on disk.

        ``append`` adds files found on disk, ``delete`` drops entries whose file is gone, ``checksum``
        fills in missing MD5s. Statistics and the catalog file are always brought up to date.
        """
        folder = self.resource_dir(resource)
        on_disk = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*")
                   if p.is_file() and not p.name.endswith(CATALOG_SUFFIX) and not p.name.startswith(".")}
        counts = {"added": 0, "removed": 0, "checksummed": 0}
        with self.write() as db:
            known = {e.path: e for e in self.list_files(resource.id)}
            if append:
                for rel, path in sorted(on_disk.items()):
                    if rel in known:
                        continue
                    try:
                        check_relpath(rel)
                    except StoreError:
                        continue
                    db.execute("INSERT INTO files(resource_id, path, size, md5) VALUES(?, ?, ?, ?)",
                               (resource.id, rel, path.stat().st_size, md5_file(path) if checksum else ""))
                    counts["added"] += 1
            for rel, entry in known.items():
                if rel not in on_disk:
                    if delete:
                        db.execute("DELETE FROM files WHERE resource_id=? AND path=?", (resource.id, rel))
                        counts["removed"] += 1
                elif checksum and not entry.md5:
                    db.execute("UPDATE files SET md5=? WHERE resource_id=? AND path=?",
                               (md5_file(on_disk[rel]), resource.id, rel))
                    counts["checksummed"] += 1
            self._refresh_stats(resource)
        return counts

    def _refresh_stats(self, resource: Resource, added: list[FileEntry] | None = None) -> None:
        """Update file_count/file_size and the catalog file (appending when only ``added`` changed)."""
        db = self.db
        count, size = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM files WHERE resource_id=?",
                                 (resource.id,)).fetchone()
        db.execute("UPDATE resources SET file_count=?, file_size=? WHERE id=?", (count, size, resource.id))
        resource.file_count, resource.file_size = int(count), int(size)
        if added is None or not self._append_catalog(resource, added):
            self._write_catalog(resource, self.list_files(resource.id))

    def _append_catalog(self, resource: Resource, added: list[FileEntry]) -> bool:
        """Append entries before the catalog's closing tags; False when the file is not as we wrote it."""
        target = self.resource_dir(resource) / f"{resource.label}{CATALOG_SUFFIX}"
        tail = _CATALOG_TAIL.encode()
        try:
            with target.open("r+b") as handle:
                handle.seek(0, os.SEEK_END)
                end = handle.tell()
                if end < len(tail):
                    return False
                handle.seek(end - len(tail))
                if handle.read() != tail:
                    return False
                handle.seek(end - len(tail))
                handle.write(("".join(_entry_xml(e) + "\n" for e in added) + _CATALOG_TAIL).encode("utf-8"))
        except OSError:
            return False
        return True

    def _write_catalog(self, resource: Resource, entries: list[FileEntry]) -> None:
        """(Re)write ``<label>_catalog.xml`` in the resource folder, as XNAT keeps it."""
        folder = self.resource_dir(resource)
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<cat:Catalog xmlns:cat="http://nrg.wustl.edu/catalog" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID={quoteattr(resource.label)}>',
            "<cat:entries>",
        ]
        lines.extend(_entry_xml(e) for e in entries)
        target = folder / f"{resource.label}{CATALOG_SUFFIX}"
        tmp = folder / f".{resource.label}{CATALOG_SUFFIX}.tmp"
        tmp.write_text("\n".join(lines) + "\n" + _CATALOG_TAIL, encoding="utf-8")
        os.replace(tmp, target)

    def catalog_xml(self, resource: Resource) -> str:
        """The catalog document served for ``GET …/resources/R``."""
        target = self.resource_dir(resource) / f"{resource.label}{CATALOG_SUFFIX}"
        if not target.exists():
            self._write_catalog(resource, self.list_files(resource.id))
        return target.read_text(encoding="utf-8")


_CATALOG_TAIL = "</cat:entries>\n</cat:Catalog>\n"


def _entry_xml(e: FileEntry) -> str:
    return (f"<cat:entry URI={quoteattr(e.path)} ID={quoteattr(e.path)} name={quoteattr(e.name)} "
            f'digest="{e.md5}" size="{e.size}" format={quoteattr(e.format)} content={quoteattr(e.content)}'
            ' xsi:type="cat:entryBean"/>')



def _prune_empty(folder: Path) -> None:
    """Remove empty sub-folders left after deleting files (never the resource folder itself)."""
    try:
        found = sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True)
    except OSError:  # the folder went away meanwhile (its resource or parent was deleted)
        return
    for path in found:
        if path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()
