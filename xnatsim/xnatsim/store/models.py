"""The store's objects (plain dataclasses), its error, and the small types its methods take."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

ParentKind = Literal["project", "subject", "experiment", "scan"]
Role = Literal["owner", "member", "collaborator"]
ROLES: tuple[str, ...] = ("owner", "member", "collaborator")
Listener = Callable[[str, str, dict[str, Any]], None]
#: Values given to :meth:`Store.put_*` ``fields``: a string sets, None removes (XNAT's ``NULL``).
FieldValues = Mapping[str, str | None]


class StoreError(Exception):
    """A refused operation, carrying XNAT's HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def time_text(t: float) -> str:
    """``t`` (seconds since the epoch) in XNAT's table timestamp format: ``2024-01-02 10:11:12.123``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def now_text() -> str:
    """Now in XNAT's table timestamp format (:func:`time_text`)."""
    return time_text(time.time())


@dataclass
class User:
    #: ``xdat_user_id``
    id: int
    login: str
    admin: bool
    enabled: bool
    first_name: str = ""
    last_name: str = ""
    email: str = ""


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



def apply_fields(fields: dict[str, str], values: FieldValues) -> None:
    for key, value in values.items():
        if value is None or value == "NULL":
            fields.pop(key, None)
        else:
            fields[key] = value
