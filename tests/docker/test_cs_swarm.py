"""xnatsim's Container Service on a real single-node Docker Swarm, through the same REST routes as the
plain-Docker tests (test_cs_launch.py): the probe image, and every xnatnode image with the same
outcome as on plain Docker (status, exit code, uploaded files, logs, alias token revoked).

The swarm is made on the test engine (``docker swarm init --advertise-addr 127.0.0.1``) by a
module fixture and left again (``docker swarm leave --force``) even when a test fails. The admin
switches backends as in XNAT: ``POST /xapi/docker/server`` with ``swarm-mode``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.docker.conftest import enable_wrapper
from tests.docker.cs_probe import build_probe, kill_running, probe_record, wait_running
from tests.zips import zip_folder

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
#: a user-settable constraint whose chosen value holds on the one node, and a fixed one
CONSTRAINTS = [
    {"attribute": "node.role", "comparator": "==", "values": ["manager"], "user-settable": False},
    {"attribute": "node.labels.xnatsim", "comparator": "!=", "values": ["any", "never"], "user-settable": True},
]


def _docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


@pytest.fixture(scope="module")
def swarm(docker_engine: None) -> Iterator[str]:
    """A single-node swarm on the test engine (its node id); left afterwards, even on failure."""
    state = _docker("info", "--format", "{{.Swarm.LocalNodeState}}")
    if state != "inactive":
        pytest.fail(f"the engine is already in a swarm ({state}); another test left it there")
    _docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        yield _docker("info", "--format", "{{.Swarm.NodeID}}")
    finally:
        _docker("swarm", "leave", "--force", check=False)


@pytest.fixture(scope="module")
def env(swarm: str, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """xnatsim switched to Swarm with constraints, the probe's wrapper enabled, 6 sessions in CSW."""
    from xnatsim.cs.sample import add_sessions
    from xnatsim.testing import running_server

    probe = build_probe(base_image)
    with running_server(tmp_path_factory.mktemp("cs-swarm")) as server:
        http = server.session()
        r = http.post(server.url + "/xapi/docker/server",
                      json={"swarm-mode": True, "backend": "swarm", "swarm-constraints": CONSTRAINTS})
        assert r.status_code == 201, r.text
        assert http.get(server.url + "/xapi/docker/server").json()["backend"] == "swarm"
        saved = http.post(server.url + "/xapi/docker/images/save", params={"image": probe}).json()
        wid = saved[0]["xnat"][0]["id"]
        assert http.put(f"{server.url}/xapi/wrappers/{wid}/enabled").ok
        sessions = add_sessions(server.store, "CSW", 6)
        assert http.put(f"{server.url}/xapi/projects/CSW/wrappers/{wid}/enabled").ok
        yield {"server": server, "http": http, "wid": wid, "sessions": sessions, "node": swarm}


def _launch(env: dict[str, Any], session: str, wait: bool = True, **params: str) -> dict[str, Any]:
    server, http = env["server"], env["http"]
    r = http.post(f"{server.url}/xapi/projects/CSW/wrappers/{env['wid']}/root/session/launch",
                  json={"session": f"/archive/experiments/{session}", **params})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "success", r.text
    cid = int(r.json()["container-id"])
    if not wait:
        return {"id": cid}
    record: dict[str, Any] = server.app.state["cs"].wait(cid, 180)
    return record


def _probe_record(env: dict[str, Any], session: str) -> dict[str, Any]:
    return probe_record(env["server"].store, "CSW", session)


def _services() -> list[str]:
    return _docker("service", "ls", "--quiet").split()


