"""dicom-upload's work: pre-flight, sending (C-STORE or import service), verification, resume.

One :class:`RowResult` per CSV row. The steps (``shared/reference/dicom-upload.md`` §8):

1. **Pre-flight** per row: headers of the source (:mod:`xnatnode.dicom`); non-DICOM files are
   listed and skipped; a source holding more than one study, or a session that exists in XNAT
   with another StudyInstanceUID, is a conflict reported before anything is sent. A session
   already in the archive with the same UID is compared scan by scan: complete series are not
   sent again (with ``--overwrite none`` an incomplete existing session is a conflict).
2. **Send** what is missing: over C-STORE (:mod:`xnatnode.cstore`, SOP instances the state file
   records as stored are skipped) or one streamed zip per row to the import service
   (:mod:`xnatnode.importzip`).
3. **Verify**: poll the project's prearchive listing and each session's scan resources with
   bounded back-off up to ``verify_timeout``; a row is ``verified`` when the archive holds every
   expected scan with the expected number of files. A session stopped in the prearchive is
   reported with XNAT's reason (``…/logs/last``).

REST requests: 2 per project (existence and prearchive code), 1 per row for pre-flight, 1 import
per row (import path), then per poll 1 prearchive listing per project plus 2 per unsettled row.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatnode.client import Connection
from xnatnode.cstore import Outcome, Sender, Target
from xnatnode.dicom import DicomObject, SourceError, SourceScan, resolve_source, scan_source
from xnatnode.errors import NotFound, XnatError
from xnatnode.importzip import classify, zip_body
from xnatnode.uploadmap import BadRow, Row, State

#: Row outcomes; only ``verified`` counts as success.
OUTCOMES = ("verified", "planned", "incomplete", "prearchived", "unverified", "conflict", "refused", "bad-row",
            "not-sent")


@dataclass
class RowResult:
    """What happened to one CSV row (the report's row)."""

    row: Row
    outcome: str = ""
    reason: str = ""
    study_uid: str = ""
    studies: list[str] = field(default_factory=list)
    found: int = 0
    sent: int = 0
    refused: int = 0
    archived: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    skipped_files: list[dict[str, str]] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    modalities: list[str] = field(default_factory=list)
    sop_classes: dict[str, int] = field(default_factory=dict)
    transfer_syntaxes: dict[str, int] = field(default_factory=dict)
    refusals: list[dict[str, str]] = field(default_factory=list)
    #: expected files per scan ID
    expected: dict[str, int] = field(default_factory=dict)
    #: what the archive held per scan ID at the last check
    in_archive: dict[str, int] = field(default_factory=dict)
    scan: SourceScan | None = field(default=None, repr=False)
    to_send: list[DicomObject] = field(default_factory=list, repr=False)
    first_sent: float | None = field(default=None, repr=False)
    last_sent: float | None = field(default=None, repr=False)

    @property
    def mb_per_s(self) -> float:
        return round(self.bytes_sent / 1e6 / self.seconds, 2) if self.seconds > 0 and self.bytes_sent else 0.0


@dataclass
class Plan:
    """How to upload (from the command's flags)."""

    source_root: Path
    via: str = "cstore"
    target: Target | None = None
    workers: int = 4
    verify_timeout: float = 900.0
    dry_run: bool = False
    overwrite: str = "append"
    poll_start: float = 1.0
    poll_max: float = 15.0


class Uploader:
    """Runs rows through pre-flight, sending and verification against one XNAT."""

    def __init__(self, conn: Connection, options: Plan, state: State, *, log: Any,
                 progress: Callable[[str, int | None], Any] | None = None) -> None:
        self.conn = conn
        self.options = options
        self.state = state
        self.log = log
        self.progress = progress
        self._projects: dict[str, str | None] = {}
        #: wall-clock times of the first object sent and of the last row found verified
        self.first_sent: float | None = None
        self.last_verified: float | None = None

    # -- projects ---------------------------------------------------------------------------

    def prearchive_code(self, project: str) -> str | None:
        """The project's prearchive code, or None when the project does not exist (or is hidden)."""
        if project not in self._projects:
            try:
                self.conn.get(f"/data/projects/{project}", params={"format": "json"})
                code = self.conn.get(f"/data/projects/{project}/prearchive_code").text.strip() or "4"
            except NotFound:
                code = None
            self._projects[project] = code
        return self._projects[project]

    # -- pre-flight -------------------------------------------------------------------------

    def preflight(self, rows: list[Row], bad: list[BadRow]) -> list[RowResult]:
        results = [RowResult(b.row, "bad-row", b.reason) for b in bad]
        results += [self._preflight_row(row) for row in rows]
        results.sort(key=lambda r: r.row.line)
        return results

    def _preflight_row(self, row: Row) -> RowResult:
        result = RowResult(row)
        if self.prearchive_code(row.project) is None:
            return _set(result, "bad-row", f"project {row.project} does not exist in XNAT (or is not visible)")
        try:
            path = resolve_source(self.options.source_root, row.source)
            scan = scan_source(path)
        except SourceError as exc:
            return _set(result, "bad-row", str(exc))
        result.scan = scan
        result.found = len(scan.objects)
        result.skipped_files = [{"file": s.name, "reason": s.reason} for s in scan.skipped]
        result.studies = scan.studies
        result.modalities = scan.modalities
        result.sop_classes = scan.sop_classes
        result.transfer_syntaxes = scan.transfer_syntaxes
        result.expected = scan.expected_scans()
        result.series = [{"series_uid": s.uid, "scan": s.scan_id, "modality": s.modality, "objects": len(s.sop_uids)}
                         for s in sorted(scan.series.values(), key=lambda s: (_num(s.scan_id), s.uid))]
        if not scan.objects:
            return _set(result, "bad-row", f"no DICOM objects in {row.source} ({len(scan.skipped)} other files)")
        if len(result.studies) > 1:
            return _set(result, "conflict", f"the source holds {len(result.studies)} studies "
                                            f"({', '.join(result.studies)}); one row must be one study")
        result.study_uid = result.studies[0]
        if row.modality and row.modality.upper() not in result.modalities:
            self.log.warning("line %d: CSV says modality %s, the headers say %s", row.line, row.modality,
                             ", ".join(result.modalities) or "none")
        existing = self._existing(row)
        if existing is not None:
            uid, counts = existing
            result.in_archive = counts
            if uid and uid != result.study_uid:
                return _set(result, "conflict", f"session {row.session} exists in project {row.project} with "
                                                f"StudyInstanceUID {uid}, the source has {result.study_uid}")
        missing_scans = {scan_id for scan_id, n in result.expected.items() if result.in_archive.get(scan_id, 0) < n}
        if existing is not None and not missing_scans:
            result.archived = sum(result.in_archive.get(s, 0) for s in result.expected)
            return _set(result, "verified", "already in the archive")
        if existing is not None and self.options.overwrite == "none":
            return _set(result, "conflict", f"session {row.session} already exists in project {row.project} "
                                            "with missing scans (use --overwrite append to add them)")
        stored = self.state.stored(row, result.study_uid) if self.options.via == "cstore" else set()
        result.to_send = [o for o in scan.objects if (o.series_number or "0") in missing_scans
                          and o.sop_uid not in stored]
        if not result.to_send and stored:
            result.outcome = "sent"  # everything was stored by an earlier run: verify only
        return result

    def _existing(self, row: Row) -> tuple[str, dict[str, int]] | None:
        """(StudyInstanceUID, files per scan) of the session when it is in the archive."""
        base = f"/data/projects/{row.project}/experiments/{row.session}"
        try:
            doc = self.conn.get_json(base)
        except NotFound:
            return None
        fields = (doc.get("items") or [{}])[0].get("data_fields", {})
        counts: dict[str, int] = {}
        try:
            rows = self.conn.get_table(f"/data/experiments/{fields.get('ID', row.session)}/scans/ALL/resources")
        except NotFound:
            rows = []
        for resource in rows:
            if str(resource.get("label", "")).upper() in ("DICOM", "SECONDARY") or resource.get("format") == "DICOM":
                scan_id = str(resource.get("cat_id", ""))
                counts[scan_id] = counts.get(scan_id, 0) + int(resource.get("file_count") or 0)
        return str(fields.get("UID", "")), counts

    # -- sending ----------------------------------------------------------------------------

    def send_all(self, results: list[RowResult]) -> None:
        todo = [r for r in results if not r.outcome and r.to_send]
        total = sum(len(r.to_send) for r in todo)
        progress = self.progress("objects sent", total) if self.progress else None
        for result in todo:
            started = time.monotonic()
            result.first_sent = time.time()
            if self.first_sent is None:
                self.first_sent = result.first_sent
            if self.options.via == "cstore":
                self._send_cstore(result, progress)
            else:
                self._send_import(result, progress)
            result.last_sent = time.time()
            result.seconds = round(time.monotonic() - started, 3)
            self.state.save()

    def _send_cstore(self, result: RowResult, progress: Any) -> None:
        assert result.scan is not None
        assert self.options.target is not None
        row = result.row
        state = self.state
        state.entry(row, result.study_uid)["via"] = "cstore"
        pending: list[str] = []

        def on_result(outcome: Outcome, obj: DicomObject) -> None:
            if outcome.stored:
                result.sent += 1
                result.bytes_sent += obj.size
                pending.append(obj.sop_uid)
                if len(pending) >= 50:
                    state.add_stored(row, result.study_uid, pending)
                    pending.clear()
                    state.save()
            else:
                result.refused += 1
                result.refusals.append({"file": obj.name, "sop_instance_uid": obj.sop_uid,
                                        "status": f"0x{outcome.status:04X}" if outcome.status >= 0 else "",
                                        "reason": outcome.reason})
            if progress is not None:
                progress.advance()

        n = len(result.to_send)
        batch = max(1, min(500, math.ceil(n / self.options.workers)))
        sender = Sender(self.options.target, workers=self.options.workers, batch_size=batch, on_result=on_result)
        sender.send(result.scan, result.to_send, (row.project, row.subject, row.session))
        state.add_stored(row, result.study_uid, pending)
        state.set_outcome(row, result.study_uid, "sent")
        if result.refused:
            self.log.warning("line %d: %d of %d objects refused by the receiver", row.line, result.refused, n)

    def _send_import(self, result: RowResult, progress: Any) -> None:
        assert result.scan is not None
        row = result.row
        code = self._projects.get(row.project) or "4"
        dest = f"/archive/projects/{row.project}" if code in ("4", "5") else f"/prearchive/projects/{row.project}"
        params = {"import-handler": "DICOM-zip", "project": row.project, "subject": row.subject,
                  "session": row.session, "dest": dest}
        if self.options.overwrite == "append":
            params["overwrite"] = "append"
        n = len(result.to_send)
        sizes = sum(o.size for o in result.to_send)
        attempt = 0
        with zip_body(result.scan, result.to_send) as body:
            while True:  # the body rewinds: a retry sends the zip again from its start
                body.seek(0)
                try:
                    response = self.conn.request(
                        "POST", "/data/services/import", params=params, data=body,
                        headers={"Content-Type": "application/zip"}, timeout=max(self.conn.timeout, 600.0))
                    status, text = response.status_code, response.text
                    break
                except XnatError as exc:
                    transient = exc.status is None or exc.status in (502, 503, 504)
                    if transient and attempt < self.conn.retries:
                        attempt += 1
                        self.log.warning("line %d: import failed (%s); attempt %d of %d in %.0f s", row.line,
                                         exc.status or "no answer", attempt + 1, self.conn.retries + 1,
                                         2.0 ** attempt)
                        time.sleep(2.0 ** attempt)
                        continue
                    if exc.status is None:
                        _set(result, "not-sent", f"import request failed: {exc}")
                        return
                    status, text = exc.status, str(exc)
                    break
            sent = body.tell()
        answer = classify(status, text)
        result.bytes_sent = sizes if status == 200 else min(sent, sizes)
        if answer.outcome in ("archived", "prearchived"):
            result.sent = n
            self.state.set_outcome(row, result.study_uid, "sent", "import")
        else:
            result.refused = n
            _set(result, answer.outcome, answer.reason)
            self.state.set_outcome(row, result.study_uid, answer.outcome, "import")
        if progress is not None:
            progress.advance(n)

    # -- verification -----------------------------------------------------------------------

    def verify_all(self, results: list[RowResult]) -> None:
        """Poll until every sent row is settled or ``verify_timeout`` has passed."""
        pending = [r for r in results if r.outcome in ("", "sent") and r.study_uid]
        deadline = time.monotonic() + self.options.verify_timeout
        delay = self.options.poll_start
        while pending:
            prearchive = self._prearchive_rows({r.row.project for r in pending})
            pending = [r for r in pending if not self._check(r, prearchive, final=False)]
            if not pending:
                break
            if time.monotonic() + delay > deadline:
                prearchive = self._prearchive_rows({r.row.project for r in pending})
                for result in pending:
                    self._check(result, prearchive, final=True)
                break
            self.log.info("waiting for %d session(s) to be archived (next check in %.0f s)", len(pending), delay)
            time.sleep(delay)
            delay = min(delay * 1.5, self.options.poll_max)
        for result in results:
            if result.study_uid and result.outcome:
                self.state.set_outcome(result.row, result.study_uid, result.outcome)
        self.state.save()

    def _prearchive_rows(self, projects: set[str]) -> dict[tuple[str, str], dict[str, str]]:
        out: dict[tuple[str, str], dict[str, str]] = {}
        for project in sorted(projects):
            try:
                rows = self.conn.get_table(f"/data/prearchive/projects/{project}")
            except XnatError as exc:
                self.log.warning("cannot list the prearchive of %s: %s", project, exc)
                continue
            for row in rows:
                out[(project, row.get("tag", ""))] = row
        return out

    def _check(self, result: RowResult, prearchive: dict[tuple[str, str], dict[str, str]], *, final: bool) -> bool:
        """Settle ``result`` if XNAT's state allows; True when settled."""
        row = result.row
        existing = self._existing(row)
        if existing is not None:
            result.in_archive = existing[1]
        result.archived = sum(min(result.in_archive.get(s, 0), n) for s, n in result.expected.items())
        short = {s: (result.in_archive.get(s, 0), n) for s, n in result.expected.items()
                 if result.in_archive.get(s, 0) < n}
        if existing is not None and not short:
            _set(result, "verified", "")
            self.last_verified = time.time()
            return True
        entry = prearchive.get((row.project, result.study_uid))
        if entry is not None and entry.get("status") in ("CONFLICT", "ERROR"):
            reason = self._prearchive_reason(entry)
            _set(result, "conflict", f"left in the prearchive ({entry['status']}): {reason}")
            return True
        if entry is not None and entry.get("status") == "READY" and self._projects.get(row.project) == "0":
            _set(result, "prearchived", f"in the prearchive of {row.project} (project set to manual archiving): "
                                        f"{entry.get('url', '')}")
            return True
        if not final:
            return False
        if existing is not None:
            detail = ", ".join(f"scan {s}: {have}/{want}" for s, (have, want) in sorted(short.items()))
            _set(result, "incomplete", f"in the archive with missing files ({detail})")
        elif entry is not None:
            _set(result, "unverified", f"still in the prearchive ({entry.get('status')}) after "
                                       f"{self.options.verify_timeout:g} s: {entry.get('url', '')}")
        else:
            _set(result, "unverified", f"not in the archive or the prearchive after {self.options.verify_timeout:g} s")
        return True

    def _prearchive_reason(self, entry: dict[str, str]) -> str:
        url = entry.get("url", "")
        try:
            text = self.conn.get(f"/data{url}/logs/last").text.strip()
        except XnatError:
            text = ""
        return text or "no reason given"


def _set(result: RowResult, outcome: str, reason: str) -> RowResult:
    result.outcome = outcome
    result.reason = reason
    return result


def _num(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (1 << 30, text)
