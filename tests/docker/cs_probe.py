"""The cs-probe test image (tests/docker/images/cs-probe) and the command its label carries, shared by
the Container Service tests on plain Docker (test_cs_launch.py) and on Swarm (test_cs_swarm.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

PROBE_DIR = Path(__file__).parent / "images" / "cs-probe"
PROBE_TAG = "xnatsim-test/cs-probe:1"

#: the command the probe image carries in its org.nrg.commands label
PROBE_COMMAND: dict[str, Any] = {
    "name": "probe", "version": "1", "description": "Records its launch", "image": "ignored:0",
    "command-line": "--label '#LABEL#' #VERBOSE# #MODE# --call-xnat #EXTRA#",
    "override-entrypoint": False, "reserve-memory": 64, "limit-memory": 256, "limit-cpu": 0.5,
    "mounts": [{"name": "in", "path": "/input"}, {"name": "out", "path": "/output", "writable": True}],
    "environment-variables": {"PROBE_SESSION": "#session#"},
    "inputs": [
        {"name": "label", "replacement-key": "#LABEL#"},
        {"name": "verbose", "type": "boolean", "replacement-key": "#VERBOSE#", "true-value": "--verbose",
         "false-value": "", "default-value": "false"},
        {"name": "mode", "replacement-key": "#MODE#", "command-line-flag": "--mode"},
        {"name": "extra", "replacement-key": "#EXTRA#"},
    ],
    "outputs": [{"name": "record", "mount": "out", "required": True}],
    "xnat": [{
        "name": "probe-session", "description": "Probe a session", "contexts": ["xnat:imageSessionData"],
        "external-inputs": [{"name": "session", "type": "Session", "provides-files-for-command-mount": "in"}],
        "derived-inputs": [{"name": "session-label", "type": "string", "derived-from-wrapper-input": "session",
                            "derived-from-xnat-object-property": "label", "provides-value-for-command-input": "label"}],
        "output-handlers": [{"name": "record-resource", "accepts-command-output": "record",
                             "as-a-child-of": "session", "type": "Resource", "label": "PROBE"}],
    }],
}


def build_probe(base_image: str) -> str:
    """Build the probe image FROM the base with the probe command in its label; returns its tag."""
    import docker

    client = docker.from_env(timeout=300)
    client.images.build(path=str(PROBE_DIR), tag=PROBE_TAG, buildargs={"BASE": base_image}, rm=True,
                        labels={"org.nrg.commands": json.dumps([PROBE_COMMAND])})
    return PROBE_TAG


def probe_record(store: Any, project: str, session: str) -> dict[str, Any]:
    """What the probe recorded in a session's PROBE resource (``probe.json``)."""
    from xnatsim.store import Parent

    resource = store.get_resource(Parent("experiment", project, experiment_id=session), "PROBE")
    assert resource is not None
    result: dict[str, Any] = json.loads((store.resource_dir(resource) / "probe.json").read_text())
    return result


def wait_running(cs: Any, cid: int, deadline: float) -> None:
    """Until container ``cid`` of the Container Service ``cs`` runs, or ``deadline`` (monotonic)."""
    while cs.container(cid)["status"] != "Running" and time.monotonic() < deadline:
        time.sleep(0.05)


def kill_running(server: Any, http: requests.Session, cid: int) -> dict[str, Any]:
    """Kill container ``cid`` once it runs, as XNAT's UI does (``POST /xapi/containers/{id}/kill``):
    it ends ``Failed (Killed)``, all within a minute. Returns its final record."""
    cs = server.app.state["cs"]
    deadline = time.monotonic() + 60
    wait_running(cs, cid, deadline)
    assert http.post(f"{server.url}/xapi/containers/{cid}/kill").status_code == 200
    record: dict[str, Any] = cs.wait(cid, 60)
    assert record["status"] == "Failed (Killed)"
    assert time.monotonic() < deadline
    return record
