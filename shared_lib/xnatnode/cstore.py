"""Sending DICOM objects to XNAT's receiver by C-STORE (pynetdicom).

How (``shared/reference/dicom-upload.md`` §5, §8):

* :func:`echo` first (C-ECHO), so an unreachable or misnamed receiver is one clear message;
* objects go in batches, one association per batch, at most ``workers`` associations at once;
  each association proposes the presentation contexts its batch needs (SOP class + the transfer
  syntax of the file), at most 128, never a fixed list;
* routing by XNAT's documented rule: ``Project: P Subject: S Session: E`` is set in
  (0010,4000) PatientComments of each dataset in memory, as it is sent (source files are never
  written);
* the routing comment is patched into the encoded bytes (:func:`with_comment`): no pydicom
  decode and re-encode per object. Objects whose bytes cannot be patched (deflated, big endian,
  no file meta group length) are read with pydicom and encoded for their context by pynetdicom's
  ``dsutils.encode``;
* pynetdicom negotiates the association and carries the PDUs; the C-STORE messages themselves go
  through :class:`_StoreChannel`, which encodes each request's command set and decodes each
  answer directly (:func:`store_request`, :func:`read_answer`) instead of through pydicom
  datasets, and pynetdicom's two threads per association wait for work instead of polling every
  millisecond (:class:`_EventDriven`): together ~7.3 → ~2-4 ms of CPU per object
  (``benchmarks/dicom_upload.md``);
* the DIMSE status of every object is kept: 0x0000 and the warnings 0xB000/0xB006/0xB007 are
  stored; 0xA7xx (out of resources), a missing answer or a dropped association are transient and
  retried with back-off (a new association); other failures, and objects whose context the
  receiver did not accept, are refused.
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import struct
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
    """A DICOM file's data set (what C-STORE sends: no preamble, no file meta group) with
    (0010,4000) PatientComments set to ``comment``, or None.

    Hand-written on purpose (pydicom has no "replace one element in encoded bytes"): pydicom's raw
    element reader walks the top-level elements of the little-endian data set up to (0010,4000),
    pydicom encodes the one new element, and the rest of the bytes (pixel data included) are
    copied. None when the file is not Part 10 with a file meta group length, or its data set is
    deflated or big endian (the caller decodes it then).
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
    return b"".join((raw[start:insert], out.getvalue(), raw[end:]))


def _no_delay(assoc: Any) -> None:
    """Switch Nagle's algorithm off on the association's socket, as dcmtk does (TCP_NODELAY).

    pynetdicom leaves it on; a P-DATA PDU (16 KiB at XNAT's usual maximum) is below loopback's
    MSS, so with Nagle each one waits for the ACK of the previous one.
    """
    import socket

    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


IDLE = 0.05  # the longest a quiet association's pynetdicom threads wait before they look around


class _AnswersOnly(queue.Queue[Any]):
    """A requested association's DIMSE message queue: only ``send_c_*``'s blocking wait takes from it.

    pynetdicom (3.0.4 and its main branch) races on an association it requested: ``send_c_store``
    clears ``_reactor_checkpoint`` and goes on once ``_is_paused`` is true, but the reactor may just
    have left ``_reactor_checkpoint.wait()`` with the flag still true; it then takes the next message
    with ``dimse.get_msg(block=False)``. When the receiver answers fast, that message is the
    answer, and ``send_c_*`` waits out the whole DIMSE timeout. A storage SCU is never sent
    requests, so the reactor's non-blocking gets take nothing; they wait instead (at most
    :data:`IDLE` s) until ``ready`` is set, in place of the reactor's poll every millisecond.
    """

    def __init__(self, ready: threading.Event, quiet: Callable[[], bool]) -> None:
        super().__init__()
        self.ready = ready
        self.quiet = quiet

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if block:
            return super().get(block, timeout)
        if self.quiet():
            self.ready.wait(IDLE)
        self.ready.clear()
        raise queue.Empty


