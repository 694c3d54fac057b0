"""label-validation as XNAT runs it: the image with ``docker run``, a project launch through
xnatsim's Container Service, and the on-archive path (Event Service on, ``xnatnode subscribe``,
a session created empty over REST with a bad label and one archived from DICOM with a good
label): the LABEL_CHECK resource appears on each session with the right verdict."""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from xnatsim.testing import Server, running_server

from tests.docker.conftest import build, enable_wrapper, launch_complete, wait_for_container
from tests.sim.label_data import CONVENTION, SESSIONS, build_project

pytestmark = pytest.mark.docker

NAME = "label-validation"


@pytest.fixture(scope="module")
def image(docker_engine: None) -> str:
    """``xnatnode/label-validation:<version>``, built from this tree once per module."""
    from xnatnode.images import image_name

    build(NAME)
    return image_name(NAME)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory, image: str) -> Iterator[tuple[Server, requests.Session, int, int]]:
    """xnatsim with project LVD (good and bad labels), the image's command added and both wrappers
    enabled on the site and LVD: (server, http, session wrapper ID, project wrapper ID)."""
    with running_server(tmp_path_factory.mktemp("lv-docker")) as server:
        http = server.session()
        build_project(http, server.url, "LVD")
        r = http.post(f"{server.url}/xapi/docker/images/save", params={"image": image}, timeout=60)
        assert r.status_code == 200, r.text
        (command,) = http.get(f"{server.url}/xapi/commands", params={"image": image}, timeout=30).json()
        wrappers = {w["name"]: int(w["id"]) for w in command["xnat"]}
        for wid in wrappers.values():
            enable_wrapper(http, server.url, "LVD", wid)
        yield server, http, wrappers["label-validation-session"], wrappers["label-validation-project"]


def _findings(http: requests.Session, url: str, parent: str) -> dict[str, Any]:
    r = http.get(f"{url}{parent}/resources/LABEL_CHECK/files/findings.json", timeout=30)
    assert r.status_code == 200, (parent, r.status_code, r.text[:300])
    doc: dict[str, Any] = r.json()
    return doc


def test_version_runs_as_any_user_on_a_read_only_root(image: str) -> None:
    proc = subprocess.run(["docker", "run", "--rm", "--user", "4242:4242", "--read-only", "--tmpfs", "/tmp",
                           image, "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("xnatnode ")
    # the image holds the labels extra and nothing heavier
    probe = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "python", image, "-c",
         "import importlib.util as u; print([m for m in ('yaml', 'jsonschema', 'pydicom', 'nibabel', 'numpy', "
         "'pandas', 'xnat') if u.find_spec(m)])"],
        capture_output=True, text=True, timeout=120, check=False)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "['yaml', 'jsonschema', 'pydicom']"


def test_docker_run_on_a_mounted_session(image: str, sim: tuple[Server, requests.Session, int, int],
                                         tmp_path: Path) -> None:
    server = sim[0]
    bad = next(s for s in SESSIONS if s.label == "sub002_baseline_mr")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    mount = server.store.archive_dir / "LVD" / "arc001" / bad.label
    env = dict(os.environ, XNAT_HOST=server.url, XNAT_USER=server.user, XNAT_PASS=server.password)
    server.reset_stats()
    proc = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", "--user", "4242:4242", "--read-only", "--tmpfs", "/tmp",
         "-e", "XNAT_HOST", "-e", "XNAT_USER", "-e", "XNAT_PASS", "-v", f"{mount}:/input:ro",
         "-v", f"{out}:/output", image, NAME, "--project", "LVD", "--session", bad.label, "--fail-on", "error"],
        capture_output=True, text=True, timeout=180, env=env, check=False)
    assert proc.returncode == 6, proc.stderr[-3000:]  # fail-on error, and the report is still written
    doc = json.loads((out / "findings.json").read_text("utf-8"))
    assert {f["rule"] for f in doc["findings"]} == bad.expect
    assert doc["session"]["header_source"] == "mount"
    assert int(server.stats()["requests"]) <= 5
    assert server.password not in proc.stderr + proc.stdout


