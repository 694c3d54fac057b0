"""``xnatnode project-summary``: what a project holds (counts, volume, time) as summary.json,
CSV tables and a self-contained summary.html, written to the output directory (XNAT uploads it as
a project resource).

Metadata comes from 3 bulk ``columns=`` listings; file counts and sizes from the mounted project
archive (``--sizes mount``) or the resource listings (``--sizes rest``, one request per subject
and per session, ``--workers`` at a time); see :mod:`xnatnode.listings` for the request bound.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import get_args

from xnatnode.labels import project_id
from xnatnode.listings import DEFAULT_WORKERS, SizesMode
from xnatnode.settings import (
    MAX_WORKERS,
    IntRange,
    add_connection_arguments,
    add_runtime_arguments,
    flag,
    load_settings,
)

NAME = "project-summary"
HELP = "Summarise a project's subjects, sessions, scans, files and sizes as JSON, CSV and HTML."

@dataclass(frozen=True)
class Options:
    """project-summary's own flags."""

    project: str
    sizes: SizesMode
    workers: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "--project", required=True, type=project_id, metavar="ID",
         help="XNAT project ID")
    flag(parser, "--sizes", choices=get_args(SizesMode), default="auto",
         help="where file counts and sizes come from: the mounted archive (--input), resource "
         "listings over REST, or nowhere; auto = mount when --input holds the project's "
         "sessions, else rest")
    flag(parser, "--workers", type=IntRange(1, MAX_WORKERS), default=DEFAULT_WORKERS, metavar="N",
         help="REST requests in flight at most")
    add_connection_arguments(parser)
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from xnatnode.listings import read_project
    from xnatnode.reports.project_summary import write_all
    from xnatnode.runtime import ExitCode, Run, UsageError
    from xnatnode.stamps import generator
    from xnatnode.summary import summarise

    settings = load_settings(args, Options)
    options = settings.command
    with Run(NAME, settings) as run:
        if options.sizes == "mount" and not run.input_dir.is_dir():
            raise UsageError(f"--sizes mount: input directory {run.input_dir} does not exist")
        with run.connect() as conn:
            started = dt.datetime.now(dt.UTC)
            run.log.info("reading project %s (sizes: %s)", options.project, options.sizes)
            try:
                data = read_project(
                    conn, options.project, sizes=options.sizes, input_dir=str(run.input_dir),
                    workers=options.workers, progress=run.progress,
                )
            except FileNotFoundError as exc:
                raise UsageError(str(exc)) from None
            run.log.info(
                "%d subjects, %d sessions, %d scans, %d resources (sizes from %s) in %d requests",
                len(data.subjects), len(data.sessions), len(data.scans), len(data.resources),
                data.sizes, conn.request_count,
            )
            report = summarise(
                data,
                generated=started,
                source={
                    "xnat_host": conn.host,
                    "requests": conn.request_count,
                    "generator": generator(NAME),
                },
            )
            paths = write_all(report, run.output_dir)
            run.record["project"] = options.project
            run.record["sizes"] = data.sizes
            run.record["totals"] = report.summary["totals"]
            run.record["complete"] = data.complete
            if data.skipped:
                run.log.warning("%d objects were deleted while being read; see gaps.skipped",
                                len(data.skipped))
            if data.missing:
                run.record["missing"] = data.missing
                run.log.error("%d items could not be read from XNAT and are not counted (see "
                              "gaps.unread in summary.json): exit %d, partial",
                              len(data.missing), int(ExitCode.PARTIAL))
                run.exit_code = ExitCode.PARTIAL
            run.record["files_written"] = [p.name for p in paths]
            run.log.info("wrote %s to %s", ", ".join(p.name for p in paths), run.output_dir)
    return int(run.exit_code)
