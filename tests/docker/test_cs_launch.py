"""xnatsim's Container Service on the real Docker engine: a purpose-built probe image (FROM the
project's base image) records what each launch gave it, and the tests check it against the spec."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.docker.cs_probe import PROBE_COMMAND, PROBE_TAG, build_probe, kill_running, probe_record

pytestmark = pytest.mark.docker

ACTION = "org.nrg.containers.services.CommandActionProvider:"
SESSION_EVENT = "org.nrg.xnat.eventservice.events.SessionEvent"


@pytest.fixture(scope="module")
def probe_image(base_image: str) -> str:
    """The probe image, built FROM the base with the probe command in its label."""
    return build_probe(base_image)


@pytest.fixture(scope="module")
def env(probe_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running xnatsim with 24 sessions in project CSD and the probe's wrapper enabled there."""
    from xnatsim.cs.sample import add_sessions
    from xnatsim.testing import running_server

    with running_server(tmp_path_factory.mktemp("cs-docker")) as server:
        http = server.session()
        saved = http.post(server.url + "/xapi/docker/images/save", params={"image": probe_image}).json()
        assert [c["name"] for c in saved] == ["probe"]
        wid = saved[0]["xnat"][0]["id"]
        assert http.put(f"{server.url}/xapi/wrappers/{wid}/enabled").ok
        sessions = add_sessions(server.store, "CSD", 24)
        assert http.put(f"{server.url}/xapi/projects/CSD/wrappers/{wid}/enabled").ok
        yield {"server": server, "http": http, "wid": wid, "sessions": sessions, "command": saved[0]}


def _launch(env: dict[str, Any], session: str, **params: str) -> dict[str, Any]:
    server, http = env["server"], env["http"]
    r = http.post(f"{server.url}/xapi/projects/CSD/wrappers/{env['wid']}/root/session/launch",
                  json={"session": f"/archive/experiments/{session}", **params})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "success", r.text
    record: dict[str, Any] = server.app.state["cs"].wait(int(r.json()["container-id"]), 120)
    return record


def _probe_record(env: dict[str, Any], session: str) -> dict[str, Any]:
    return probe_record(env["server"].store, "CSD", session)


def test_label_route_stores_the_image_name_and_id(env: dict[str, Any], probe_image: str) -> None:
    import docker

    command = env["command"]
    assert command["image"] == probe_image  # the label's own "image" is overwritten
    assert command["hash"] == docker.from_env().images.get(probe_image).id
    again = env["http"].post(env["server"].url + "/xapi/docker/images/save", params={"image": probe_image}).json()
    assert again == []  # the same (name, image, version) is a duplicate: skipped


def test_exec_form_argv_env_mounts_and_token(env: dict[str, Any]) -> None:
    session = env["sessions"][0]
    record = _launch(env, session, verbose="true", mode="two words", extra="'quoted arg' plain")
    assert record["status"] == "Complete", record["history"][-1]
    probe = _probe_record(env, session)
    label = env["server"].store.get_experiment(session).label
    assert probe["argv"] == ["--label", label, "--verbose", "--mode", "two", "words", "--call-xnat",
                             "quoted arg", "plain"]
    assert probe["env"]["PROBE_SESSION"] == f"/archive/experiments/{session}"
    assert probe["env"]["XNAT_HOST"] == env["server"].url
    assert probe["env"]["XNAT_WORKFLOW_ID"] == record["workflow-id"] != ""
    assert probe["env"]["XNAT_PASS"] == "<set>"
    assert probe["xnat_status"] == 200  # the injected alias token works during the run ...
    tokens = {t["alias"]: t for t in env["server"].store.list_tokens("admin")}
    assert tokens[probe["env"]["XNAT_USER"]]["enabled"] is False  # ... and is revoked afterwards
    assert probe["input"] == ["SCANS"]  # the session folder, in XNAT's layout
    assert probe["input_writable"] is False  # read-only bind
    assert probe["uid"] == 1000  # the image's USER when no container user is set
    stdout = env["http"].get(f"{env['server'].url}/xapi/containers/{record['id']}/logs/stdout").text
    assert stdout.startswith("probe argv:")


