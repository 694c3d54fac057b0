"""Container life-cycle edge cases with a scripted engine: kill before start, time-out, orphans
left by a stopped xnatsim (statuses, token revocation, workflow), env-var collisions."""

from __future__ import annotations

import copy
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from xnatsim.cs.backend import Exit, Reporter, RunSpec
from xnatsim.cs.db import DocumentDB
from xnatsim.cs.sample import add_sessions
from xnatsim.cs.service import ContainerService
from xnatsim.store import Store

COMMAND: dict[str, Any] = {
    "name": "life", "version": "1", "image": "xnatsim-test/none:1", "command-line": "run #LABEL#",
    "mounts": [{"name": "out", "path": "/output", "writable": True}],
    "inputs": [{"name": "label", "replacement-key": "#LABEL#"}],
    "xnat": [{
        "name": "life-session", "contexts": ["xnat:imageSessionData"],
        "external-inputs": [{"name": "session", "type": "Session"}],
        "derived-inputs": [{"name": "session-label", "type": "string", "derived-from-wrapper-input": "session",
                            "derived-from-xnat-object-property": "label", "provides-value-for-command-input": "label"}],
    }],
}


class GatedBackend:
    """Starts nothing; ``wait`` blocks until ``release`` is set (or raises TimeoutError when told)."""

    def __init__(self) -> None:
        self.client = None
        self.name = "docker"
        self.release = threading.Event()
        self.started = threading.Event()
        self.time_out = False
        self.specs: list[RunSpec] = []
        self.killed: list[str] = []
        self.removed: list[str] = []

    def start(self, spec: RunSpec) -> str:
        self.specs.append(spec)
        self.started.set()
        return f"gated{len(self.specs)}"

    def wait(self, container_id: str, timeout: float | None = None, report: Reporter | None = None) -> Exit:
        if self.time_out and container_id not in self.killed:
            raise TimeoutError(f"{container_id} still running")
        self.release.wait(30)
        return Exit(137 if container_id in self.killed else 0)

    def logs(self, container_id: str) -> tuple[str, str]:
        return "", ""

    def kill(self, container_id: str) -> None:
        self.killed.append(container_id)
        self.release.set()

    def remove(self, container_id: str) -> None:
        self.removed.append(container_id)


def _service(folder: Path, backend: GatedBackend) -> tuple[Store, ContainerService]:
    store = Store(folder)
    if not store.user_exists("admin"):
        store.add_user("admin", "admin", admin=True)
    service = ContainerService(store, DocumentDB(folder / "cs.sqlite"), backend=backend,  # type: ignore[arg-type]
                               server_url=lambda: "http://127.0.0.1:1")
    return store, service


def _wrapper(service: ContainerService, command: dict[str, Any] | None = None) -> int:
    saved = service.registry.create(copy.deepcopy(command or COMMAND))
    return int(saved["xnat"][0]["id"])


