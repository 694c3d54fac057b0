"""Sending DICOM objects to XNAT's receiver by C-STORE (pynetdicom).

How (``shared/reference/dicom-upload.md`` §5, §8):

* :func:`echo` first (C-ECHO), so an unreachable or misnamed receiver is one clear message;
* objects go in batches, one association per batch, at most ``workers`` associations at once;
  each association proposes the presentation contexts its batch needs (SOP class + the transfer
  syntax of the file), at most 128, never a fixed list;
* routing by XNAT's documented rule: ``Project: P Subject: S Session: E`` is set in
  (0010,4000) PatientComments of each dataset in memory, as it is sent (source files are never
  written);
* the routing comment is patched into the encoded bytes (:func:`with_comment`) and the result
  sent from a spool file (:class:`_Spool`: an anonymous memory file on Linux) that pynetdicom
  streams as it is (``STORE_SEND_CHUNKED_DATASET``): no pydicom decode and re-encode per object
  (~7 of ~33 ms per object on one association, ``benchmarks/dicom_upload.md``). Objects whose
  bytes cannot be patched (deflated, big endian, no file meta group length) and runs with no
  spool fall back to reading the dataset with pydicom and letting pynetdicom encode it;
* the DIMSE status of every object is kept: 0x0000 and the warnings 0xB000/0xB006/0xB007 are
  stored; 0xA7xx (out of resources), a missing answer or a dropped association are transient and
  retried with back-off (a new association); other failures, and objects whose context the
  receiver did not accept, are refused.
"""

from __future__ import annotations

import io
import os
import queue
import shutil
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from xnatnode.dicom import DicomObject, SourceScan, routing_comment

MAX_CONTEXTS = 128
WARNINGS = {0xB000, 0xB006, 0xB007}
DEFAULT_BATCH = 500
DEFAULT_ATTEMPTS = 4


IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_NOT_PATCHED = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}  # deflated, big endian
PATIENT_COMMENTS = 0x00104000


def with_comment(raw: bytes, transfer_syntax: str, comment: str) -> bytes | None:
    """A DICOM file's bytes with (0010,4000) PatientComments set to ``comment``, or None.

    Hand-written on purpose (pydicom has no "replace one element in encoded bytes"): the file meta
    group is kept as it is; pydicom's raw element reader walks the top-level elements of the
    little-endian dataset up to (0010,4000), pydicom encodes the one new element, and the rest of
    the bytes (pixel data included) are copied. None when the file is not Part 10 with a file
    meta group length, or its dataset is deflated or big endian (the caller decodes it then).
    """
    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import data_element_generator
    from pydicom.filewriter import write_data_element

    if transfer_syntax in _NOT_PATCHED or raw[128:132] != b"DICM" or raw[132:136] != b"\x02\x00\x00\x00":
        return None
    if raw[136:138] != b"UL" or len(raw) < 144:
        return None
    start = 144 + struct.unpack("<I", raw[140:144])[0]
    implicit = transfer_syntax == IMPLICIT_LE
    fp = io.BytesIO(raw)
    fp.seek(start)
    elements = data_element_generator(fp, implicit, True, defer_size=1,
                                      stop_when=lambda tag, vr, length: tag >= PATIENT_COMMENTS)
    for _ in elements:
        pass
    insert = fp.tell()
    end = insert
    if raw[insert:insert + 4] == b"\x10\x00\x00\x40":  # an old PatientComments: skip it
        rest = data_element_generator(fp, implicit, True, defer_size=1,
                                      stop_when=lambda tag, vr, length: tag > PATIENT_COMMENTS)
        for _ in rest:
            pass
        end = fp.tell()
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = implicit
    write_data_element(out, DataElement(PATIENT_COMMENTS, "LT", comment))
    return raw[:insert] + out.getvalue() + raw[end:]


