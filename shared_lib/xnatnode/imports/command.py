"""One nifti-import run: open the source, read what XNAT holds, read and inspect every file, plan,
write (or print the plan) and report. Called by :mod:`xnatnode.commands.nifti_import`."""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from xnatnode.client import Connection
from xnatnode.errors import NotFound
from xnatnode.imports import plan, report
from xnatnode.imports.mapping import Mapping, MappingError, read_mapping
from xnatnode.imports.options import Options
from xnatnode.imports.sources import (
    FolderSource,
    Source,
    SourceError,
    ZipSource,
    normalise,
    open_source,
    suffix_of,
)
from xnatnode.imports.state import ExistingSession, ProjectState, load_sessions, read_sessions
from xnatnode.imports.writer import Writer, curl_lines, planned_rows
from xnatnode.listings import naming_on_404, path_segment
from xnatnode.logs import log_items
from xnatnode.nifti import Scanned, scan_file, scan_header, scan_image
from xnatnode.runtime import ExitCode, Run, UsageError
from xnatnode.stamps import generator, utc_timestamp

#: Sidecar JSON read into memory at most (bigger ones are still uploaded, not parsed).
MAX_SIDECAR = 16 << 20


def execute(args: Options, run: Run) -> None:
    if args.curl and not args.dry_run:
        raise UsageError("--curl prints the plan of a dry run: add --dry-run")
    for flag, template in (("--subject-label", args.subject_label), ("--session-label", args.session_label)):
        try:
            plan.check_template(template)
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None
    started = time.monotonic()
    generated = utc_timestamp()
    reason = generator("nifti-import")
    with run.connect() as conn, contextlib.ExitStack() as stack:
        with naming_on_404(f"project {args.project}"):
            state = read_sessions(conn, args.project)
        context = _context(state, args.session)
        source = stack.enter_context(_open(args, run, conn, context))
        run.log.info("source %s: %d files, %d refused", source.name, len(source.members), len(source.rejected))
        mapping, mapping_file = _mapping(args, source)
        grouping = plan.group(source, mapping=mapping, mapping_file=mapping_file,
                              session_context=args.session, subject_template=args.subject_label,
                              session_template=args.session_label)
        wanted = {a.session for a in grouping.acquisitions}
        existing = [s for label, s in state.sessions.items() if label in wanted or s is context]
        load_sessions(conn, existing, args.workers)
        settings = plan.Settings(args.overwrite, args.image_resource, args.sidecar_resource)
        scanned = _scan_all(source, grouping, _header_only(grouping, state, context, settings),
                            args.workers, run)
        the_plan = plan.build(args.project, grouping, scanned, state, settings, context=context)
        run.log.info("plan: %d sessions (%d new), %d scans (%d to write), %d files to send, %d writes",
                     len(the_plan.sessions), sum(s.write for s in the_plan.sessions),
                     sum(len(s.scans) for s in the_plan.sessions),
                     sum(c.write for s in the_plan.sessions for c in s.scans),
                     sum(f.action is plan.Action.CREATE for _, _, f in the_plan.files()), the_plan.writes())
        if args.dry_run:
            rows = planned_rows(the_plan)
            root = str(source.root) if isinstance(source, FolderSource) else ""
            _print_plan(rows, curl_lines(the_plan, conn.host, reason, root) if args.curl else None)
        else:
            writer = Writer(conn, the_plan, source, workers=args.workers, reason=reason,
                            event_id=args.event_id, logger=run.log)
            rows = the_plan.rows + writer.run()
        rows.sort(key=lambda r: r.source)
        problems = list(mapping.problems) if mapping else []
        summary = report.Summary(args.project, args.session, source.name, args.dry_run, generated,
                                 reason, conn.request_count,
                                 time.monotonic() - started, problems)
        if report.partial(rows):
            run.exit_code = ExitCode.PARTIAL
        _finish(run, rows, summary)


def _context(state: ProjectState, label: str | None) -> ExistingSession | None:
    if label is None:
        return None
    session = state.sessions.get(label)
    if session is None:
        raise NotFound(f"session {label} does not exist in project {state.project} (--session names "
                       "an existing session)")
    return session


@contextlib.contextmanager
def _open(args: Options, run: Run, conn: Connection,
          context: ExistingSession | None) -> Iterator[Source]:
    """The source: --source, the --input directory, or --resource downloaded as one zip."""
    if args.resource is None:
        path = Path(args.source) if args.source else run.input_dir
        try:
            source = open_source(path)
        except SourceError as exc:
            raise UsageError(str(exc)) from None
        with source:
            yield source
        return
    parent = (f"/data/experiments/{path_segment(context.xnat_id)}" if context is not None
              else f"/data/projects/{path_segment(args.project)}")
    with tempfile.TemporaryDirectory(prefix="nifti-import-") as tmp:
        target = Path(tmp) / "resource.zip"
        run.log.info("downloading resource %s as one zip", args.resource)
        owner = f"session {args.session}" if context is not None else f"project {args.project}"
        with naming_on_404(f"resource {args.resource} of {owner}"):
            conn.download(f"{parent}/resources/{path_segment(args.resource)}/files", target, {"format": "zip"})
        prefix = _zip_prefix(target, args.resource)
        try:
            source = ZipSource(target, prefix)
        except SourceError as exc:
            raise UsageError(str(exc)) from None
        source.name = f"resource {args.resource}"
        with source:
            yield source