def test_orphans_of_a_stopped_server_fail_and_lose_their_token(tmp_path: Path) -> None:
    backend = GatedBackend()
    store, service = _service(tmp_path, backend)
    session = add_sessions(store, "LIFE", 1)[0]
    wid = _wrapper(service)
    answer = service.launch(wid, {"session": f"/archive/experiments/{session}"}, "admin", project="LIFE",
                            root_element="session")
    assert backend.started.wait(10)
    cid = int(answer["container-id"])
    deadline = time.monotonic() + 10
    while (running := service.container(cid)) is not None and running["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert running is not None
    secret = backend.specs[0].environment["XNAT_PASS"]
    assert store.validate_token(running["token-alias"], secret) is not None
    out_dir = Path(running["mounts"][0]["xnat-host-path"])
    assert out_dir.parent == store.build_dir
    assert out_dir.is_dir()
    # the process stops here (its worker threads die with it); a new one opens the same data
    backend2 = GatedBackend()
    _, restarted = _service(tmp_path, backend2)
    record = restarted.container(cid)
    assert record is not None
    assert record["status"] == "Failed (Orphaned)"
    assert record["history"][-1]["message"] == "xnatsim stopped while the container was Running"
    assert backend2.removed == [running["container-id"]]
    assert store.validate_token(running["token-alias"], secret) is None
    workflow = restarted.workflow(int(record["workflow-id"]))
    assert workflow is not None
    assert workflow["status"] == "Failed (Orphaned)"
    assert restarted.containers(nonfinalized=True) == []
    assert not out_dir.exists()
    backend.release.set()  # let the first process's thread end before the folder goes
    service.wait(cid, 10)


def test_kill_while_queued_never_starts_the_container(tmp_path: Path) -> None:
    backend = GatedBackend()
    store, service = _service(tmp_path, backend)
    service.settings.max_concurrent = 1
    sessions = add_sessions(store, "LIFE", 2)
    wid = _wrapper(service)
    first = service.launch(wid, {"session": f"/archive/experiments/{sessions[0]}"}, "admin", root_element="session")
    assert backend.started.wait(10)
    second = service.launch(wid, {"session": f"/archive/experiments/{sessions[1]}"}, "admin", root_element="session")
    service.kill(int(second["container-id"]))  # still queued behind the first
    backend.release.set()
    assert service.wait(int(first["container-id"]), 10)["status"] == "Complete"
    record = service.wait(int(second["container-id"]), 10)
    assert record["status"] == "Failed (Killed)"
    assert record["container-id"] is None
    assert len(backend.specs) == 1


def test_time_out_kills_the_container(tmp_path: Path) -> None:
    backend = GatedBackend()
    backend.time_out = True
    store, service = _service(tmp_path, backend)
    service.settings.timeout = 5
    session = add_sessions(store, "LIFE", 1)[0]
    wid = _wrapper(service)
    answer = service.launch(wid, {"session": f"/archive/experiments/{session}"}, "admin", root_element="session")
    record = service.wait(int(answer["container-id"]), 10)
    assert record["status"] == "Failed (Killed)"
    assert record["history"][-1]["message"] == "Killed after the time-out of 5 s"
    assert backend.killed == [record["container-id"]]
    secret = backend.specs[0].environment["XNAT_PASS"]
    assert store.validate_token(record["token-alias"], secret) is None


def test_an_injected_env_name_fails_the_launch_and_revokes_the_token(tmp_path: Path) -> None:
    backend = GatedBackend()
    store, service = _service(tmp_path, backend)
    session = add_sessions(store, "LIFE", 1)[0]
    command = copy.deepcopy(COMMAND)
    command["name"] = "clash"
    command["environment-variables"] = {"XNAT_HOST": "http://elsewhere"}
    wid = _wrapper(service, command)
    answer = service.launch(wid, {"session": f"/archive/experiments/{session}"}, "admin", root_element="session")
    record = service.wait(int(answer["container-id"]), 10)
    assert record["status"] == "Failed (Container launch)"
    assert "XNAT_HOST" in record["history"][-1]["message"]
    assert backend.specs == []
    assert all(not t["enabled"] for t in store.list_tokens("admin"))


def test_containers_of_another_live_process_are_not_orphans(tmp_path: Path) -> None:
    """A second xnatsim on the same data folder (``--data`` while ``serve`` runs) leaves them alone."""
    import os

    backend = GatedBackend()
    store, service = _service(tmp_path, backend)
    session = add_sessions(store, "LIFE", 1)[0]
    wid = _wrapper(service)
    answer = service.launch(wid, {"session": f"/archive/experiments/{session}"}, "admin", root_element="session")
    cid = int(answer["container-id"])
    deadline = time.monotonic() + 10
    while (record := service.container(cid)) is not None and record["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    service._update(cid, fields={"xnatsim-pid": os.getppid()})  # as if queued by the live parent process
    _, other = _service(tmp_path, GatedBackend())
    running = other.container(cid)
    assert running is not None
    assert running["status"] == "Running"
    assert store.validate_token(running["token-alias"], backend.specs[0].environment["XNAT_PASS"]) is not None
    backend.release.set()
    assert service.wait(cid, 10)["status"] == "Complete"


def test_the_launching_user_must_be_able_to_read_the_input(tmp_path: Path) -> None:
    backend = GatedBackend()
    backend.release.set()
    store, service = _service(tmp_path, backend)
    store.add_user("bob", "bob")
    session = add_sessions(store, "LIFE", 1)[0]
    wid = _wrapper(service)
    params = {"session": f"/archive/experiments/{session}"}
    record = service.wait(int(service.launch(wid, params, "bob", root_element="session")["container-id"]), 10)
    assert record["status"] == "Failed (Command resolution)"
    assert record["history"][-1]["message"] == (
        f'Input "session": user bob does not have access to /archive/experiments/{session}.')
    assert backend.specs == []
    store.set_role("LIFE", "bob", "collaborator")
    record = service.wait(int(service.launch(wid, params, "bob", root_element="session")["container-id"]), 10)
    assert record["status"] == "Complete"
    assert backend.specs[0].environment["XNAT_USER"] == record["token-alias"]


def test_kill_of_a_container_that_already_exited_is_refused(tmp_path: Path) -> None:
    from xnatsim.cs.backend import LaunchError
    from xnatsim.cs.service import LaunchRefused

    class Exited(GatedBackend):
        def kill(self, container_id: str) -> None:
            raise LaunchError(f"cannot kill {container_id}: not running")

    backend = Exited()
    store, service = _service(tmp_path, backend)
    session = add_sessions(store, "LIFE", 1)[0]
    wid = _wrapper(service)
    cid = int(service.launch(wid, {"session": f"/archive/experiments/{session}"}, "admin",
                             root_element="session")["container-id"])
    deadline = time.monotonic() + 10
    while (record := service.container(cid)) is not None and record["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(LaunchRefused, match="is not running") as refused:
        service.kill(cid)
    assert refused.value.status == 400
    backend.release.set()
    assert service.wait(cid, 10)["status"] == "Complete"  # its own exit code decides


def test_output_parents_need_edit_permission_at_resolution(tmp_path: Path) -> None:
    """XNAT (plugin 3.2+) fails a collaborator's launch with an output at command resolution."""
    backend = GatedBackend()
    backend.release.set()
    store, service = _service(tmp_path, backend)
    store.add_user("carol", "carol")
    session = add_sessions(store, "LIFE", 1)[0]
    command = copy.deepcopy(COMMAND)
    command["name"] = "writer"
    command["outputs"] = [{"name": "report", "mount": "out", "required": False}]
    command["xnat"][0]["output-handlers"] = [{"name": "report-resource", "accepts-command-output": "report",
                                              "as-a-child-of": "session", "type": "Resource", "label": "R"}]
    wid = _wrapper(service, command)
    params = {"session": f"/archive/experiments/{session}"}
    store.set_role("LIFE", "carol", "collaborator")
    record = service.wait(int(service.launch(wid, params, "carol", root_element="session")["container-id"]), 10)
    assert record["status"] == "Failed (Command resolution)"
    assert record["history"][-1]["message"] == (
        f'Output handler "report-resource": user carol cannot edit /archive/experiments/{session} '
        '(as-a-child-of "session").')
    assert backend.specs == []
    store.set_role("LIFE", "carol", "member")
    record = service.wait(int(service.launch(wid, params, "carol", root_element="session")["container-id"]), 10)
    assert record["status"] == "Complete"  # the optional output found nothing to upload: only logged
    assert len(backend.specs) == 1
