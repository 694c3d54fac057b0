"""dicom-upload in its image: ``docker run`` next to the deep storage (C-STORE into xnatsim's
receiver), and a Container Service launch on a project whose DICOM_UPLOAD resource holds the
batch (zips plus the CSV), report uploaded as DICOM_UPLOAD_REPORT."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.docker.conftest import enable_wrapper, launch_complete
from tests.sim import dicom_data as dd
from tests.zips import zip_folder

pytestmark = pytest.mark.docker


def test_docker_run_next_to_the_deep_storage(built_images: dict[str, str], tmp_path: Path,
                                             docker_run: Callable[..., Any]) -> None:
    from xnatsim.testing import Api, running_server

    deep = tmp_path / "deepstore"
    dd.session(deep / "p1", "STUDY_DR1", "P1", {"1": 3, "2": 2})
    dd.session(deep / "p2", "STUDY_DR2", "P2", {"4": 2}, modality="CT", syntax=dd.IMPLICIT)
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    os.chmod(tmp_path, 0o755)
    with running_server(tmp_path / "data", fetch_schemas=False, dicom_port=0, session_idle_seconds=0.5) as server:
        api = Api(server)
        project = api.new_project("DKR")
        port = api.get("/xapi/dicomscp").json()[0]["port"]
        dd.write_csv(deep / "map.csv", [("p1", project, "P1", "P1_MR1"), ("p2", project, "P2", "P2_CT1")])
        result = docker_run(
            built_images["dicom-upload"], "dicom-upload", "--csv", "/input/map.csv", "--dicom-port", str(port),
            "--verify-timeout", "60",
            options=["--network", "host", "--user", "4242:4242", "--read-only", "--tmpfs", "/tmp",
                     "-v", f"{deep}:/input:ro", "-v", f"{out}:/output",
                     "-e", f"XNAT_HOST={server.url}", "-e", f"XNAT_USER={server.user}",
                     "-e", f"XNAT_PASS={server.password}"],
            timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert server.password not in result.stderr
        report = json.loads((out / "upload-report.json").read_text())
        assert report["totals"]["verified"] == 2
        exp = server.store.get_experiment("P2_CT1", project)
        assert exp is not None
        assert exp.xsi_type == "xnat:ctSessionData"
        assert (out / "upload-report.html").is_file()


def test_container_service_launch_on_a_project(built_images: dict[str, str], tmp_path: Path) -> None:
    from xnatsim.testing import running_server

    tag = built_images["dicom-upload"]
    batch = tmp_path / "batch"
    dd.session(batch / "a", "STUDY_CS1", "A", {"1": 2, "2": 1})
    dd.session(batch / "b", "STUDY_CS2", "B", {"3": 2})
    dd.session(batch / "c", "STUDY_CS3", "C", {"1": 1})
    for name in ("a", "b", "c"):
        zip_folder(batch / name, tmp_path / f"{name}.zip")
    with running_server(tmp_path / "data", dicom_port=0, session_idle_seconds=0.5) as server:
        url = server.url
        http = server.session()
        project = "CSDU"
        assert http.put(f"{url}/data/projects/{project}", params={"xsiType": "xnat:projectData"},
                        timeout=30).status_code == 200
        # the empty project cell takes the launch's project (--project from the wrapper's context)
        csv = dd.write_csv(tmp_path / "map.csv", [("a.zip", project, "A", "A_MR1"), ("b.zip", project, "B", "B_MR1"),
                                                  ("c.zip", "", "C", "C_MR1")])
        dd.upload_batch(http, url, project, (csv, tmp_path / "a.zip", tmp_path / "b.zip", tmp_path / "c.zip"))
        r = http.post(f"{url}/xapi/docker/images/save", params={"image": tag}, timeout=60)
        assert r.status_code == 200, r.text
        commands = http.get(f"{url}/xapi/commands", params={"image": tag}, timeout=30).json()
        wrapper = commands[0]["xnat"][0]
        wid = wrapper["id"]
        enable_wrapper(http, url, project, wid)
        port = http.get(f"{url}/xapi/dicomscp", timeout=30).json()[0]["port"]
        doc, _ = launch_complete(http, url, project, wid, "project",
                                 {"project": f"/archive/projects/{project}", "via": "cstore", "dicom-port": str(port),
                                  "verify-timeout": "120"}, server.password)
        assert f"--project={project}" in doc["command-line"]
        rows = http.get(f"{url}/data/projects/{project}/resources/DICOM_UPLOAD_REPORT/files",
                        params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]
        assert {"upload-report.json", "upload-report.csv", "upload-report.html"} <= {row["Name"] for row in rows}
        report = http.get(f"{url}/data/projects/{project}/resources/DICOM_UPLOAD_REPORT/files/upload-report.json",
                          timeout=30).json()
        assert report["totals"]["verified"] == 3, report["rows"]
        assert report["settings"]["project"] == project
        for session in ("A_MR1", "B_MR1", "C_MR1"):
            assert server.store.get_experiment(session, project) is not None