def _then(method: Callable[..., Any], signal: Callable[[], object]) -> Callable[..., Any]:
    """``method``, then ``signal()``."""
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        signal()
        return result
    return wrapped


def _first(action: Callable[[], object], method: Callable[..., Any]) -> Callable[..., Any]:
    """``action()``, then ``method``."""
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        action()
        return method(*args, **kwargs)
    return wrapped


class _EventDriven:
    """A requested association whose two pynetdicom threads wait for work instead of polling.

    pynetdicom's DUL thread sleeps ``_run_loop_delay`` (1 ms) whenever it finds nothing to do, then
    polls its socket and queues again (its own TODO: "make this event based"), and the
    association's reactor sleeps 1 ms between looks at its queues: ~5 % of a core each per idle
    association, and up to 1 ms before an answer is seen. Here:

    * the DUL thread, when its queues are empty, waits in one ``select`` on its socket and on a
      wake-up socket pair written to by every primitive put on ``to_provider_queue`` and by
      ``kill_dul``/``stop_dul``;
    * the reactor waits in its DIMSE queue's get (:class:`_AnswersOnly`) for an event set by every
      primitive the DUL puts for it (a release or an abort from the peer), by ``kill`` and before
      ``release`` and ``abort`` (which need it paused);
    * anything neither is woken for (the ARTIM and idle timers) is seen within :data:`IDLE` s.

    Installed by :func:`_associate` once the association is established, when only the calling
    thread puts primitives; it replaces attributes of that one association's objects only.
    """

    def __init__(self, assoc: Any) -> None:
        import socket

        self.assoc = assoc
        self.dul = dul = assoc.dul
        self.sock = dul.socket.socket
        self.waker, self.wakee = socket.socketpair()
        self.waker.setblocking(False)
        self.wakee.setblocking(False)
        self.ready = threading.Event()
        provider, primitives = dul.to_provider_queue, dul.to_user_queue

        def stop_when_idle() -> None:
            if dul.state_machine.current_state == "Sta1":  # where stop_dul stops the thread
                dul._kill_thread = True
                self.wake()

        def pause() -> None:  # as release and abort do first, but before the wake-up
            assoc._reactor_checkpoint.clear()
            self.ready.set()

        def quiet() -> bool:
            return not (primitives.queue or assoc._kill or not assoc._reactor_checkpoint.is_set())

        provider.put = _then(provider.put, self.wake)
        primitives.put = _then(primitives.put, self.ready.set)
        dul.kill_dul = _then(dul.kill_dul, self.wake)
        dul.stop_dul = _first(stop_when_idle, dul.stop_dul)
        dul._is_transport_event = _first(self.wait, dul._is_transport_event)
        dul._run_loop_delay = 0
        assoc.kill = _then(assoc.kill, self.ready.set)
        assoc.release = _first(pause, assoc.release)
        assoc.abort = _first(pause, assoc.abort)
        assoc.dimse.msg_queue = _AnswersOnly(self.ready, quiet)

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # the pair's buffer is full (a wake-up is pending) or it is closed
            self.waker.send(b"\0")

    def wait(self) -> None:
        """Until the socket has data or work is put for the DUL (at most :data:`IDLE` s), when idle."""
        import select

        dul = self.dul
        if dul._kill_thread or dul.to_provider_queue.queue or dul.event_queue.queue:
            return
        try:
            ready, _, _ = select.select([self.sock, self.wakee], [], [], IDLE)
        except (OSError, ValueError):  # the socket closed: poll as pynetdicom does until the DUL sees it
            time.sleep(0.001)
            return
        if self.wakee in ready:
            with contextlib.suppress(OSError):
                self.wakee.recv(4096)

    def close(self) -> None:
        self.waker.close()
        self.wakee.close()