class _Spool:
    """One spool file per association for the patched bytes; ``write`` gives its path (None: none).

    On Linux an anonymous memory file (``memfd_create``) opened through ``/proc/self/fd``: no name
    in any folder, so nothing is left behind even when the run is killed, and no writable /tmp is
    needed. Elsewhere a file in a private temporary folder, removed at the end of the association.
    """

    def __init__(self) -> None:
        self.fd = -1
        self.folder: str | None = None
        try:
            self.fd = os.memfd_create("xnatnode-cstore")
            self.path: str | None = f"/proc/self/fd/{self.fd}"
            if not os.path.exists(self.path):
                raise OSError("no /proc")
        except (AttributeError, OSError):
            if self.fd >= 0:
                os.close(self.fd)
            self.fd = -1
            try:
                self.folder = tempfile.mkdtemp(prefix="xnatnode-cstore-")
                self.path = os.path.join(self.folder, "object.dcm")
            except OSError:
                self.path = None

    def write(self, data: bytes) -> str | None:
        if self.path is None:
            return None
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.pwrite(self.fd, view, len(data) - len(view)):]
        else:
            with open(self.path, "wb") as out:
                out.write(data)
        return self.path

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _no_delay(assoc: Any) -> None:
    """Switch Nagle's algorithm off on the association's socket, as dcmtk does (TCP_NODELAY).

    pynetdicom leaves it on; a P-DATA PDU (16 KiB at XNAT's usual maximum) is below loopback's
    MSS, so with Nagle each one waits for the ACK of the previous one.
    """
    import socket

    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _AnswersOnly(queue.Queue[Any]):
    """A DIMSE message queue that only ``send_c_*``'s blocking wait may take from.

    pynetdicom (3.0.4 and its main branch) races on an association it requested: ``send_c_store``
    clears ``_reactor_checkpoint`` and goes on once ``_is_paused`` is true, but the reactor may just
    have left ``_reactor_checkpoint.wait()`` with the flag still true; it then takes the next message
    with ``dimse.get_msg(block=False)``. When the receiver answers fast, that message is the
    C-STORE-RSP, and ``send_c_store`` waits out the whole DIMSE timeout (the object is then sent
    again on a new association). A storage SCU is never sent requests on its associations, so its
    reactor has nothing to take: its non-blocking gets find the queue empty.
    """

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not block:
            raise queue.Empty
        return super().get(block, timeout)


def _associate(ae: Any, target: Target) -> Any:
    """``ae.associate`` to the receiver; an established association's answers go only to the
    ``send_c_*`` call waiting for them (:class:`_AnswersOnly`)."""
    assoc = ae.associate(target.host, target.port, ae_title=target.called_ae)
    if assoc.is_established:
        assoc.dimse.msg_queue = _AnswersOnly()
    return assoc


class ReceiverUnreachable(Exception):
    """The receiver did not accept an association or answer C-ECHO."""


@dataclass(frozen=True)
class Target:
    """Where objects go and how the association is named."""

    host: str
    port: int
    called_ae: str = "XNAT"
    calling_ae: str = "XNATNODE"
    timeout: float = 30.0


@dataclass
class Outcome:
    """What happened to one object."""

    sop_uid: str
    status: int  # DIMSE status, -1 when none arrived
    stored: bool
    reason: str = ""


def _ae(target: Target) -> Any:
    import logging

    from pynetdicom import AE, _config

    _config.STORE_SEND_CHUNKED_DATASET = True  # a path given to send_c_store is streamed, not decoded
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # one INFO line per message otherwise
    _config.LOG_HANDLER_LEVEL = "none"  # and no handlers formatting those lines (~5 % of the CPU per object)

    ae = AE(ae_title=target.calling_ae)
    ae.maximum_pdu_size = 0  # the receiver's own limit still applies to what we send
    ae.acse_timeout = target.timeout
    ae.dimse_timeout = target.timeout
    ae.network_timeout = target.timeout
    return ae


def echo(target: Target) -> None:
    """C-ECHO the receiver; :class:`ReceiverUnreachable` with the reason when it does not answer."""
    ae = _ae(target)
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = _associate(ae, target)
    if not assoc.is_established:
        why = "rejected the association (wrong called AE title?)" if assoc.is_rejected else "did not answer"
        raise ReceiverUnreachable(f"DICOM receiver {target.called_ae}@{target.host}:{target.port} {why}")
    try:
        status = assoc.send_c_echo()
        if not status or int(status.Status) != 0:
            raise ReceiverUnreachable(f"DICOM receiver {target.called_ae}@{target.host}:{target.port} "
                                      "did not answer C-ECHO")
    finally:
        if assoc.is_established:
            assoc.release()


def batches(objects: Sequence[DicomObject], size: int) -> list[list[DicomObject]]:
    """Objects in batches of at most ``size`` whose (SOP class, transfer syntax) pairs fit 128 contexts."""
    out: list[list[DicomObject]] = []
    current: list[DicomObject] = []
    pairs: set[tuple[str, str]] = set()
    for obj in objects:
        pair = (obj.sop_class, obj.transfer_syntax)
        if current and (len(current) >= size or (pair not in pairs and len(pairs) >= MAX_CONTEXTS)):
            out.append(current)
            current, pairs = [], set()
        current.append(obj)
        pairs.add(pair)
    if current:
        out.append(current)
    return out


