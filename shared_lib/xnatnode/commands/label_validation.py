"""``xnatnode label-validation``: labels checked against XNAT's rules, the project's naming
convention and the DICOM headers, for one session (``--session``: what XNAT runs when a session is
archived) or the whole project.  Writes findings.json, findings.csv and findings.html to the output
directory (XNAT uploads them as the ``LABEL_CHECK`` resource).

Request budget: 1 (convention) + 3 per session, +1 for site-wide uniqueness; a project audit is
1 + 3 (+1) whatever its size.  Exit 0 unless ``fail-on`` (convention or ``--fail-on``) says the
findings fail the run; then 6, and XNAT uploads nothing of a failed container.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from xnatnode.labelcheck.rules import FAIL_ON, FailOn
from xnatnode.labels import project_id
from xnatnode.settings import add_connection_arguments, add_runtime_arguments, load_settings

NAME = "label-validation"
HELP = ("Check subject, session and scan labels against XNAT's rules, the project's naming "
        "convention and the DICOM headers; findings as JSON, CSV and HTML.")


@dataclass(frozen=True)
class Options:
    """label-validation's own flags."""

    project: str
    session: str | None
    convention: Path | None
    fail_on: FailOn | None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", required=True, type=project_id, metavar="ID",
                        help="XNAT project ID")
    parser.add_argument("--session", metavar="LABEL_OR_ID",
                        help="check this session only (its label or accession ID); default: the "
                        "whole project")
    parser.add_argument("--convention", type=Path, metavar="FILE",
                        help="naming convention (YAML or JSON); default: the project's config "
                        "xnatnode/labels in XNAT, else XNAT's own rules only")
    parser.add_argument("--fail-on", choices=FAIL_ON,
                        help="exit 6 when findings of this severity exist (default: the "
                        "convention's fail-on, else never); XNAT uploads no report of a failed run")
    add_connection_arguments(parser)
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import datetime as dt
    import logging

    from xnatnode.labelcheck import report
    from xnatnode.labelcheck.checks import run_checks
    from xnatnode.labelcheck.convention import NO_CONVENTION, ConventionError, load_convention
    from xnatnode.labelcheck.headers import read_headers
    from xnatnode.labelcheck.rules import fails
    from xnatnode.labelcheck.source import read_convention_text, read_project, read_session
    from xnatnode.listings import archive_root
    from xnatnode.logs import log_items
    from xnatnode.reports import RunRecord
    from xnatnode.runtime import ExitCode, Run, UsageError
    from xnatnode.stamps import generator

    settings = load_settings(args, Options)
    options = settings.command
    with Run(NAME, settings) as run:
        started = dt.datetime.now(dt.UTC)
        convention = NO_CONVENTION
        if options.convention is not None:
            try:
                text = options.convention.read_bytes()
            except OSError as exc:
                raise UsageError(f"--convention {options.convention}: {exc.strerror}") from None
            try:
                convention = load_convention(text, "file", str(options.convention))
            except ConventionError as exc:
                raise UsageError(f"bad convention: {exc}") from None
        with run.connect() as conn:
            if options.convention is None:
                text_or_none = read_convention_text(conn, options.project)
                if text_or_none is not None:
                    where = f"config xnatnode/labels of project {options.project}"
                    try:
                        convention = load_convention(text_or_none, "config", where)
                    except ConventionError as exc:
                        raise UsageError(f"bad convention: {exc}") from None
            run.log.info("convention: %s", convention.location or "none (XNAT's own rules only)")
            site = convention.uniqueness == "site"
            if options.session:
                snap = read_session(conn, options.project, options.session, site=site)
            else:
                snap = read_project(conn, options.project, site=site)
            run.log.info("%d subjects, %d sessions, %d scans read in %d requests",
                         len(snap.subjects), len(snap.sessions), len(snap.scans), conn.request_count)
            wanted = set(snap.targets)
            targets = [s for s in snap.sessions if s.id in wanted and s.is_image_session]
            if run.input_dir.is_dir():
                progress = run.progress("DICOM headers", len(targets))
                archive = archive_root(str(run.input_dir), options.project)
                snap.headers = read_headers(run.input_dir, archive, targets, snap.unreadable,
                                            progress=progress.advance)
            findings = run_checks(snap, convention)
            fail_on = options.fail_on or convention.fail_on
            outcome = report.build(
                snap, convention, findings, fail_on=fail_on, generated=started,
                source={"xnat_host": conn.host, "requests": conn.request_count,
                        "generator": generator(NAME)},
            )
            doc = outcome.document
            failed = fails(findings, fail_on)
            if failed:
                run.exit_code = ExitCode.PARTIAL
            run.record.update({"project": options.project, "session": options.session,
                               "verdict": doc["verdict"], "totals": doc["totals"],
                               "files_written": ["findings.json", "findings.csv", "findings.html"]})
            paths = report.write(outcome, run.output_dir, RunRecord.from_run(run))
            run.log.info("verdict %s: %d error(s), %d warning(s) (fail-on %s: exit %d); wrote %s",
                         doc["verdict"], doc["totals"]["error"], doc["totals"]["warning"], fail_on,
                         int(run.exit_code), ", ".join(p.name for p in paths))
            ordered = sorted(findings, key=lambda f: f.severity != "error")  # errors first, stable
            log_items(run.log, logging.WARNING, [
                f"{f.severity} {f.rule}: {f.object_type} {f.object_label or f.object_id}: {f.message}"
                + (f" (suggestion: {f.suggestion})" if f.suggestion else "") for f in ordered
            ], where="findings.csv")
            if failed:
                run.log.error("fail-on %s: exiting %d (XNAT uploads no outputs of a failed "
                              "container; findings are in %s)", fail_on, int(ExitCode.PARTIAL),
                              run.output_dir)
    return int(run.exit_code)
