"""The data layer: SQLite (WAL) for metadata plus an archive directory in XNAT's layout.

Layout under the data directory::

    xnatsim.db                       metadata (projects … files, users, tokens, configs)
    archive/<PROJECT>/resources/<label>/…                         project resources
    archive/<PROJECT>/subjects/<SUBJECT>/resources/<label>/…      subject resources
    archive/<PROJECT>/arc001/<SESSION>/RESOURCES/<label>/…        session resources
    archive/<PROJECT>/arc001/<SESSION>/SCANS/<scan>/<label>/…     scan resources
    archive/<PROJECT>/arc001/<SESSION>/ASSESSORS/<ASSESSOR>/<label>/…  image-assessor resources
    tmp/                             staging area: uploads land here, then move into place
    build/                           Container Service build (output) directories

Every resource folder also holds XNAT's catalog file ``<label>_catalog.xml``.

Objects are plain dataclasses. Free-form fields (``date``, ``gender``, ``series_description`` …)
live in each object's ``fields`` dict keyed by the XSD path relative to the object (``date``,
``scanner/manufacturer``, ``parameters/tr``; subject demographics by their bare name,
``gender``); values are strings. Errors are :class:`StoreError` with XNAT's status and text.

Thread safety: one SQLite connection per thread; writes are serialised by a lock.
Listeners (:meth:`Store.add_listener`) are called after each committed change with
``(event, xsi_type, object_dict)`` where ``event`` is ``"created"``, ``"updated"`` or
``"deleted"`` and ``object_dict["kind"]`` is ``project``/``subject``/``experiment``/``scan``/
``resource``. The Event Service mostly wants ``kind == "experiment"``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

log = logging.getLogger("xnatsim.store")

ParentKind = Literal["project", "subject", "experiment", "scan"]
Role = Literal["owner", "member", "collaborator"]
ROLES: tuple[str, ...] = ("owner", "member", "collaborator")
Listener = Callable[[str, str, dict[str, Any]], None]
#: Values given to :meth:`Store.put_*` ``fields``: a string sets, None removes (XNAT's ``NULL``).
FieldValues = Mapping[str, str | None]

DB_NAME = "xnatsim.db"
CATALOG_SUFFIX = "_catalog.xml"
TOKEN_LIFETIME_MS = 48 * 3600 * 1000


class StoreError(Exception):
    """A refused operation, carrying XNAT's HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def now_text() -> str:
    """XNAT's table timestamp format: ``2024-01-02 10:11:12.123``."""
    t = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


# --------------------------------------------------------------------------- objects


@dataclass
class Project:
    id: str
    secondary_id: str
    name: str
    description: str = ""
    keywords: str = ""
    pi_firstname: str = ""
    pi_lastname: str = ""
    accessibility: str = "private"
    insert_date: str = ""
    insert_user: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "project", **asdict(self)}


@dataclass
class Subject:
    id: str
    project: str
    label: str
    insert_date: str = ""
    insert_user: str = ""
    last_modified: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "subject", **asdict(self)}


@dataclass
class Experiment:
    """A subject assessor (session or other) or, with ``session_id`` set, an image assessor."""

    id: str
    project: str
    subject_id: str
    label: str
    xsi_type: str
    subject_label: str = ""
    #: the image session an image assessor belongs to; None for subject assessors
    session_id: str | None = None
    insert_date: str = ""
    insert_user: str = ""
    last_modified: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def date(self) -> str:
        return self.fields.get("date", "")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "experiment", **asdict(self)}


@dataclass
class Scan:
    #: ``xnat_imagescandata_id``: site-wide integer, never reused
    pk: int
    experiment_id: str
    id: str
    xsi_type: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.fields.get("type", "")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "scan", **asdict(self)}


@dataclass(frozen=True)
class Parent:
    """What a resource hangs on. ``experiment_id`` is also used for image assessors."""

    kind: ParentKind
    project: str
    subject_id: str | None = None
    experiment_id: str | None = None
    scan_pk: int | None = None