def test_a_launch_is_a_service_made_as_xnat_makes_it(env: dict[str, Any], tmp_path: Path) -> None:
    import docker

    server, http = env["server"], env["http"]
    cs = server.app.state["cs"]
    data = server.store.data_dir
    alias = tmp_path / "translated"
    alias.symlink_to(data)  # the Docker prefix names the same folder by another path
    settings = {"container-user": "4242", "auto-cleanup": False,
                "path-translation-xnat-prefix": str(data), "path-translation-docker-prefix": str(alias)}
    assert http.post(server.url + "/xapi/docker/server", json=settings).status_code == 201
    session = env["sessions"][0]
    try:
        # --sleep 1: the service monitor polls task states (every 0.2 s here; XNAT on its own
        # schedule), so a run shorter than a poll can go from starting to complete unseen, and
        # "running" below would then be missing from the history (seen once in CI at 19:55)
        record = _launch(env, session, verbose="true", mode="two words", extra="--sleep 1",
                         **{"swarm-constraints": json.dumps([{"attribute": "node.labels.xnatsim", "value": "never"}])})
    finally:
        http.post(server.url + "/xapi/docker/server", json={
            "container-user": "", "auto-cleanup": True, "path-translation-xnat-prefix": "",
            "path-translation-docker-prefix": ""})
    service = docker.from_env().services.get(record["service-id"])
    try:
        assert record["status"] == "Complete", record["history"]
        assert record["backend"] == "swarm"
        states = [(h["status"], h["entity-type"]) for h in record["history"]]
        assert ("running", "service") in states
        assert states[-3:] == [("complete", "service"), ("Finalizing", "system"), ("Complete", "system")]
        spec = service.attrs["Spec"]
        assert service.attrs["PreviousSpec"]["Mode"]["Replicated"]["Replicas"] == 0  # created with 0 ...
        assert spec["Mode"]["Replicated"]["Replicas"] == 1  # ... and started by scaling to 1
        task = spec["TaskTemplate"]
        assert task["RestartPolicy"]["Condition"] == "none"
        assert task["ContainerSpec"]["User"] == "4242"
        assert sorted(task["Placement"]["Constraints"]) == ["node.labels.xnatsim!=never", "node.role==manager"]
        assert task["Resources"]["Limits"] == {"MemoryBytes": 256 << 20, "NanoCPUs": 500_000_000}
        assert task["Resources"]["Reservations"] == {"MemoryBytes": 64 << 20}
        mounts = {m["Target"]: m for m in task["ContainerSpec"]["Mounts"]}
        assert mounts["/input"]["ReadOnly"] is True
        assert mounts["/input"]["Source"].startswith(str(alias) + "/")  # translated
        assert not mounts["/output"].get("ReadOnly")
        probe = _probe_record(env, session)
        assert probe["argv"][:5] == ["--label", server.store.get_experiment(session).label, "--verbose", "--mode", "two"]
        assert probe["uid"] == 4242
        assert probe["input"] == ["SCANS"]
        assert probe["input_writable"] is False
        assert probe["env"]["XNAT_HOST"] == server.url
        assert probe["env"]["XNAT_PASS"] == "<set>"
        assert probe["xnat_status"] == 200  # the alias token works during the run ...
        tokens = {t["alias"]: t for t in server.store.list_tokens("admin")}
        assert tokens[record["token-alias"]]["enabled"] is False  # ... and is revoked afterwards
        stdout = http.get(f"{server.url}/xapi/containers/{record['id']}/logs/stdout").text
        assert stdout.startswith("probe argv:")
        assert cs.container(record["id"])["container-id"]  # the task's container, learnt from the task
    finally:
        service.remove()


def test_exit_codes_logs_and_no_upload_on_failure(env: dict[str, Any]) -> None:
    from xnatsim.store import Parent

    store = env["server"].store
    failed = _launch(env, env["sessions"][1], extra="--exit 7")
    assert (failed["status"], failed["exit-code"]) == ("Failed", 7)
    assert ("failed", "service") in [(h["status"], h["entity-type"]) for h in failed["history"]]
    assert store.get_resource(Parent("experiment", "CSW", experiment_id=env["sessions"][1]), "PROBE") is None
    assert "probe stderr line" in env["http"].get(
        f"{env['server'].url}/xapi/containers/{failed['id']}/logs/stderr").text
    no_output = _launch(env, env["sessions"][2], extra="--no-output")
    assert no_output["status"] == "Failed (Upload)"
    assert failed["service-id"] not in _services()
    assert no_output["service-id"] not in _services()


def test_kill_removes_the_service(env: dict[str, Any]) -> None:
    server, http = env["server"], env["http"]
    cid = _launch(env, env["sessions"][3], wait=False, extra="--sleep 60")["id"]
    record = kill_running(server, http, cid)
    assert record["service-id"] not in _services()


def test_a_service_lost_with_its_node_is_restarted(env: dict[str, Any]) -> None:
    """Draining the node shuts its task down (a node error): the service is removed and launched
    again; it runs once the node is active again."""
    cs = env["server"].app.state["cs"]
    cid = _launch(env, env["sessions"][4], wait=False, extra="--sleep 6")["id"]
    deadline = time.monotonic() + 60
    wait_running(cs, cid, deadline)
    _docker("node", "update", "--availability", "drain", env["node"])
    try:
        while not any(h["status"] == "Restart" for h in cs.container(cid)["history"]):
            assert time.monotonic() < deadline, cs.container(cid)["history"]
            time.sleep(0.1)
    finally:
        _docker("node", "update", "--availability", "active", env["node"])
    record = cs.wait(cid, 120)
    assert record["status"] == "Complete", [(h["status"], h["message"]) for h in record["history"]]
    restart = next(h for h in record["history"] if h["status"] == "Restart")
    assert "due to apparent swarm node error" in restart["message"]
    assert _probe_record(env, env["sessions"][4])["argv"][-2:] == ["--sleep", "6"]


