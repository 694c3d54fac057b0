"""Fast seeding: many inserts in one transaction, with no listener events."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from .checks import check_name, check_relpath
from .files import md5_file
from .models import Parent, StoreError, now_text
from .resources import Resources


class BulkLoader:
    """Fast inserts inside :meth:`Store.bulk` (see there)."""

    def __init__(self, store: Resources) -> None:
        self.store = store
        self.db = store.db
        self._subject_labels: dict[str, tuple[str, str]] = {}
        self._experiments: dict[str, tuple[str, str]] = {}
        self._scans: dict[int, tuple[str, str]] = {}
        self._touched: set[int] = set()
        self._folders: dict[int, Path] = {}
        self._made: set[Path] = set()
        self._stamp = now_text()

    def _next(self, code: str) -> str:
        return self.store.next_id(code)

    def subject(self, project: str, label: str, fields: Mapping[str, str] | None = None, *,
                user: str = "admin") -> str:
        check_name(label, "subject label")
        sid = self._next("S")
        self.db.execute(
            "INSERT INTO subjects(id, project, label, insert_date, insert_user, last_modified, fields)"
            " VALUES(?, ?, ?, ?, ?, ?, ?)",
            (sid, project, label, self._stamp, user, self._stamp, json.dumps(dict(fields or {}))),
        )
        self._subject_labels[sid] = (project, label)
        return sid

    def experiment(self, project: str, subject_id: str, label: str, xsi_type: str,
                   fields: Mapping[str, str] | None = None, *, session_id: str | None = None,
                   user: str = "admin") -> str:
        check_name(label, "experiment label")
        eid = self._next("E")
        self.db.execute(
            "INSERT INTO experiments(id, project, subject_id, session_id, label, xsi_type, insert_date,"
            " insert_user, last_modified, fields) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (eid, project, subject_id, session_id, label, xsi_type, self._stamp, user, self._stamp,
             json.dumps(dict(fields or {}))),
        )
        self._experiments[eid] = (project, label)
        return eid

    def scan(self, experiment_id: str, scan_id: str, xsi_type: str, fields: Mapping[str, str] | None = None) -> int:
        check_name(scan_id, "scan ID")
        cur = self.db.execute("INSERT INTO scans(experiment_id, id, xsi_type, fields) VALUES(?, ?, ?, ?)",
                              (experiment_id, scan_id, xsi_type, json.dumps(dict(fields or {}))))
        pk = int(cur.lastrowid or 0)
        self._scans[pk] = (experiment_id, scan_id)
        return pk

    def resource(self, parent: Parent, label: str, *, format: str = "", content: str = "") -> int:
        """A new resource (its catalog file is written once, when the bulk load finishes)."""
        check_name(label, "resource label")
        store = self.store
        if store.get_resource(parent, label) is not None:
            raise StoreError(409, "Specified resource already exists.")
        folder = store.parent_dir(parent) / label
        cur = self.db.execute(
            "INSERT INTO resources(kind, project, subject_id, experiment_id, scan_pk, label, format, content,"
            " directory) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (parent.kind, parent.project, parent.subject_id, parent.experiment_id, parent.scan_pk, label, format,
             content, folder.relative_to(store.archive_dir).as_posix()),
        )
        folder.mkdir(parents=True, exist_ok=True)
        resource_id = int(cur.lastrowid or 0)
        self._touched.add(resource_id)
        self._folders[resource_id] = folder
        self._made.add(folder)
        return resource_id

    def file(self, resource_id: int, path: str, data: bytes | Path, *, format: str = "",
             content: str = "") -> None:
        """Write one file into a resource (bytes, or a path that is copied)."""
        check_relpath(path)
        folder = self._folders.get(resource_id)
        if folder is None:
            resource = self.store.get_resource_by_id(resource_id)
            if resource is None:
                raise StoreError(404, "Unable to find the specified catalog.")
            folder = self._folders[resource_id] = self.store.resource_dir(resource)
        target = folder / path
        if target.parent not in self._made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(target.parent)
        if isinstance(data, Path):
            shutil.copyfile(data, target)
            size, md5 = target.stat().st_size, md5_file(target)
        else:
            target.write_bytes(data)
            size, md5 = len(data), hashlib.md5(data).hexdigest()
        self.db.execute(
            "INSERT OR REPLACE INTO files(resource_id, path, size, md5, format, content) VALUES(?, ?, ?, ?, ?, ?)",
            (resource_id, path, size, md5, format, content),
        )
        self._touched.add(resource_id)

    def finish(self) -> None:
        for resource_id in self._touched:
            resource = self.store.get_resource_by_id(resource_id)
            if resource is not None:
                self.store._refresh_stats(resource)