@dataclass
class Resource:
    #: ``xnat_abstractresource_id``: site-wide integer, never reused
    id: int
    label: str
    parent: Parent
    element_name: str = "xnat:resourceCatalog"
    format: str = ""
    content: str = ""
    description: str = ""
    tags: str = ""
    file_count: int = 0
    file_size: int = 0
    #: folder relative to the archive root
    directory: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "resource", **asdict(self)}


@dataclass
class FileEntry:
    resource_id: int
    #: path relative to the resource folder, ``/``-separated
    path: str
    size: int
    md5: str
    format: str = ""
    content: str = ""
    tags: str = ""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class StagedFile:
    """A file already written under :attr:`Store.tmp_dir`, ready to move into a resource."""

    path: str
    source: Path
    size: int
    md5: str
    format: str = ""
    content: str = ""
    tags: str = ""


@dataclass
class ConfigEntry:
    project: str
    tool: str
    path: str
    contents: str
    status: str
    version: int
    reason: str
    user: str
    create_date: str
    unversioned: bool


# --------------------------------------------------------------------------- helpers


#: the longest label, ID or file name (UTF-8 bytes): a folder or file name, with room for ``_catalog.xml``
MAX_NAME_BYTES = 200
#: the longest file path inside a resource (UTF-8 bytes)
MAX_PATH_BYTES = 1024


def check_name(value: str, what: str) -> str:
    """Refuse names that could escape a folder: empty, ``.``/``..``, ``/``, ``\\``, NUL; or too long for one."""
    if not value or value in (".", "..") or any(c in value for c in "/\\\x00") or value != value.strip():
        raise StoreError(400, f"Invalid {what}: {value!r}.")
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise StoreError(400, f"Invalid {what}: longer than {MAX_NAME_BYTES} bytes.")
    return value