# ------------------------------------------------------------------ every xnatnode image
def _commands() -> list[dict[str, Any]]:
    """Every command the repository ships (command-json/), whatever commands exist today."""
    return [doc for path in sorted((REPO / "command-json").glob("*.json"))
            for doc in (json.loads(path.read_text()) if path.read_text().lstrip().startswith("[")
                        else [json.loads(path.read_text())])]


def _target(store: Any, wrapper: dict[str, Any]) -> tuple[str, str] | None:
    """(root input name, value) for the wrapper's external input on the demo project."""
    from xnatsim.seed import DEMO_PROJECT

    external = wrapper["external-inputs"][0]
    kind = external["type"]
    sessions = sorted(e.id for e in store.list_experiments(project=DEMO_PROJECT))
    values = {"Project": f"/archive/projects/{DEMO_PROJECT}",
              "Session": f"/archive/experiments/{sessions[0]}" if sessions else None,
              "SubjectAssessor": f"/archive/experiments/{sessions[0]}" if sessions else None}
    value = values.get(kind)
    return (external["name"], value) if value else None


BACKENDS = ("docker", "swarm")
DICOM_WRAPPER = "dicom-upload-project"
NIFTI_WRAPPER = "nifti-import-project"


def _batches(server: Any, http: requests.Session, folder: Path) -> dict[str, dict[str, dict[str, str]]]:
    """Real input for the commands that import a batch into the demo project, as a site gives it,
    such that the second backend's run is no no-op: the demo's BIDS batch in ``NIFTI_UPLOAD``,
    imported per backend under subject labels ending ``_<backend>`` and session labels ending
    ``_nifti_<backend>``; in ``DICOM_UPLOAD`` one DICOM study per backend (its zip and its CSV, the
    session labelled ``DU_<backend>``), sent by C-STORE to the simulator's receiver. The launch
    parameters by wrapper and backend."""
    from xnatsim.cs import demo_nifti
    from xnatsim.seed import DEMO_PROJECT

    from tests.sim import dicom_data as dd

    demo_nifti.upload(server.url, server.user, server.password, DEMO_PROJECT)
    nifti = {b: {"subject-template": f"{{sub}}_{b}", "session-template": f"{{sub}}_{{ses}}_nifti_{b}"} for b in BACKENDS}
    port = http.get(f"{server.url}/xapi/dicomscp").json()[0]["port"]
    files, dicom = [], {}
    for n, backend in enumerate(BACKENDS):
        dd.session(folder / backend, f"STUDY_{backend}", f"DU{n}", {"1": 2, "2": 1})
        files.append(zip_folder(folder / backend, folder / f"{backend}.zip"))
        files.append(dd.write_csv(folder / f"{backend}.csv", [(f"{backend}.zip", "", f"DU{n}", f"DU_{backend}")]))
        dicom[backend] = {"csv": f"{backend}.csv", "via": "cstore", "dicom-port": str(port), "verify-timeout": "120"}
    dd.upload_batch(http, server.url, DEMO_PROJECT, files)
    return {DICOM_WRAPPER: dicom, NIFTI_WRAPPER: nifti}


def _nifti_in_session(http: requests.Session, url: str, session: str, folder: Path) -> None:
    """One NIfTI image in the session's ``NIFTI_UPLOAD`` resource, for nifti-import's session wrapper."""
    from tests.nifti_batches import write_image

    image = write_image(folder / "T2w.nii.gz", seed=9)
    r = http.put(f"{url}/data{session.removeprefix('/archive')}/resources/NIFTI_UPLOAD/files/{image.name}",
                 data=image.read_bytes(), params={"inbody": "true"}, timeout=60)
    assert r.status_code in (200, 201), r.text


