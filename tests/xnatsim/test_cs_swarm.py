"""The compute-backend setting and the Swarm launch path with a scripted swarm (no engine): switching
backends over ``/xapi/docker/server``, placement constraints, task states in the history
(``complete`` is ``Waiting`` until finalization) and restarts after a node error.
The same paths run on a real single-node swarm in tests/docker/test_cs_swarm.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import requests
from xnatsim.cs.backend import Exit, Reporter, RunSpec, StatusReport
from xnatsim.cs.db import DocumentDB
from xnatsim.cs.sample import add_sessions
from xnatsim.cs.service import MAX_RESTARTS, ContainerService
from xnatsim.cs.settings import SwarmConstraint, resolve_constraints
from xnatsim.cs.swarm import map_task_state
from xnatsim.store import Store
from xnatsim.testing import Server

COMMAND: dict[str, Any] = {
    "name": "swarmed", "version": "1", "image": "xnatsim-test/none:1", "command-line": "run",
    "mounts": [{"name": "out", "path": "/output", "writable": True}],
    "outputs": [{"name": "report", "mount": "out", "required": True}],
    "xnat": [{
        "name": "swarmed-session", "contexts": ["xnat:imageSessionData"],
        "external-inputs": [{"name": "session", "type": "Session"}],
        "output-handlers": [{"name": "report-resource", "accepts-command-output": "report",
                             "as-a-child-of": "session", "type": "Resource", "label": "REPORT"}],
    }],
}
ZONE = {"attribute": "node.labels.zone", "comparator": "==", "values": ["a", "b"], "user-settable": True}
GPU = {"attribute": "node.labels.gpu", "comparator": "!=", "values": ["none"], "user-settable": False}


class ScriptedSwarm:
    """Plays task states; the first ``lose`` services are lost with their node (state shutdown)."""

    name = "swarm"

    def __init__(self, lose: int = 0) -> None:
        self.lose = lose
        self.specs: list[RunSpec] = []
        self.removed: list[str] = []

    def start(self, spec: RunSpec) -> str:
        self.specs.append(spec)
        for bind in spec.binds:
            if bind.container_path == "/output":
                (Path(bind.host_path) / "report.txt").write_text("done\n")
        return f"svc{len(self.specs)}"

    def wait(self, ref: str, timeout: float | None = None, report: Reporter | None = None) -> Exit:
        assert report is not None
        ids = {"task-id": f"task-{ref}", "node-id": "node1", "container-id": f"ctr-{ref}"}
        for state in ("pending", "running"):
            report(StatusReport(state, map_task_state(state), None, None, ids))
        if len(self.specs) <= self.lose:
            report(StatusReport("shutdown", map_task_state("shutdown"), "Swarm node error", None, ids))
            return Exit(None, failure="Failed (Swarm)", node_error=True, node="node1")
        report(StatusReport("complete", map_task_state("complete"), "finished", 0, ids))
        return Exit(0)

    def logs(self, ref: str) -> tuple[str, str]:
        return f"out of {ref}\n", ""

    def kill(self, ref: str) -> None:
        self.removed.append(ref)

    def remove(self, ref: str) -> None:
        self.removed.append(ref)


@pytest.fixture(scope="module")
def server(xnatsim_server: Server) -> Server:
    return xnatsim_server


def test_admin_switches_backends_as_in_xnat(server: Server, http: requests.Session) -> None:
    url = f"{server.url}/xapi/docker/server"
    assert http.get(url).json()["backend"] == "docker"
    r = http.post(url, json={"swarm-mode": True})  # no "backend": swarm-mode chooses it
    assert r.status_code == 201, r.text
    doc = http.get(url).json()
    assert (doc["backend"], doc["swarm-mode"]) == ("swarm", True)
    assert http.post(url, json={"backend": "docker", "swarm-mode": False}).status_code == 201
    doc = http.get(url).json()
    assert (doc["backend"], doc["swarm-mode"]) == ("docker", False)
    assert http.post(url, json={"backend": "SWARM", "swarm-constraints": [ZONE, GPU]}).status_code == 201
    doc = http.get(url).json()
    assert doc["backend"] == "swarm"
    assert doc["swarm-constraints"] == [ZONE, GPU]
    http.post(url, json={"backend": "docker", "swarm-constraints": []})
    assert http.get(url).json()["backend"] == "docker"


@pytest.mark.parametrize(("body", "message"), [
    ({"swarm-constraints": [{**ZONE, "attribute": " "}]}, "Constraint node attribute cannot be blank"),
    ({"swarm-constraints": [{**ZONE, "values": []}]}, "Constraint values cannot be blank"),
    ({"backend": "kubernetes"}, 'xnatsim cannot run the "kubernetes" backend'),
    ({"backend": "nomad"}, 'Unknown backend "nomad"'),
])
def test_bad_settings_are_refused_and_change_nothing(server: Server, http: requests.Session,
                                                     body: dict[str, Any], message: str) -> None:
    url = f"{server.url}/xapi/docker/server"
    before = http.get(url).json()
    r = http.post(url, json={"container-user": "4242", **body})
    assert r.status_code == 400
    assert message in r.text
    assert http.get(url).json() == before


def test_constraints_resolve_as_xnat_does() -> None:
    zone, gpu = SwarmConstraint.from_json(ZONE), SwarmConstraint.from_json(GPU)
    both = (zone, gpu)
    assert resolve_constraints(both, None) == ["node.labels.zone==a", "node.labels.gpu!=none"]
    chosen = '[{"attribute": "node.labels.zone", "value": "b"}, {"attribute": "node.labels.gpu", "value": "x"}]'
    assert resolve_constraints(both, chosen) == ["node.labels.zone==b", "node.labels.gpu!=none"]
    not_allowed = '[{"attribute": "node.labels.zone", "value": "c"}]'
    assert resolve_constraints(both, not_allowed) == ["node.labels.gpu!=none"]
    assert resolve_constraints(both, "not json") == ["node.labels.zone==a", "node.labels.gpu!=none"]


def _service(folder: Path, swarm: ScriptedSwarm) -> tuple[Store, ContainerService]:
    store = Store(folder)
    store.add_user("admin", "admin", admin=True)
    service = ContainerService(store, DocumentDB(folder / "cs.sqlite"), swarm=swarm,
                               server_url=lambda: "http://127.0.0.1:1")
    service.save_settings({"backend": "swarm", "swarm-constraints": [ZONE]})
    return store, service


def _launch(store: Store, service: ContainerService, **params: str) -> dict[str, Any]:
    wid = int(service.registry.create(copy.deepcopy(COMMAND))["xnat"][0]["id"])
    session = add_sessions(store, "SWM", 1)[0]
    answer = service.launch(wid, {"session": f"/archive/experiments/{session}", **params}, "admin",
                            root_element="session")
    return service.wait(int(answer["container-id"]), 30)


def test_a_swarm_launch_records_task_states_then_finalizes(tmp_path: Path) -> None:
    swarm = ScriptedSwarm()
    store, service = _service(tmp_path, swarm)
    record = _launch(store, service, **{"swarm-constraints": '[{"attribute": "node.labels.zone", "value": "b"}]'})
    assert record["status"] == "Complete", record["history"]
    assert record["backend"] == "swarm"
    assert (record["service-id"], record["task-id"], record["container-id"]) == ("svc1", "task-svc1", "ctr-svc1")
    steps = [(h["status"], h["entity-type"]) for h in record["history"]]
    assert steps == [("Queued", "system"), ("Staging", "system"), ("Created", "system"),
                     ("pending", "service"), ("running", "service"), ("complete", "service"),
                     ("Finalizing", "system"), ("Complete", "system")]
    assert swarm.specs[0].constraints == ["node.labels.zone==b"]
    assert swarm.removed == ["svc1"]  # auto-cleanup, after the outputs
    assert record["outputs"][0]["ok"]
    workflow = service.workflow(int(record["workflow-id"]))
    assert workflow is not None
    assert workflow["status"] == "Complete"


def test_waiting_is_the_status_between_the_task_and_finalization(tmp_path: Path) -> None:
    swarm = ScriptedSwarm()
    store, service = _service(tmp_path, swarm)
    seen: list[str] = []
    original = service._update

    def spy(cid: int, status: str | None = None, *args: Any, **kwargs: Any) -> dict[str, Any]:
        record = original(cid, status, *args, **kwargs)
        if status is not None:
            seen.append(record["status"])
        return record

    service._update = spy  # type: ignore[method-assign]
    _launch(store, service)
    assert seen[seen.index("Running") + 1:] == ["Waiting", "Finalizing", "Complete"]


def test_a_service_lost_with_its_node_is_restarted(tmp_path: Path) -> None:
    swarm = ScriptedSwarm(lose=2)
    store, service = _service(tmp_path, swarm)
    record = _launch(store, service)
    assert record["status"] == "Complete"
    restarts = [h for h in record["history"] if h["status"] == "Restart"]
    assert [h["message"] for h in restarts] == [
        "Restarting serviceId svc1 due to apparent swarm node error (likely node node1 went down)",
        "Restarting serviceId svc2 due to apparent swarm node error (likely node node1 went down)"]
    assert swarm.removed == ["svc1", "svc2", "svc3"]
    assert len(swarm.specs) == 3
    assert swarm.specs[0].environment["XNAT_PASS"] == swarm.specs[2].environment["XNAT_PASS"]  # same launch


def test_after_five_restarts_the_launch_fails(tmp_path: Path) -> None:
    swarm = ScriptedSwarm(lose=100)
    store, service = _service(tmp_path, swarm)
    record = _launch(store, service)
    assert len(swarm.specs) == MAX_RESTARTS + 1
    assert record["status"] == "Failed"
    assert record["history"][-1]["message"].startswith("Swarm node error: Service not found on swarm")
    assert record["history"][-1]["exitCode"] == "126"
    workflow = service.workflow(int(record["workflow-id"]))
    assert workflow is not None
    assert workflow["status"] == "Failed (Swarm)"
    tokens = {t["alias"]: t for t in store.list_tokens("admin")}
    assert tokens[record["token-alias"]]["enabled"] is False


def test_path_translation_in_binds_and_the_record(tmp_path: Path) -> None:
    """Both prefixes set: Docker binds (and the record shows as container-host-path) the translated path;
    xnat-host-path stays XNAT's own."""
    swarm = ScriptedSwarm()
    store, service = _service(tmp_path, swarm)
    service.save_settings({"path-translation-xnat-prefix": str(store.data_dir),
                           "path-translation-docker-prefix": "/nodes/xnat"})
    record = _launch(store, service)
    (mount,) = record["mounts"]
    assert mount["xnat-host-path"].startswith(str(store.build_dir) + "/")
    assert mount["container-host-path"] == mount["xnat-host-path"].replace(str(store.data_dir), "/nodes/xnat")
    assert [b.host_path for b in swarm.specs[0].binds] == [mount["container-host-path"]]