def check_relpath(value: str) -> str:
    """Validate a file path inside a resource (``a/b.txt``); refuse absolute and ``..`` paths."""
    if not value or "\x00" in value or "\\" in value or value.startswith("/"):
        raise StoreError(400, f"Invalid file path: {value!r}.")
    parts = value.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise StoreError(400, f"Invalid file path: {value!r}.")
    if len(value.encode("utf-8")) > MAX_PATH_BYTES or any(len(p.encode("utf-8")) > 255 for p in parts):
        raise StoreError(400, f"Invalid file path: longer than {MAX_PATH_BYTES} bytes or a part over 255.")
    if parts[-1].endswith(CATALOG_SUFFIX):
        raise StoreError(400, f"Reserved file name: {parts[-1]!r}.")
    return value


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + "\x00" + secret).encode("utf-8")).hexdigest()


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters(prefix TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users(
    login TEXT PRIMARY KEY, salt TEXT NOT NULL, pw_hash TEXT NOT NULL, admin INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1, first_name TEXT DEFAULT '', last_name TEXT DEFAULT '',
    email TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS roles(project TEXT NOT NULL, login TEXT NOT NULL, role TEXT NOT NULL,
    PRIMARY KEY(project, login));
CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, login TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(id INTEGER PRIMARY KEY AUTOINCREMENT, alias TEXT UNIQUE NOT NULL,
    salt TEXT NOT NULL, secret_hash TEXT NOT NULL, login TEXT NOT NULL, created INTEGER NOT NULL,
    expires INTEGER NOT NULL, enabled INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS projects(id TEXT PRIMARY KEY, secondary_id TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '', keywords TEXT NOT NULL DEFAULT '',
    pi_firstname TEXT NOT NULL DEFAULT '', pi_lastname TEXT NOT NULL DEFAULT '',
    accessibility TEXT NOT NULL DEFAULT 'private', insert_date TEXT NOT NULL DEFAULT '',
    insert_user TEXT NOT NULL DEFAULT '', fields TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS used_project_ids(id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS subjects(id TEXT PRIMARY KEY, project TEXT NOT NULL, label TEXT NOT NULL,
    insert_date TEXT NOT NULL DEFAULT '', insert_user TEXT NOT NULL DEFAULT '',
    last_modified TEXT NOT NULL DEFAULT '', fields TEXT NOT NULL DEFAULT '{}', UNIQUE(project, label));
CREATE TABLE IF NOT EXISTS experiments(id TEXT PRIMARY KEY, project TEXT NOT NULL,
    subject_id TEXT NOT NULL, session_id TEXT, label TEXT NOT NULL, xsi_type TEXT NOT NULL,
    insert_date TEXT NOT NULL DEFAULT '', insert_user TEXT NOT NULL DEFAULT '',
    last_modified TEXT NOT NULL DEFAULT '', fields TEXT NOT NULL DEFAULT '{}', UNIQUE(project, label));
CREATE INDEX IF NOT EXISTS experiments_project_type ON experiments(project, xsi_type);
CREATE INDEX IF NOT EXISTS experiments_subject ON experiments(subject_id);
CREATE INDEX IF NOT EXISTS experiments_session ON experiments(session_id);
CREATE INDEX IF NOT EXISTS experiments_type ON experiments(xsi_type);
CREATE TABLE IF NOT EXISTS scans(pk INTEGER PRIMARY KEY AUTOINCREMENT, experiment_id TEXT NOT NULL,
    id TEXT NOT NULL, xsi_type TEXT NOT NULL, fields TEXT NOT NULL DEFAULT '{}',
    UNIQUE(experiment_id, id));
CREATE TABLE IF NOT EXISTS resources(id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
    project TEXT NOT NULL, subject_id TEXT, experiment_id TEXT, scan_pk INTEGER, label TEXT NOT NULL,
    element_name TEXT NOT NULL DEFAULT 'xnat:resourceCatalog', format TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '',
    file_count INTEGER NOT NULL DEFAULT 0, file_size INTEGER NOT NULL DEFAULT 0,
    directory TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS resources_project ON resources(project, kind);
CREATE INDEX IF NOT EXISTS resources_subject ON resources(subject_id);
CREATE INDEX IF NOT EXISTS resources_experiment ON resources(experiment_id);
CREATE INDEX IF NOT EXISTS resources_scan ON resources(scan_pk);
CREATE TABLE IF NOT EXISTS files(resource_id INTEGER NOT NULL, path TEXT NOT NULL,
    size INTEGER NOT NULL, md5 TEXT NOT NULL, format TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '', PRIMARY KEY(resource_id, path));
CREATE TABLE IF NOT EXISTS configs(project TEXT NOT NULL, tool TEXT NOT NULL, path TEXT NOT NULL,
    version INTEGER NOT NULL, contents TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
    login TEXT NOT NULL, create_date TEXT NOT NULL, unversioned INTEGER NOT NULL,
    PRIMARY KEY(project, tool, path, version));
"""


# --------------------------------------------------------------------------- the store


class Store:
    """SQLite metadata + archive files. Open with ``Store(data_dir)``; ``close()`` when done."""

    def __init__(self, data_dir: str | Path, *, site_id: str = "XNATSIM") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.archive_dir = self.data_dir / "archive"
        self.tmp_dir = self.data_dir / "tmp"
        self.build_dir = self.data_dir / "build"
        for folder in (self.data_dir, self.archive_dir, self.tmp_dir, self.build_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / DB_NAME
        self.site_id = site_id
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._pending: list[tuple[str, str, dict[str, Any]]] = []
        db = self.db
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        db.commit()

    # -- connections and transactions ------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._conn_lock:
                self._connections.append(conn)
        return conn

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only SQL query on this thread's connection (for listings and other modules)."""
        return self.db.execute(sql, tuple(params)).fetchall()

    def cursor(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Like :meth:`query` but returns the cursor, for streaming large results."""
        return self.db.execute(sql, tuple(params))

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A serialised write transaction; listeners fire after it commits."""
        with self._write_lock:
            db = self.db
            outer = db.in_transaction
            if not outer:
                db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if not outer:
                    db.execute("ROLLBACK")
                    self._pending.clear()
                raise
            if outer:
                return
            db.execute("COMMIT")
            events, self._pending = self._pending, []
        for event in events:
            self._notify(*event)

    def close(self) -> None:
        """Close every thread's connection."""
        with self._conn_lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- listeners ------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(event, xsi_type, object_dict)`` after every committed change (see module doc)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    def _emit(self, event: str, xsi_type: str, obj: dict[str, Any]) -> None:
        self._pending.append((event, xsi_type, obj))

    def _notify(self, event: str, xsi_type: str, obj: dict[str, Any]) -> None:
        for fn in list(self._listeners):
            try:
                fn(event, xsi_type, obj)
            except Exception:
                log.exception("store listener %r failed on %s %s", fn, event, xsi_type)

    # -- ids ------------------------------------------------------------------------

    def next_id(self, code: str) -> str:
        """The next never-used ID ``<SITE>_<code>NNNNN`` (code ``S`` subjects, ``E`` experiments)."""
        prefix = f"{self.site_id}_{code}"
        with self.write() as db:
            row = db.execute("SELECT value FROM counters WHERE prefix=?", (prefix,)).fetchone()
            value = (row[0] if row else 0) + 1
            table = "subjects" if code == "S" else "experiments"
            while db.execute(f"SELECT 1 FROM {table} WHERE id=?", (f"{prefix}{value:05d}",)).fetchone():
                value += 1
            db.execute(
                "INSERT INTO counters(prefix, value) VALUES(?, ?) "
                "ON CONFLICT(prefix) DO UPDATE SET value=excluded.value",
                (prefix, value),
            )
        return f"{prefix}{value:05d}"

    # -- users, roles, sessions, tokens ---------------------------------------------------

    def add_user(self, login: str, password: str, *, admin: bool = False, first_name: str = "",
                 last_name: str = "", email: str = "") -> None:
        """Create or replace a user (password stored salted and hashed)."""
        check_name(login, "user name")
        salt = secrets.token_hex(8)
        with self.write() as db:
            db.execute(
                "INSERT OR REPLACE INTO users(login, salt, pw_hash, admin, enabled, first_name, last_name, email)"
                " VALUES(?, ?, ?, ?, 1, ?, ?, ?)",
                (login, salt, _hash_secret(salt, password), int(admin), first_name, last_name, email),
            )

    def check_password(self, login: str, password: str) -> bool:
        row = self.db.execute("SELECT salt, pw_hash, enabled FROM users WHERE login=?", (login,)).fetchone()
        if row is None or not row[2]:
            return False
        return hmac.compare_digest(row[1], _hash_secret(row[0], password))

    def user_exists(self, login: str) -> bool:
        return self.db.execute("SELECT 1 FROM users WHERE login=?", (login,)).fetchone() is not None

    def is_admin(self, login: str | None) -> bool:
        if login is None:
            return False
        row = self.db.execute("SELECT admin FROM users WHERE login=?", (login,)).fetchone()
        return bool(row and row[0])

    def list_users(self) -> list[dict[str, Any]]:
        """Every user: ``id`` (``xdat_user_id``), ``login``, ``admin``, ``enabled``, names, ``email``."""
        rows = self.db.execute(
            "SELECT rowid, login, admin, enabled, first_name, last_name, email FROM users ORDER BY login").fetchall()
        return [dict(zip(("id", "login", "admin", "enabled", "first_name", "last_name", "email"), r, strict=True))
                for r in rows]

    def set_role(self, project: str, login: str, role: Role | None) -> None:
        """Make ``login`` an owner/member/collaborator of ``project`` (None removes the role)."""
        if role is not None and role not in ROLES:
            raise StoreError(400, f"Unknown role {role!r}.")
        with self.write() as db:
            if role is None:
                db.execute("DELETE FROM roles WHERE project=? AND login=?", (project, login))
            else:
                db.execute("INSERT OR REPLACE INTO roles(project, login, role) VALUES(?, ?, ?)",
                           (project, login, role))

    def role(self, project: str, login: str | None) -> str | None:
        if login is None:
            return None
        row = self.db.execute("SELECT role FROM roles WHERE project=? AND login=?", (project, login)).fetchone()
        return str(row[0]) if row else None

    def create_session(self, login: str) -> str:
        """A new HTTP session id (the JSESSIONID value) for ``login``."""
        sid = secrets.token_hex(16).upper()
        with self.write() as db:
            db.execute("INSERT INTO sessions(id, login, created) VALUES(?, ?, ?)", (sid, login, time.time()))
        return sid

    def session_user(self, sid: str) -> str | None:
        row = self.db.execute("SELECT login FROM sessions WHERE id=?", (sid,)).fetchone()
        return str(row[0]) if row else None

    def delete_session(self, sid: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM sessions WHERE id=?", (sid,))

    def issue_token(self, login: str, *, lifetime_ms: int = TOKEN_LIFETIME_MS) -> dict[str, Any]:
        """Issue an alias token for ``login``; returns XNAT's token JSON (``alias``, ``secret`` …).

        The Container Service emulation calls this to inject ``XNAT_USER``/``XNAT_PASS``.
        """
        if not self.user_exists(login):
            raise StoreError(404, f"User {login} not found.")
        alias = str(uuid.uuid4())
        secret = secrets.token_urlsafe(48)[:64]
        salt = secrets.token_hex(8)
        created = int(time.time() * 1000)
        with self.write() as db:
            cur = db.execute(
                "INSERT INTO tokens(alias, salt, secret_hash, login, created, expires, enabled)"
                " VALUES(?, ?, ?, ?, ?, ?, 1)",
                (alias, salt, _hash_secret(salt, secret), login, created, created + lifetime_ms),
            )
            token_id = int(cur.lastrowid or 0)
        return {
            "secret": secret, "estimatedExpirationTime": created + lifetime_ms, "alias": alias,
            "xdatUserId": login, "singleUse": False, "id": token_id, "disabled": 0,
            "created": created, "enabled": True, "timestamp": created,
        }

    def validate_token(self, alias: str, secret: str) -> str | None:
        """The login an enabled, unexpired token belongs to, else None."""
        row = self.db.execute(
            "SELECT salt, secret_hash, login, expires, enabled FROM tokens WHERE alias=?", (alias,)).fetchone()
        if row is None or not row[4] or row[3] < time.time() * 1000:
            return None
        return str(row[2]) if hmac.compare_digest(row[1], _hash_secret(row[0], secret)) else None

    def revoke_token(self, alias: str) -> bool:
        """Disable a token; True when it existed."""
        with self.write() as db:
            cur = db.execute("UPDATE tokens SET enabled=0 WHERE alias=?", (alias,))
            return cur.rowcount > 0

    def list_tokens(self, login: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, alias, login, created, expires, enabled FROM tokens WHERE login=? ORDER BY id",
            (login,)).fetchall()
        return [{"id": r[0], "alias": r[1], "xdatUserId": r[2], "created": r[3],
                 "estimatedExpirationTime": r[4], "enabled": bool(r[5]), "singleUse": False} for r in rows]

    # -- projects -------------------------------------------------------------------

    def get_project(self, project_id: str) -> Project | None:
        """A project by ID, or by secondary ID/alias (XNAT accepts both)."""
        row = self.db.execute(f"SELECT {_PROJECT_COLS} FROM projects WHERE id=?", (project_id,)).fetchone()
        if row is None:
            row = self.db.execute(f"SELECT {_PROJECT_COLS} FROM projects WHERE secondary_id=? "
                                  "OR json_extract(fields, '$.alias')=?", (project_id, project_id)).fetchone()
        return _project(row) if row else None

    def list_projects(self) -> list[Project]:
        return [_project(r) for r in self.db.execute(f"SELECT {_PROJECT_COLS} FROM projects ORDER BY id")]

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
        row = self.db.execute(f"SELECT {_SUBJECT_COLS} FROM subjects WHERE id=?", (ref,)).fetchone()
        if row is not None and project is not None and row[1] != project:
            row = None
        if row is None and project is not None:
            row = self.db.execute(f"SELECT {_SUBJECT_COLS} FROM subjects WHERE project=? AND label=?",
                                  (project, ref)).fetchone()
        return _subject(row) if row else None

    def list_subjects(self, project: str | None = None) -> list[Subject]:
        if project is None:
            rows = self.db.execute(f"SELECT {_SUBJECT_COLS} FROM subjects ORDER BY id")
        else:
            rows = self.db.execute(f"SELECT {_SUBJECT_COLS} FROM subjects WHERE project=? ORDER BY id", (project,))
        return [_subject(r) for r in rows]

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
            _apply(subject.fields, values)
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
        row = self.db.execute(f"{_EXPERIMENT_SELECT} WHERE e.id=?", (ref,)).fetchone()
        if row is not None and project is not None and row[1] != project:
            row = None
        if row is None and project is not None:
            row = self.db.execute(f"{_EXPERIMENT_SELECT} WHERE e.project=? AND e.label=?", (project, ref)).fetchone()
        return _experiment(row) if row else None

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
        sql = f"{_EXPERIMENT_SELECT} WHERE {' AND '.join(where)} ORDER BY e.id"
        return [_experiment(r) for r in self.db.execute(sql, params)]

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
            _apply(exp.fields, values)
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
        row = self.db.execute(f"SELECT {_SCAN_COLS} FROM scans WHERE experiment_id=? AND id=?",
                              (experiment_id, scan_id)).fetchone()
        return _scan(row) if row else None

    def get_scan_by_pk(self, pk: int) -> Scan | None:
        row = self.db.execute(f"SELECT {_SCAN_COLS} FROM scans WHERE pk=?", (pk,)).fetchone()
        return _scan(row) if row else None

    def list_scans(self, experiment_id: str) -> list[Scan]:
        rows = self.db.execute(f"SELECT {_SCAN_COLS} FROM scans WHERE experiment_id=? ORDER BY {_SCAN_ORDER}",
                               (experiment_id,))
        return [_scan(r) for r in rows]

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
                _apply(fields, values)
                cur = db.execute("INSERT INTO scans(experiment_id, id, xsi_type, fields) VALUES(?, ?, ?, ?)",
                                 (exp.id, scan_id, xsi_type, json.dumps(fields)))
                scan = Scan(int(cur.lastrowid or 0), exp.id, scan_id, xsi_type, fields)
            else:
                if xsi_type and xsi_type != scan.xsi_type:
                    raise StoreError(409, "Specified xsiType differs from existing xsiType")
                _apply(scan.fields, values)
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

    # -- resources ------------------------------------------------------------------

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
        rows = self.db.execute(f"SELECT {_RESOURCE_COLS} FROM resources WHERE {where} ORDER BY id", params)
        return [_resource(r) for r in rows]

    def get_resource(self, parent: Parent, ref: str) -> Resource | None:
        """A resource of ``parent`` by label, or by its numeric id."""
        where, params = self._parent_where(parent)
        row = self.db.execute(f"SELECT {_RESOURCE_COLS} FROM resources WHERE {where} AND label=?",
                              (*params, ref)).fetchone()
        if row is None and ref.isdigit():
            row = self.db.execute(f"SELECT {_RESOURCE_COLS} FROM resources WHERE {where} AND id=?",
                                  (*params, int(ref))).fetchone()
        return _resource(row) if row else None

    def get_resource_by_id(self, resource_id: int) -> Resource | None:
        row = self.db.execute(f"SELECT {_RESOURCE_COLS} FROM resources WHERE id=?", (resource_id,)).fetchone()
        return _resource(row) if row else None

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

    def resource_dir(self, resource: Resource) -> Path:
        return self.archive_dir / resource.directory

    def delete_resource(self, resource: Resource, *, remove_files: bool = True) -> None:
        with self.write():
            self._delete_resources("id=?", (resource.id,), remove_files=remove_files)

    def _delete_resources(self, where: str, params: tuple[Any, ...], *, remove_files: bool = True) -> None:
        db = self.db
        rows = db.execute(f"SELECT {_RESOURCE_COLS} FROM resources WHERE {where}", params).fetchall()
        for row in rows:
            resource = _resource(row)
            db.execute("DELETE FROM files WHERE resource_id=?", (resource.id,))
            db.execute("DELETE FROM resources WHERE id=?", (resource.id,))
            self._emit("deleted", resource.element_name, resource.as_dict())
            if remove_files:
                shutil.rmtree(self.resource_dir(resource), ignore_errors=True)

    # -- files ----------------------------------------------------------------------

    def list_files(self, resource_id: int, prefix: str = "") -> list[FileEntry]:
        """Files of a resource (optionally under folder ``prefix``), ordered by path."""
        sql = f"SELECT {_FILE_COLS} FROM files WHERE resource_id=?"
        params: list[Any] = [resource_id]
        if prefix:
            sql += " AND substr(path, 1, ?)=?"
            params += [len(prefix.rstrip("/")) + 1, prefix.rstrip("/") + "/"]
        return [_file(r) for r in self.db.execute(sql + " ORDER BY path", params)]

    def get_file(self, resource_id: int, path: str) -> FileEntry | None:
        row = self.db.execute(f"SELECT {_FILE_COLS} FROM files WHERE resource_id=? AND path=?",
                              (resource_id, path)).fetchone()
        return _file(row) if row else None

    def file_path(self, resource: Resource, entry: FileEntry) -> Path:
        return self.resource_dir(resource) / entry.path

    def stage(self) -> Path:
        """A fresh private folder under :attr:`tmp_dir` (same filesystem as the archive)."""
        return Path(tempfile.mkdtemp(prefix="upload-", dir=self.tmp_dir))

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

    # -- configuration ----------------------------------------------------------------

    def get_config(self, project: str, tool: str, path: str, version: int | None = None) -> ConfigEntry | None:
        """The latest (or given) version of a config entry; ``project=""`` is site-wide."""
        sql = f"SELECT {_CONFIG_COLS} FROM configs WHERE project=? AND tool=? AND path=?"
        params: list[Any] = [project, tool, path]
        if version is not None:
            sql += " AND version=?"
            params.append(version)
        row = self.db.execute(sql + " ORDER BY version DESC LIMIT 1", params).fetchone()
        return _config(row) if row else None

    def config_history(self, project: str, tool: str, path: str) -> list[ConfigEntry]:
        rows = self.db.execute(f"SELECT {_CONFIG_COLS} FROM configs WHERE project=? AND tool=? AND path=? "
                               "ORDER BY version", (project, tool, path))
        return [_config(r) for r in rows]

    def list_configs(self, project: str, tool: str | None = None) -> list[ConfigEntry]:
        """Latest version of every entry of ``project`` (and ``tool``)."""
        sql = (f"SELECT {_CONFIG_COLS} FROM configs c WHERE project=? "
               "AND version=(SELECT max(version) FROM configs d WHERE d.project=c.project AND d.tool=c.tool "
               "AND d.path=c.path)")
        params: list[Any] = [project]
        if tool is not None:
            sql += " AND tool=?"
            params.append(tool)
        return [_config(r) for r in self.db.execute(sql + " ORDER BY tool, path", params)]

    def put_config(self, project: str, tool: str, path: str, contents: str | None, *, user: str,
                   reason: str = "", status: str | None = None, unversioned: bool = False) -> bool:
        """Store a config entry; returns True when it was new (201), False when replaced/unchanged.

        ``contents=None`` with ``status`` only toggles the status of the current entry.
        """
        with self.write() as db:
            current = self.get_config(project, tool, path)
            if contents is None:
                if current is None or status is None:
                    raise StoreError(400, "No body contents.")
                contents = current.contents
            new_status = status or "enabled"
            if current is not None and current.contents == contents and current.status == new_status:
                return False
            version = 1 if current is None else current.version + (0 if unversioned else 1)
            db.execute(
                "INSERT OR REPLACE INTO configs(project, tool, path, version, contents, status, reason, login,"
                " create_date, unversioned) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (project, tool, path, version, contents, new_status, reason, user, now_text(), int(unversioned)),
            )
        return current is None

    def disable_config(self, project: str, tool: str, path: str, *, user: str) -> bool:
        current = self.get_config(project, tool, path)
        if current is None:
            return False
        self.put_config(project, tool, path, current.contents, user=user, status="disabled")
        return True

    # -- bulk loading -------------------------------------------------------------------

    @contextlib.contextmanager
    def bulk(self) -> Iterator[BulkLoader]:
        """One write transaction for seeding many objects fast; listeners are **not** called.

        ::

            with store.bulk() as b:
                sid = b.subject("P", "S001", {"gender": "female"})
                eid = b.experiment("P", sid, "S001_MR1", "xnat:mrSessionData", {"date": "2024-01-02"})
                pk = b.scan(eid, "1", "xnat:mrScanData", {"type": "T1", "quality": "usable"})
                rid = b.resource(Parent("scan", "P", sid, eid, pk), "NIFTI", format="NIFTI")
                b.file(rid, "image.nii.gz", data)

        The project must exist (use :meth:`put_project`). Labels must be new (no update path).
        """
        loader = BulkLoader(self)
        with self.write():
            yield loader
            loader.finish()
            self._pending.clear()


class BulkLoader:
    """Fast inserts inside :meth:`Store.bulk` (see there)."""

    def __init__(self, store: Store) -> None:
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


# --------------------------------------------------------------------------- row mapping

_PROJECT_COLS = ("id, secondary_id, name, description, keywords, pi_firstname, pi_lastname, accessibility,"
                 " insert_date, insert_user, fields")
_SUBJECT_COLS = "id, project, label, insert_date, insert_user, last_modified, fields"
_EXPERIMENT_SELECT = (
    "SELECT e.id, e.project, e.subject_id, e.label, e.xsi_type, coalesce(s.label, ''), e.session_id,"
    " e.insert_date, e.insert_user, e.last_modified, e.fields FROM experiments e"
    " LEFT JOIN subjects s ON s.id = e.subject_id"
)
_SCAN_COLS = "pk, experiment_id, id, xsi_type, fields"
#: numeric scan IDs in numeric order, then the rest alphabetically
_SCAN_ORDER = "CASE WHEN id GLOB '[0-9]*' AND id NOT GLOB '*[^0-9]*' THEN 0 ELSE 1 END, CAST(id AS INTEGER), id"
_RESOURCE_COLS = ("id, label, kind, project, subject_id, experiment_id, scan_pk, element_name, format, content,"
                  " description, tags, file_count, file_size, directory")
_FILE_COLS = "resource_id, path, size, md5, format, content, tags"
_CONFIG_COLS = "project, tool, path, contents, status, version, reason, login, create_date, unversioned"


def _project(r: tuple[Any, ...]) -> Project:
    return Project(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], json.loads(r[10]))


def _subject(r: tuple[Any, ...]) -> Subject:
    return Subject(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))


def _experiment(r: tuple[Any, ...]) -> Experiment:
    return Experiment(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], json.loads(r[10]))


def _scan(r: tuple[Any, ...]) -> Scan:
    return Scan(int(r[0]), r[1], r[2], r[3], json.loads(r[4]))


def _resource(r: tuple[Any, ...]) -> Resource:
    parent = Parent(r[2], r[3], r[4], r[5], r[6])
    return Resource(int(r[0]), r[1], parent, r[7], r[8], r[9], r[10], r[11], int(r[12]), int(r[13]), r[14])


def _file(r: tuple[Any, ...]) -> FileEntry:
    return FileEntry(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], r[6])


def _config(r: tuple[Any, ...]) -> ConfigEntry:
    return ConfigEntry(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6], r[7], r[8], bool(r[9]))


_CATALOG_TAIL = "</cat:entries>\n</cat:Catalog>\n"


def _entry_xml(e: FileEntry) -> str:
    return (f"<cat:entry URI={quoteattr(e.path)} ID={quoteattr(e.path)} name={quoteattr(e.name)} "
            f'digest="{e.md5}" size="{e.size}" format={quoteattr(e.format)} content={quoteattr(e.content)}'
            ' xsi:type="cat:entryBean"/>')


def _apply(fields: dict[str, str], values: FieldValues) -> None:
    for key, value in values.items():
        if value is None or value == "NULL":
            fields.pop(key, None)
        else:
            fields[key] = value


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


__all__ = [
    "CATALOG_SUFFIX", "ROLES", "BulkLoader", "ConfigEntry", "Experiment", "FileEntry", "Parent", "Project",
    "Resource", "Scan", "StagedFile", "Store", "StoreError", "Subject", "check_name", "check_relpath",
    "md5_file", "now_text",
]