def test_shell_form_expands_variables(env: dict[str, Any]) -> None:
    server, http = env["server"], env["http"]
    doc = json.loads(json.dumps(PROBE_COMMAND))
    doc.update({"name": "probe-shell", "image": PROBE_TAG, "override-entrypoint": True,
                "command-line": "python3 /opt/probe/probe.py wf=$XNAT_WORKFLOW_ID '#LABEL#' *.nomatch"})
    doc["xnat"][0]["name"] = "probe-shell-session"
    cid = http.post(server.url + "/xapi/commands", json=doc).json()
    wid = http.get(f"{server.url}/xapi/commands/{cid}").json()["xnat"][0]["id"]
    http.put(f"{server.url}/xapi/wrappers/{wid}/enabled")
    session = env["sessions"][1]
    r = http.post(f"{server.url}/xapi/wrappers/{wid}/root/session/launch",
                  json={"session": f"/archive/experiments/{session}"})
    record = server.app.state["cs"].wait(int(r.json()["container-id"]), 120)
    assert record["status"] == "Complete", record["history"][-1]
    label = server.store.get_experiment(session).label
    assert _probe_record(env, session)["argv"] == [f"wf={record['workflow-id']}", label, "*.nomatch"]


def test_outputs_keep_sub_folders(env: dict[str, Any]) -> None:
    session = env["sessions"][2]
    record = _launch(env, session, extra="--write sub/dir/extra.txt")
    assert record["status"] == "Complete"
    from xnatsim.store import Parent

    store = env["server"].store
    resource = store.get_resource(Parent("experiment", "CSD", experiment_id=session), "PROBE")
    assert [f.path for f in store.list_files(resource.id)] == ["probe.json", "sub/dir/extra.txt"]


def test_missing_required_output_and_failure_exit(env: dict[str, Any]) -> None:
    from xnatsim.store import Parent

    store = env["server"].store
    record = _launch(env, env["sessions"][3], extra="--no-output")
    assert record["status"] == "Failed (Upload)"
    record = _launch(env, env["sessions"][4], extra="--exit 7")
    assert (record["status"], record["exit-code"]) == ("Failed", 7)
    assert store.get_resource(Parent("experiment", "CSD", experiment_id=env["sessions"][4]), "PROBE") is None
    assert "probe stderr line" in env["http"].get(
        f"{env['server'].url}/xapi/containers/{record['id']}/logs/stderr").text


def test_refused_values_never_start_a_container(env: dict[str, Any]) -> None:
    for value in ("a;b", "$(id)"):
        record = _launch(env, env["sessions"][5], mode=value)
        assert record["status"] == "Failed (Command resolution)"
        assert record["container-id"] is None


def test_container_user_limits_and_network(env: dict[str, Any]) -> None:
    import docker

    cs = env["server"].app.state["cs"]
    cs.settings.container_user, cs.settings.auto_cleanup = "4242", False
    try:
        record = _launch(env, env["sessions"][6])
    finally:
        cs.settings.container_user, cs.settings.auto_cleanup = "", True
    container = docker.from_env().containers.get(record["container-id"])
    try:
        host = container.attrs["HostConfig"]
        assert record["status"] == "Complete"
        assert _probe_record(env, env["sessions"][6])["uid"] == 4242  # the output dir is writable for it
        assert container.attrs["Config"]["User"] == "4242"
        assert (host["MemoryReservation"], host["Memory"], host["NanoCpus"]) == (64 << 20, 256 << 20, 500_000_000)
        assert host["NetworkMode"] == "host"
        assert any(b.endswith(":/input:ro") for b in host["Binds"])
    finally:
        container.remove(force=True)


