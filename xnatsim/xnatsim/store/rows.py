"""SQL column lists and the mapping of database rows to the store's objects."""

from __future__ import annotations

import json
from typing import Any

from .models import ConfigEntry, Experiment, FileEntry, Parent, Project, Resource, Scan, Subject

PROJECT_COLS = ("id, secondary_id, name, description, keywords, pi_firstname, pi_lastname, accessibility,"
                 " insert_date, insert_user, fields")
SUBJECT_COLS = "id, project, label, insert_date, insert_user, last_modified, fields"
EXPERIMENT_SELECT = (
    "SELECT e.id, e.project, e.subject_id, e.label, e.xsi_type, coalesce(s.label, ''), e.session_id,"
    " e.insert_date, e.insert_user, e.last_modified, e.fields FROM experiments e"
    " LEFT JOIN subjects s ON s.id = e.subject_id"
)
SCAN_COLS = "pk, experiment_id, id, xsi_type, fields"


def scan_order(column: str = "id") -> str:
    """SQL ``ORDER BY`` terms for XNAT's scan order: numeric IDs numerically, then the rest alphabetically."""
    return (f"CASE WHEN {column} GLOB '[0-9]*' AND {column} NOT GLOB '*[^0-9]*' THEN 0 ELSE 1 END,"
            f" CAST({column} AS INTEGER), {column}")


SCAN_ORDER = scan_order()
RESOURCE_COLS = ("id, label, kind, project, subject_id, experiment_id, scan_pk, element_name, format, content,"
                  " description, tags, file_count, file_size, directory")
FILE_COLS = "resource_id, path, size, md5, format, content, tags"
CONFIG_COLS = "project, tool, path, contents, status, version, reason, login, create_date, unversioned"


def project_row(r: tuple[Any, ...]) -> Project:
    return Project(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], json.loads(r[10]))


def subject_row(r: tuple[Any, ...]) -> Subject:
    return Subject(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))


def experiment_row(r: tuple[Any, ...]) -> Experiment:
    return Experiment(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], json.loads(r[10]))


def scan_row(r: tuple[Any, ...]) -> Scan:
    return Scan(int(r[0]), r[1], r[2], r[3], json.loads(r[4]))


def resource_row(r: tuple[Any, ...]) -> Resource:
    parent = Parent(r[2], r[3], r[4], r[5], r[6])
    return Resource(int(r[0]), r[1], parent, r[7], r[8], r[9], r[10], r[11], int(r[12]), int(r[13]), r[14])


def file_row(r: tuple[Any, ...]) -> FileEntry:
    return FileEntry(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], r[6])


def config_row(r: tuple[Any, ...]) -> ConfigEntry:
    return ConfigEntry(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6], r[7], r[8], bool(r[9]))
