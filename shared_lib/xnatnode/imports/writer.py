"""Carry out a :class:`~xnatnode.imports.plan.Plan` over REST, then verify every file.

Requests, in order:

1. per new session: ``PUT /data/projects/P/subjects/S/experiments/E?xsiType=…[&date=…]``
   (creates the subject too);
2. per scan to create (or update with ``--overwrite``): ``PUT …/scans/N?xsiType=…&type=…&…``;
3. per scan resource with files to send: one stored zip,
   ``PUT …/scans/N/resources/R/files/R.zip?extract=true[&overwrite=true]`` (a resource over
   4 GiB goes up as several zips);
4. per session written to: ``GET /data/experiments/E/scans/ALL/files`` and every file's MD5
   compared with XNAT's ``digest``.

So at most 3 requests per scan (scan, images, sidecars) plus 2 per session. Every write carries
``event_reason`` and ``event_type=PROCESS`` (and ``event_id`` when one is given), so XNAT's
history shows what wrote it. Nothing is ever deleted: a file of other content is replaced only
with ``--overwrite`` (``overwrite=true``, XNAT keeps the old copy in the catalog history).
Scans, uploads and verifications run ``workers`` at a time.

:func:`curl_lines` prints the same writes as ``curl`` commands (one per file rather than one zip
per resource, for review), with ``$XNAT_USER:$XNAT_PASS`` in place of the credentials.
"""

from __future__ import annotations

import logging
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import IO, TypeVar
from urllib.parse import urlencode

from xnatnode import zipstream
from xnatnode.client import Connection
from xnatnode.errors import Forbidden, Unauthorized, Unreachable, XnatError
from xnatnode.imports.plan import (
    Action,
    FileRow,
    Outcome,
    Plan,
    PlannedFile,
    PlannedScan,
    PlannedSession,
)
from xnatnode.imports.sources import Source
from xnatnode.imports.state import ExistingFile, ExistingSession, read_files
from xnatnode.listings import path_segment

log = logging.getLogger(__name__)
#: Errors that end the run: XNAT gone, or the credentials no good. Others fail one item.
FATAL = (Unreachable, Unauthorized, Forbidden)
PROGRESS_INTERVAL = 5.0
T = TypeVar("T")


def session_path(project: str, session: PlannedSession) -> str:
    return f"/data/projects/{path_segment(project)}/subjects/{path_segment(session.subject)}/experiments/{path_segment(session.label)}"


def session_params(session: PlannedSession) -> dict[str, str]:
    params = {"xsiType": session.xsi_type}
    if session.date:
        params["date"] = session.date
    return params


def scan_params(scan: PlannedScan) -> dict[str, str]:
    return {"xsiType": scan.xsi_type, **scan.fields}


def upload_params(resource: str, overwrite: bool) -> dict[str, str]:
    params = {"extract": "true", "format": resource}
    if overwrite:
        params["overwrite"] = "true"
    return params


