"""project-summary launched the way XNAT launches it: image label → command, enabled on the site and
the project, launched on the project through xnatsim's Container Service, report uploaded as the
project resource SUMMARY."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.docker.conftest import enable_wrapper, launch_complete

pytestmark = pytest.mark.docker

KEYS = ("subjects", "sessions", "scans", "resources", "files", "bytes")


def test_launch_on_a_project_uploads_the_report(built_images: dict[str, str], tmp_path: Path) -> None:
    from xnatsim.testing import running_server

    from xnatsim import seed as seeder

    tag = built_images["project-summary"]
    with running_server(tmp_path / "data") as server:
        truth = seeder.apply(server.store, "demo")["projects"]["DEMO"]
        url = server.url
        http = server.session()
        r = http.post(f"{url}/xapi/docker/images/save", params={"image": tag}, timeout=60)
        assert r.status_code == 200, r.text
        commands = http.get(f"{url}/xapi/commands", params={"image": tag}, timeout=30).json()
        assert [c["name"] for c in commands] == ["project-summary"]
        wrapper = commands[0]["xnat"][0]
        wid = wrapper["id"]
        enable_wrapper(http, url, "DEMO", wid)
        available = http.get(f"{url}/xapi/projects/DEMO/commands/available",
                             params={"xsiType": "xnat:projectData"}, timeout=30).json()
        assert any(a.get("wrapper-id") == wid and a.get("enabled") for a in available), available

        server.reset_stats()
        _, logs = launch_complete(http, url, "DEMO", wid, "project", {"project": "/archive/projects/DEMO"},
                                  server.password)
        assert "sizes from mount" in logs or "(sizes from mount)" in logs

        rows = http.get(f"{url}/data/projects/DEMO/resources/SUMMARY/files",
                        params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]
        names = {row["Name"] for row in rows}
        assert {"summary.json", "summary.html", "sessions.csv", "xnatnode-run.json"} <= names
        summary = http.get(f"{url}/data/projects/DEMO/resources/SUMMARY/files/summary.json", timeout=30).json()
        assert {k: summary["totals"][k] for k in KEYS} == {k: truth[k] for k in KEYS}
        assert summary["source"]["sizes"] == "mount"
        run = json.loads(http.get(f"{url}/data/projects/DEMO/resources/SUMMARY/files/xnatnode-run.json",
                                  timeout=30).text)
        assert run["status"] == "ok"
        # mount mode: 3 listings + project resources + one per subject (+ sessions missing on disk)
        assert run["request_count"] <= 4 + truth["subjects"] + 2 * truth["sessions"]
