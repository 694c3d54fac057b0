"""nifti-import's own flags as one typed record, in a standard-library-only module: the command
module (:mod:`xnatnode.commands.nifti_import`) builds it from the parsed flags and
:mod:`xnatnode.imports.command` runs on it, so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    """nifti-import's own flags."""

    project: str
    session: str | None
    source: str | None
    resource: str | None
    mapping: str | None
    subject_label: str
    session_label: str
    dry_run: bool
    curl: bool
    overwrite: bool
    workers: int
    image_resource: str
    sidecar_resource: str
    event_id: str | None
