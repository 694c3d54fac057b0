"""DICOM C-STORE receivers (pynetdicom) that behave like XNAT's, and their settings (no HTTP here).

XNAT's facts (``../shared/reference/dicom-upload.md`` §1-§3) this follows:

* a receiver is ``aeTitle`` + ``port`` (default ``XNAT`` / 8104) with the fields of
  ``DicomSCPInstance.toMap``; the AE title does not choose the project, the receiver's settings
  (routing expressions, ``directArchive``) do; the settings are kept in ``dicomscp.json`` in the
  data folder;
* associations are served by worker processes (:mod:`xnatsim.scpworker`, ``processes`` per
  receiver on one listening socket), as XNAT's receiver serves them on a thread pool over all
  cores; the workers do the network part and file each object here (:meth:`DicomService.file_received`);
* accepted: every storage SOP class pynetdicom knows, Siemens CSA Non-Image and the Philips private
  classes of XNAT's list, in XNAT's transfer syntaxes; Verification in Implicit/Explicit LE;
* every object is routed on its own by :func:`xnatsim.intake.identify` and filed by
  :class:`xnatsim.prearcstore.Receiving` into a RECEIVING prearchive session per project and
  StudyInstanceUID; the calling AE is recorded as (0002,0016) SourceApplicationEntityTitle and the
  objects belong to the site's ``receivedFileUser`` (``admin``);
* DIMSE status: objects without SOP/Study UIDs or that cannot be parsed → 0xC000 (XNAT's
  ``ClientException``), anything else that fails → 0xA700 (``ServerException``);
* a builder thread (XNAT's ``SessionXMLRebuilder``) builds sessions idle for the session idle
  time (XNAT's default 5 minutes) and archives them as :func:`xnatsim.prearcstore.build_idle` says.

Test faults (not XNAT): ``faults`` can make a receiver abort the association after N objects
or answer a given failure status for every Nth object.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener, answer_challenge, deliver_challenge
from multiprocessing.util import abstract_sockets_supported
from pathlib import Path
from typing import Any

from xnatsim import intake, prearcstore, scpworker
from xnatsim.intake import DicomFile, IntakeError
from xnatsim.serverconfig import DEFAULT_DICOM_PROCESSES
from xnatsim.store import Store

log = logging.getLogger("xnatsim.dicomscp")

DEFAULT_AE = "XNAT"
DEFAULT_PORT = 8104
#: XNAT's ``sessionXmlRebuilderInterval`` default (seconds).
DEFAULT_IDLE_SECONDS = 300.0
RECEIVED_FILE_USER = "admin"
SETTINGS_FILE = "dicomscp.json"
_FIELDS_DEFAULTS: dict[str, Any] = {
    "identifier": "dicomObjectIdentifier", "fileNamer": "", "enabled": True, "customProcessing": False,
    "directArchive": False, "anonymizationEnabled": True, "whitelistEnabled": False, "whitelist": [],
    "routingExpressionsEnabled": False, "projectRoutingExpression": "", "subjectRoutingExpression": "",
    "sessionRoutingExpression": "",
}


class SettingsError(ValueError):
    """A receiver definition XNAT would refuse (bad AE title or port, duplicate AE:port)."""


def new_receiver(values: dict[str, Any], receiver_id: int) -> dict[str, Any]:
    """A receiver definition with XNAT's fields and defaults, checked."""
    now = int(time.time() * 1000)
    out: dict[str, Any] = {"id": receiver_id, **_FIELDS_DEFAULTS, "created": now, "timestamp": now}
    out.update({k: v for k, v in values.items() if k in _FIELDS_DEFAULTS or k in ("aeTitle", "port")})
    out["id"] = receiver_id
    title = str(out.get("aeTitle") or "").strip()
    if not title or len(title) > 16 or "\\" in title:
        raise SettingsError(f"Invalid AE title: {title!r} (1-16 characters, no backslash)")
    out["aeTitle"] = title
    try:
        out["port"] = int(out.get("port", DEFAULT_PORT))
    except (TypeError, ValueError):
        raise SettingsError(f"Invalid port: {out.get('port')!r}") from None
    if not 0 <= out["port"] <= 65535:
        raise SettingsError(f"Invalid port: {out['port']}")
    return out


