"""xnatsim's DICOM receiver runs its associations in worker processes (:mod:`xnatsim.scpworker`)
on one listening socket: they share the work, stop with the receiver, end with xnatsim, and keep
the connection key out of their command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from xnatsim.testing import Api, running_server

from tests.xnatsim.test_dicomscp import scans, send, wait_for, write_session
from xnatsim import dicomscp, scpworker, synth


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_share_associations_and_stop_with_the_receiver(tmp_path: Path) -> None:
    with running_server(tmp_path / "xnat", fetch_schemas=False, dicom_port=0, session_idle_seconds=0.5,
                        dicom_processes=2) as server:
        api = Api(server)
        service = server.app.state["dicomscp"]
        receiver = service.running[1]
        workers = [w.pid for w in receiver.workers]
        assert len(workers) == 2
        for pid in workers:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            assert service.filing_address()[1].hex() not in cmdline + environ  # the key comes on stdin
        project = api.new_project("WRK")
        port = receiver.port
        sessions = []
        for n in range(6):  # six associations: both workers take some (the kernel picks, so not asserted)
            labels = synth.DicomLabels(project, f"W{n}", f"W{n}_MR1", "1", "")
            assert send(port, write_session(tmp_path / f"s{n}", labels, {"1": 2})) == [0, 0]
            sessions.append(labels.session)
        for session in sessions:
            assert wait_for(lambda s=session: scans(server, project, s) == {"1": "2"})

        # a changed receiver restarts on the same port with new workers; the old ones are gone
        assert api.put("/xapi/dicomscp/1", json={"directArchive": True}).status_code == 200
        restarted = service.running[1]
        assert restarted.port == port
        assert all(not _alive(pid) for pid in workers)
        labels = synth.DicomLabels(project, "W9", "W9_MR1", "1", "")
        assert send(port, write_session(tmp_path / "s9", labels, {"1": 1})) == [0]
        new_workers = [w.pid for w in restarted.workers]
    assert all(not _alive(pid) for pid in new_workers)


@pytest.mark.parametrize("abstract", [True, False], ids=["abstract-name", "path"])
def test_filing_socket_wants_the_key_and_a_silent_client_blocks_nobody(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, abstract: bool) -> None:
    import socket
    from multiprocessing import AuthenticationError
    from multiprocessing.connection import Client

    monkeypatch.setattr(dicomscp, "abstract_sockets_supported", abstract)  # False: as where there are none
    with running_server(tmp_path / "xnat", fetch_schemas=False, dicom_port=0, session_idle_seconds=0.5,
                        dicom_processes=1) as server:
        service = server.app.state["dicomscp"]
        address = service.filing_address()[0]
        assert address.startswith("\0") is abstract
        worker = service.running[1].workers[0]
        argv = Path(f"/proc/{worker.pid}/cmdline").read_bytes().split(b"\0")
        assert scpworker.address_from_arg(argv[-3].decode()) == address
        with pytest.raises(AuthenticationError):
            Client(address, family="AF_UNIX", authkey=b"not the key")
        with socket.socket(socket.AF_UNIX) as silent:  # connects and never answers the challenge
            silent.connect(address)
            api = Api(server)
            project = api.new_project("KEY")
            labels = synth.DicomLabels(project, "K1", "K1_MR1", "1", "")
            assert send(service.running[1].port, write_session(tmp_path / "k", labels, {"1": 2})) == [0, 0]
            assert wait_for(lambda: scans(server, project, labels.session) == {"1": "2"})


def test_workers_end_when_xnatsim_is_killed_and_leave_no_socket_folder(tmp_path: Path) -> None:
    data = tmp_path / "xnat"
    data.mkdir()
    ready = data / "ready"
    temp = tmp_path / "tmp"  # xnatsim's TMPDIR: where multiprocessing would put a pymp-* folder
    temp.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "xnatsim", "serve", "--port", "0", "--data", str(data),
                                "--no-fetch-schemas", "--dicom-port", "0", "--dicom-processes", "2",
                                "--ready-file", str(ready)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TMPDIR": str(temp)})
    try:
        wait_for(ready.exists, timeout=60)
        children = wait_for(lambda: subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                                                   text=True).stdout.split(), timeout=30)
        assert len(children) == 2
    finally:
        process.send_signal(signal.SIGKILL)  # no clean-up code runs: the workers' stdin closes
        process.wait()
    wait_for(lambda: not any(_alive(int(pid)) for pid in children), timeout=20)
    assert not list(temp.glob("pymp-*"))  # the filing socket is an abstract name: nothing on disk
