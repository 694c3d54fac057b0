"""Launch overhead of xnatsim's Container Service, and a 50-session bulk launch, on the real engine.

1. A no-op container (the cs-probe test image with ``--no-output``): median wall time from the
   launch request (``POST …/root/session/launch``) to its terminal status, against a plain
   ``docker run --rm`` of the same image and arguments.
2. A bulk launch (``…/bulklaunch``) of the probe wrapper over 50 sessions: each resolves its
   session, mounts it read-only, runs, and uploads its record as a session resource.

Writes benchmarks/cs_launch.md. Run: ``.venv/bin/python benchmarks/cs_launch.py [--runs 10]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import requests
from xnatnode.images import BASE, image_name
from xnatsim.cs.sample import add_sessions
from xnatsim.testing import running_server

REPO = Path(__file__).resolve().parents[1]
PROBE_DIR = REPO / "tests" / "docker" / "images" / "cs-probe"
PROBE_TAG = "xnatsim-test/cs-probe:bench"

NOOP = {
    "name": "noop", "version": "1", "image": PROBE_TAG, "command-line": "--no-output",
    "xnat": [{"name": "noop-session", "contexts": ["xnat:imageSessionData"],
              "external-inputs": [{"name": "session", "type": "Session"}]}],
}
PROBE = {
    "name": "probe", "version": "1", "image": PROBE_TAG, "command-line": "--label '#LABEL#'",
    "mounts": [{"name": "in", "path": "/input"}, {"name": "out", "path": "/output", "writable": True}],
    "inputs": [{"name": "label", "replacement-key": "#LABEL#"}],
    "outputs": [{"name": "record", "mount": "out", "required": True}],
    "xnat": [{"name": "probe-session", "contexts": ["xnat:imageSessionData"],
              "external-inputs": [{"name": "session", "type": "Session", "provides-files-for-command-mount": "in"}],
              "derived-inputs": [{"name": "session-label", "type": "string", "derived-from-wrapper-input": "session",
                                  "derived-from-xnat-object-property": "label",
                                  "provides-value-for-command-input": "label"}],
              "output-handlers": [{"name": "record-resource", "accepts-command-output": "record",
                                   "as-a-child-of": "session", "type": "Resource", "label": "PROBE"}]}],
}


def add_command(http: requests.Session, url: str, doc: dict[str, Any], project: str) -> int:
    cid = http.post(url + "/xapi/commands", json=doc).json()
    wid = int(http.get(f"{url}/xapi/commands/{cid}").json()["xnat"][0]["id"])
    http.put(f"{url}/xapi/wrappers/{wid}/enabled").raise_for_status()
    http.put(f"{url}/xapi/projects/{project}/wrappers/{wid}/enabled").raise_for_status()
    return wid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--bulk", type=int, default=50)
    parser.add_argument("--base", default=image_name(BASE))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "cs_launch.md")
    args = parser.parse_args()

    client = docker.from_env(timeout=300)
    client.images.build(path=str(PROBE_DIR), tag=PROBE_TAG, buildargs={"BASE": args.base}, rm=True)

    plain = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", "--network", "host", PROBE_TAG, "--no-output"], check=True,
                       capture_output=True, timeout=120)
        plain.append(time.perf_counter() - t0)

    with running_server() as server:
        http = server.session()
        cs = server.app.state["cs"]  # type: ignore[union-attr]
        sessions = add_sessions(server.store, "BENCH", args.bulk)
        noop = add_command(http, server.url, NOOP, "BENCH")
        probe = add_command(http, server.url, PROBE, "BENCH")
        launched = []
        for i in range(args.runs):
            t0 = time.perf_counter()
            r = http.post(f"{server.url}/xapi/projects/BENCH/wrappers/{noop}/root/session/launch",
                          json={"session": f"/archive/experiments/{sessions[i % len(sessions)]}"})
            record = cs.wait(int(r.json()["container-id"]), 120)
            launched.append(time.perf_counter() - t0)
            assert record["status"] == "Complete", record["history"][-1]

        t0 = time.perf_counter()
        r = http.post(f"{server.url}/xapi/projects/BENCH/wrappers/{probe}/root/session/bulklaunch",
                      json={"session": json.dumps([f"/archive/experiments/{s}" for s in sessions])})
        answer = r.json()
        queued = time.perf_counter() - t0
        records = [cs.wait(int(s["container-id"]), 600) for s in answer["successes"]]
        bulk_wall = time.perf_counter() - t0
        statuses: dict[str, int] = {}
        for rec in records:
            statuses[rec["status"]] = statuses.get(rec["status"], 0) + 1
        resources = sum(
            1 for s in sessions
            if server.store.get_resource(_parent(s), "PROBE") is not None
        )
        per = [(rec["history"][-1]["time-recorded"] - rec["history"][0]["time-recorded"]) / 1000 for rec in records]
        concurrency = cs.settings.max_concurrent

    med_plain, med_cs = statistics.median(plain), statistics.median(launched)
    lines = [
        "# Container Service launch benchmark (xnatsim, real Docker engine)",
        "",
        f"Recorded {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}, Docker server "
        f"{client.version().get('Version')}); `.venv/bin/python benchmarks/cs_launch.py --runs {args.runs} "
        f"--bulk {args.bulk}`. Image: `{PROBE_TAG}` (FROM `{args.base}`), a Python script that exits at once.",
        "",
        "## Launch overhead (no-op container, sequential)",
        "",
        "| path | runs | median s | min s | max s |",
        "|---|---|---|---|---|",
        f"| `docker run --rm` (CLI, same image and args) | {args.runs} | {med_plain:.3f} | {min(plain):.3f} | "
        f"{max(plain):.3f} |",
        f"| xnatsim launch route → terminal status | {args.runs} | {med_cs:.3f} | {min(launched):.3f} | "
        f"{max(launched):.3f} |",
        "",
        f"Ratio (xnatsim / docker run): **{med_cs / med_plain:.2f}**. The xnatsim path includes the REST "
        "request, queueing, resolution, the alias token, container create/start/wait through the Docker SDK, "
        "log collection, removal and finalization; `docker run` includes the docker CLI's own start-up, which "
        "the SDK path does not pay, so the two are of the same order and the Container Service adds little "
        "to a container's own start and stop.",
        "",
        f"## Bulk launch over {args.bulk} sessions",
        "",
        f"`POST …/bulklaunch` with {args.bulk} session URIs (read-only session mount, output uploaded as "
        f"a session resource), {concurrency} containers at a time:",
        "",
        f"* queued: {len(answer['successes'])} successes, {len(answer['failures'])} failures; the request "
        f"answered in {queued:.2f} s",
        f"* final statuses: {', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))}",
        f"* sessions with the uploaded PROBE resource: {resources}/{args.bulk}",
        f"* wall time until the last container was finalized: {bulk_wall:.1f} s "
        f"({args.bulk / bulk_wall:.1f} containers/s); per container (queued → terminal): median "
        f"{statistics.median(per):.2f} s, max {max(per):.2f} s",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    ok = statuses.get("Complete", 0) == args.bulk and resources == args.bulk
    return 0 if ok else 1


def _parent(eid: str) -> Any:
    from xnatsim.store import Parent

    return Parent("experiment", "BENCH", experiment_id=eid)


if __name__ == "__main__":
    sys.exit(main())
