"""build.sh without images: argument handling, command JSON checks, clear errors, register.

These run without Docker (they stop before it, or fake it); the image builds are tested in
test_base_image.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from xnatnode.images import image_name

REPO = Path(__file__).resolve().parents[2]
BUILD_SH = REPO / "build.sh"


def build_sh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUILD_SH), *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
    )


def command(name: str, image: str) -> dict[str, Any]:
    return {"name": name, "version": "1.0", "image": image, "type": "docker", "command-line": "--version"}


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A containers/ dir holding a copy of the base folder, and an empty command-json/ dir."""
    containers, jsondir = tmp_path / "containers", tmp_path / "command-json"
    shutil.copytree(REPO / "containers" / "base", containers / "base")
    jsondir.mkdir()
    return containers, jsondir


def build_tree(tree: tuple[Path, Path], *args: str) -> subprocess.CompletedProcess[str]:
    containers, jsondir = tree
    return build_sh("build", "--containers", str(containers), "--command-json", str(jsondir), *args)


def test_help_lists_every_subcommand() -> None:
    result = build_sh("--help")
    assert result.returncode == 0
    for word in ("build", "test", "demo", "register", "--base-image", "--ca-bundle"):
        assert word in result.stdout


def test_unknown_option_is_refused() -> None:
    result = build_sh("build", "--no-such-option")
    assert result.returncode == 1
    assert "unknown build option: --no-such-option" in result.stderr


def test_image_folder_without_command_json_fails(tree: tuple[Path, Path]) -> None:
    (tree[0] / "orphan").mkdir()
    (tree[0] / "orphan" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    result = build_tree(tree)
    assert result.returncode == 1
    assert "containers/orphan/ has no command JSON" in result.stderr


def test_command_json_without_image_folder_fails(tree: tuple[Path, Path]) -> None:
    (tree[1] / "stray.json").write_text(json.dumps([command("stray", "xnatnode/stray:1")]))
    result = build_tree(tree)
    assert result.returncode == 1
    assert "stray.json has no image folder" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "not valid JSON"),
        (json.dumps(command("probe", image_name("probe"))), "must be a non-empty JSON array"),
        ("[]", "must be a non-empty JSON array"),
        (json.dumps([command("probe", "xnatnode/probe:latest")]), "has image 'xnatnode/probe:latest'"),
    ],
)
def test_bad_command_json_stops_the_build(tree: tuple[Path, Path], content: str, message: str) -> None:
    (tree[0] / "probe").mkdir()
    (tree[1] / "probe.json").write_text(content)
    result = build_tree(tree)
    assert result.returncode == 1
    assert message in result.stderr


def test_a_missing_docker_is_reported(tree: tuple[Path, Path], tmp_path: Path) -> None:
    # Every program on PATH but docker (a machine without Docker installed).
    bare = tmp_path / "bin"
    bare.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir():
            continue
        for program in Path(folder).iterdir():
            link = bare / program.name
            if not program.name.startswith("docker") and not link.exists():
                link.symlink_to(program)
    containers, jsondir = tree
    result = build_sh(
        "build", "--containers", str(containers), "--command-json", str(jsondir), "base",
        env={"PATH": str(bare)},
    )
    assert result.returncode == 1, result.stderr
    assert "docker is not installed" in result.stderr


def test_a_stopped_docker_daemon_is_reported(tree: tuple[Path, Path], tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2\nexit 1\n"
    )
    (fake / "docker").chmod(0o755)
    containers, jsondir = tree
    result = build_sh(
        "build", "--containers", str(containers), "--command-json", str(jsondir), "base",
        env={"PATH": f"{fake}:{os.environ['PATH']}"},
    )
    assert result.returncode == 1
    assert "the Docker daemon is not reachable" in result.stderr
    assert "Cannot connect to the Docker daemon" in result.stderr


def test_scripts_pass_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        if os.environ.get("CI"):
            pytest.fail("shellcheck is required when CI is set (./build.sh setup installs it)")
        pytest.skip("shellcheck is not installed (.ci/run installs it)")
    result = subprocess.run(
        ["shellcheck", str(BUILD_SH), str(REPO / ".ci" / "run")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout


# --- register: build.sh hands over to "xnatnode register" (tests/sim/test_register.py) -------


def test_register_passes_its_options_to_xnatnode_register(tmp_path: Path) -> None:
    from xnatsim.testing import running_server

    (tmp_path / "probe.json").write_text(json.dumps([command("probe", "xnatnode/probe:1")]))
    with running_server(tmp_path / "xnat") as server:
        result = build_sh(
            "register", "--xnat", server.url, "--user", server.user, "--command-json",
            str(tmp_path), "--timeout", "20", env={"XNAT_PASS": server.password},
        )
    assert result.returncode == 0, result.stderr
    assert "registered probe 1.0 (xnatnode/probe:1): id " in result.stdout
    assert server.password not in result.stdout + result.stderr


def test_register_never_takes_the_password_from_argv(tmp_path: Path) -> None:
    result = build_sh("register", "--xnat", "http://127.0.0.1:9", "--password", "x")
    assert result.returncode == 1
    assert "never taken from the command line" in result.stderr


def test_a_missing_ca_bundle_is_refused() -> None:
    result = build_sh("build", "base", "--ca-bundle", "/nonexistent/ca.pem")
    assert result.returncode == 1
    assert "CA bundle /nonexistent/ca.pem does not exist" in result.stderr