class Sender:
    """Sends the objects of one source to a receiver, routed to one session."""

    def __init__(self, target: Target, *, workers: int = 1, batch_size: int = DEFAULT_BATCH,
                 attempts: int = DEFAULT_ATTEMPTS, backoff: float = 0.5,
                 on_result: Callable[[Outcome, DicomObject], None] | None = None) -> None:
        self.target = target
        self.workers = max(1, workers)
        self.batch_size = max(1, batch_size)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.on_result = on_result
        self._lock = threading.Lock()

    def send(self, scan: SourceScan, objects: Iterable[DicomObject], labels: tuple[str, str, str]) -> list[Outcome]:
        """Send ``objects`` of ``scan`` routed to ``labels`` (project, subject, session)."""
        comment = routing_comment(*labels)
        work = batches(list(objects), self.batch_size)
        results: list[Outcome] = []
        with scan.opened() as opener:
            if self.workers == 1 or len(work) == 1:
                for batch in work:
                    results += self._send_batch(opener, batch, comment)
            else:
                with ThreadPoolExecutor(self.workers, thread_name_prefix="cstore") as pool:
                    for part in pool.map(lambda b: self._send_batch(opener, b, comment), work):
                        results += part
        return results

    def _report(self, outcome: Outcome, obj: DicomObject) -> Outcome:
        if self.on_result is not None:
            with self._lock:
                self.on_result(outcome, obj)
        return outcome

    def _send_batch(self, opener: Any, batch: list[DicomObject], comment: str) -> list[Outcome]:
        done: list[Outcome] = []
        pending = list(batch)
        attempt = 0
        while pending:
            retry, finished = self._one_association(opener, pending, comment)
            done += finished
            if not retry:
                break
            # attempts count failures in a row: an association that stored something resets them
            attempt = 1 if finished else attempt + 1
            if attempt >= self.attempts:
                done += [self._report(Outcome(o.sop_uid, -1, False, f"no answer after {attempt} attempts"), o)
                         for o in retry]
                break
            time.sleep(self.backoff * 2 ** (attempt - 1))
            pending = retry
        return done

    def _one_association(self, opener: Any, batch: list[DicomObject],
                         comment: str) -> tuple[list[DicomObject], list[Outcome]]:
        """Send a batch over one association: (objects to retry, outcomes of the others)."""
        import pydicom

        ae = _ae(self.target)
        for pair in sorted({(o.sop_class, o.transfer_syntax) for o in batch}):
            ae.add_requested_context(pair[0], pair[1] or "1.2.840.10008.1.2.1")
        assoc = _associate(ae, self.target)
        if not assoc.is_established:
            return batch, []
        _no_delay(assoc)
        finished: list[Outcome] = []
        spool = _Spool()
        try:
            for index, obj in enumerate(batch):
                if not assoc.is_established:
                    return batch[index:], finished
                with opener.open(obj.name) as stream:
                    raw = stream.read()
                patched = with_comment(raw, obj.transfer_syntax, comment)
                dataset: Any = spool.write(patched) if patched is not None else None
                if dataset is None:
                    dataset = pydicom.dcmread(pydicom.filebase.DicomBytesIO(raw))
                    dataset.PatientComments = comment
                del raw, patched
                try:
                    status = assoc.send_c_store(dataset)
                except ValueError as exc:  # no accepted presentation context for this object
                    finished.append(self._report(Outcome(obj.sop_uid, -1, False, f"refused: {exc}"), obj))
                    continue
                except (RuntimeError, OSError):
                    return batch[index:], finished
                if not status:
                    return batch[index:], finished
                code = int(status.Status)
                if code == 0 or code in WARNINGS:
                    finished.append(self._report(Outcome(obj.sop_uid, code, True), obj))
                elif 0xA700 <= code <= 0xA7FF:
                    return batch[index:], finished
                else:
                    comment_text = str(getattr(status, "ErrorComment", "") or "")
                    reason = f"refused with status 0x{code:04X}" + (f": {comment_text}" if comment_text else "")
                    finished.append(self._report(Outcome(obj.sop_uid, code, False, reason), obj))
        finally:
            if assoc.is_established:
                assoc.release()
            spool.close()
        return [], finished
