"""The SQLite schema of the store's metadata database."""

from __future__ import annotations

import sqlite3

DB_NAME = "xnatsim.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters(prefix TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users(
    login TEXT PRIMARY KEY, salt TEXT NOT NULL, pw_hash TEXT NOT NULL, admin INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1, first_name TEXT DEFAULT '', last_name TEXT DEFAULT '',
    email TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS roles(project TEXT NOT NULL, login TEXT NOT NULL, role TEXT NOT NULL,
    PRIMARY KEY(project, login));
CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, login TEXT NOT NULL, created REAL NOT NULL,
    token TEXT);
CREATE TABLE IF NOT EXISTS tokens(id INTEGER PRIMARY KEY AUTOINCREMENT, alias TEXT UNIQUE NOT NULL,
    salt TEXT NOT NULL, secret_hash TEXT NOT NULL, login TEXT NOT NULL, created INTEGER NOT NULL,
    expires INTEGER NOT NULL, enabled INTEGER NOT NULL DEFAULT 1, parent TEXT);
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

#: columns added to a table after data folders with the table existed: ``(table, column, declaration)``
#: (``sessions.token``: the alias token a web session was made with; ``tokens.parent``: the token
#: that issued this one)
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (("sessions", "token", "TEXT"), ("tokens", "parent", "TEXT"))


def upgrade(db: sqlite3.Connection) -> None:
    """Add the :data:`ADDED_COLUMNS` a database made by an older xnatsim lacks."""
    for table, column, declaration in ADDED_COLUMNS:
        if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

