"""Every image run as XNAT's Kubernetes backend runs it (reference container-service-swarm-k8s §4).

A Job's pod has ``securityContext.runAsUser`` = the numeric container user and no group (Docker's
``--user UID`` alone gives the same: no group of its own, gid 0), the command line shell-split and
passed as arguments to the image's entrypoint (``override-entrypoint`` false), and one log with
stdout and stderr merged. The root filesystem is made read-only here with no writable /tmp
either (a site may set ``readOnlyRootFilesystem``; XNAT adds no emptyDir), the strictest case.
Images and commands are discovered from containers/ and command-json/.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from xnatnode.images import BASE, command_names, image_name

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
NAMES = command_names(REPO / "containers")
#: Any UID the site picks; not 1000 (the images' own user), not in /etc/passwd.
UID = "54321"
#: Exit statuses the commands document (xnatnode.runtime.ExitCode).
DOCUMENTED = {0, 1, 2, 3, 4, 5, 6}


def pod_run(
    image: str, args: Sequence[str], *, env: dict[str, str] | None = None,
    volumes: Sequence[str] = (), network: str = "none",
) -> tuple[int, str]:
    """``docker run`` as a Kubernetes Job's pod would run ``image``: exit code and merged log."""
    env = env or {}
    cmd = ["docker", "run", "--rm", "--user", UID, "--read-only", "--network", network,
           *[a for name in env for a in ("-e", name)], *[a for v in volumes for a in ("-v", v)],
           image, *args]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300, check=False, env={**os.environ, **env})
    return proc.returncode, proc.stdout


def command_line(command: dict[str, Any], values: dict[str, str]) -> list[str]:
    """The command line as XNAT resolves it (each input's flag and value, else its default;
    xnatsim's copy of XNAT's rules B.4), then split by XNAT's tokenizer (ShellSplitter, B.5:
    an empty quoted value makes no argument), as the Kubernetes backend passes it."""
    from xnatsim.cs.templates import render_value, shell_split, substitute

    rendered = {}
    for item in command.get("inputs", []):
        value = values.get(item["name"], item.get("default-value"))
        if value is None and item.get("required"):
            value = "k8s-probe"
        if item.get("type") == "boolean":  # XNAT puts the JSON's true-value or false-value
            is_true = (value or "").strip().lower() == "true"
            mapped = item.get("true-value") if is_true else item.get("false-value")
            value = mapped if mapped is not None else value
        rendered[item.get("replacement-key") or f"#{item['name']}#"] = render_value(
            value, flag=item.get("command-line-flag"), separator=item.get("command-line-separator"),
        )
    return shell_split(substitute(str(command["command-line"]), rendered))


def _commands() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in NAMES:
        for command in json.loads((REPO / "command-json" / f"{name}.json").read_text("utf-8")):
            yield name, command


@pytest.mark.parametrize("name", [BASE, *NAMES])
def test_each_image_starts_as_any_uid_with_no_group_on_a_read_only_root(
    built_images: dict[str, str], name: str
) -> None:
    status, log = pod_run(built_images[name], ["--version"])
    assert status == 0, log
    assert log.strip().endswith(image_name(name).rpartition(":")[2])


@pytest.mark.parametrize(
    ("name", "command"), [pytest.param(n, c, id=f"{n}:{c['name']}") for n, c in _commands()]
)
def test_each_command_line_shell_split_reaches_the_entrypoint(
    built_images: dict[str, str], name: str, command: dict[str, Any]
) -> None:
    """Every word the command JSON puts on the line is one the program accepts: with XNAT
    unreachable the command stops with a documented status and one clear line, no traceback."""
    assert command.get("override-entrypoint") is False
    env = {"XNAT_HOST": "http://127.0.0.1:9", "XNAT_USER": "k8s", "XNAT_PASS": "k8s-Secret-1"}
    status, log = pod_run(built_images[name], command_line(command, {}), env=env)
    assert status in DOCUMENTED - {0}, log
    assert "Traceback" not in log
    assert "unrecognized arguments" not in log, log
    assert "invalid choice" not in log, log
    assert "k8s-Secret-1" not in log


def test_project_summary_completes_as_a_kubernetes_job(
    built_images: dict[str, str], tmp_path: Path
) -> None:
    """hostPath-style mounts (archive read-only, build folder for /output), merged log."""
    from xnatsim.testing import running_server

    from xnatsim import seed as seeder

    (command,) = json.loads((REPO / "command-json" / "project-summary.json").read_text("utf-8"))
    output = tmp_path / "build"
    output.mkdir()
    output.chmod(0o777)  # the build folder XNAT made, writable by the container user
    with running_server(tmp_path / "xnat") as server:
        truth = seeder.apply(server.store, "demo")["projects"]["DEMO"]
        archive = server.store.archive_dir / "DEMO" / "arc001"
        env = {"XNAT_HOST": server.url, "XNAT_USER": server.user, "XNAT_PASS": server.password}
        status, log = pod_run(
            built_images["project-summary"], command_line(command, {"project-id": "DEMO"}),
            env=env, volumes=(f"{archive}:/input:ro", f"{output}:/output"), network="host",
        )
    assert status == 0, log
    summary = json.loads((output / "summary.json").read_text("utf-8"))
    assert summary["totals"]["sessions"] == truth["sessions"]
    assert (output / "summary.json").stat().st_uid == int(UID)
    assert server.password not in log
