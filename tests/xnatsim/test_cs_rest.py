"""Container Service and Event Service REST routes over HTTP, with a scripted stand-in for Docker.

The launch pipeline runs for real (queue, resolution, build dirs, token, logs, output upload,
history, workflow); only the engine is replaced, so statuses can be checked in milliseconds.
The same paths run on the real engine in tests/docker/test_cs_*.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from xnatsim.cs.backend import Exit, Reporter, RunSpec
from xnatsim.cs.sample import add_sessions
from xnatsim.cs.service import ContainerService
from xnatsim.testing import Server, running_server

ACTION = "org.nrg.containers.services.CommandActionProvider:"
SESSION_EVENT = "org.nrg.xnat.eventservice.events.SessionEvent"


class ScriptedBackend:
    """Runs nothing: writes ``files`` into the /output bind and exits with ``exit_code``."""

    def __init__(self) -> None:
        self.exit_code = 0
        self.files: dict[str, str] = {"report.txt": "hello\n"}
        self.specs: list[RunSpec] = []
        self.client = None
        self.name = "docker"

    def start(self, spec: RunSpec) -> str:
        self.specs.append(spec)
        for bind in spec.binds:
            if bind.container_path == "/output":
                for name, text in self.files.items():
                    target = Path(bind.host_path) / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text)
        return f"fake{len(self.specs)}"

    def wait(self, container_id: str, timeout: float | None = None, report: Reporter | None = None) -> Exit:
        return Exit(self.exit_code)

    def logs(self, container_id: str) -> tuple[str, str]:
        return f"out of {container_id}\n", ""

    def remove(self, container_id: str) -> None:
        pass

    def kill(self, container_id: str) -> None:
        pass


COMMAND: dict[str, Any] = {
    "name": "scripted", "version": "1", "image": "xnatsim-test/none:1", "command-line": "run #LABEL# #MODE#",
    "mounts": [{"name": "in", "path": "/input"}, {"name": "out", "path": "/output", "writable": True}],
    "inputs": [{"name": "label", "replacement-key": "#LABEL#"},
               {"name": "mode", "replacement-key": "#MODE#", "command-line-flag": "--mode"}],
    "outputs": [{"name": "report", "mount": "out", "required": True}],
    "xnat": [{
        "name": "scripted-session", "contexts": ["xnat:imageSessionData"],
        "external-inputs": [{"name": "session", "type": "Session", "provides-files-for-command-mount": "in"}],
        "derived-inputs": [{"name": "session-label", "type": "string", "derived-from-wrapper-input": "session",
                            "derived-from-xnat-object-property": "label", "provides-value-for-command-input": "label"}],
        "output-handlers": [{"name": "report-resource", "accepts-command-output": "report",
                             "as-a-child-of": "session", "type": "Resource", "label": "REPORT"}],
    }],
}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server() as srv:
        assert srv.app is not None
        srv.app.state["cs"].backend = ScriptedBackend()
        yield srv


@pytest.fixture(scope="module")
def wrapper_id(server: Server, http: requests.Session) -> int:
    r = http.post(server.url + "/xapi/commands", json=COMMAND)
    assert r.status_code == 201, r.text
    command = http.get(f"{server.url}/xapi/commands/{r.json()}").json()
    return int(command["xnat"][0]["id"])


@pytest.fixture
def site_enabled(server: Server, http: requests.Session, wrapper_id: int) -> Iterator[None]:
    """The wrapper enabled on the site (which a project's enabling and a subscription need) for one
    test, as it was before afterwards: a test that subscribes does not lean on an earlier one."""
    url = f"{server.url}/xapi/wrappers/{wrapper_id}"
    before = http.get(f"{url}/enabled").json()
    assert http.put(f"{url}/enabled").status_code == 200
    yield
    if before is False:
        assert http.put(f"{url}/disabled").status_code == 200


@pytest.fixture(scope="module")
def sessions(server: Server) -> list[str]:
    return add_sessions(server.store, "CSR", 3)


def cs_of(server: Server) -> ContainerService:
    assert server.app is not None
    service: ContainerService = server.app.state["cs"]
    return service


def backend_of(server: Server) -> ScriptedBackend:
    backend = cs_of(server).backend
    assert isinstance(backend, ScriptedBackend)
    return backend


def launch(server: Server, http: requests.Session, wid: int, body: dict[str, Any], project: str = "CSR") -> dict[str, Any]:
    r = http.post(f"{server.url}/xapi/projects/{project}/wrappers/{wid}/root/session/launch", json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    assert answer["status"] == "success"
    return cs_of(server).wait(int(answer["container-id"]), 30)


def test_create_refuse_duplicate_and_list(server: Server, http: requests.Session, wrapper_id: int) -> None:
    bad = copy.deepcopy(COMMAND)
    bad["inputs"][0]["name"] = "a label"
    bad["xnat"][0]["output-handlers"][0].pop("label")
    r = http.post(server.url + "/xapi/commands", json=bad)
    assert r.status_code == 400
    assert r.text.startswith("Invalid command:\n")
    assert "Command input 'a label' name should contain only alphanumeric, _ and -" in r.text
    assert "must have a label" in r.text
    dup = http.post(server.url + "/xapi/commands", json=COMMAND)
    assert (dup.status_code, dup.text) == (400, "This command duplicates a command already in the database.")
    listed = http.get(server.url + "/xapi/commands", params={"name": "scripted", "version": "1"}).json()
    assert [c["name"] for c in listed] == ["scripted"]
    assert http.get(server.url + "/xapi/commands", params={"image": "other:1"}).json() == []
    assert http.get(server.url + "/xapi/commands", params={"version": "1"}).status_code == 400
    anon = requests.post(server.url + "/xapi/commands", json=COMMAND)
    assert anon.status_code == 401


def test_update_and_delete(server: Server, http: requests.Session) -> None:
    doc = copy.deepcopy(COMMAND)
    doc["version"] = "temp"
    cid = http.post(server.url + "/xapi/commands", json=doc).json()
    stored = http.get(f"{server.url}/xapi/commands/{cid}").json()
    stored["description"] = "changed"
    assert http.post(f"{server.url}/xapi/commands/{cid}", json=stored).status_code == 200
    assert http.get(f"{server.url}/xapi/commands/{cid}").json()["description"] == "changed"
    stored["image"] = "untagged/image"
    r = http.post(f"{server.url}/xapi/commands/{cid}", json=stored)
    assert r.status_code == 400
    assert "must include a version tag" in r.text
    assert http.delete(f"{server.url}/xapi/commands/{cid}").status_code == 204
    assert http.get(f"{server.url}/xapi/commands/{cid}").status_code == 404


def test_enablement_defaults_and_available(server: Server, http: requests.Session, wrapper_id: int,
                                          sessions: list[str]) -> None:
    url = server.url
    assert http.get(f"{url}/xapi/wrappers/{wrapper_id}/enabled").json() is False  # site default: disabled
    avail = http.get(f"{url}/xapi/projects/CSR/commands/available", params={"xsiType": "xnat:mrSessionData"}).json()
    assert [(a["wrapper-name"], a["enabled"], a["root-element-name"]) for a in avail] == [
        ("scripted-session", False, "session")]
    assert http.get(f"{url}/xapi/commands/available", params={"project": "CSR", "xsiType": "xnat:projectData"}).json() == []
    others = http.get(f"{url}/xapi/wrappers/{wrapper_id}/projects").json()  # from tests run before
    assert http.put(f"{url}/xapi/wrappers/{wrapper_id}/enabled").status_code == 200
    assert http.put(f"{url}/xapi/projects/CSR/wrappers/{wrapper_id}/enabled").status_code == 200
    state = http.get(f"{url}/xapi/projects/CSR/wrappers/{wrapper_id}/enabled").json()
    assert state == {"enabled-for-site": True, "enabled-for-project": True, "project": "CSR"}
    avail = http.get(f"{url}/xapi/projects/CSR/commands/available", params={"xsiType": "xnat:mrSessionData"}).json()
    assert avail[0]["enabled"] is True
    assert sorted(http.get(f"{url}/xapi/wrappers/{wrapper_id}/projects").json()) == sorted({*others, "CSR"})


def test_launch_uploads_output_and_records_history(server: Server, http: requests.Session, wrapper_id: int,
                                                   sessions: list[str]) -> None:
    record = launch(server, http, wrapper_id, {"session": f"/archive/experiments/{sessions[0]}", "mode": "fast"})
    label = server.store.get_experiment(sessions[0]).label  # type: ignore[union-attr]
    assert record["status"] == "Complete"
    assert record["command-line"] == f"run {label} --mode fast"
    assert [h["status"] for h in record["history"]] == ["Queued", "Staging", "Created", "Running", "Finalizing",
                                                        "Complete"]
    assert record["env"]["XNAT_PASS"] == "******"
    assert record["env"]["XNAT_HOST"] == server.url
    spec = backend_of(server).specs[-1]
    assert spec.environment["XNAT_PASS"] != "******"
    assert {(b.container_path, b.read_only) for b in spec.binds} == {("/input", True), ("/output", False)}
    assert record["outputs"][0]["created"] == f"/archive/experiments/{sessions[0]}/resources/REPORT"
    files = server.store.list_files(server.store.get_resource(  # type: ignore[union-attr]
        _parent(sessions[0]), "REPORT").id)
    assert [f.path for f in files] == ["report.txt"]
    # the token XNAT_USER/XNAT_PASS carried is revoked after the run
    alias = record["env"]["XNAT_USER"]
    assert server.store.validate_token(alias, spec.environment["XNAT_PASS"]) is None
    # history, logs and the workflow are readable over REST
    got = http.get(f"{server.url}/xapi/containers/{record['id']}").json()
    assert got["status"] == "Complete"
    assert http.get(f"{server.url}/xapi/containers/{record['id']}/logs/stdout").text.startswith("out of fake")
    workflow = http.get(f"{server.url}/xapi/workflows/{record['workflow-id']}").json()
    assert (workflow["id"], workflow["status"], workflow["pipeline_name"]) == (sessions[0], "Complete", "scripted-session")
    assert [c["id"] for c in http.get(f"{server.url}/xapi/projects/CSR/containers").json()].count(record["id"]) == 1


def _parent(eid: str) -> Any:
    from xnatsim.store import Parent

    return Parent("experiment", "CSR", experiment_id=eid)


def test_missing_required_output_is_failed_upload(server: Server, http: requests.Session, wrapper_id: int,
                                                  sessions: list[str]) -> None:
    backend = backend_of(server)
    backend.files = {}
    try:
        record = launch(server, http, wrapper_id, {"session": f"/archive/experiments/{sessions[1]}"})
    finally:
        backend.files = {"report.txt": "hello\n"}
    assert record["status"] == "Failed (Upload)"
    assert "nothing to upload" in record["history"][-1]["message"]


def test_non_zero_exit_uploads_nothing(server: Server, http: requests.Session, wrapper_id: int,
                                       sessions: list[str]) -> None:
    backend = backend_of(server)
    backend.exit_code = 3
    try:
        record = launch(server, http, wrapper_id, {"session": f"/archive/experiments/{sessions[2]}"})
    finally:
        backend.exit_code = 0
    assert (record["status"], record["exit-code"]) == ("Failed", 3)
    assert server.store.get_resource(_parent(sessions[2]), "REPORT") is None


@pytest.mark.parametrize("value", ["x; rm -rf /", "$(id)", "a && b"])
def test_illegal_value_fails_command_resolution(server: Server, http: requests.Session, wrapper_id: int,
                                                sessions: list[str], value: str) -> None:
    started = len(backend_of(server).specs)
    record = launch(server, http, wrapper_id, {"session": f"/archive/experiments/{sessions[0]}", "mode": value})
    assert record["status"] == "Failed (Command resolution)"
    assert "illegal string" in record["history"][-1]["message"]
    assert len(backend_of(server).specs) == started  # nothing ran


def test_bulk_launch(server: Server, http: requests.Session, wrapper_id: int, sessions: list[str]) -> None:
    uris = [f"/archive/experiments/{e}" for e in sessions]
    r = http.post(f"{server.url}/xapi/projects/CSR/wrappers/{wrapper_id}/root/session/bulklaunch",
                  json={"session": json.dumps(uris), "mode": "bulk"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert len(answer["successes"]) == 3
    assert answer["failures"] == []
    assert answer["bulk-launch-id"]
    records = [cs_of(server).wait(int(s["container-id"]), 30) for s in answer["successes"]]
    assert [r["status"] for r in records] == ["Complete"] * 3


def test_unknown_wrapper_launch(server: Server, http: requests.Session) -> None:
    r = http.post(f"{server.url}/xapi/wrappers/9999/root/session/launch", json={"session": "/archive/x"})
    assert r.status_code == 404



def _created(http: requests.Session, url: str, response: requests.Response) -> dict[str, Any]:
    """The subscription a create answered for: XNAT answers 201 with the text ``<name>:<id>``."""
    assert response.status_code == 201, response.text
    sub_id = response.text.rsplit(":", 1)[-1]
    doc: dict[str, Any] = http.get(f"{url}/xapi/events/subscription/{sub_id}").json()
    return doc


@pytest.mark.usefixtures("site_enabled")
def test_event_service(server: Server, http: requests.Session, wrapper_id: int) -> None:
    url = server.url
    body = {"name": "qc on MR", "active": True, "action-key": f"{ACTION}{wrapper_id}", "attributes": {"mode": "auto"},
            "event-filter": {"event-type": SESSION_EVENT, "status": "CREATED", "project-ids": ["EVT"],
                             "json-path-filter": "'MR' in @.modalities-in-study"}}
    r = http.post(f"{url}/xapi/events/subscription", json=body)
    assert r.status_code == 400
    assert "disabled" in r.text  # a fresh XNAT has the Event Service off
    assert http.put(f"{url}/xapi/events/prefs", json={"enabled": True}).json() == {"enabled": True}
    add_sessions(server.store, "EVT", 0)
    r = http.post(f"{url}/xapi/events/subscription", json=body)
    assert r.status_code == 400
    assert "not available in project" in r.text  # not enabled on EVT yet
    http.put(f"{url}/xapi/projects/EVT/wrappers/{wrapper_id}/enabled")
    sub = _created(http, url, http.post(f"{url}/xapi/events/subscription", json=body))
    events = server.app.state["events"]  # type: ignore[union-attr]
    mr = add_sessions(server.store, "EVT", 1, modality="MR")[0]
    ct = add_sessions(server.store, "EVT", 1, modality="CT", start=2)[0]
    assert events.wait_idle(10)
    delivered = {d["trigger"]["uri"]: d for d in http.get(f"{url}/xapi/events/delivered",
                                                          params={"subscriptionid": sub["id"]}).json()}
    fired = delivered[f"/archive/experiments/{mr}"]
    assert fired["status-history"][-1]["status"] == "ACTION_COMPLETE"
    record = cs_of(server).wait(int(fired["container-id"]), 30)
    assert record["status"] == "Complete"
    assert record["command-line"].endswith("--mode auto")
    assert record["user-id"] == "admin"
    assert record["project"] == "EVT"
    filtered = delivered[f"/archive/experiments/{ct}"]
    assert filtered["status-history"][-1]["status"] == "OBJECT_FILTER_MISMATCH_HALT"
    assert filtered["container-id"] is None
    # deactivated subscriptions do not fire
    http.post(f"{url}/xapi/events/subscription/{sub['id']}/deactivate")
    add_sessions(server.store, "EVT", 1, modality="MR", start=3)
    assert events.wait_idle(10)
    assert len(http.get(f"{url}/xapi/events/delivered", params={"subscriptionid": sub["id"]}).json()) == 2
    assert http.delete(f"{url}/xapi/events/subscription/{sub['id']}").status_code == 204


@pytest.mark.usefixtures("site_enabled")
def test_sessions_from_put_and_import_fire_subscriptions(server: Server, http: requests.Session,
                                                         wrapper_id: int) -> None:
    import io
    import zipfile

    from xnatsim import synth

    url = server.url
    http.put(f"{url}/xapi/events/prefs", json={"enabled": True})
    server.store.put_project("EVI", {"name": "EVI"})
    http.put(f"{url}/xapi/projects/EVI/wrappers/{wrapper_id}/enabled")
    body = {"name": "all EVI sessions", "action-key": f"{ACTION}{wrapper_id}",
            "event-filter": {"event-type": SESSION_EVENT, "status": "CREATED"}}
    sub = _created(http, url, http.post(f"{url}/xapi/projects/EVI/events/subscription", json=body))
    assert sub["event-filter"]["project-ids"] == ["EVI"]
    events = server.app.state["events"]  # type: ignore[union-attr]
    # a session PUT over REST
    assert http.put(f"{url}/data/projects/EVI/subjects/S1").status_code in (200, 201)
    r = http.put(f"{url}/data/projects/EVI/subjects/S1/experiments/S1_MR1", params={"xsiType": "xnat:mrSessionData"})
    assert r.status_code == 201, r.text
    # a DICOM zip through the import service, straight to the archive
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in (1, 2):
            labels = synth.DicomLabels("EVI", "S2", "S2_MR1", "1", "T1 MPRAGE", "MR", "2024-01-02", instance=i)
            zf.writestr(f"{i}.dcm", synth.dicom_bytes(labels))
    r = http.post(f"{url}/data/services/import", params={"dest": "/archive"}, data=buf.getvalue(),
                  headers={"Content-Type": "application/zip"})
    assert r.status_code == 200, r.text
    assert events.wait_idle(10)
    delivered = http.get(f"{url}/xapi/events/delivered", params={"subscriptionid": sub["id"]}).json()
    labels = sorted(d["trigger"]["label"] for d in delivered)
    assert labels == ["S1_MR1", "S2_MR1"]
    records = {d["trigger"]["label"]: cs_of(server).wait(int(d["container-id"]), 30) for d in delivered}
    assert {k: v["status"] for k, v in records.items()} == {"S1_MR1": "Complete", "S2_MR1": "Complete"}
    imported = next(s for s in backend_of(server).specs if s.environment.get("XNAT_WORKFLOW_ID") ==
                    records["S2_MR1"]["workflow-id"])
    source = next(b.host_path for b in imported.binds if b.container_path == "/input")
    assert (Path(source) / "SCANS" / "1" / "DICOM").is_dir()  # the import had finished when it fired


ASSESSOR_XML = """<?xml version="1.0" encoding="UTF-8"?>
<xnat:QCAssessment xmlns:xnat="http://nrg.wustl.edu/xnat" ID="" label="{label}_QC" project="CSR"/>
"""


def test_assessor_output_with_a_resource_under_it(server: Server, http: requests.Session,
                                                  sessions: list[str]) -> None:
    doc = copy.deepcopy(COMMAND)
    doc["name"] = "qc-assessor"
    doc["outputs"] = [{"name": "assessor", "mount": "out", "path": "assessor.xml", "required": True},
                      {"name": "pictures", "mount": "out", "path": "pictures", "required": True}]
    doc["xnat"][0]["name"] = "qc-assessor-session"
    doc["xnat"][0]["output-handlers"] = [
        {"name": "assessor-handler", "accepts-command-output": "assessor", "as-a-child-of": "session",
         "type": "Assessor", "xsi-type": "xnat:qcAssessmentData"},
        {"name": "pictures-handler", "accepts-command-output": "pictures", "as-a-child-of": "assessor-handler",
         "type": "Resource", "label": "QC_PICTURES"},
    ]
    cid = http.post(server.url + "/xapi/commands", json=doc).json()
    wid = int(http.get(f"{server.url}/xapi/commands/{cid}").json()["xnat"][0]["id"])
    label = server.store.get_experiment(sessions[1]).label  # type: ignore[union-attr]
    backend = backend_of(server)
    backend.files = {"assessor.xml": ASSESSOR_XML.format(label=label), "pictures/a.png": "png",
                     "pictures/sub/b.png": "png"}
    try:
        record = launch(server, http, wid, {"session": f"/archive/experiments/{sessions[1]}"})
    finally:
        backend.files = {"report.txt": "hello\n"}
    assert record["status"] == "Complete", record["outputs"]
    created = {o["from-output-handler"]: o["created"] for o in record["outputs"]}
    assessor = server.store.get_experiment(f"{label}_QC", "CSR")
    assert assessor is not None
    assert (assessor.xsi_type, assessor.session_id) == ("xnat:qcAssessmentData", sessions[1])
    assert created["assessor-handler"] == f"/archive/experiments/{sessions[1]}/assessors/{assessor.id}"
    assert created["pictures-handler"] == created["assessor-handler"] + "/resources/QC_PICTURES"
    from xnatsim.store import Parent

    resource = server.store.get_resource(Parent("experiment", "CSR", experiment_id=assessor.id), "QC_PICTURES")
    assert resource is not None
    assert [f.path for f in server.store.list_files(resource.id)] == ["a.png", "sub/b.png"]


def test_project_configuration_and_processing_url(server: Server, http: requests.Session, wrapper_id: int,
                                                  sessions: list[str]) -> None:
    url = server.url
    config = {"inputs": {"mode": {"default-value": "from-config"}}, "outputs": {"report-resource": {"label": "CFG"}}}
    assert http.post(f"{url}/xapi/projects/CSR/wrappers/{wrapper_id}/config", json=config).status_code == 201
    assert http.get(f"{url}/xapi/projects/CSR/wrappers/{wrapper_id}/config").json() == config
    assert http.get(f"{url}/xapi/wrappers/{wrapper_id}/config").json() == {"inputs": {}, "outputs": {}}
    settings = http.get(f"{url}/xapi/docker/server").json()
    assert (settings["network"], settings["processing-url"]) == ("host", "")
    assert http.post(f"{url}/xapi/docker/server", json={"processing-url": "http://xnat.example:8080",
                                                         "container-user": "4242"}).status_code == 201
    try:
        record = launch(server, http, wrapper_id, {"session": f"/archive/experiments/{sessions[0]}"})
    finally:
        http.post(f"{url}/xapi/docker/server", json={"processing-url": "", "container-user": ""})
    assert record["command-line"].endswith("--mode from-config")  # the project overlay applies
    assert record["outputs"][0]["created"].endswith("/resources/CFG")
    spec = backend_of(server).specs[-1]
    assert spec.environment["XNAT_HOST"] == "http://xnat.example:8080"
    assert spec.user == "4242"
    # the site route uses the site configuration, not the project's
    r = http.post(f"{url}/xapi/wrappers/{wrapper_id}/root/session/launch",
                  json={"session": f"/archive/experiments/{sessions[0]}"})
    site = cs_of(server).wait(int(r.json()["container-id"]), 30)
    assert http.delete(f"{url}/xapi/projects/CSR/wrappers/{wrapper_id}/config").status_code == 204
    assert "from-config" not in site["command-line"]


@pytest.mark.usefixtures("site_enabled")
def test_act_as_event_user(server: Server, http: requests.Session, wrapper_id: int) -> None:
    url = server.url
    http.put(f"{url}/xapi/events/prefs", json={"enabled": True})
    add_sessions(server.store, "EVU", 0)
    server.store.add_user("alice", "alice-pw")
    server.store.set_role("EVU", "alice", "member")
    http.put(f"{url}/xapi/projects/EVU/wrappers/{wrapper_id}/enabled")
    subs = []
    for as_event_user in (False, True):
        body = {"name": f"as event user {as_event_user}", "action-key": f"{ACTION}{wrapper_id}",
                "act-as-event-user": as_event_user,
                "event-filter": {"event-type": SESSION_EVENT, "status": "CREATED"}}
        subs.append(_created(http, url, http.post(f"{url}/xapi/projects/EVU/events/subscription", json=body)))
    try:
        session = add_sessions(server.store, "EVU", 1, user="alice")[0]
        assert server.app.state["events"].wait_idle(10)  # type: ignore[union-attr]
        users = {}
        for sub in subs:
            (delivery,) = http.get(f"{url}/xapi/events/delivered", params={"subscriptionid": sub["id"]}).json()
            assert delivery["trigger"]["uri"] == f"/archive/experiments/{session}"
            users[sub["act-as-event-user"]] = cs_of(server).wait(int(delivery["container-id"]), 30)["user-id"]
        assert users == {False: "admin", True: "alice"}  # the subscription owner, or who caused the event
    finally:
        for sub in subs:
            http.delete(f"{url}/xapi/events/subscription/{sub['id']}")
