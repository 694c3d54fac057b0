"""The nifti-import image run as sites and XNAT run it: ``docker run`` with the batch mounted
read-only at /input (any UID, read-only root), and Container Service launches through xnatsim on a
project (batch in the project resource NIFTI_UPLOAD) and on a session (its NIFTI_UPLOAD resource),
the report coming back as the IMPORT_REPORT resource."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from xnatnode.reports import page_problems
from xnatsim.testing import Api, Server, running_server

from tests.docker.conftest import enable_wrapper, launch_complete
from tests.nifti_batches import bids_batch, write_image
from tests.zips import zip_folder

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("ni-docker")) as found:
        yield found


def _run(image: str, server: Server, out: Path, *args: str, mounts: tuple[str, ...] = (),
         entrypoint: str | None = None) -> subprocess.CompletedProcess[str]:
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o777)
    env = dict(os.environ, XNAT_HOST=server.url, XNAT_USER=server.user, XNAT_PASS=server.password)
    cmd = ["docker", "run", "--rm", "--network", "host", "--user", "4242:4242", "--read-only",
           "--tmpfs", "/tmp", "-e", "XNAT_HOST", "-e", "XNAT_USER", "-e", "XNAT_PASS",
           "-v", f"{out}:/output", *[a for m in mounts for a in ("-v", m)],
           *(["--entrypoint", entrypoint] if entrypoint else []), image, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)


def test_nibabel_and_pandas_only_in_this_image(built_images: dict[str, str], server: Server, tmp_path: Path) -> None:
    probe = "import nibabel, pandas; print(nibabel.__version__, pandas.__version__)"
    assert _run(built_images["nifti-import"], server, tmp_path, "-c", probe, entrypoint="python").returncode == 0
    assert _run(built_images["base"], server, tmp_path, "-c", "import nibabel", entrypoint="python").returncode != 0


def test_docker_run_with_the_batch_mounted(built_images: dict[str, str], server: Server, tmp_path: Path) -> None:
    api = Api(server)
    project = api.new_project("ND")
    batch = tmp_path / "batch"
    bids_batch(batch, subjects=("01", "02"))
    batch.chmod(0o755)
    image = built_images["nifti-import"]
    proc = _run(image, server, tmp_path / "out", "nifti-import", "--project", project, mounts=(f"{batch}:/input:ro",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.password not in proc.stderr + proc.stdout
    assert "MB/s" in proc.stderr
    report = json.loads((tmp_path / "out" / "import-report.json").read_text())
    assert report["totals"]["imported"] == 22
    html = (tmp_path / "out" / "import-report.html").read_text()
    assert page_problems(html) == []
    server.reset_stats()
    again = _run(image, server, tmp_path / "out2", "nifti-import", "--project", project,
                 mounts=(f"{batch}:/input:ro",))
    assert again.returncode == 0, again.stderr[-3000:]
    assert not [r for r in server.stats()["routes"] if r.startswith(("PUT", "POST", "DELETE"))]


def _launch(http: requests.Session, server: Server, project: str, wid: Any, root: str, value: str) -> dict[str, Any]:
    enable_wrapper(http, server.url, project, wid)
    return launch_complete(http, server.url, project, wid, root, {root: value}, server.password)[0]


def test_container_service_launch_on_a_project_and_on_a_session(
        built_images: dict[str, str], server: Server, tmp_path: Path) -> None:
    tag = built_images["nifti-import"]
    api = Api(server)
    url = server.url
    http = server.session()
    project = api.new_project("NCS")
    bids_batch(tmp_path / "batch", subjects=("01",))
    zipped = zip_folder(tmp_path / "batch", tmp_path / "batch.zip")
    r = api.put(f"/data/projects/{project}/resources/NIFTI_UPLOAD/files/batch.zip", params={"extract": "true"},
                data=zipped.read_bytes())
    assert r.status_code == 200
    assert http.post(f"{url}/xapi/docker/images/save", params={"image": tag}, timeout=60).status_code == 200
    commands = http.get(f"{url}/xapi/commands", params={"image": tag}, timeout=30).json()
    wrappers = {w["name"]: w["id"] for w in commands[0]["xnat"]}

    _launch(http, server, project, wrappers["nifti-import-project"], "project", f"/archive/projects/{project}")
    rows = api.get(f"/data/projects/{project}/resources/IMPORT_REPORT/files", params={"format": "json"}).json()
    names = {row["Name"] for row in rows["ResultSet"]["Result"]}
    assert {"import-report.json", "import-report.csv", "import-report.html", "xnatnode-run.json"} <= names
    report = api.get(f"/data/projects/{project}/resources/IMPORT_REPORT/files/import-report.json").json()
    assert report["totals"]["imported"] == 11
    sessions = api.get(f"/data/projects/{project}/experiments", params={"format": "json"}).json()["ResultSet"]["Result"]
    (session,) = sessions
    assert session["label"] == "01_v1_mr"

    # a session launch: NIfTI files in the session's NIFTI_UPLOAD resource become its scans
    write_image(tmp_path / "extra" / "T2 axial.nii.gz", seed=9)
    extra = zip_folder(tmp_path / "extra", tmp_path / "extra.zip")
    base = f"/data/projects/{project}/subjects/01/experiments/01_v1_mr"
    assert api.put(base + "/resources/NIFTI_UPLOAD/files/x.zip", params={"extract": "true"},
                   data=extra.read_bytes()).status_code == 200
    _launch(http, server, project, wrappers["nifti-import-session"], "session", f"/archive/experiments/{session['ID']}")
    scans = api.get(base + "/scans", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert {s["ID"]: s["type"] for s in scans}["5"] == "T2 axial"
    report = api.get(base + "/resources/IMPORT_REPORT/files/import-report.json").json()
    assert (report["session"], report["totals"]["imported"]) == ("01_v1_mr", 1)
