"""Fixtures for tests that build the images and run them on the real Docker engine.

Docker tests carry ``pytestmark = pytest.mark.docker`` and use the fixtures below. They run
whenever the ``CI`` environment variable is set (and fail there when Docker is unavailable);
elsewhere they skip when Docker is unavailable.

``built_images`` runs ``./build.sh build`` once per session and returns ``{name: tag}`` for the
base and every command image; ``base_image`` builds only the base (``./build.sh build base``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from xnatnode.images import BASE, command_names, image_name

REPO = Path(__file__).resolve().parents[2]
BUILD_SH = REPO / "build.sh"
#: A cold debootstrap base plus pip downloads; cached rebuilds take seconds.
BUILD_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 120


def docker_problem() -> str | None:
    """Why Docker cannot be used here, or None when the engine answers."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if info.returncode != 0:
        return f"the Docker daemon is not reachable: {info.stderr.strip()[:300]}"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Skips (fails when ``CI`` is set) unless a Docker engine answers."""
    problem = docker_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but Docker is unavailable: {problem}")
    pytest.skip(f"Docker unavailable: {problem}")


def build(*args: str) -> subprocess.CompletedProcess[str]:
    """``./build.sh build ARGS``, failing the test with the tail of its output on error."""
    result = subprocess.run(
        [str(BUILD_SH), "build", *args],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False, cwd=REPO,
    )
    if result.returncode != 0:
        pytest.fail(
            f"./build.sh build {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


@pytest.fixture(scope="session")
def base_image(docker_engine: None) -> str:
    """Tag of ``xnatnode/base:<version>``, built once per session."""
    build(BASE)
    return image_name(BASE)


@pytest.fixture(scope="session")
def built_images(base_image: str) -> dict[str, str]:
    """``{name: tag}`` of the base (``"base"``) and every command image, built once."""
    build()
    return {BASE: base_image, **{name: image_name(name) for name in command_names(REPO / "containers")}}


def _docker_run(
    image: str, *args: str, options: Sequence[str] = (), timeout: float = RUN_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """``docker run --rm [OPTIONS] IMAGE ARGS`` with its output captured (never raises on status)."""
    return subprocess.run(
        ["docker", "run", "--rm", *options, image, *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def _image_config(image: str) -> dict[str, object]:
    """The ``Config`` part of ``docker image inspect``."""
    out = subprocess.run(
        ["docker", "image", "inspect", image],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    config: dict[str, object] = json.loads(out)[0]["Config"]
    return config


def _image_labels(image: str) -> dict[str, str]:
    labels = _image_config(image).get("Labels") or {}
    assert isinstance(labels, dict)
    return {str(k): str(v) for k, v in labels.items()}


@pytest.fixture(scope="session")
def docker_run() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``docker_run(image, *args, options=(...), timeout=...)``: ``docker run --rm``, output captured."""
    return _docker_run


@pytest.fixture(scope="session")
def image_config() -> Callable[[str], dict[str, object]]:
    """``image_config(image)``: the ``Config`` part of ``docker image inspect``."""
    return _image_config


@pytest.fixture(scope="session")
def image_labels() -> Callable[[str], dict[str, str]]:
    """``image_labels(image)``: the image's labels."""
    return _image_labels


#: Container statuses after which nothing changes.
TERMINAL = ("Complete", "Failed", "Killed")


def wait_for_container(http: Any, url: str, container_id: Any, timeout: float = 300) -> dict[str, Any]:
    """Poll xnatsim's ``/xapi/containers/ID`` until the container is terminal; its record."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = http.get(f"{url}/xapi/containers/{container_id}", timeout=30).json()
        if str(doc.get("status", "")).startswith(TERMINAL):
            return doc
        if time.monotonic() > deadline:
            pytest.fail(f"container {container_id} still {doc.get('status')!r} after {timeout} s")
        time.sleep(0.5)


def enable_wrapper(http: Any, url: str, project: str, wid: Any) -> None:
    """Enable wrapper ``wid`` on the site and on ``project`` (as an admin does before a launch)."""
    for path in (f"/xapi/wrappers/{wid}/enabled", f"/xapi/projects/{project}/wrappers/{wid}/enabled"):
        assert http.put(url + path, timeout=30).status_code == 200


def launch_complete(http: Any, url: str, project: str, wid: Any, root: str, inputs: dict[str, str],
                    secret: str) -> tuple[dict[str, Any], str]:
    """Launch wrapper ``wid`` on ``project`` with ``inputs`` (``root`` names the context input), wait
    until it ends, check it is Complete and that ``secret`` is not in its log; (record, stderr)."""
    r = http.post(f"{url}/xapi/projects/{project}/wrappers/{wid}/root/{root}/launch", json=inputs, timeout=60)
    assert r.status_code == 200, r.text
    launched = r.json()
    assert launched["status"] == "success", launched
    doc = wait_for_container(http, url, launched["container-id"])
    logs: str = http.get(f"{url}/xapi/containers/{launched['container-id']}/logs/stderr", timeout=30).text
    assert doc["status"].startswith("Complete"), f"{doc['status']}\n{logs[-3000:]}"
    assert secret not in logs
    return doc, logs
