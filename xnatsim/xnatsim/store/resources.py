"""Resources on their parents (project, subject, experiment, scan): folders and records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checks import check_name
from .hierarchy import Hierarchy
from .models import Parent, Resource, StoreError
from .rows import RESOURCE_COLS, resource_row


class Resources(Hierarchy):
    """Where a parent's resources live, and creating, finding and deleting them."""

    def parent_dir(self, parent: Parent) -> Path:
        """The folder a parent's resources live in (each resource is a sub-folder of it)."""
        if parent.kind == "project":
            return self.archive_dir / parent.project / "resources"
        if parent.kind == "subject":
            subject = self.get_subject(parent.subject_id or "")
            if subject is None:
                raise StoreError(404, "Unable to find the specified subject.")
            return self.archive_dir / subject.project / "subjects" / subject.label / "resources"
        exp = self.get_experiment(parent.experiment_id or "")
        if exp is None:
            raise StoreError(404, "Unable to find the specified experiment.")
        if parent.kind == "experiment":
            # image assessors keep their resources directly in ASSESSORS/<label>/<resource>
            return self.session_dir(exp) if exp.session_id else self.session_dir(exp) / "RESOURCES"
        scan = self.get_scan_by_pk(parent.scan_pk or -1)
        if scan is None:
            raise StoreError(404, "Unable to find the specified scan.")
        return self.session_dir(exp) / "SCANS" / scan.id

    def _parent_where(self, parent: Parent) -> tuple[str, tuple[Any, ...]]:
        if parent.kind == "project":
            return "kind='project' AND project=?", (parent.project,)
        if parent.kind == "subject":
            return "kind='subject' AND subject_id=?", (parent.subject_id,)
        if parent.kind == "experiment":
            return "kind='experiment' AND experiment_id=?", (parent.experiment_id,)
        return "kind='scan' AND scan_pk=?", (parent.scan_pk,)

    def list_resources(self, parent: Parent) -> list[Resource]:
        where, params = self._parent_where(parent)
        rows = self.db.execute(f"SELECT {RESOURCE_COLS} FROM resources WHERE {where} ORDER BY id", params)
        return [resource_row(r) for r in rows]

    def get_resource(self, parent: Parent, ref: str) -> Resource | None:
        """A resource of ``parent`` by label, or by its numeric id."""
        where, params = self._parent_where(parent)
        row = self.db.execute(f"SELECT {RESOURCE_COLS} FROM resources WHERE {where} AND label=?",
                              (*params, ref)).fetchone()
        if row is None and ref.isdigit():
            row = self.db.execute(f"SELECT {RESOURCE_COLS} FROM resources WHERE {where} AND id=?",
                                  (*params, int(ref))).fetchone()
        return resource_row(row) if row else None

    def get_resource_by_id(self, resource_id: int) -> Resource | None:
        row = self.db.execute(f"SELECT {RESOURCE_COLS} FROM resources WHERE id=?", (resource_id,)).fetchone()
        return resource_row(row) if row else None

    def create_resource(self, parent: Parent, label: str, *, format: str = "", content: str = "",
                        description: str = "", tags: str = "", exist_ok: bool = False) -> tuple[Resource, bool]:
        """Create a resource; an existing label → 409 unless ``exist_ok``. Returns ``(resource, created)``."""
        check_name(label, "resource label")
        with self.write() as db:
            existing = self.get_resource(parent, label)
            if existing is not None and existing.label == label:
                if exist_ok:
                    return existing, False
                raise StoreError(409, "Specified resource already exists.")
            folder = self.parent_dir(parent) / label
            directory = folder.relative_to(self.archive_dir).as_posix()
            cur = db.execute(
                "INSERT INTO resources(kind, project, subject_id, experiment_id, scan_pk, label, format, content,"
                " description, tags, directory) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (parent.kind, parent.project, parent.subject_id, parent.experiment_id, parent.scan_pk, label,
                 format, content, description, tags, directory),
            )
            resource = Resource(int(cur.lastrowid or 0), label, parent, format=format, content=content,
                                description=description, tags=tags, directory=directory)
            folder.mkdir(parents=True, exist_ok=True)
            self._write_catalog(resource, [])
            self._emit("created", resource.element_name, resource.as_dict())
        return resource, True

    def delete_resource(self, resource: Resource, *, remove_files: bool = True) -> None:
        with self.write():
            self._delete_resources("id=?", (resource.id,), remove_files=remove_files)
