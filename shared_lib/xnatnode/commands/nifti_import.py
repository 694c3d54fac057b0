"""``xnatnode nifti-import``: NIfTI files in a folder, a zip or an XNAT resource become subjects,
sessions and scans (see :mod:`xnatnode.imports` for the pieces and the request bound).

Writes ``import-report.json``, ``import-report.csv`` and ``import-report.html`` to the output
directory. Exit 0 when every file was imported or already there (or ignored), 6 (PARTIAL) when
any was rejected or in conflict; a dry run exits the same way for what it would do.
"""

from __future__ import annotations

import argparse

from xnatnode.labels import project_id
from xnatnode.settings import (
    MAX_WORKERS,
    IntRange,
    add_connection_arguments,
    add_runtime_arguments,
    flag,
    load_settings,
)

NAME = "nifti-import"
HELP = "Import NIfTI files (BIDS names or a CSV mapping) as XNAT subjects, sessions and scans."
DEFAULT_WORKERS = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from xnatnode.imports.defaults import (
        DEFAULT_IMAGE_RESOURCE,
        DEFAULT_SESSION_TEMPLATE,
        DEFAULT_SIDECAR_RESOURCE,
        DEFAULT_SUBJECT_TEMPLATE,
    )

    flag(parser, "--project", required=True, type=project_id, metavar="ID",
         help="XNAT project to import into")
    flag(parser, "--session", metavar="LABEL",
         help="import everything into this existing session (a session launch)")
    where = parser.add_mutually_exclusive_group()
    flag(where, "--source", metavar="PATH",
         help="folder or .zip holding the batch (default: the --input directory)")
    flag(where, "--resource", metavar="LABEL",
         help="read the batch from this project resource (with --session: that session's "
         "resource) over REST")
    flag(parser, "--mapping", metavar="CSV",
         help="CSV mapping files or folders to subject, session and scan (a relative path is "
         "looked up inside the source first); default: BIDS names")
    flag(parser, "--subject-label", metavar="TEMPLATE", default=DEFAULT_SUBJECT_TEMPLATE,
         help="subject label from BIDS entities: fields {sub} {ses} {modality} {datatype}")
    flag(parser, "--session-label", metavar="TEMPLATE", default=DEFAULT_SESSION_TEMPLATE,
         help="session label from BIDS entities; a field without a value is dropped with its "
         "separator")
    flag(parser, "--dry-run", action="store_true", default=False,
         help="print the plan (create / skip / reject / conflict per file), write nothing")
    flag(parser, "--curl", action="store_true", default=False,
         help="with --dry-run: print each planned write as a curl command line")
    flag(parser, "--overwrite", action="store_true", default=False,
         help="replace files and scan fields of other content (never deletes first)")
    flag(parser, "--workers", type=IntRange(1, MAX_WORKERS), default=DEFAULT_WORKERS, metavar="N",
         help="files read and requests sent at a time")
    flag(parser, "--image-resource", default=DEFAULT_IMAGE_RESOURCE, metavar="LABEL",
         help="scan resource for the images")
    flag(parser, "--sidecar-resource", default=DEFAULT_SIDECAR_RESOURCE, metavar="LABEL",
         help=".json/.bval/.bvec/.tsv sidecars go here; give the image resource to keep them "
         "together")
    flag(parser, "--event-id", metavar="ID", help="XNAT workflow (event) id to record the writes under")
    add_connection_arguments(parser)
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from xnatnode.imports.command import execute
    from xnatnode.imports.options import Options
    from xnatnode.runtime import Run

    settings = load_settings(args, Options)
    with Run(NAME, settings) as run:
        execute(settings.command, run)
    return int(run.exit_code)