@dataclass
class Throughput:
    """Files and bytes done, logged as progress lines (files, MB, MB/s) every few seconds."""

    files_total: int
    bytes_total: int
    logger: logging.Logger
    files: int = 0
    bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    _last: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, files: int, size: int) -> None:
        with self._lock:
            self.files += files
            self.bytes += size
            now = time.monotonic()
            if now - self._last >= PROGRESS_INTERVAL or self.files >= self.files_total:
                self._last = now
                self.logger.info("%s", self.line())

    @property
    def rate(self) -> float:
        """MB/s so far."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return self.bytes / elapsed / 1e6

    def line(self) -> str:
        # as many decimals as a small batch needs to show (0.021/0.043 MB, not 0.0/0.0 MB)
        places = 1 if self.bytes_total >= 1e7 else 2 if self.bytes_total >= 1e6 else 3
        return (f"uploaded {self.files}/{self.files_total} files, {self.bytes / 1e6:.{places}f}/"
                f"{self.bytes_total / 1e6:.{places}f} MB, {self.rate:.{places}f} MB/s")


class Writer:
    """Writes one plan; :meth:`run` returns a report row for every planned file."""

    def __init__(self, conn: Connection, plan: Plan, source: Source, *, workers: int, reason: str,
                 event_id: str | None = None, logger: logging.Logger | None = None) -> None:
        self.conn = conn
        self.plan = plan
        self.source = source
        self.workers = max(1, workers)
        self.audit = {"event_reason": reason, "event_type": "PROCESS"}
        if event_id:
            self.audit["event_id"] = event_id
        self.log = logger or log
        self.rows: list[FileRow] = []
        self._failed: dict[int, tuple[Outcome, str]] = {}  # id(PlannedFile) -> outcome
        self._lock = threading.Lock()
        sending = [f for _, _, f in plan.files() if f.action is Action.CREATE]
        self.progress = Throughput(len(sending), sum(f.scanned.digest.size for f in sending), self.log)

    # -- helpers ---------------------------------------------------------------------------

    def _fail(self, files: Iterable[PlannedFile], outcome: Outcome, reason: str) -> None:
        with self._lock:
            for f in files:
                self._failed.setdefault(id(f), (outcome, reason))

    def _guard(self, action: Callable[[], None], files: list[PlannedFile], what: str) -> bool:
        """Run ``action``; a non-fatal XNAT error fails ``files`` (and returns False)."""
        try:
            action()
        except FATAL:
            raise
        except XnatError as exc:
            self.log.error("%s: %s", what, exc)
            self._fail(files, Outcome.REJECTED, f"XNAT refused {what}: {exc}")
            return False
        return True

    def _pool(self, work: Callable[[T], None], items: Sequence[T]) -> None:
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for _ in pool.map(work, items):
                pass

    # -- the three phases -------------------------------------------------------------------

    def run(self) -> list[FileRow]:
        new = [s for s in self.plan.sessions if s.write and self._sending(s)]
        self._pool(self._create_session, new)
        scans = [(s, c) for s in self.plan.sessions for c in s.scans
                 if s.xnat_id and (c.write or any(f.action is Action.CREATE for f in c.files))
                 and not self._all_failed(c.files)]
        self._pool(self._write_scan, scans)
        touched = [s for s in self.plan.sessions if s.xnat_id and self._sending(s)]
        self._pool(self._verify, touched)
        self._skipped_rows()
        return self.rows

    def _sending(self, session: PlannedSession) -> bool:
        return any(f.action is Action.CREATE for c in session.scans for f in c.files) or any(
            c.write for c in session.scans)

    def _all_failed(self, files: list[PlannedFile]) -> bool:
        return all(id(f) in self._failed for f in files)

    def _create_session(self, session: PlannedSession) -> None:
        files = [f for c in session.scans for f in c.files]

        def put() -> None:
            response = self.conn.put(session_path(self.plan.project, session),
                                     {**session_params(session), **self.audit})
            session.xnat_id = response.text.strip() or None
            if session.xnat_id is None:
                raise XnatError(f"XNAT returned no ID for session {session.label}")
            self.log.info("created session %s (%s) of subject %s", session.label, session.xnat_id,
                          session.subject)

        self._guard(put, files, f"session {session.label}")

    def _write_scan(self, pair: tuple[PlannedSession, PlannedScan]) -> None:
        session, scan = pair
        base = f"{session_path(self.plan.project, session)}/scans/{path_segment(scan.scan_id)}"
        if scan.write and not self._guard(
                lambda: self.conn.put(base, {**scan_params(scan), **self.audit}).close(),
                scan.files, f"scan {scan.scan_id} of {session.label}"):
            return
        by_resource: dict[str, list[PlannedFile]] = {}
        for f in scan.files:
            if f.action is Action.CREATE:
                by_resource.setdefault(f.resource, []).append(f)
        for resource, files in by_resource.items():
            self._upload(base, resource, files, f"{resource} of scan {scan.scan_id} of {session.label}")

    def _upload(self, base: str, resource: str, files: list[PlannedFile], what: str) -> None:
        """One file: PUT as itself (its MD5 computed as it is sent); several: one stored zip with
        ``extract=true`` (split at 4 GiB). An archive of one file would cost the same request and
        make XNAT write the bytes twice (store the zip, then extract it)."""
        if len(files) == 1:
            f = files[0]
            url = f"{base}/resources/{path_segment(resource)}/files/{path_segment(f.name)}"
            params = {**upload_params(resource, f.overwrite), **self.audit}
            params.pop("extract")
            if self._guard(lambda: self._put_file(url, f, params), files, f"the upload of {what}"):
                self.progress.add(1, f.scanned.digest.size)
            return
        members = {id(f): zipstream.ZipMember(f.name, f.scanned.digest.size, f.scanned.digest.crc32,
                                              self._opener(f.source)) for f in files}
        by_member = {id(m): f for f in files for m in [members[id(f)]]}
        url = f"{base}/resources/{path_segment(resource)}/files/{path_segment(resource)}.zip"
        for batch in zipstream.batches(list(members.values())):
            batch_files = [by_member[id(m)] for m in batch]
            params = {**upload_params(resource, any(f.overwrite for f in batch_files)), **self.audit}
            if self._guard(lambda b=batch, p=params: self._put_zip(url, b, p), batch_files,  # type: ignore[misc]
                           f"the upload of {what}"):
                self.progress.add(len(batch), sum(m.size for m in batch))

    def _put_file(self, url: str, f: PlannedFile, params: dict[str, str]) -> None:
        body = zipstream.HashingFile(self._opener(f.source), f.scanned.digest.size)
        try:
            self.conn.request("PUT", url, params=params, data=body,
                              headers={"Content-Type": "application/octet-stream"}).close()
            f.md5 = body.md5()
        finally:
            body.close()

    def _put_zip(self, url: str, members: list[zipstream.ZipMember], params: dict[str, str]) -> None:
        body = zipstream.StoredZip(members)
        try:
            self.conn.request("PUT", url, params=params, data=body,
                              headers={"Content-Type": "application/zip"}).close()
        finally:
            body.close()

    def _opener(self, path: str) -> Callable[[], IO[bytes]]:
        return lambda: self.source.open(path)

    def _verify(self, session: PlannedSession) -> None:
        assert session.xnat_id is not None
        listing = ExistingSession(session.xnat_id, session.label, "", session.subject, session.xsi_type)
        found = read_files(self.conn, listing)
        rows: list[FileRow] = []
        for scan in session.scans:
            for f in scan.files:
                if f.action is not Action.CREATE:
                    continue
                failed = self._failed.get(id(f))
                if failed is not None:
                    rows.append(self._row(session, scan, f, failed[0], failed[1]))
                    continue
                rows.append(self._checked(session, scan, f, found.get((scan.scan_id, f.resource, f.name))))
        with self._lock:
            self.rows += rows

    def _checked(self, session: PlannedSession, scan: PlannedScan, f: PlannedFile,
                 there: ExistingFile | None) -> FileRow:
        digest = f.scanned.digest
        if there is None:
            return self._row(session, scan, f, Outcome.REJECTED, "not in XNAT after the upload")
        if there.digest and there.digest != f.md5:
            return self._row(session, scan, f, Outcome.CONFLICT,
                             f"XNAT's digest {there.digest} differs from the file's MD5 after the upload "
                             "(an existing file of other content was kept?)")
        if not there.digest and there.size != digest.size:
            return self._row(session, scan, f, Outcome.CONFLICT,
                             f"XNAT holds {there.size} bytes, the file has {digest.size}")
        note = "MD5 verified" if there.digest else "size verified (XNAT has no digest)"
        if f.overwrite:
            note += "; replaced a file of other content"
        return self._row(session, scan, f, Outcome.IMPORTED, note)

    def _row(self, session: PlannedSession, scan: PlannedScan, f: PlannedFile, outcome: Outcome,
             reason: str) -> FileRow:
        return FileRow(f.source, str(outcome), reason, session.subject, session.label, scan.scan_id,
                       f.resource, f.scanned.digest.size, f.md5)

    def _skipped_rows(self) -> None:
        """Rows of files that needed no write, and of files of sessions that were never created."""
        done = {(r.source, r.session) for r in self.rows}
        for session, scan, f in self.plan.files():
            if (f.source, session.label) in done:
                continue
            failed = self._failed.get(id(f))
            if failed is not None:
                self.rows.append(self._row(session, scan, f, failed[0], failed[1]))
            elif f.action is Action.SKIP:
                self.rows.append(self._row(session, scan, f, Outcome.SKIPPED, f.reason))
            elif f.action is Action.CONFLICT:
                self.rows.append(self._row(session, scan, f, Outcome.CONFLICT, f.reason))


#: A dry run reports actions, not outcomes.
ACTION_OF = {Outcome.REJECTED: Action.REJECT, Outcome.CONFLICT: Action.CONFLICT, Outcome.IGNORED: Action.IGNORE}


def planned_rows(plan: Plan) -> list[FileRow]:
    """The dry run's rows: every file with its action (create, skip, reject, conflict, ignore)."""
    refused = [replace(r, outcome=str(ACTION_OF[Outcome(r.outcome)])) for r in plan.rows]
    return refused + [FileRow(f.source, str(f.action), f.reason, s.subject, s.label, c.scan_id, f.resource,
                              f.scanned.digest.size, f.md5) for s, c, f in plan.files()]


