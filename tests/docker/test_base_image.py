"""The images build.sh makes, run on the real Docker engine."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from xnatnode import __version__

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
#: How the Container Service and Kubernetes may run an image: some UID, nothing writable but /tmp.
LOCKED_DOWN = ("--user", "4242:4242", "--read-only", "--tmpfs", "/tmp", "--network", "none")

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_version_runs_as_any_uid_on_a_read_only_root(base_image: str, docker_run: Run) -> None:
    result = docker_run(base_image, "--version", options=LOCKED_DOWN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"xnatnode {__version__}"
    assert result.stderr == ""


def test_version_through_the_entrypoint_imports_no_re_or_typing(base_image: str, docker_run: Run) -> None:
    """The console script the ENTRYPOINT runs (rewritten by containers/base/console-scripts) and
    ``--version`` import neither ``re`` (pip's script) nor ``typing``: the start-up target of
    benchmarks/label_validation.md. Python lists every import it makes on stderr."""
    result = docker_run(base_image, "--version", options=(*LOCKED_DOWN, "-e", "PYTHONPROFILEIMPORTTIME=1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"xnatnode {__version__}\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert {"xnatnode", "xnatnode.cli"} <= imported, result.stderr
    assert not imported & {"re", "typing", "enum", "argparse", "importlib"}, result.stderr


def test_help_runs_locked_down_and_writes_nothing_outside_tmp(base_image: str, docker_run: Run) -> None:
    result = docker_run(base_image, "--help", options=LOCKED_DOWN)
    assert result.returncode == 0, result.stderr
    assert "validate-command-json" in result.stdout


def test_a_usage_error_exit_status_reaches_docker(base_image: str, docker_run: Run) -> None:
    result = docker_run(base_image, "nosuchcommand", options=LOCKED_DOWN)
    assert result.returncode == 2
    assert "invalid choice: 'nosuchcommand'" in result.stderr


def test_entrypoint_is_exec_form_xnatnode_and_user_is_not_root(
    base_image: str, image_config: Callable[[str], dict[str, object]], docker_run: Run
) -> None:
    config = image_config(base_image)
    assert config["Entrypoint"] == ["xnatnode"]
    assert config["User"] == "1000:1000"
    probe = "import os; print(os.getuid(), os.environ['HOME'], os.environ['XDG_CACHE_HOME'])"
    result = docker_run(base_image, "-c", probe, options=("--entrypoint", "python3"))
    assert result.stdout.split() == ["1000", "/tmp", "/tmp/.cache"]


def test_oci_labels(base_image: str, image_labels: Callable[[str], dict[str, str]]) -> None:
    labels = image_labels(base_image)
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.title"] == "xnatnode/base"
    assert labels["org.opencontainers.image.source"]
    assert labels["org.opencontainers.image.base.name"]
    datetime.strptime(labels["org.opencontainers.image.created"], "%Y-%m-%dT%H:%M:%SZ")
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if head:
        assert labels["org.opencontainers.image.revision"].removesuffix("-dirty") == head
    assert "org.nrg.commands" not in labels


def test_core_dependencies_only(base_image: str, docker_run: Run) -> None:
    """requests is in; xnatpy (an extra no command needs), pydicom and nibabel are not."""
    probe = ("import importlib.util as u; "
             "print([m for m in ('xnat', 'requests', 'pydicom', 'nibabel') if u.find_spec(m)])")
    result = docker_run(base_image, "-c", probe, options=("--entrypoint", "python3"))
    assert result.stdout.strip() == "['requests']", result.stderr


_FIND_COPIES = """
import hashlib, os, sys
size, digest = int(sys.argv[1]), sys.argv[2]
for root, dirs, files in os.walk("/"):
    if root == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
    for name in files:
        path = os.path.join(root, name)
        try:
            if not os.path.islink(path) and os.path.getsize(path) == size:
                with open(path, "rb") as fh:
                    if hashlib.sha256(fh.read()).hexdigest() == digest:
                        print(path)
        except OSError:
            pass
"""


def test_no_build_ca_or_pip_cache_left_in_the_image(
    base_image: str, image_labels: Callable[[str], dict[str, str]], docker_run: Run
) -> None:
    leftovers = docker_run(
        base_image, "-c",
        "ls -d /tmp/* /tmp/.[!.]* /root/.cache /build-ca.pem /tmp/build-ca.pem /opt/tools 2>/dev/null;"
        " find / -xdev \\( -name 'build-ca.pem' -o -path '*/.cache/pip' -o -name 'xnatnode-*.whl' \\) -print",
        options=("--entrypoint", "sh", "--user", "0"),
    )
    assert leftovers.stdout == ""
    # the bundle build.sh gives the build (cmd_build: these variables, then the system bundle)
    ca = next((c for c in (os.environ.get("PIP_CERT"), os.environ.get("REQUESTS_CA_BUNDLE"),
                           os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt") if c), "")
    if not Path(ca).is_file():
        pytest.skip("no CA bundle given to the build (none in the environment, no system bundle)")
    data = Path(ca).read_bytes()

    args = (str(len(data)), hashlib.sha256(data).hexdigest())
    options = ("--entrypoint", "python3", "--user", "0")
    in_image = docker_run(base_image, "-c", _FIND_COPIES, *args, options=options)
    python_base = image_labels(base_image)["org.opencontainers.image.base.name"]
    in_python_base = docker_run(python_base, "-c", _FIND_COPIES, *args, options=options)
    assert in_image.returncode == in_python_base.returncode == 0, in_image.stderr
    # A copy of the bundle may only be where the Python base image itself already has one.
    assert set(in_image.stdout.split()) <= set(in_python_base.stdout.split())


def test_command_images_carry_their_command_json(
    built_images: dict[str, str], image_labels: Callable[[str], dict[str, str]], docker_run: Run
) -> None:
    commands = {name: tag for name, tag in built_images.items() if name != "base"}
    assert commands, "no command image under containers/"
    for name, tag in commands.items():
        text = (REPO / "command-json" / f"{name}.json").read_text(encoding="utf-8")
        labels = image_labels(tag)
        assert labels["org.nrg.commands"] == text.rstrip("\n"), name
        assert all(c["image"] == tag for c in json.loads(labels["org.nrg.commands"]))
        assert labels["org.opencontainers.image.title"] == tag.rpartition(":")[0]
        assert labels["org.opencontainers.image.version"] == __version__
        result = docker_run(tag, "--version", options=LOCKED_DOWN)
        assert result.stdout.strip() == f"xnatnode {__version__}", result.stderr


def probe_tree(tmp_path: Path, dockerfile: str) -> tuple[Path, Path, str]:
    """A containers/ + command-json/ tree with the base and one command image, "probe"."""
    tag = f"xnatnode/probe:{__version__}"
    containers, jsondir = tmp_path / "containers", tmp_path / "command-json"
    shutil.copytree(REPO / "containers" / "base", containers / "base")
    (containers / "probe").mkdir()
    (containers / "probe" / "Dockerfile").write_text(dockerfile)
    wrapper = {
        "name": "probe-project", "label": "Probe", "description": "Prints the version.",
        "contexts": ["xnat:projectData"],
        "external-inputs": [{"name": "project", "label": "Project", "description": "The project",
                             "type": "Project", "required": True}],
        "derived-inputs": [], "output-handlers": [],
    }
    cmd = {
        "name": "probe", "label": "Probe", "description": "Prints the version (a test image).",
        "version": "1.0", "schema-version": "1.0", "image": tag, "type": "docker",
        "command-line": "--version", "override-entrypoint": False,
        "reserve-memory": 64, "limit-memory": 256,
        "mounts": [], "inputs": [], "outputs": [], "xnat": [wrapper],
    }
    # Quotes, a backslash and non-ASCII: the label must still carry the file byte for byte.
    text = json.dumps([cmd], indent=2, ensure_ascii=False).replace(
        '"Prints the version."', '"Prints the \\"version\\" \\\\ é ünïcode."'
    ) + "\n"
    jsondir.mkdir()
    (jsondir / "probe.json").write_text(text, encoding="utf-8")
    return containers, jsondir, text


def build_tree(containers: Path, jsondir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "build.sh"), "build", "--containers", str(containers), "--command-json", str(jsondir)],
        capture_output=True, text=True, timeout=900, check=False,
    )


@pytest.fixture
def probe_image(base_image: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A throw-away command image built by build.sh from a temporary tree; removed afterwards."""
    tag = f"xnatnode/probe:{__version__}"
    containers, jsondir, text = probe_tree(tmp_path, "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    result = build_tree(containers, jsondir)
    try:
        assert result.returncode == 0, result.stderr[-3000:]
        yield tag, text
    finally:
        subprocess.run(["docker", "image", "rm", "--force", tag], capture_output=True, timeout=120, check=False)


def test_build_puts_the_command_json_in_the_label_verbatim(
    probe_image: tuple[str, str], image_labels: Callable[[str], dict[str, str]], docker_run: Run
) -> None:
    tag, text = probe_image
    assert image_labels(tag)["org.nrg.commands"] == text.rstrip("\n")
    assert docker_run(tag, "--version", options=LOCKED_DOWN).stdout.strip() == f"xnatnode {__version__}"


def test_a_failing_docker_build_stops_with_its_output(base_image: str, tmp_path: Path) -> None:
    dockerfile = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo probe-step-output-marker && false\n"
    containers, jsondir, _ = probe_tree(tmp_path, dockerfile)
    result = build_tree(containers, jsondir)
    assert result.returncode == 1
    assert "probe-step-output-marker" in result.stderr
    assert f"docker build of xnatnode/probe:{__version__} failed" in result.stderr


def test_an_unavailable_explicit_base_image_is_an_error(docker_engine: None) -> None:
    result = subprocess.run(
        [str(REPO / "build.sh"), "build", "base", "--base-image", "xnatnode-test/no-such-python:0"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 1
    assert "base image xnatnode-test/no-such-python:0 is neither local nor pullable" in result.stderr
