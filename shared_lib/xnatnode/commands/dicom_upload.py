"""``xnatnode dicom-upload``: sessions listed in a CSV, sent into XNAT by C-STORE or the import
service, verified in the archive, resumable (see :mod:`xnatnode.upload`).

``--project P`` keeps the run in one project (the project-context wrapper passes its project):
rows for another project are bad rows, skipped with the reason and nothing sent; rows with an
empty ``project`` cell go to ``P``.

Writes ``upload-report.json``/``.csv``/``.html`` and the resume state ``upload-state.json`` to
the output folder. Exit 0 when every row is verified (or, with ``--dry-run``, could be sent),
6 (PARTIAL) otherwise, 3 when the DICOM receiver does not answer C-ECHO.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from xnatnode.labels import project_id
from xnatnode.settings import (
    IntRange,
    add_connection_arguments,
    add_runtime_arguments,
    flag,
    load_settings,
    positive_float,
)

NAME = "dicom-upload"
HELP = "Send DICOM sessions listed in a CSV into XNAT (C-STORE or import service), verify and report them."
DEFAULT_DICOM_PORT = 8104


@dataclass(frozen=True)
class Options:
    """dicom-upload's own flags."""

    csv: Path
    project: str | None
    source_root: Path | None
    via: str
    dicom_host: str | None
    dicom_port: int
    called_ae: str
    calling_ae: str
    workers: int
    verify_timeout: float
    dry_run: bool
    overwrite: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "--csv", required=True, type=Path, metavar="MAP.csv",
         help="CSV with columns source, project, subject, session [modality, date, notes]; a relative "
              "path is also looked for under the source root")
    flag(parser, "--project", type=project_id, metavar="ID",
         help="upload only into this project: rows for another project are skipped (reported, nothing "
              "sent), rows with an empty project cell go to it")
    flag(parser, "--source-root", type=Path, metavar="DIR",
         help="folder the CSV's sources are relative to (default: --input)")
    flag(parser, "--via", choices=("cstore", "import"), default="cstore",
         help="C-STORE to XNAT's DICOM receiver, or the REST import service")
    flag(parser, "--dicom-host", metavar="H", help="DICOM receiver host (default: the XNAT host)")
    flag(parser, "--dicom-port", type=IntRange(1, 65535), default=DEFAULT_DICOM_PORT, metavar="PORT",
         help="DICOM receiver port")
    flag(parser, "--called-ae", default="XNAT", metavar="AE", help="the receiver's AE title")
    flag(parser, "--calling-ae", default="XNATNODE", metavar="AE", help="our AE title")
    flag(parser, "--workers", type=IntRange(1, 16), default=4, metavar="N",
         help="C-STORE associations in parallel")
    flag(parser, "--verify-timeout", type=positive_float, default=900.0, metavar="S",
         help="seconds to wait for sessions to reach the archive (XNAT builds a C-STORE session "
              "after 5 idle minutes)")
    flag(parser, "--dry-run", action="store_true", default=False, help="read and check everything, send nothing")
    flag(parser, "--overwrite", choices=("append", "none"), default="append",
         help="add missing scans to an existing session (append) or refuse (none)")
    add_connection_arguments(parser)
    add_runtime_arguments(parser)


def _csv_path(csv: Path, root: Path) -> Path:
    if not csv.is_absolute() and not csv.exists() and (root / csv).exists():
        return root / csv
    return csv


