"""A DICOM receiver's worker process: pynetdicom associations on the receiver's listening socket.

XNAT's receiver (dcm4che, Java) serves its associations on a thread pool that uses every core. One
Python process cannot (one GIL; pynetdicom alone spends several ms of CPU per C-STORE), so each
receiver of :mod:`xnatsim.dicomscp` runs ``processes`` of these workers on one shared listening
socket: the kernel hands each new connection to the worker that accepts it first, and each worker
serves its associations on threads as before.

A worker does the part that needs no archive state: the DIMSE exchange, the File Meta
Information (:class:`FileMetaEncoder`), the routing headers (:func:`xnatsim.dicomhdr.read_routing`)
and writing the object into the store's tmp folder. For every object it asks the xnatsim process,
over one :mod:`multiprocessing.connection` per association thread, to file it
(:meth:`xnatsim.dicomscp.DicomService.file_received`: test faults, routing rules, the
prearchive) and answers the DIMSE status it gets back. A worker ends when its stdin closes: the
receiver was stopped, or the xnatsim process is gone.

Started by :class:`xnatsim.dicomscp.Receiver` as
``python -m xnatsim.scpworker FD RECEIVER_ID AE_TITLE INTAKE_ADDRESS TMP_DIR`` with the listening
socket inherited as ``FD`` and ``INTAKE_ADDRESS`` written by :func:`address_arg`; the connection's
key is the first line of its stdin (hex: in neither the command line nor the environment).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from xnatsim.dicomhdr import read_routing

#: answer of :meth:`DicomService.file_received` that means "abort the association" (a test fault)
ABORT = -1
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

log = logging.getLogger("xnatsim.scpworker")

_PLAIN_UID = re.compile(r"[0-9.]{1,64}")
#: how an abstract AF_UNIX name (``"\0NAME"``) goes through argv, which cannot carry a NUL:
#: ``@NAME``, as ``ss`` shows such names and Go's ``net`` package spells them
_ABSTRACT = "@"


def address_arg(address: str) -> str:
    """The filing connection's AF_UNIX ``address`` as a command-line argument: an abstract name
    as ``@NAME``, a path (absolute: multiprocessing's, never starting with ``@``) as it is."""
    return _ABSTRACT + address[1:] if address.startswith("\0") else address


def address_from_arg(arg: str) -> str:
    """The address :func:`address_arg` wrote."""
    return "\0" + arg[1:] if arg.startswith(_ABSTRACT) else arg


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


def _echo(event: Any) -> int:
    return 0x0000


class Worker:
    """The pynetdicom SCP of one worker process."""

    def __init__(self, receiver_id: int, ae_title: str, intake: str, key: bytes, tmp_dir: Path) -> None:
        self.receiver_id = receiver_id
        self.ae_title = ae_title
        self.intake = intake
        self.key = key
        self.tmp_dir = tmp_dir
        self._meta = FileMetaEncoder()
        self._local = threading.local()  # one connection to the xnatsim process per association thread

    def serve(self, listening: socket.socket) -> Any:
        """Start serving associations accepted on ``listening`` (in a thread); the server."""
        from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
        from pynetdicom.events import EventHandlerType
        from pynetdicom.transport import ThreadedAssociationServer

        class SharedSocketServer(ThreadedAssociationServer):
            """pynetdicom's server on the receiver's inherited listening socket (never rebound).

            Non-blocking: when another worker takes a connection first, ``accept`` fails at once
            (``socketserver`` ignores the OSError) instead of waiting for the next connection.
            """

            def server_bind(self) -> None:
                if self.socket is not None:
                    self.socket.close()
                self.socket = listening
                self.socket.setblocking(False)
                self.server_address = self.socket.getsockname()

            def server_activate(self) -> None:
                pass  # listening already

        logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # one INFO line per message otherwise
        _config.LOG_HANDLER_LEVEL = "none"  # nor the cost of formatting them (a worker runs nothing else)
        ae = AE(ae_title=self.ae_title)
        ae.maximum_associations = 32
        ae.maximum_pdu_size = 0  # no limit: big objects arrive in few PDUs (pynetdicom's reactor polls per PDU)
        ae.require_called_aet = True
        uids = {str(c.abstract_syntax) for c in AllStoragePresentationContexts} | set(PRIVATE_SOP_CLASSES)
        for uid in sorted(uids):
            ae.add_supported_context(uid, list(TRANSFER_SYNTAXES))
        ae.add_supported_context(VERIFICATION, ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
        handlers: list[EventHandlerType] = [(evt.EVT_C_STORE, self._store), (evt.EVT_C_ECHO, _echo)]
        server = ae.make_server(listening.getsockname()[:2], evt_handlers=handlers,
                                server_class=SharedSocketServer)
        threading.Thread(target=server.serve_forever, name="xnatsim-scp-accept", daemon=True).start()
        return server

    def _ask(self, message: tuple[Any, ...]) -> int:
        """The xnatsim process's answer for one object (0xA700 when it cannot be asked)."""
        from multiprocessing.connection import Client

        conn = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = self._local.conn = Client(self.intake, family="AF_UNIX", authkey=self.key)
            conn.send(message)
            answer: int = conn.recv()
            return answer
        except (OSError, EOFError):
            self._local.conn = None
            log.exception("C-STORE failed (0xA700): the xnatsim process did not answer")
            return 0xA700

    def _store(self, event: Any) -> int:
        path: Path | None = None
        headers: dict[str, str] | None = None
        try:
            request = event.request
            meta = self._meta.encode(str(request.AffectedSOPClassUID or ""), str(request.AffectedSOPInstanceUID or ""),
                                     str(event.context.transfer_syntax), event.assoc.requestor.ae_title)
            data = b"".join((b"\0" * 128, b"DICM", meta, event.encoded_dataset(include_meta=False)))
            headers = read_routing(data)  # parsed here once: the prearchive keeps them with the file
            if headers is not None and headers.get("SOPInstanceUID") and headers.get("StudyInstanceUID"):
                path = self.tmp_dir / f"cstore-{uuid.uuid4().hex}.dcm"
                path.write_bytes(data)
        except Exception:
            log.exception("C-STORE failed (0xA700)")
            if path is not None:
                path.unlink(missing_ok=True)
            return 0xA700
        association = f"{os.getpid()}:{id(event.assoc)}"
        answer = self._ask((self.receiver_id, association, str(path) if path else None, headers,
                            event.assoc.requestor.ae_title))
        if answer == ABORT:
            event.assoc.abort()
            return 0xA700
        return answer


def main(argv: list[str]) -> int:
    """Serve until stdin closes (see the module docstring for the arguments)."""
    fd, receiver_id, ae_title, intake, tmp_dir = argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    listening = socket.socket(fileno=int(fd))
    key = bytes.fromhex(sys.stdin.buffer.readline().decode())
    Worker(int(receiver_id), ae_title, address_from_arg(intake), key, Path(tmp_dir)).serve(listening)
    sys.stdin.buffer.read()  # the lifeline: EOF when the receiver stops or xnatsim ends
    os._exit(0)  # no server_close: the listening socket is shared with the other workers


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
