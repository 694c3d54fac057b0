"""Projects, subjects, experiments (sessions and assessors) and scans."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from .accounts import Accounts
from .checks import MAX_NAME_BYTES, check_name
from .files import Files
from .models import (
    Experiment,
    FieldValues,
    Project,
    Scan,
    StoreError,
    Subject,
    apply_fields,
    now_text,
)
from .rows import (
    EXPERIMENT_SELECT,
    PROJECT_COLS,
    SCAN_COLS,
    SCAN_ORDER,
    SUBJECT_COLS,
    experiment_row,
    project_row,
    scan_row,
    subject_row,
)


class Hierarchy(Files, Accounts):
    """The object tree; deleting an object deletes what hangs on it (resources, files, assessors)."""


    def get_project(self, project_id: str) -> Project | None:
        """A project by ID, or by secondary ID/alias (XNAT accepts both)."""
        row = self.db.execute(f"SELECT {PROJECT_COLS} FROM projects WHERE id=?", (project_id,)).fetchone()
        if row is None:
            row = self.db.execute(f"SELECT {PROJECT_COLS} FROM projects WHERE secondary_id=? "
                                  "OR json_extract(fields, '$.alias')=?", (project_id, project_id)).fetchone()
        return project_row(row) if row else None

    def list_projects(self) -> list[Project]:
        return [project_row(r) for r in self.db.execute(f"SELECT {PROJECT_COLS} FROM projects ORDER BY id")]

    def put_project(self, project_id: str, values: FieldValues, *, user: str = "",
                    create: bool = True) -> tuple[Project, bool]:
        """Create or update a project; returns ``(project, created)``.

        ``values`` may hold ``secondary_ID``, ``name``, ``description``, ``keywords``,
        ``pi_firstname``, ``pi_lastname``, ``accessibility`` and any other field name.
        Errors: 417 bad ID characters, 409 ID/secondary ID/name conflicts, 403 reused ID.
        """
        if not re.fullmatch(r"[A-Za-z0-9_-]+", project_id):
            raise StoreError(417, "Invalid character in project ID.")
        if len(project_id) > MAX_NAME_BYTES:
            raise StoreError(400, f"Invalid project ID: longer than {MAX_NAME_BYTES} characters.")
        with self.write() as db:
            current = self.get_project(project_id)
            if current is not None and current.id != project_id:
                current = None
            core = {"secondary_ID": "secondary_id", "name": "name", "description": "description",
                    "keywords": "keywords", "pi_firstname": "pi_firstname", "pi_lastname": "pi_lastname",
                    "accessibility": "accessibility"}
            if current is None:
                if not create:
                    raise StoreError(404, "Unable to find the specified experiment.")
                if db.execute("SELECT 1 FROM used_project_ids WHERE id=?", (project_id,)).fetchone():
                    raise StoreError(403, f"Project '{project_id}' was used in a previously deleted "
                                          "project and cannot be reused.")
                current = Project(project_id, project_id, project_id, insert_date=now_text(), insert_user=user)
                created = True
            else:
                created = False
            for key, value in values.items():
                attr = core.get(key)
                if attr is not None:
                    setattr(current, attr, value or ("" if attr != "accessibility" else "private"))
                elif value is None:
                    current.fields.pop(key, None)
                else:
                    current.fields[key] = value
            if not current.secondary_id:
                current.secondary_id = project_id
            if not current.name:
                current.name = current.secondary_id
            clash = db.execute(
                "SELECT id FROM projects WHERE id<>? AND (id IN (?, ?, ?) OR secondary_id IN (?, ?, ?) "
                "OR name IN (?, ?, ?))",
                (project_id, *(3 * (current.id, current.secondary_id, current.name))),
            ).fetchone()
            if clash:
                raise StoreError(409, f"Requested new project conflicts with existing projects: {clash[0]}")
            db.execute(
                "INSERT OR REPLACE INTO projects(id, secondary_id, name, description, keywords, pi_firstname,"
                " pi_lastname, accessibility, insert_date, insert_user, fields)"
                " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (current.id, current.secondary_id, current.name, current.description, current.keywords,
                 current.pi_firstname, current.pi_lastname, current.accessibility, current.insert_date,
                 current.insert_user, json.dumps(current.fields)),
            )
            db.execute("INSERT OR IGNORE INTO used_project_ids(id) VALUES(?)", (project_id,))
            if created and user and not self.is_admin(user):
                db.execute("INSERT OR REPLACE INTO roles(project, login, role) VALUES(?, ?, 'owner')",
                           (project_id, user))
            self._emit("created" if created else "updated", "xnat:projectData", current.as_dict())
        (self.archive_dir / project_id).mkdir(exist_ok=True)
        return current, created

    def delete_project(self, project_id: str, *, remove_files: bool = True) -> None:
        """Delete a project and everything in it; its ID can never be used again."""
        with self.write() as db:
            project = self.get_project(project_id)
            if project is None:
                raise StoreError(404, "Unable to find the specified experiment.")
            for (sid,) in db.execute("SELECT id FROM subjects WHERE project=?", (project.id,)).fetchall():
                self.delete_subject(sid, remove_files=False)
            db.execute("DELETE FROM files WHERE resource_id IN (SELECT id FROM resources WHERE project=?)",
                       (project.id,))
            db.execute("DELETE FROM resources WHERE project=?", (project.id,))
            db.execute("DELETE FROM roles WHERE project=?", (project.id,))
            db.execute("DELETE FROM configs WHERE project=?", (project.id,))
            db.execute("DELETE FROM projects WHERE id=?", (project.id,))
            self._emit("deleted", "xnat:projectData", project.as_dict())
        if remove_files:
            shutil.rmtree(self.archive_dir / project.id, ignore_errors=True)

    # -- subjects -------------------------------------------------------------------

    def get_subject(self, ref: str, project: str | None = None) -> Subject | None:
        """A subject by ID, or by label within ``project``."""
        row = self.db.execute(f"SELECT {SUBJECT_COLS} FROM subjects WHERE id=?", (ref,)).fetchone()
        if row is not None and project is not None and row[1] != project:
            row = None
        if row is None and project is not None:
            row = self.db.execute(f"SELECT {SUBJECT_COLS} FROM subjects WHERE project=? AND label=?",
                                  (project, ref)).fetchone()
        return subject_row(row) if row else None

    def list_subjects(self, project: str | None = None) -> list[Subject]:
        if project is None:
            rows = self.db.execute(f"SELECT {SUBJECT_COLS} FROM subjects ORDER BY id")
        else:
            rows = self.db.execute(f"SELECT {SUBJECT_COLS} FROM subjects WHERE project=? ORDER BY id", (project,))
        return [subject_row(r) for r in rows]

    def put_subject(self, project: str, ref: str, values: FieldValues, *, user: str = "",
                    label: str | None = None) -> tuple[Subject, bool]:
        """Create (by label) or update (by ID or label) a subject; returns ``(subject, created)``.

        ``label`` renames an existing subject (409 when taken in the project).
        """
        with self.write() as db:
            if self.get_project(project) is None:
                raise StoreError(404, f"Unable to find project {project}.")
            subject = self.get_subject(ref, project)
            created = subject is None
            stamp = now_text()
            if subject is None:
                check_name(label or ref, "subject label")
                subject = Subject(self.next_id("S"), project, label or ref, stamp, user, stamp)
                label = None
            if label is not None and label != subject.label:
                check_name(label, "subject label")
                if db.execute("SELECT 1 FROM subjects WHERE project=? AND label=?", (project, label)).fetchone():
                    raise StoreError(409, "Specified label is already in use.")
                old = self.archive_dir / project / "subjects" / subject.label
                if old.exists():
                    os.replace(old, self.archive_dir / project / "subjects" / label)
                db.execute("UPDATE resources SET directory=? || substr(directory, ?) WHERE subject_id=?",
                           (f"{project}/subjects/{label}/", len(f"{project}/subjects/{subject.label}/") + 1,
                            subject.id))
                subject.label = label
            apply_fields(subject.fields, values)
            subject.last_modified = stamp
            db.execute(
                "INSERT OR REPLACE INTO subjects(id, project, label, insert_date, insert_user, last_modified,"
                " fields) VALUES(?, ?, ?, ?, ?, ?, ?)",
                (subject.id, subject.project, subject.label, subject.insert_date, subject.insert_user,
                 subject.last_modified, json.dumps(subject.fields)),
            )
            self._emit("created" if created else "updated", "xnat:subjectData", subject.as_dict())
        return subject, created

    def delete_subject(self, subject_id: str, *, remove_files: bool = True) -> None:
        """Delete a subject, its experiments and its resources."""
        with self.write() as db:
            subject = self.get_subject(subject_id)
            if subject is None:
                raise StoreError(404, "Unable to find the specified subject.")
            for (eid,) in db.execute("SELECT id FROM experiments WHERE subject_id=? AND session_id IS NULL",
                                     (subject.id,)).fetchall():
                self.delete_experiment(eid, remove_files=remove_files)
            self._delete_resources("subject_id=?", (subject.id,))
            db.execute("DELETE FROM subjects WHERE id=?", (subject.id,))
            self._emit("deleted", "xnat:subjectData", subject.as_dict())
        if remove_files:
            shutil.rmtree(self.archive_dir / subject.project / "subjects" / subject.label, ignore_errors=True)

    # -- experiments ----------------------------------------------------------------

    def get_experiment(self, ref: str, project: str | None = None) -> Experiment | None:
        """An experiment by ID, or by label within ``project``."""
        row = self.db.execute(f"{EXPERIMENT_SELECT} WHERE e.id=?", (ref,)).fetchone()
        if row is not None and project is not None and row[1] != project:
            row = None
        if row is None and project is not None:
            row = self.db.execute(f"{EXPERIMENT_SELECT} WHERE e.project=? AND e.label=?", (project, ref)).fetchone()
        return experiment_row(row) if row else None

    def list_experiments(self, *, project: str | None = None, subject_id: str | None = None,
                         session_id: str | None = None, xsi_type: str | None = None) -> list[Experiment]:
        """Experiments matching the given keys (simple form; bulk listings live in ``listings``).

        Without ``session_id`` only subject assessors are listed, with it that session's assessors.
        """
        where = ["e.session_id IS NULL" if session_id is None else "e.session_id=?"]
        params: list[Any] = [] if session_id is None else [session_id]
        for column, value in (("e.project", project), ("e.subject_id", subject_id), ("e.xsi_type", xsi_type)):
            if value is not None:
                where.append(f"{column}=?")
                params.append(value)
        sql = f"{EXPERIMENT_SELECT} WHERE {' AND '.join(where)} ORDER BY e.id"
        return [experiment_row(r) for r in self.db.execute(sql, params)]

    def session_dir(self, experiment: Experiment) -> Path:
        """The experiment's archive folder (``<P>/arc001/<label>``; assessors inside their session)."""
        if experiment.session_id:
            session = self.get_experiment(experiment.session_id)
            if session is not None:
                return self.session_dir(session) / "ASSESSORS" / experiment.label
        return self.archive_dir / experiment.project / "arc001" / experiment.label

    def put_experiment(self, project: str, subject_ref: str | None, ref: str, xsi_type: str | None,
                       values: FieldValues, *, user: str = "", label: str | None = None,
                       session_id: str | None = None) -> tuple[Experiment, bool]:
        """Create or update an experiment; returns ``(experiment, created)``.

        ``ref`` is an ID or a label in ``project``; a new experiment takes ``ref`` as its label and
        needs ``xsi_type`` (else 417 "Need PUT Contents"). An unknown ``subject_ref`` label creates
        the subject in the same call. ``session_id`` makes an image assessor of that session.
        ``label`` renames. A type change of an existing experiment → 409.
        """
        with self.write() as db:
            if self.get_project(project) is None:
                raise StoreError(404, f"Unable to find project {project}.")
            exp = self.get_experiment(ref, project)
            created = exp is None
            stamp = now_text()
            if exp is None:
                if not xsi_type:
                    raise StoreError(417, "Need PUT Contents")
                new_label = label or ref
                check_name(new_label, "experiment label")
                if session_id is not None:
                    session = self.get_experiment(session_id)
                    if session is None:
                        raise StoreError(404, "Unable to find the specified experiment.")
                    subject = self.get_subject(session.subject_id)
                else:
                    if not subject_ref:
                        raise StoreError(422, "Submitted experiment record must include the subject.")
                    subject = self.get_subject(subject_ref, project)
                    if subject is None:
                        subject, _ = self.put_subject(project, subject_ref, {}, user=user)
                assert subject is not None
                exp = Experiment(self.next_id("E"), project, subject.id, new_label, xsi_type, subject.label,
                                 session_id, stamp, user, stamp)
                label = None
            else:
                if xsi_type and xsi_type != exp.xsi_type:
                    raise StoreError(409, "Specified xsiType differs from existing xsiType")
                if subject_ref and session_id is None:
                    subject = self.get_subject(subject_ref, project)
                    if subject is None:
                        subject, _ = self.put_subject(project, subject_ref, {}, user=user)
                    exp.subject_id, exp.subject_label = subject.id, subject.label
            if label is not None and label != exp.label:
                check_name(label, "experiment label")
                if db.execute("SELECT 1 FROM experiments WHERE project=? AND label=?", (project, label)).fetchone():
                    raise StoreError(409, "Specified label is already in use.")
                old_dir = self.session_dir(exp)
                old_rel = old_dir.relative_to(self.archive_dir).as_posix() + "/"
                exp.label = label
                new_dir = self.session_dir(exp)
                if old_dir.exists():
                    new_dir.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(old_dir, new_dir)
                new_rel = new_dir.relative_to(self.archive_dir).as_posix() + "/"
                # an exact prefix test: LIKE would ignore case and treat ``_`` as a wildcard, moving the
                # resources of another session (``MR1`` when ``mr1`` is renamed)
                db.execute("UPDATE resources SET directory=? || substr(directory, ?)"
                           " WHERE substr(directory, 1, ?)=?",
                           (new_rel, len(old_rel) + 1, len(old_rel), old_rel))
            apply_fields(exp.fields, values)
            exp.last_modified = stamp
            db.execute(
                "INSERT OR REPLACE INTO experiments(id, project, subject_id, session_id, label, xsi_type,"
                " insert_date, insert_user, last_modified, fields) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (exp.id, exp.project, exp.subject_id, exp.session_id, exp.label, exp.xsi_type,
                 exp.insert_date, exp.insert_user, exp.last_modified, json.dumps(exp.fields)),
            )
            self._emit("created" if created else "updated", exp.xsi_type, exp.as_dict())
        return exp, created

    def delete_experiment(self, experiment_id: str, *, remove_files: bool = True) -> None:
        """Delete an experiment with its scans, resources, files and (for sessions) assessors."""
        with self.write() as db:
            exp = self.get_experiment(experiment_id)
            if exp is None:
                raise StoreError(404, "Unable to find the specified experiment.")
            folder = self.session_dir(exp)
            for (aid,) in db.execute("SELECT id FROM experiments WHERE session_id=?", (exp.id,)).fetchall():
                self.delete_experiment(aid, remove_files=False)
            self._delete_resources("experiment_id=?", (exp.id,))
            self._delete_resources("scan_pk IN (SELECT pk FROM scans WHERE experiment_id=?)", (exp.id,))
            db.execute("DELETE FROM scans WHERE experiment_id=?", (exp.id,))
            db.execute("DELETE FROM experiments WHERE id=?", (exp.id,))
            self._emit("deleted", exp.xsi_type, exp.as_dict())
        if remove_files:
            shutil.rmtree(folder, ignore_errors=True)

    # -- scans ----------------------------------------------------------------------

    def get_scan(self, experiment_id: str, scan_id: str) -> Scan | None:
        row = self.db.execute(f"SELECT {SCAN_COLS} FROM scans WHERE experiment_id=? AND id=?",
                              (experiment_id, scan_id)).fetchone()
        return scan_row(row) if row else None

    def get_scan_by_pk(self, pk: int) -> Scan | None:
        row = self.db.execute(f"SELECT {SCAN_COLS} FROM scans WHERE pk=?", (pk,)).fetchone()
        return scan_row(row) if row else None

    def list_scans(self, experiment_id: str) -> list[Scan]:
        rows = self.db.execute(f"SELECT {SCAN_COLS} FROM scans WHERE experiment_id=? ORDER BY {SCAN_ORDER}",
                               (experiment_id,))
        return [scan_row(r) for r in rows]

    def next_scan_id(self, experiment_id: str) -> str:
        """The smallest unused integer scan ID (XNAT's choice for a PUT without an ID)."""
        taken = {r[0] for r in self.db.execute("SELECT id FROM scans WHERE experiment_id=?", (experiment_id,))}
        n = 1
        while str(n) in taken:
            n += 1
        return str(n)

    def put_scan(self, experiment_id: str, scan_id: str, xsi_type: str | None,
                 values: FieldValues) -> tuple[Scan, bool]:
        """Create or update a scan; a new scan needs ``xsi_type`` (417), a type change → 409."""
        check_name(scan_id, "scan ID")
        with self.write() as db:
            exp = self.get_experiment(experiment_id)
            if exp is None:
                raise StoreError(404, "Unable to find the specified experiment.")
            scan = self.get_scan(exp.id, scan_id)
            created = scan is None
            if scan is None:
                if not xsi_type:
                    raise StoreError(417, "Need PUT Contents")
                fields: dict[str, str] = {}
                apply_fields(fields, values)
                cur = db.execute("INSERT INTO scans(experiment_id, id, xsi_type, fields) VALUES(?, ?, ?, ?)",
                                 (exp.id, scan_id, xsi_type, json.dumps(fields)))
                scan = Scan(int(cur.lastrowid or 0), exp.id, scan_id, xsi_type, fields)
            else:
                if xsi_type and xsi_type != scan.xsi_type:
                    raise StoreError(409, "Specified xsiType differs from existing xsiType")
                apply_fields(scan.fields, values)
                db.execute("UPDATE scans SET fields=? WHERE pk=?", (json.dumps(scan.fields), scan.pk))
            self._emit("created" if created else "updated", scan.xsi_type, scan.as_dict())
        return scan, created

    def delete_scan(self, experiment_id: str, scan_id: str, *, remove_files: bool = True) -> None:
        with self.write() as db:
            scan = self.get_scan(experiment_id, scan_id)
            exp = self.get_experiment(experiment_id)
            if scan is None or exp is None:
                raise StoreError(404, "Unable to find the specified scan.")
            self._delete_resources("scan_pk=?", (scan.pk,))
            db.execute("DELETE FROM scans WHERE pk=?", (scan.pk,))
            self._emit("deleted", scan.xsi_type, scan.as_dict())
        if remove_files:
            shutil.rmtree(self.session_dir(exp) / "SCANS" / scan.id, ignore_errors=True)