def run(args: argparse.Namespace) -> int:
    import logging
    from urllib.parse import urlsplit

    from xnatnode import uploadreport
    from xnatnode.credentials import launched_by_xnat, refused_in_a_job
    from xnatnode.cstore import ReceiverUnreachable, Target, echo
    from xnatnode.logs import log_items
    from xnatnode.runtime import ExitCode, Run, UsageError
    from xnatnode.upload import Plan, Uploader
    from xnatnode.uploadmap import STATE_FILE, MapError, State, read_map

    settings = load_settings(args, Options)
    opts = settings.command
    with Run(NAME, settings) as run:
        root = Path(opts.source_root or run.input_dir)
        if not root.is_dir():
            raise UsageError(f"source root {root} is not a folder (pass --source-root or mount --input)")
        csv = _csv_path(opts.csv, root)
        if not csv.is_file():
            where = "" if csv.is_absolute() else f" (looked in the current folder and in {root})"
            raise UsageError(f"CSV map {opts.csv} not found{where}")
        if launched_by_xnat() and root.resolve() not in csv.resolve().parents:
            raise UsageError(refused_in_a_job(f"--csv {opts.csv}", f"the CSV must be a file of the mounted batch ({root})"))
        try:
            rows, bad = read_map(csv, opts.project)
            state = State(run.output_dir / STATE_FILE)
        except MapError as exc:
            raise UsageError(str(exc)) from None
        run.log.info("%d rows in %s (%d unusable)", len(rows) + len(bad), opts.csv, len(bad))
        if not rows and not bad:
            run.log.warning("CSV map %s has no rows: nothing to send. %s", opts.csv, uploadreport.NO_ROWS)
        if opts.dicom_host and launched_by_xnat():
            # a launch value must not send the archive's data anywhere but the XNAT that launched it
            raise UsageError(refused_in_a_job("--dicom-host", "the DICOM receiver is XNAT_HOST's"))
        with run.connect() as conn:
            target = Target(opts.dicom_host or urlsplit(conn.host).hostname or "127.0.0.1", opts.dicom_port,
                            opts.called_ae, opts.calling_ae)
            options = Plan(root, opts.via, target, opts.workers, opts.verify_timeout, opts.dry_run,
                              opts.overwrite)
            uploader = Uploader(conn, options, state, log=run.log, progress=run.progress)
            results = uploader.preflight(rows, bad)
            warned = {id(r) for r in results if r.outcome in ("bad-row", "conflict")}
            for r in results:
                if id(r) in warned:
                    run.log.warning("line %d (%s): %s: %s", r.row.line, r.row.source, r.outcome, r.reason)
            exit_code = ExitCode.OK
            if opts.dry_run:
                for r in results:
                    if not r.outcome:
                        r.outcome, r.reason = "planned", f"{len(r.to_send)} of {r.found} objects to send"
                    run.log.info("line %d %s -> %s/%s/%s: %s (%s); %d objects in %d series, %d other files",
                                 r.row.line, r.row.source, r.row.project, r.row.subject, r.row.session,
                                 r.outcome, r.reason, r.found, len(r.series), len(r.skipped_files))
                ok = all(r.outcome in ("planned", "verified") for r in results)
            else:
                sendable = [r for r in results if not r.outcome and r.to_send]
                if sendable and opts.via == "cstore":
                    try:
                        echo(target)
                    except ReceiverUnreachable as exc:
                        run.log.error("%s", exc)
                        run.error = str(exc)  # the run record says why it exits 3
                        for r in sendable:
                            r.outcome, r.reason = "not-sent", str(exc)
                        warned.update(id(r) for r in sendable)  # the one line above says it for all
                        exit_code = ExitCode.UNREACHABLE
                uploader.send_all(results)
                uploader.verify_all(results)
                ok = all(r.outcome == "verified" for r in results)
                # XNAT uploads no report of a failed job: the log says which rows fell short, and why
                log_items(run.log, logging.WARNING, [
                    f"line {r.row.line} ({r.row.source}) -> {r.row.project}/{r.row.subject}/{r.row.session}: "
                    f"{r.outcome}: {r.reason}" for r in results if r.outcome != "verified" and id(r) not in warned
                ], where="upload-report.csv")
            receiver = f"{target.called_ae}@{target.host}:{target.port}" if opts.via == "cstore" else ""
            shown = {"project": opts.project or "", "via": opts.via, "dry_run": opts.dry_run, "overwrite": opts.overwrite,
                     "workers": opts.workers, "verify_timeout_s": opts.verify_timeout, "receiver": receiver}
            report = uploadreport.build(results, shown, first_sent=uploader.first_sent,
                                        last_verified=uploader.last_verified)
            run.exit_code = exit_code if exit_code != ExitCode.OK or ok else ExitCode.PARTIAL
            paths = uploadreport.write_all(report, results, run.output_dir, run)
            run.record["totals"] = report["totals"]
            run.record["files_written"] = [p.name for p in paths]
            run.log.info("%d of %d rows verified; wrote %s", report["totals"]["verified"], len(results),
                         ", ".join(p.name for p in paths))
            if exit_code == ExitCode.OK and not ok:
                exit_code = ExitCode.PARTIAL
            run.exit_code = exit_code
    return int(run.exit_code)