@dataclass
class Faults:
    """Test faults of a receiver: abort after ``abort_after`` objects of an association; answer
    ``refuse_status`` for every ``refuse_every``-th object; take ``delay_ms`` per object (0 = off)."""

    abort_after: int = 0
    refuse_every: int = 0
    refuse_status: int = 0xA700
    #: milliseconds each C-STORE takes at least (a slow receiver)
    delay_ms: int = 0


class Receiver:
    """One running receiver: its listening socket and the worker processes that serve it
    (:mod:`xnatsim.scpworker`), ``processes`` of them on the one socket."""

    def __init__(self, service: DicomService, settings: dict[str, Any], processes: int) -> None:
        self.service = service
        self.settings = settings
        listening = socket.create_server((service.host, int(settings["port"])), backlog=64)
        self.port = int(listening.getsockname()[1])
        self._listening = listening
        address, key = service.filing_address()
        argv = [sys.executable, "-m", "xnatsim.scpworker", str(listening.fileno()), str(settings["id"]),
                settings["aeTitle"], scpworker.address_arg(address), str(service.store.tmp_dir)]
        self.workers = [subprocess.Popen(argv, stdin=subprocess.PIPE, pass_fds=(listening.fileno(),))
                        for _ in range(max(1, processes))]
        for worker in self.workers:
            assert worker.stdin is not None
            worker.stdin.write(key.hex().encode() + b"\n")
            worker.stdin.flush()

    def stop(self) -> None:
        """Stop the workers (their stdin closes; killed when they do not end) and close the socket."""
        for worker in self.workers:
            if worker.stdin is not None:
                with contextlib.suppress(OSError):
                    worker.stdin.close()
        for worker in self.workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self._listening.close()


