"""Launch overhead of xnatsim's Container Service on Docker Swarm, and the wall time of the Swarm tests.

1. A no-op container (the cs-probe test image with ``--no-output``), sequential runs:
   * ``docker service create`` of the same image directly (``--restart-condition none``,
     ``--no-resolve-image``, host network, the image by id as xnatsim gives it), timed until its task
     is ``complete`` (polled every 0.05 s), then removed;
   * xnatsim's launch route on the Swarm backend, from ``POST …/launch`` to the terminal status
     (create with 0 replicas, scale to 1, task polling, logs, finalization, service removal);
   * the same route on the plain Docker backend, for reference.
   The phases of the Swarm launches come from their history timestamps.
2. ``pytest -m docker tests/docker/test_cs_swarm.py`` (its own swarm, images already built), per test.

Run under the docker lock on an engine that is in no swarm: ``.venv/bin/python benchmarks/cs_swarm.py``.
Writes benchmarks/cs_swarm.md.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import requests
from cs_launch import NOOP, PROBE_DIR, PROBE_TAG, REPO  # the same probe image and no-op command
from xnatnode.images import BASE, image_name
from xnatsim.cs.sample import add_sessions
from xnatsim.cs.swarm import join_local_swarm, leave_local_swarm
from xnatsim.testing import running_server


def _until_task_ends(client: Any, name: str, t0: float) -> float:
    """Seconds since ``t0`` until the service's task ends (polled every 0.05 s); the service is removed."""
    while True:
        tasks = client.api.tasks(filters={"service": name})
        state = tasks[0]["Status"]["State"] if tasks else ""
        if state in ("complete", "failed", "rejected", "shutdown"):
            elapsed = time.perf_counter() - t0
            break
        time.sleep(0.05)
    client.api.remove_service(name)
    if state != "complete":
        raise RuntimeError(f"service {name} ended {state}")
    return elapsed


def direct_service(client: Any, image_id: str, name: str) -> float:
    """Seconds from ``docker service create`` until the task is complete (the service then removed)."""
    t0 = time.perf_counter()
    subprocess.run(["docker", "service", "create", "--detach", "--quiet", "--name", name, "--restart-condition",
                    "none", "--no-resolve-image", "--network", "host", image_id, "--no-output"],
                   check=True, capture_output=True, timeout=120)
    return _until_task_ends(client, name, t0)


def sdk_service(client: Any, image_id: str, name: str) -> float:
    """The same through the Docker SDK (no CLI start-up): one ``create_service`` with 1 replica."""
    import docker.types

    t0 = time.perf_counter()
    template = docker.types.TaskTemplate(
        container_spec=docker.types.ContainerSpec(image=image_id, args=["--no-output"]),
        restart_policy=docker.types.RestartPolicy(condition="none"), networks=["host"])
    client.api.create_service(template, name=name)
    return _until_task_ends(client, name, t0)


def launch_many(server: Any, http: requests.Session, wid: int, sessions: list[str], runs: int) -> list[Any]:
    """(seconds, record) of ``runs`` sequential launches through the route."""
    cs = server.app.state["cs"]
    out = []
    for i in range(runs):
        t0 = time.perf_counter()
        r = http.post(f"{server.url}/xapi/projects/BENCH/wrappers/{wid}/root/session/launch",
                      json={"session": f"/archive/experiments/{sessions[i % len(sessions)]}"})
        record = cs.wait(int(r.json()["container-id"]), 120)
        out.append((time.perf_counter() - t0, record))
        if record["status"] != "Complete":
            raise RuntimeError(f"launch ended {record['status']}: {record['history'][-1]}")
    return out


def phases(record: dict[str, Any]) -> dict[str, float]:
    """Seconds between history steps of a Swarm launch."""
    at: dict[str, int] = {}
    for item in record["history"]:
        at.setdefault(item["status"], item["time-recorded"])
    marks = [("Queued", "Created"), ("Created", "running"), ("running", "complete"), ("complete", "Complete")]
    return {f"{a} → {b}": (at[b] - at[a]) / 1000 for a, b in marks if a in at and b in at}


def row(name: str, values: list[float]) -> str:
    return (f"| {name} | {len(values)} | {statistics.median(values):.3f} | {min(values):.3f} | "
            f"{max(values):.3f} |")


