"""DICOM C-STORE receivers (pynetdicom) that behave like XNAT's, and their settings (no HTTP here).

XNAT's facts (``../shared/reference/dicom-upload.md`` §1-§3) this follows:

* a receiver is ``aeTitle`` + ``port`` (default ``XNAT`` / 8104) with the fields of
  ``DicomSCPInstance.toMap``; the AE title does not choose the project, the receiver's settings
  (routing expressions, ``directArchive``) do; the settings are kept in ``dicomscp.json`` in the
  data folder;
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
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xnatsim import intake, prearcstore
from xnatsim.dicomhdr import read_routing
from xnatsim.intake import DicomFile, IntakeError
from xnatsim.store import Store

log = logging.getLogger("xnatsim.dicomscp")

DEFAULT_AE = "XNAT"
DEFAULT_PORT = 8104
#: XNAT's ``sessionXmlRebuilderInterval`` default (seconds).
DEFAULT_IDLE_SECONDS = 300.0
RECEIVED_FILE_USER = "admin"
#: Siemens CSA Non-Image and Philips private storage classes of XNAT's ``CStoreService.CUIDS``.
PRIVATE_SOP_CLASSES = (
    "1.3.12.2.1107.5.9.1",
    "1.3.46.670589.11.0.0.12.1",
    "1.3.46.670589.11.0.0.12.2",
    "1.3.46.670589.11.0.0.12.4",
    "1.3.46.670589.2.5.1.1",
)
#: XNAT's ``DicomSCP.TSUIDS`` that pydicom names (JPIP, MPEG2, RFC2557 and XML left out).
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.92",  # JPEG 2000 Part 2 Lossless
    "1.2.840.10008.1.2.4.93",  # JPEG 2000 Part 2
    "1.2.840.10008.1.2.5",  # RLE Lossless
)
VERIFICATION = "1.2.840.10008.1.1"
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


def _echo(event: Any) -> int:
    return 0x0000


_PLAIN_UID = re.compile(r"[0-9.]{1,64}")


class FileMetaEncoder:
    """The encoded File Meta Information of a received object, byte for byte what pynetdicom's
    ``encode_file_meta(event.file_meta)`` gives with the calling AE as SourceApplicationEntityTitle.

    Encoding it with pydicom costs about as much as parsing the object's headers (~1 ms), and
    only the SOP Instance UID changes between the objects of one sender, SOP class and transfer
    syntax. So pydicom encodes one template per (SOP class, transfer syntax, AE, length of the
    instance UID) with a placeholder UID of that length, and each object's UID is copied over the
    placeholder (same length: same padding and group length). UIDs other than 1-64 digits and dots
    (which pydicom might strip or pad differently) are encoded by pydicom every time.
    """

    #: templates kept at most (a receiver sees few SOP class / syntax / AE combinations)
    LIMIT = 256

    def __init__(self) -> None:
        self._templates: dict[tuple[str, str, str, int], tuple[bytes, int]] = {}

    @staticmethod
    def encode_with_pydicom(sop_class: str, instance: str, syntax: str, calling_ae: str) -> bytes:
        from pydicom.uid import UID
        from pynetdicom.dsutils import create_file_meta, encode_file_meta

        meta = create_file_meta(sop_class_uid=UID(sop_class), sop_instance_uid=UID(instance),
                                transfer_syntax=UID(syntax))
        meta.SourceApplicationEntityTitle = calling_ae
        return encode_file_meta(meta)

    def encode(self, sop_class: str, instance: str, syntax: str, calling_ae: str) -> bytes:
        if not _PLAIN_UID.fullmatch(instance):
            return self.encode_with_pydicom(sop_class, instance, syntax, calling_ae)
        key = (sop_class, syntax, calling_ae, len(instance))
        found = self._templates.get(key)
        if found is None:
            placeholder = "9" * len(instance)
            template = self.encode_with_pydicom(sop_class, placeholder, syntax, calling_ae)
            padded = placeholder.encode() + b"\0" * (len(placeholder) % 2)
            element = b"\x02\x00\x03\x00UI" + len(padded).to_bytes(2, "little") + padded
            offset = template.find(element)
            if offset < 0 or template.find(element, offset + 1) >= 0:
                return self.encode_with_pydicom(sop_class, instance, syntax, calling_ae)
            if len(self._templates) >= self.LIMIT:
                self._templates.clear()
            found = self._templates[key] = (template, offset + 8)
        template, at = found
        return template[:at] + instance.encode() + template[at + len(instance):]


class Receiver:
    """One running pynetdicom SCP for a receiver definition."""

    def __init__(self, service: DicomService, settings: dict[str, Any]) -> None:
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.events import EventHandlerType

        self.service = service
        self.settings = settings
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # one INFO line per message otherwise
        ae = AE(ae_title=settings["aeTitle"])
        ae.maximum_associations = 32
        ae.maximum_pdu_size = 0  # no limit: big objects arrive in few PDUs (pynetdicom's reactor polls per PDU)
        ae.require_called_aet = True
        uids = {str(c.abstract_syntax) for c in AllStoragePresentationContexts} | set(PRIVATE_SOP_CLASSES)
        for uid in sorted(uids):
            ae.add_supported_context(uid, list(TRANSFER_SYNTAXES))
        ae.add_supported_context(VERIFICATION, ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
        handlers: list[EventHandlerType] = [(evt.EVT_C_STORE, self._store), (evt.EVT_C_ECHO, _echo)]
        server = ae.start_server((service.host, int(settings["port"])), block=False, evt_handlers=handlers)
        assert server is not None  # non-blocking start returns the server
        self.server = server
        self.port = int(server.server_address[1])
        self._counts: dict[int, int] = {}
        self._count_lock = threading.Lock()
        self._meta = FileMetaEncoder()

    def stop(self) -> None:
        self.server.shutdown()

    def _store(self, event: Any) -> int:
        faults = self.service.faults
        with self._count_lock:
            key = id(event.assoc)
            self._counts[key] = n = self._counts.get(key, 0) + 1
            total = self.service.received = self.service.received + 1
        if faults.abort_after and n > faults.abort_after:
            event.assoc.abort()
            return 0xA700
        if faults.refuse_every and total % faults.refuse_every == 0:
            return faults.refuse_status
        if faults.delay_ms:
            time.sleep(faults.delay_ms / 1000)
        store = self.service.store
        target = Path(store.tmp_dir) / f"cstore-{uuid.uuid4().hex}.dcm"
        try:
            request = event.request
            meta = self._meta.encode(str(request.AffectedSOPClassUID or ""), str(request.AffectedSOPInstanceUID or ""),
                                     str(event.context.transfer_syntax), event.assoc.requestor.ae_title)
            data = b"".join((b"\0" * 128, b"DICM", meta, event.encoded_dataset(include_meta=False)))
            headers = read_routing(data)  # parsed here once: the prearchive keeps them with the file
            if headers is None or not headers.get("SOPInstanceUID") or not headers.get("StudyInstanceUID"):
                raise IntakeError(400, "The object cannot be parsed or has no SOP/Study instance UID.")
            target.write_bytes(data)
            labels = intake.identify(headers, store, None, self.service.rules(self.settings))
            self.service.receiving.add(DicomFile(target, headers), labels, user=RECEIVED_FILE_USER,
                                       direct=bool(self.settings.get("directArchive")),
                                       source_ae=event.assoc.requestor.ae_title)
        except IntakeError as exc:
            log.info("C-STORE refused (0xC000): %s", exc.message)
            target.unlink(missing_ok=True)
            return 0xC000
        except Exception:
            log.exception("C-STORE failed (0xA700)")
            target.unlink(missing_ok=True)
            return 0xA700
        return 0x0000


class DicomService:
    """The site's receivers, their settings file, the receiving sessions and the builder thread."""

    def __init__(self, store: Store, *, host: str = "127.0.0.1", idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self.store = store
        self.host = host
        self.idle_seconds = idle_seconds
        self.faults = Faults()
        self.received = 0
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
        receiver = Receiver(self, settings)
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
        if self._builder is not None:
            self._builder.join(timeout=10)