class DicomService:
    """The site's receivers, their settings file, the receiving sessions and the builder thread.

    ``processes``: worker processes per receiver (:mod:`xnatsim.scpworker`); they file every
    object they receive through :meth:`file_received`, served here on one connection per
    association thread (:meth:`filing_address`).
    """

    def __init__(self, store: Store, *, host: str = "127.0.0.1", idle_seconds: float = DEFAULT_IDLE_SECONDS,
                 processes: int = DEFAULT_DICOM_PROCESSES) -> None:
        self.store = store
        self.host = host
        self.idle_seconds = idle_seconds
        self.processes = processes
        self.faults = Faults()
        self.received = 0
        self._counts: dict[str, int] = {}
        self._count_lock = threading.Lock()
        self._intake: tuple[Listener, str, bytes] | None = None
        self.receiving = prearcstore.Receiving(store)
        self.running: dict[int, Receiver] = {}
        self._lock = threading.RLock()
        self._rules: tuple[float, int, intake.RoutingRules] | None = None
        self._stop = threading.Event()
        self._builder: threading.Thread | None = None
        self.settings: list[dict[str, Any]] = self._load()

    # -- settings ---------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.store.data_dir / SETTINGS_FILE

    def _load(self) -> list[dict[str, Any]]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, list):
                return [d for d in data if isinstance(d, dict)]
        return []

    def _save(self) -> None:
        tmp = self.path.with_name(SETTINGS_FILE + ".tmp")
        tmp.write_text(json.dumps(self.settings, indent=1), encoding="utf-8")
        tmp.replace(self.path)

    def get(self, receiver_id: int) -> dict[str, Any] | None:
        return next((s for s in self.settings if s["id"] == receiver_id), None)

    def _check_unique(self, settings: dict[str, Any]) -> None:
        for other in self.settings:
            if (other["id"] != settings["id"] and other["aeTitle"] == settings["aeTitle"]
                    and int(other["port"]) == int(settings["port"]) and settings["port"]):
                raise SettingsError(f"There is already a DICOM SCP instance with the AE title and port "
                                    f"{settings['aeTitle']}:{settings['port']}")

    def create(self, values: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            settings = new_receiver(values, max((s["id"] for s in self.settings), default=0) + 1)
            self._check_unique(settings)
            self.settings.append(settings)
            self._apply(settings)
            self._save()
            return settings

    def update(self, receiver_id: int, values: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            current = self.get(receiver_id)
            if current is None:
                return None
            settings = new_receiver({**current, **values}, receiver_id)
            settings["created"] = current.get("created", settings["created"])
            self._check_unique(settings)
            self._stop_one(receiver_id)
            self.settings[self.settings.index(current)] = settings
            self._apply(settings)
            self._save()
            return settings

    def delete(self, receiver_id: int) -> bool:
        with self._lock:
            current = self.get(receiver_id)
            if current is None:
                return False
            self._stop_one(receiver_id)
            self.settings.remove(current)
            self._save()
            return True

    def ensure(self, ae_title: str, port: int) -> dict[str, Any]:
        """Receiver ``ae_title:port`` as the first receiver (``serve --dicom-port``), started."""
        with self._lock:
            first = self.get(1)
            if first is not None:
                return self.update(1, {"aeTitle": ae_title, "port": port, "enabled": True}) or first
            settings = new_receiver({"aeTitle": ae_title, "port": port}, 1)
            self.settings.insert(0, settings)
            self._apply(settings)
            self._save()
            return settings

    # -- running ----------------------------------------------------------------------

    def _apply(self, settings: dict[str, Any]) -> None:
        """Start ``settings`` when enabled (its ``port`` becomes the bound one when it was 0)."""
        if not settings.get("enabled", True):
            return
        receiver = Receiver(self, settings, self.processes)
        self.running[settings["id"]] = receiver
        settings["port"] = receiver.port
        self._start_builder()

    def _stop_one(self, receiver_id: int) -> None:
        receiver = self.running.pop(receiver_id, None)
        if receiver is not None:
            receiver.stop()

    def start_all(self) -> None:
        with self._lock:
            for settings in self.settings:
                if settings["id"] not in self.running:
                    self._apply(settings)

    def stop_all(self) -> None:
        with self._lock:
            for receiver_id in list(self.running):
                self._stop_one(receiver_id)

    # -- filing what the workers receive -----------------------------------------------------

    def filing_address(self) -> tuple[str, bytes]:
        """The address and key of the connection the workers file objects through (started once).

        Where the platform has them (Linux), an abstract AF_UNIX name: nothing on disk, so nothing
        is left behind when xnatsim is killed (multiprocessing's own address is a socket in a
        ``pymp-*`` folder under TMPDIR that only a clean exit removes); elsewhere that address. Any
        local process may connect to an abstract name, so the key is what keeps them out.
        """
        with self._lock:
            if self._intake is None:
                key = secrets.token_bytes(32)
                name = f"\0xnatsim-scp-{secrets.token_hex(16)}" if abstract_sockets_supported else None
                listener = Listener(name, family="AF_UNIX", backlog=64)
                self._intake = (listener, name or str(listener.address), key)
                threading.Thread(target=self._accept, args=(listener, key), name="xnatsim-scp-intake",
                                 daemon=True).start()
            _, address, key = self._intake
            return address, key

    def _accept(self, listener: Listener, key: bytes) -> None:
        while True:
            try:
                conn = listener.accept()
            except (OSError, EOFError):
                if self._stop.is_set():
                    return
                log.warning("a DICOM worker failed to connect", exc_info=True)
                continue
            threading.Thread(target=self._serve, args=(conn, key), name="xnatsim-scp-filing",
                             daemon=True).start()

    def _serve(self, conn: Connection, key: bytes) -> None:
        """Answer one worker's objects, once it proved it has the key.

        The key handshake is ``Listener(authkey=...)``'s, done here rather than in ``accept`` so
        that a client that never answers holds up its own thread only, not every worker's connection.
        """
        with conn:
            try:
                deliver_challenge(conn, key)
                answer_challenge(conn, key)
            except (AuthenticationError, OSError, EOFError):
                log.warning("a connection to the DICOM filing socket failed the key check")
                return
            seen: set[str] = set()
            try:
                while True:
                    try:
                        message = conn.recv()
                    except (OSError, EOFError):
                        return
                    seen.add(message[1])
                    conn.send(self.file_received(*message))
            finally:  # a worker's connection lasts as long as its association: so does the count
                with self._count_lock:
                    for association in seen:
                        self._counts.pop(association, None)

    def file_received(self, receiver_id: int, association: str, path: str | None, headers: dict[str, str] | None,
                      source_ae: str) -> int:
        """File one object a worker received: its DIMSE status, or :data:`scpworker.ABORT`.

        ``path`` is the object written to the store's tmp folder (None when it could not be parsed
        or has no SOP/Study instance UID); it is removed here unless it was filed.
        """
        faults = self.faults
        with self._count_lock:
            self._counts[association] = n = self._counts.get(association, 0) + 1
            total = self.received = self.received + 1
        if faults.abort_after and n > faults.abort_after:
            status = scpworker.ABORT
        elif faults.refuse_every and total % faults.refuse_every == 0:
            status = faults.refuse_status
        else:
            if faults.delay_ms:
                time.sleep(faults.delay_ms / 1000)
            status = self._file(receiver_id, path, headers, source_ae)
        if status != 0x0000 and path is not None:
            Path(path).unlink(missing_ok=True)
        return status

    def _file(self, receiver_id: int, path: str | None, headers: dict[str, str] | None, source_ae: str) -> int:
        receiver = self.running.get(receiver_id)
        try:
            if path is None or headers is None:
                raise IntakeError(400, "The object cannot be parsed or has no SOP/Study instance UID.")
            if receiver is None:
                raise RuntimeError(f"receiver {receiver_id} is not running")
            labels = intake.identify(headers, self.store, None, self.rules(receiver.settings))
            self.receiving.add(DicomFile(Path(path), headers), labels, user=RECEIVED_FILE_USER,
                               direct=bool(receiver.settings.get("directArchive")), source_ae=source_ae)
        except IntakeError as exc:
            log.info("C-STORE refused (0xC000): %s", exc.message)
            return 0xC000
        except Exception:
            log.exception("C-STORE failed (0xA700)")
            return 0xA700
        return 0x0000

    def rules(self, settings: dict[str, Any]) -> intake.RoutingRules:
        """Routing rules for a receiver, cached a few seconds as newer XNAT builds do."""
        cached = self._rules
        now = time.monotonic()
        if cached is not None and cached[1] == settings["id"] and now - cached[0] < 5:
            return cached[2]
        rules = intake.RoutingRules.site(self.store, settings)
        self._rules = (now, settings["id"], rules)
        return rules

    def invalidate_rules(self) -> None:
        self._rules = None

    def _start_builder(self) -> None:
        if self._builder is None:
            self._builder = threading.Thread(target=self._build_loop, name="xnatsim-session-builder", daemon=True)
            self._builder.start()

    def build_now(self) -> list[str]:
        """One builder pass (sessions idle for the idle time)."""
        lines = prearcstore.build_idle(self.receiving, self.idle_seconds)
        for line in lines:
            log.info("session builder: %s", line)
        return lines

    def _build_loop(self) -> None:
        period = max(0.1, min(self.idle_seconds / 4, 60.0))
        while not self._stop.wait(period):
            try:
                self.build_now()
            except Exception:
                log.exception("session builder pass failed")

    def close(self) -> None:
        self._stop.set()
        self.stop_all()
        if self._intake is not None:
            self._intake[0].close()
        if self._builder is not None:
            self._builder.join(timeout=10)