def _zip_prefix(path: Path, resource: str) -> str:
    """The folder XNAT puts a resource's files under in its zip (``…/resources/R/files/``)."""
    import zipfile

    marker = f"/{resource}/files/"
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            at = name.find(marker)
            if at >= 0:
                return name[: at + len(marker)]
    return ""


def _mapping(args: Options, source: Source) -> tuple[Mapping | None, str | None]:
    if args.mapping is None:
        return None, None
    inside = normalise(args.mapping)
    try:
        if inside is not None and inside in source.members:
            with source.open(inside) as handle:
                data = handle.read(MAX_SIDECAR + 1)
            name: str | None = inside
        else:
            data = Path(args.mapping).read_bytes()
            name = None
        if len(data) > MAX_SIDECAR:
            raise UsageError(f"mapping file {args.mapping} is over {MAX_SIDECAR >> 20} MiB")
        return read_mapping(data, args.mapping), name
    except FileNotFoundError:
        raise UsageError(f"mapping file {args.mapping} is neither in the source nor a readable file") from None
    except (OSError, MappingError) as exc:
        raise UsageError(str(exc)) from None


def _header_only(grouping: plan.Grouping, state: ProjectState, context: ExistingSession | None,
                 settings: plan.Settings) -> set[str]:
    """Images read only up to their header before the upload: uncompressed ``.nii`` files of new
    sessions, sent alone (so their MD5 is computed while they are sent: one read of the file, not
    two). Everything else is read in full first: ``.nii.gz`` (a truncated gzip stream shows only at
    its end), files of existing sessions (compared with XNAT's digests) and files sent in a zip
    (whose header needs the CRC-32)."""
    return {a.image for a in grouping.acquisitions
            if suffix_of(a.image) == ".nii" and context is None and a.session not in state.sessions
            and not (a.sidecars and settings.image_resource == settings.sidecar_resource)}


def _scan_all(source: Source, grouping: plan.Grouping, header_only: set[str], workers: int,
              run: Run) -> dict[str, Scanned]:
    """Read, hash and inspect every file of the acquisitions, ``workers`` at a time."""
    paths = [p for a in grouping.acquisitions for p in (a.image, *a.sidecars)]
    images = {a.image for a in grouping.acquisitions}
    progress = run.progress("files read and inspected", len(paths))

    def one(path: str) -> tuple[str, Scanned]:
        try:
            with source.open(path) as handle:
                if path in header_only:
                    found = scan_header(handle, source.members[path].size)
                elif path in images:
                    found = scan_image(handle, gzipped=suffix_of(path) == ".nii.gz")
                else:
                    found = scan_file(handle, keep=MAX_SIDECAR if suffix_of(path) == ".json" else 0)
        except (OSError, EOFError, RuntimeError, ValueError) as exc:  # zip CRC errors, vanished files
            from xnatnode.nifti import Digest

            found = Scanned(Digest(0, "", 0), problem=f"cannot be read: {exc}")
        progress.advance()
        return path, found

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        result = dict(pool.map(one, paths))
    progress.finish()
    return result


def _print_plan(rows: list[plan.FileRow], curl: list[str] | None) -> None:
    prefix = "# " if curl is not None else ""
    for row in sorted(rows, key=lambda r: r.source):
        target = f" -> {row.subject}/{row.session} scan {row.scan} {row.resource}" if row.session else ""
        why = f" ({row.reason})" if row.reason else ""
        print(f"{prefix}{row.outcome:<8} {row.source}{target}{why}")
    for line in curl or []:
        print(line)
    sys.stdout.flush()


def _finish(run: Run, rows: list[plan.FileRow], summary: report.Summary) -> None:
    from collections import Counter

    counts = Counter(r.outcome for r in rows)
    for problem in summary.problems:
        run.log.warning("%s", problem)
    if not summary.dry_run:  # a dry run has printed every row already
        log_items(run.log, logging.WARNING,
                  [f"{r.outcome}: {r.source}: {r.reason}" for r in rows if r.outcome in report.FAILED],
                  where=f"{report.NAME}.csv")
    run.record["project"] = summary.project
    run.record["dry_run"] = summary.dry_run
    run.record["outcomes"] = dict(sorted(counts.items()))
    if rows:
        run.log.info("%s", ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    if not summary.dry_run and all(r.outcome == plan.Outcome.IGNORED for r in rows):
        run.log.warning("nothing imported from %s: %s", summary.source, report.nothing_imported(rows))
        log_items(run.log, logging.WARNING, [f"ignored: {r.source}: {r.reason}" for r in rows],
                  where=f"{report.NAME}.csv")
    from xnatnode.reports import RunRecord

    paths = report.write(run.output_dir, rows, summary, RunRecord.from_run(run))
    run.record["files_written"] = [p.name for p in paths]
    run.log.info("wrote %s to %s", ", ".join(p.name for p in paths), run.output_dir)

