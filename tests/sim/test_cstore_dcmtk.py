"""dicom-upload's C-STORE sender against dcmtk's ``storescp``: a receiver nobody here wrote.

:class:`xnatnode.cstore.Sender` encodes its own C-STORE command sets and reads the answers
(:class:`xnatnode.cstore._StoreChannel`); pynetdicom carries the PDUs. dcmtk decodes what it
sends here and writes each object as a file: every object must arrive as sent, with the routing
comment, in each of the transfer syntaxes the tests' data uses, over PDUs of dcmtk's 16 KiB
limit. ``storescp`` has no option to choose its listening address, so the test listens on
127.0.0.1 itself and hands each accepted connection to ``storescp --inetd`` (stdin/stdout).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from xnatnode.cstore import Sender, Target
from xnatnode.dicom import scan_source

from tests.sim import dicom_data as dd


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """(port, folder): each connection to 127.0.0.1:port is served by its own ``storescp --inetd``."""
    if shutil.which("storescp") is None:
        pytest.skip("dcmtk's storescp is not installed (apt-get install dcmtk)")
    received = tmp_path / "received"
    received.mkdir()
    listening = socket.create_server(("127.0.0.1", 0))
    served: list[subprocess.Popen[bytes]] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listening.accept()
            except OSError:
                return
            with conn:
                served.append(subprocess.Popen(
                    ["storescp", "--inetd", "-aet", "XNAT", "+xa", "--max-pdu", "16384", "-od", str(received)],
                    stdin=conn.fileno(), stdout=conn.fileno(), stderr=subprocess.DEVNULL))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listening.getsockname()[1], received
    listening.close()
    for process in served:
        process.wait(timeout=30)


@pytest.mark.parametrize("syntax", [None, dd.IMPLICIT, dd.BIG_ENDIAN, dd.RLE])
def test_every_object_arrives_as_sent_with_its_routing_comment(storescp: tuple[int, Path], tmp_path: Path,
                                                               syntax: str | None) -> None:
    import pydicom

    port, received = storescp
    paths = dd.session(tmp_path / "source", "STUDY_DCMTK", "S1", {"1": 3, "2": 2}, syntax=syntax, rows=96)
    scan = scan_source(tmp_path / "source")
    sender = Sender(Target("127.0.0.1", port), workers=2, batch_size=3)
    outcomes = sender.send(scan, scan.objects, ("P1", "S1", "S1_MR1"))
    assert [o.status for o in outcomes] == [0] * len(paths)

    arrived = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p) for p in received.iterdir())}
    assert len(arrived) == len(paths)
    for path in paths:
        sent = pydicom.dcmread(path)
        got = arrived[sent.SOPInstanceUID]
        assert got.PatientComments == "Project: P1 Subject: S1 Session: S1_MR1"
        assert got.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
        assert got.PixelData == sent.PixelData  # 96x96x2 bytes: several 16 KiB PDUs
        assert [e.tag for e in got if e.tag != 0x00104000] == [e.tag for e in sent if e.tag != 0x00104000]