def test_project_launch_uploads_label_check(sim: tuple[Server, requests.Session, int, int]) -> None:
    server, http, _session_wid, project_wid = sim
    url = server.url
    launch_complete(http, url, "LVD", project_wid, "project", {"project": "/archive/projects/LVD"}, server.password)
    findings = _findings(http, url, "/data/projects/LVD")
    assert findings["context"] == "project"
    assert findings["verdict"] == "fail"
    assert findings["headers"]["sources"]["mount"] >= 5  # the project archive was mounted
    assert findings["source"]["requests"] <= 5
    names = {row["Name"] for row in http.get(f"{url}/data/projects/LVD/resources/LABEL_CHECK/files",
                                             params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]}
    assert {"findings.json", "findings.csv", "findings.html", "xnatnode-run.json"} <= names


def _dicom_zip(project: str, subject: str, session: str) -> bytes:
    from xnatsim import synth

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for scan, description in (("1", "T1w"), ("2", "T2w")):
            labels = synth.DicomLabels(project, subject, session, scan, description, "MR", "2024-03-04")
            zf.writestr(f"{scan}.dcm", synth.dicom_bytes(labels))
    return buf.getvalue()


def test_on_archive_bad_and_good_labels(sim: tuple[Server, requests.Session, int, int],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from xnatnode.cli import main

    server, http, session_wid, _project_wid = sim
    url = server.url
    # a fresh project with the convention, then `xnatnode subscribe` (turns the Event Service on)
    build_project(http, url, "LVE", sessions=[], subjects=("sub001",), convention=CONVENTION)
    monkeypatch.setenv("XNAT_HOST", url)
    monkeypatch.setenv("XNAT_USER", server.user)
    monkeypatch.setenv("XNAT_PASS", server.password)
    assert main(["subscribe", "--project", "LVE", "--wrapper", str(session_wid)]) == 0
    assert http.get(f"{url}/xapi/events/prefs", timeout=30).json() == {"enabled": True}

    # bad: created empty over REST (visit m99 is not allowed; an empty session fires SessionEvent
    # CREATED too); good: archived from DICOM (a label no other project uses: the convention asks
    # for site-wide uniqueness)
    r = http.put(f"{url}/data/projects/LVE/subjects/sub001/experiments/sub001_m99_mr",
                 params={"xsiType": "xnat:mrSessionData", "date": "2024-03-04"}, timeout=30)
    assert r.status_code in (200, 201), r.text
    r = http.post(f"{url}/data/services/import", params={"dest": "/archive"},
                  data=_dicom_zip("LVE", "sub001", "sub001_m12_mr"),
                  headers={"Content-Type": "application/zip"}, timeout=60)
    assert r.status_code == 200, r.text
    assert server.app is not None
    assert server.app.state["events"].wait_idle(60)
    delivered = http.get(f"{url}/xapi/projects/LVE/events/delivered", timeout=30).json()
    by_label = {d["trigger"]["label"]: d for d in delivered}
    assert set(by_label) == {"sub001_m99_mr", "sub001_m12_mr"}
    for label, delivery in by_label.items():
        assert delivery["status-history"][-1]["status"] == "ACTION_COMPLETE", delivery
        doc = wait_for_container(http, url, delivery["container-id"])
        logs = http.get(f"{url}/xapi/containers/{delivery['container-id']}/logs/stderr", timeout=30).text
        assert doc["status"].startswith("Complete"), f"{label}: {doc['status']}\n{logs[-3000:]}"

    bad = _findings(http, url, "/data/projects/LVE/experiments/sub001_m99_mr")
    assert bad["verdict"] == "fail"
    assert [f["rule"] for f in bad["findings"]] == ["session-field"]
    assert bad["session"]["scans"] == 0
    assert any("without scans" in n for n in bad["notes"])  # the empty-session behaviour
    good = _findings(http, url, "/data/projects/LVE/experiments/sub001_m12_mr")
    assert good["verdict"] == "pass", good["findings"]
    assert good["session"]["header_source"] == "mount"
    assert good["checked"]["dicom_series"] == 2
    for doc in (bad, good):
        assert doc["source"]["requests"] <= 5
