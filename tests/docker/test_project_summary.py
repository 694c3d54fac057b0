"""The project-summary image, run as XNAT and admins run it: against xnatsim on 127.0.0.1 (host
network), as an arbitrary UID with a read-only root filesystem, with and without the archive mount."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from xnatnode.reports import page_problems

pytestmark = pytest.mark.docker

KEYS = ("subjects", "sessions", "scans", "resources", "files", "bytes")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Any]]]:
    from xnatsim.testing import running_server

    from xnatsim import seed as seeder

    with running_server(tmp_path_factory.mktemp("ps-docker")) as server:
        truth = seeder.apply(server.store, "demo")["projects"]["DEMO"]
        yield server, truth


def _run(
    image: str, server: Any, out: Path, *args: str, mounts: tuple[str, ...] = (),
    out_mode: int = 0o777, out_suffix: str = "",
) -> subprocess.CompletedProcess[str]:
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(out_mode)  # the container runs as 4242, like a CS "container user"
    env = dict(os.environ, XNAT_HOST=server.url, XNAT_USER=server.user, XNAT_PASS=server.password)
    cmd = ["docker", "run", "--rm", "--network", "host", "--user", "4242:4242", "--read-only",
           "--tmpfs", "/tmp", "-e", "XNAT_HOST", "-e", "XNAT_USER", "-e", "XNAT_PASS",
           "-v", f"{out}:/output{out_suffix}", *[a for m in mounts for a in ("-v", m)], image, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, check=False)


def test_docker_run_over_rest(built_images: dict[str, str], demo: tuple[Any, dict[str, Any]], tmp_path: Path) -> None:
    server, truth = demo
    server.reset_stats()
    proc = _run(built_images["project-summary"], server, tmp_path, "project-summary", "--project", "DEMO")
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert {k: doc["totals"][k] for k in KEYS} == {k: truth[k] for k in KEYS}
    assert doc["source"]["sizes"] == "rest"
    assert doc["source"]["requests"] == int(server.stats()["requests"])
    assert (tmp_path / "summary.html").stat().st_size > 5000
    assert page_problems((tmp_path / "summary.html").read_text("utf-8")) == []  # from the layer
    assert server.password not in proc.stderr + proc.stdout


def test_docker_run_with_the_archive_mount(
    built_images: dict[str, str], demo: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    server, truth = demo
    arc = server.store.archive_dir / "DEMO" / "arc001"
    proc = _run(built_images["project-summary"], server, tmp_path, "project-summary", "--project", "DEMO",
                mounts=(f"{arc}:/input:ro",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert doc["source"]["sizes"] == "mount"
    assert {k: doc["totals"][k] for k in KEYS} == {k: truth[k] for k in KEYS}


def test_docker_run_with_an_unreadable_session_folder_on_the_mount(
    built_images: dict[str, str], demo: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    # An archive folder the container's uid may not read (mode 0700, owned by XNAT's user): that
    # session is read over REST, so the totals stay exact instead of silently short.
    import shutil

    server, truth = demo
    arc = tmp_path / "arc001"
    shutil.copytree(server.store.archive_dir / "DEMO" / "arc001", arc)
    sessions = sorted(p for p in arc.iterdir() if (p / "SCANS").is_dir())
    sessions[0].chmod(0o700)
    proc = _run(built_images["project-summary"], server, tmp_path / "out", "project-summary",
                "--project", "DEMO", mounts=(f"{arc}:/input:ro",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "were not readable by uid 4242 and were read over REST" in proc.stderr
    doc = json.loads((tmp_path / "out" / "summary.json").read_text("utf-8"))
    assert doc["source"]["sizes"] == "mount"
    assert {k: doc["totals"][k] for k in KEYS} == {k: truth[k] for k in KEYS}


def test_docker_run_unknown_project(
    built_images: dict[str, str], demo: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    proc = _run(built_images["project-summary"], demo[0], tmp_path, "project-summary", "--project", "NOPE")
    assert proc.returncode == 5, proc.stderr[-2000:]
    assert "NOPE" in proc.stderr


@pytest.mark.parametrize(("mode", "suffix"), [(0o755, ""), (0o777, ":ro")], ids=["not-owned", "read-only"])
def test_docker_run_unwritable_output_fails_at_once(
    built_images: dict[str, str], demo: tuple[Any, dict[str, Any]], tmp_path: Path, mode: int, suffix: str
) -> None:
    # /output made by root (as `docker run -v` does for a missing folder) or mounted read-only:
    # one clear line and exit 2 before any XNAT request, not a traceback after the work.
    server = demo[0]
    server.reset_stats()
    proc = _run(built_images["project-summary"], server, tmp_path, "project-summary", "--project", "DEMO",
                out_mode=mode, out_suffix=suffix)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, proc.stderr
    assert "/output is not writable by uid 4242" in errors[0]
    assert "Traceback" not in proc.stderr
    assert int(server.stats()["requests"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_image_label_is_the_command_json(
    built_images: dict[str, str], image_labels: Callable[[str], dict[str, str]], repo_dir: Path
) -> None:
    label = image_labels(built_images["project-summary"])["org.nrg.commands"]
    assert json.loads(label) == json.loads((repo_dir / "command-json" / "project-summary.json").read_text())