def _release(assoc: Any) -> None:
    """Release an association (when still established) and close its :class:`_EventDriven` parts."""
    if assoc.is_established:
        assoc.release()
    events = getattr(assoc, "xnatnode_events", None)
    if events is not None:
        events.close()


def _associate(ae: Any, target: Target) -> Any:
    """``ae.associate`` to the receiver; an established association gets TCP_NODELAY
    (:func:`_no_delay`) and is made :class:`_EventDriven` (its answers then go only to the
    ``send_c_*`` call waiting for them)."""
    assoc = ae.associate(target.host, target.port, ae_title=target.called_ae)
    if assoc.is_established:
        _no_delay(assoc)
        assoc.xnatnode_events = _EventDriven(assoc)
    return assoc


COMMAND_FIELD, MESSAGE_ID_RESPONDED, STATUS, ERROR_COMMENT = 0x00000100, 0x00000120, 0x00000900, 0x00000902
C_STORE_RSP = 0x8001
PRIORITY_LOW = 2  # what pynetdicom's send_c_store sent by default


def _element(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def _uid(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def store_request(message_id: int, sop_class: str, sop_uid: str, priority: int = PRIORITY_LOW) -> bytes:
    """The command set of a C-STORE-RQ (PS3.7 §9.3.1.1), Implicit VR Little Endian.

    Hand-written on purpose: seven fixed elements, encoded byte for byte as pynetdicom encodes them
    (a unit test compares the two), without building and writing a pydicom dataset for every object
    (~0.7 ms of CPU each).
    """
    body = b"".join((
        _element(0x00000002, _uid(sop_class)),
        _element(0x00000100, struct.pack("<H", 0x0001)),  # C-STORE-RQ
        _element(0x00000110, struct.pack("<H", message_id)),
        _element(0x00000700, struct.pack("<H", priority)),
        _element(0x00000800, struct.pack("<H", 0x0001)),  # a data set follows
        _element(0x00001000, _uid(sop_uid)),
    ))
    return _element(0x00000000, struct.pack("<I", len(body))) + body


@dataclass(frozen=True)
class Answer:
    """The parts of a C-STORE-RSP that decide an object's outcome."""

    message_id: int
    status: int
    error_comment: str = ""


def read_answer(command: bytes) -> Answer | None:
    """A C-STORE-RSP's command set (Implicit VR Little Endian) read, or None when it is not one.

    Hand-written for the same reason as :func:`store_request` (pydicom decoding of each answer
    cost ~0.5 ms); a unit test reads pynetdicom-encoded answers with both.
    """
    values: dict[int, bytes] = {}
    pos = 0
    while pos < len(command):
        if pos + 8 > len(command):
            return None  # truncated
        group, element, length = struct.unpack_from("<HHI", command, pos)
        pos += 8 + length
        if pos > len(command):
            return None
        values[group << 16 | element] = command[pos - length:pos]
    try:
        if struct.unpack("<H", values[COMMAND_FIELD])[0] != C_STORE_RSP:
            return None
        message_id = struct.unpack("<H", values[MESSAGE_ID_RESPONDED])[0]
        status = struct.unpack("<H", values[STATUS])[0]
    except (KeyError, struct.error):
        return None
    comment = values.get(ERROR_COMMENT, b"").decode("ascii", "replace").rstrip(" \0")
    return Answer(message_id, status, comment)


class _StoreChannel:
    """C-STORE over an association pynetdicom established and carries.

    Requests go to the DUL as P-DATA primitives (command fragments, then data set fragments, each
    at most the receiver's maximum PDU length); the DUL thread hands every P-DATA it receives to
    :meth:`_receive` (in place of the DIMSE provider's decoder), which puts each complete answer
    on a queue that :meth:`store` waits on. Nothing else takes from that queue, so pynetdicom's
    reactor needs no pausing (:class:`_AnswersOnly`'s race cannot arise), and an abort or a
    closed connection wakes the wait at once (``EVT_ABORTED``, ``EVT_CONN_CLOSE``).
    """

    def __init__(self, assoc: Any, timeout: float) -> None:
        from pynetdicom import evt

        self.assoc = assoc
        self.timeout = timeout
        self.answers: queue.Queue[Answer | None] = queue.Queue()
        self.contexts = {(str(c.abstract_syntax), str(c.transfer_syntax[0])): int(c.context_id)
                         for c in assoc.accepted_contexts}
        self.max_pdv = max(0, int(assoc.dimse.maximum_pdu_size or 0) - 6)  # 0: no limit
        self.message_id = 0
        self._command = bytearray()
        assoc.dimse.receive_primitive = self._receive
        for event in (evt.EVT_ABORTED, evt.EVT_CONN_CLOSE):
            assoc.bind(event, self._ended)

    def context(self, sop_class: str, transfer_syntax: str) -> int | None:
        return self.contexts.get((sop_class, transfer_syntax))

    def store(self, context_id: int, sop_class: str, sop_uid: str, data: bytes) -> Answer | None:
        """Send one object; its answer, or None when none came (after the DIMSE timeout the
        association is aborted) or the association ended."""
        self.message_id = self.message_id % 0xFFFF + 1
        self._send(context_id, 0x01, store_request(self.message_id, sop_class, sop_uid))
        self._send(context_id, 0x00, data)
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                answer = self.answers.get(timeout=left)
            except queue.Empty:
                break
            if answer is None:
                return None
            if answer.message_id == self.message_id:
                return answer
        self.assoc.abort()
        return None

    def _send(self, context_id: int, control: int, data: bytes) -> None:
        """``data`` as PDVs of at most ``max_pdv`` bytes; the last one's control header marks it."""
        from pynetdicom.pdu_primitives import P_DATA

        view = memoryview(data)
        size = self.max_pdv or len(data) or 1
        for start in range(0, max(len(data), 1), size):
            last = start + size >= len(data)
            primitive = P_DATA()
            primitive.presentation_data_value_list.append(
                (context_id, bytes((control | 0x02 if last else control,)) + view[start:start + size]))
            self.assoc.dul.send_pdu(primitive)

    def _receive(self, primitive: Any) -> None:
        for _, pdv in primitive.presentation_data_value_list:
            if not pdv[0] & 0x01:
                continue  # data set fragments: a C-STORE-RSP has none
            self._command += pdv[1:]
            if pdv[0] & 0x02:
                self.answers.put(read_answer(bytes(self._command)))  # None: not an answer, as no answer
                self._command.clear()

    def _ended(self, event: Any) -> None:
        self.answers.put(None)


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
    from pynetdicom import AE, _config

    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # one INFO line per message otherwise
    _config.LOG_HANDLER_LEVEL = "none"  # and no handlers formatting those lines (~5 % of the CPU per object)

    ae = AE(ae_title=target.calling_ae)
    ae.maximum_pdu_size = 0  # the receiver's own limit still applies to what we send
    ae.acse_timeout = target.timeout
    ae.dimse_timeout = target.timeout
    ae.network_timeout = target.timeout
    return ae


def _unreachable(target: Target, why: str) -> ReceiverUnreachable:
    return ReceiverUnreachable(
        f"DICOM receiver {target.called_ae}@{target.host}:{target.port} {why}: check --dicom-host, "
        "--dicom-port and --called-ae against XNAT's receivers (GET /xapi/dicomscp: aeTitle, port, "
        "enabled), or send with --via import")


def _no_answer(target: Target) -> str:
    """Why nothing took the association, from one plain TCP connection (only on that failure)."""
    import socket

    try:
        with socket.create_connection((target.host, target.port), timeout=min(target.timeout, 10.0)):
            return "the port accepts connections but no association was made"
    except socket.gaierror:
        return f"unknown host {target.host}"
    except ConnectionRefusedError:
        return "connection refused: nothing listens on that port"
    except TimeoutError:
        return "connection timed out"
    except OSError as exc:
        return exc.strerror or str(exc)


def echo(target: Target) -> None:
    """C-ECHO the receiver; :class:`ReceiverUnreachable` with the reason when it does not answer."""
    ae = _ae(target)
    ae.add_requested_context("1.2.840.10008.1.1")
    pynetdicom_log = logging.getLogger("pynetdicom")
    pynetdicom_log.setLevel(logging.CRITICAL)  # its two ERROR lines say less than ours below
    try:
        assoc = _associate(ae, target)
    except OSError:  # pynetdicom resolves the host itself: an unknown one raises gaierror
        raise _unreachable(target, f"did not answer ({_no_answer(target)})") from None
    finally:
        pynetdicom_log.setLevel(logging.WARNING)
    if not assoc.is_established:
        raise _unreachable(target, "rejected the association (wrong called AE title?)" if assoc.is_rejected
                           else f"did not answer ({_no_answer(target)})")
    try:
        status = assoc.send_c_echo()
        if not status or int(status.Status) != 0:
            raise ReceiverUnreachable(f"DICOM receiver {target.called_ae}@{target.host}:{target.port} "
                                      "did not answer C-ECHO")
    finally:
        _release(assoc)


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


def _reencoded(raw: bytes, transfer_syntax: str, comment: str) -> bytes:
    """The data set of a file :func:`with_comment` cannot patch, read by pydicom with the comment
    set and encoded for ``transfer_syntax`` by pynetdicom (deflated and big endian included)."""
    import pydicom
    from pydicom.uid import UID
    from pynetdicom.dsutils import encode

    dataset = pydicom.dcmread(pydicom.filebase.DicomBytesIO(raw), force=True)
    dataset.PatientComments = comment
    syntax = UID(transfer_syntax)
    encoded = encode(dataset, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
    if encoded is None:
        raise ValueError(f"pydicom cannot encode this object in {syntax}")
    return bytes(encoded)


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
        ae = _ae(self.target)
        for pair in sorted({(o.sop_class, o.transfer_syntax) for o in batch}):
            ae.add_requested_context(pair[0], pair[1] or EXPLICIT_LE)
        assoc = _associate(ae, self.target)
        if not assoc.is_established:
            return batch, []
        finished: list[Outcome] = []
        channel = _StoreChannel(assoc, self.target.timeout)
        try:
            for index, obj in enumerate(batch):
                if not assoc.is_established:
                    return batch[index:], finished
                syntax = obj.transfer_syntax or EXPLICIT_LE
                context_id = channel.context(obj.sop_class, syntax)
                if context_id is None:
                    reason = f"refused: the receiver accepted no presentation context for {obj.sop_class} in {syntax}"
                    finished.append(self._report(Outcome(obj.sop_uid, -1, False, reason), obj))
                    continue
                with opener.open(obj.name) as stream:
                    raw = stream.read()
                try:
                    data = with_comment(raw, syntax, comment) or _reencoded(raw, syntax, comment)
                except Exception as exc:  # pydicom's many errors: this object only, the rest go on
                    reason = f"refused: cannot be encoded for sending: {exc}"
                    finished.append(self._report(Outcome(obj.sop_uid, -1, False, reason), obj))
                    continue
                finally:
                    del raw
                answer = channel.store(context_id, obj.sop_class, obj.sop_uid, data)
                del data
                if answer is None:
                    return batch[index:], finished
                code = answer.status
                if code == 0 or code in WARNINGS:
                    finished.append(self._report(Outcome(obj.sop_uid, code, True), obj))
                elif 0xA700 <= code <= 0xA7FF:
                    return batch[index:], finished
                else:
                    reason = f"refused with status 0x{code:04X}" + (f": {answer.error_comment}"
                                                                     if answer.error_comment else "")
                    finished.append(self._report(Outcome(obj.sop_uid, code, False, reason), obj))
        finally:
            _release(assoc)
        return [], finished