def _assert_imported(server: Any, http: requests.Session, wrapper: str, backend: str) -> None:
    """The run on ``backend`` of a batch-importing wrapper put its own sessions into the archive,
    as its report says (and the Swarm run did not find them there before it)."""
    from xnatsim.seed import DEMO_PROJECT

    if wrapper not in (DICOM_WRAPPER, NIFTI_WRAPPER):
        return
    labels = {e.label for e in server.store.list_experiments(project=DEMO_PROJECT)}
    resource = f"{server.url}/data/projects/{DEMO_PROJECT}/resources"
    if wrapper == DICOM_WRAPPER:
        report = http.get(f"{resource}/DICOM_UPLOAD_REPORT/files/upload-report.json").json()
        assert [(row["session"], row["outcome"]) for row in report["rows"]] == [(f"DU_{backend}", "verified")], report
        arrived = {b for b in BACKENDS if f"DU_{b}" in labels}
    else:  # NIFTI_WRAPPER
        report = http.get(f"{resource}/IMPORT_REPORT/files/import-report.json").json()
        counts = {k: report["totals"][k] for k in ("skipped", "rejected", "conflict")}
        assert counts == dict.fromkeys(counts, 0), report["totals"]
        assert report["totals"]["imported"] > 0, report["totals"]
        arrived = {b for b in BACKENDS if sum(label.endswith(f"_nifti_{b}") for label in labels) == 2}
    assert arrived == set(BACKENDS[:BACKENDS.index(backend) + 1]), (wrapper, backend, sorted(labels))


def _outcome(server: Any, http: requests.Session, wid: int, root: str, value: str,
             params: dict[str, str]) -> dict[str, Any]:
    r = http.post(f"{server.url}/xapi/projects/DEMO/wrappers/{wid}/root/{root}/launch", json={root: value, **params})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "success", r.text
    record = server.app.state["cs"].wait(int(r.json()["container-id"]), 300)
    uploaded = {}
    for output in record.get("outputs") or []:
        if output.get("ok") and output.get("created"):
            listing = http.get(f"{server.url}/data{output['created'].removeprefix('/archive')}/files",
                               params={"format": "json"}).json()["ResultSet"]["Result"]
            uploaded[output["name"]] = sorted(row["Name"] for row in listing)
    logs = "".join(http.get(f"{server.url}/xapi/containers/{record['id']}/logs/{s}").text for s in ("stdout", "stderr"))
    token = {t["alias"]: t for t in server.store.list_tokens("admin")}.get(record.get("token-alias"))
    return {"status": record["status"], "exit-code": record["exit-code"], "uploaded": uploaded,
            "logged": bool(logs.strip()),
            "token": "none issued" if token is None else "valid" if token["enabled"] else "revoked"}


def test_every_xnatnode_image_gives_the_same_outcome_on_swarm(swarm: str, built_images: dict[str, str],
                                                              tmp_path: Path) -> None:
    """Each wrapper launched on the demo project on Docker, then on Swarm. The commands that import
    a batch get real input (see :func:`_batches`): they must complete on both backends, each run
    putting its own sessions into the archive."""
    from xnatsim.testing import running_server

    from xnatsim import seed as seeder

    commands = _commands()
    assert commands, "no command-json/*.json"
    with running_server(tmp_path / "data", dicom_port=0, session_idle_seconds=0.5) as server:
        seeder.apply(server.store, "demo")
        http = server.session()
        params = _batches(server, http, tmp_path / "batch")
        compared = []
        for command in commands:
            image = command["image"]
            assert image in built_images.values(), f"{image} is not built by ./build.sh build"
            saved = http.post(f"{server.url}/xapi/docker/images/save", params={"image": image}).json()
            assert [c["name"] for c in saved] == [command["name"]], saved
            for wrapper in saved[0]["xnat"]:
                target = _target(server.store, wrapper)
                if target is None:
                    continue
                if wrapper["name"] == "nifti-import-session":
                    _nifti_in_session(http, server.url, target[1], tmp_path / "nifti")
                wid = wrapper["id"]
                enable_wrapper(http, server.url, "DEMO", wid)
                outcomes = {}
                for backend in BACKENDS:
                    r = http.post(f"{server.url}/xapi/docker/server", json={"swarm-mode": backend == "swarm"})
                    assert r.json()["backend"] == backend
                    outcomes[backend] = _outcome(server, http, wid, *target,
                                                 params.get(wrapper["name"], {}).get(backend, {}))
                    _assert_imported(server, http, wrapper["name"], backend)
                assert outcomes["swarm"] == outcomes["docker"], (wrapper["name"], outcomes)
                ran = outcomes["swarm"]["token"] != "none issued"  # a container started
                assert not ran or outcomes["swarm"]["logged"], (wrapper["name"], outcomes)
                assert outcomes["swarm"]["token"] != "valid", (wrapper["name"], outcomes)
                compared.append((wrapper["name"], outcomes["swarm"]["status"]))
        assert compared, "no wrapper of any xnatnode command could be launched on the demo project"
        print("outcomes on Docker and Swarm:", compared)
        for name in ("project-summary", DICOM_WRAPPER, NIFTI_WRAPPER, "nifti-import-session"):
            assert (name, "Complete") in compared, compared