def curl_lines(plan: Plan, host: str, reason: str, root: str = "") -> list[str]:
    """Each planned write as a ``curl`` command line (credentials as ``$XNAT_USER:$XNAT_PASS``);
    ``root`` is put before the files' source paths (a folder source's path)."""
    audit = {"event_reason": reason, "event_type": "PROCESS"}
    lines: list[str] = []

    def curl(path: str, params: dict[str, str], body: str | None = None) -> str:
        url = f"{host}{path}?{urlencode({**params, **audit})}"
        data = f" --data-binary @{shlex.quote(body)}" if body is not None else ""
        return f'curl -fsS -u "$XNAT_USER:$XNAT_PASS" -X PUT{data} {shlex.quote(url)}'

    for session in plan.sessions:
        base = session_path(plan.project, session)
        if session.write:
            lines.append(curl(base, session_params(session)))
        for scan in session.scans:
            scan_base = f"{base}/scans/{path_segment(scan.scan_id)}"
            if scan.write:
                lines.append(curl(scan_base, scan_params(scan)))
            for f in scan.files:
                if f.action is Action.CREATE:
                    params = {"format": f.resource, **({"overwrite": "true"} if f.overwrite else {})}
                    lines.append(curl(f"{scan_base}/resources/{path_segment(f.resource)}/files/{path_segment(f.name)}",
                                      params, f"{root}/{f.source}" if root else f.source))
    return lines