def test_subscription_fires_on_archive_and_filters(env: dict[str, Any]) -> None:
    from xnatsim.cs.sample import add_sessions

    server, http = env["server"], env["http"]
    http.put(f"{server.url}/xapi/events/prefs", json={"enabled": True})
    body = {"name": "probe MR", "active": True, "action-key": f"{ACTION}{env['wid']}", "attributes": {"mode": "auto"},
            "event-filter": {"event-type": SESSION_EVENT, "status": "CREATED",
                             "json-path-filter": "\"MR\" in @.modalities-in-study"}}
    r = http.post(f"{server.url}/xapi/projects/CSD/events/subscription", json=body)
    assert r.status_code == 201, r.text
    sub = {"id": r.text.rsplit(":", 1)[-1]}  # XNAT answers "<name>:<id>"
    try:
        mr = add_sessions(server.store, "CSD", 1, modality="MR", start=101)[0]
        ct = add_sessions(server.store, "CSD", 1, modality="CT", start=102)[0]
        assert server.app.state["events"].wait_idle(30)
        delivered = {d["trigger"]["uri"]: d for d in http.get(f"{server.url}/xapi/events/delivered",
                                                              params={"subscriptionid": sub["id"]}).json()}
        fired = delivered[f"/archive/experiments/{mr}"]
        record = server.app.state["cs"].wait(int(fired["container-id"]), 120)
        assert record["status"] == "Complete"
        assert "--mode auto" in record["command-line"]
        assert _probe_record(env, mr)["xnat_status"] == 200
        assert delivered[f"/archive/experiments/{ct}"]["container-id"] is None
    finally:
        http.delete(f"{server.url}/xapi/events/subscription/{sub['id']}")


def test_bulk_launch_over_20_sessions(env: dict[str, Any]) -> None:
    server, http = env["server"], env["http"]
    targets = env["sessions"][-20:]
    started = time.monotonic()
    r = http.post(f"{server.url}/xapi/projects/CSD/wrappers/{env['wid']}/root/session/bulklaunch",
                  json={"session": json.dumps([f"/archive/experiments/{s}" for s in targets]), "mode": "bulk"})
    answer = r.json()
    assert len(answer["successes"]) == 20
    assert not answer["failures"]
    records = [server.app.state["cs"].wait(int(s["container-id"]), 300) for s in answer["successes"]]
    assert [x["status"] for x in records] == ["Complete"] * 20, [x["history"][-1] for x in records]
    assert time.monotonic() - started < 240


def test_kill_a_running_container(env: dict[str, Any]) -> None:
    server, http = env["server"], env["http"]
    r = http.post(f"{server.url}/xapi/projects/CSD/wrappers/{env['wid']}/root/session/launch",
                  json={"session": f"/archive/experiments/{env['sessions'][7]}", "extra": "--sleep 60"})
    kill_running(server, http, int(r.json()["container-id"]))


def test_time_out_kills_the_container_and_revokes_its_token(env: dict[str, Any]) -> None:
    import docker

    server = env["server"]
    cs = server.app.state["cs"]
    cs.settings.timeout = 2.0
    started = time.monotonic()
    try:
        record = _launch(env, env["sessions"][8], extra="--sleep 60")
    finally:
        cs.settings.timeout = 3600.0
    assert record["status"] == "Failed (Killed)"
    assert record["history"][-1]["message"] == "Killed after the time-out of 2 s"
    assert time.monotonic() - started < 30
    tokens = {t["alias"]: t for t in server.store.list_tokens("admin")}
    assert tokens[record["token-alias"]]["enabled"] is False
    with pytest.raises(docker.errors.NotFound):
        docker.from_env().containers.get(record["container-id"])  # removed (auto-cleanup)


def test_delete_an_image_and_its_commands(env: dict[str, Any], probe_image: str) -> None:
    import docker

    server, http = env["server"], env["http"]
    client = docker.from_env()
    spare = "xnatsim-test/cs-probe:delete-me"
    client.images.get(probe_image).tag(spare)
    try:
        saved = http.post(server.url + "/xapi/docker/images/save", params={"image": spare}).json()
        assert [c["image"] for c in saved] == [spare]
        r = http.delete(f"{server.url}/xapi/docker/images/{requests.utils.quote(spare, safe='')}")
        assert r.status_code == 204, r.text
        assert [c["image"] for c in http.get(server.url + "/xapi/commands", params={"image": spare}).json()] == []
        assert http.get(f"{server.url}/xapi/commands/{saved[0]['id']}").status_code == 404
        assert http.get(f"{server.url}/xapi/commands/{env['command']['id']}").status_code == 200  # other tag kept
        assert spare not in client.images.get(probe_image).tags  # only the tag went
        assert http.delete(f"{server.url}/xapi/docker/images/{requests.utils.quote(spare, safe='')}").status_code == 404
    finally:
        if spare in client.images.get(probe_image).tags:
            client.images.remove(spare)