def swarm_tests() -> tuple[float, list[tuple[str, float]], str]:
    """Wall time of the Swarm docker tests, their per-test durations and pytest's summary line."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "docker", "-q", "-p", "no:cacheprovider",
                           "--durations=0", "tests/docker/test_cs_swarm.py"],
                          capture_output=True, text=True, timeout=1800, check=False, cwd=REPO)
    wall = time.perf_counter() - t0
    durations = [(f"{m.group(3)} ({m.group(2)})", float(m.group(1))) for m in
                 re.finditer(r"^([\d.]+)s (call|setup|teardown)\s+tests/docker/test_cs_swarm\.py::(\S+)",
                             proc.stdout, re.M)]
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    return wall, durations, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--base", default=image_name(BASE))
    parser.add_argument("--no-tests", action="store_true", help="skip timing tests/docker/test_cs_swarm.py")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "cs_swarm.md")
    args = parser.parse_args()

    client = docker.from_env(timeout=300)
    image = client.images.build(path=str(PROBE_DIR), tag=PROBE_TAG, buildargs={"BASE": args.base}, rm=True)[0]
    made = join_local_swarm(client)
    try:
        direct = [direct_service(client, str(image.id), f"bench-direct-{i}") for i in range(args.runs)]
        sdk = [sdk_service(client, str(image.id), f"bench-sdk-{i}") for i in range(args.runs)]
        with running_server() as server:
            http = server.session()
            sessions = add_sessions(server.store, "BENCH", args.runs)
            cid = http.post(server.url + "/xapi/commands", json=NOOP).json()
            wid = int(http.get(f"{server.url}/xapi/commands/{cid}").json()["xnat"][0]["id"])
            http.put(f"{server.url}/xapi/wrappers/{wid}/enabled").raise_for_status()
            http.put(f"{server.url}/xapi/projects/BENCH/wrappers/{wid}/enabled").raise_for_status()
            http.post(server.url + "/xapi/docker/server", json={"swarm-mode": True}).raise_for_status()
            on_swarm = launch_many(server, http, wid, sessions, args.runs)
            http.post(server.url + "/xapi/docker/server", json={"swarm-mode": False}).raise_for_status()
            on_docker = launch_many(server, http, wid, sessions, args.runs)
    finally:
        if made:
            leave_local_swarm(client)
    tests = None if args.no_tests else swarm_tests()

    swarm_s = [s for s, _ in on_swarm]
    steps: dict[str, list[float]] = {}
    for _, record in on_swarm:
        for name, seconds in phases(record).items():
            steps.setdefault(name, []).append(seconds)
    ratio = statistics.median(swarm_s) / statistics.median(direct)
    ratio_sdk = statistics.median(swarm_s) / statistics.median(sdk)
    lines = [
        "# Container Service on Docker Swarm: launch overhead and test wall time",
        "",
        f"Recorded {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}, Docker server "
        f"{client.version().get('Version')}, a single-node swarm on 127.0.0.1; 2 cores shared with other "
        f"work); `.venv/bin/python benchmarks/cs_swarm.py --runs {args.runs}`. Image: `{PROBE_TAG}` "
        f"(FROM `{args.base}`), a Python script that exits at once.",
        "",
        "## Launch overhead (no-op container, sequential)",
        "",
        "| path | runs | median s | min s | max s |",
        "|---|---|---|---|---|",
        row("`docker service create` directly (CLI) → task complete", direct),
        row("Docker SDK `create_service` directly, 1 replica → task complete", sdk),
        row("xnatsim launch route, Swarm backend → terminal status", swarm_s),
        row("xnatsim launch route, Docker backend → terminal status (reference)", [s for s, _ in on_docker]),
        "",
        f"Ratio (xnatsim on Swarm / `docker service create`): **{ratio:.2f}**; against the SDK call: "
        f"**{ratio_sdk:.2f}**. The CLI path pays the docker CLI's own start-up; the xnatsim path adds the "
        "REST request, queueing, resolution, the alias token, the service created with 0 replicas and then "
        "scaled to 1 (two manager round trips instead of one), task polling every 0.2 s (the direct path "
        "polls every 0.05 s), the service logs, finalization and the service's removal; the direct path's "
        "removal is outside its timing.",
        "",
        "Phases of the Swarm launches (median of the history timestamps, s):",
        "",
        "| phase | median s | max s |",
        "|---|---|---|",
        *[f"| {name} | {statistics.median(v):.3f} | {max(v):.3f} |" for name, v in steps.items()],
        "",
    ]
    if tests is not None:
        wall, durations, summary = tests
        lines += [
            "## Swarm tests (`pytest -m docker tests/docker/test_cs_swarm.py`)",
            "",
            f"Wall time **{wall:.1f} s** ({summary}); set-up includes `./build.sh build` of every image "
            "(cached layers), the probe image, swarm init and leave.",
            "",
            "| test | s |",
            "|---|---|",
            *[f"| `{name}` | {seconds:.1f} |" for name, seconds in durations],
            "",
        ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
