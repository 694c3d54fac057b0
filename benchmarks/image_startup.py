"""Size of the base image and the cost of starting it; writes benchmarks/image_startup.md.

Run after ``./build.sh build``: ``.venv/bin/python benchmarks/image_startup.py [--runs 5]``.

Measured: the image sizes (``docker image inspect``), and the wall time of a new container
running ``xnatnode --version`` (as the Container Service would: some UID, read-only root, tmpfs
/tmp) against one running ``python3 -c pass`` on the same image, median of N runs, interleaved.
Inside one container, the same two commands are also timed as plain processes, interleaved, which
leaves out Docker's own start-up cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xnatnode.images import BASE, image_name

HERE = Path(__file__).resolve().parent
LOCKED_DOWN = ["--user", "4242:4242", "--read-only", "--tmpfs", "/tmp", "--network", "none"]

#: Runs inside the image: ``xnatnode --version`` and ``python3 -c pass`` as child processes,
#: alternately (so that load from other jobs falls on both), after one warm-up pair; prints the
#: median wall time of each, in seconds.
IN_CONTAINER = """
import json, statistics, subprocess, sys, time
def once(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start
version, bare = [], []
for i in range(int(sys.argv[1]) + 1):
    v, b = once(["xnatnode", "--version"]), once(["python3", "-c", "pass"])
    if i:
        version.append(v)
        bare.append(b)
print(json.dumps({"version": statistics.median(version), "pass": statistics.median(bare)}))
"""


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=300
    ).stdout


def image_mb(image: str) -> float:
    size = json.loads(docker("image", "inspect", image))[0]["Size"]
    return float(size) / 1e6


def timed_run(image: str, *args: str, entrypoint: str | None = None) -> float:
    options = [*LOCKED_DOWN, *(["--entrypoint", entrypoint] if entrypoint else [])]
    start = time.perf_counter()
    docker("run", "--rm", *options, image, *args)
    return time.perf_counter() - start


def startup(image: str, runs: int, process_runs: int) -> dict[str, Any]:
    """``xnatnode --version`` against ``python3 -c pass`` in ``image``: ``runs`` pairs of new
    containers, alternately, after a warm-up pair (``docker_version``, ``docker_pass``: every
    time, in seconds), then ``process_runs`` pairs of processes inside one container
    (``process_version``, ``process_pass``: the medians); ``load``: the higher load average of
    its start and end. benchmarks/label_validation.py uses it too."""
    load = os.getloadavg()[0]
    version_s, pass_s = [], []
    for i in range(runs + 1):
        v = timed_run(image, "--version")
        p = timed_run(image, "-c", "pass", entrypoint="python3")
        if i:
            version_s.append(v)
            pass_s.append(p)
    inside = json.loads(docker(
        "run", "--rm", *LOCKED_DOWN, "--entrypoint", "python3", image, "-c", IN_CONTAINER, str(process_runs),
    ))
    return {"docker_version": version_s, "docker_pass": pass_s, "process_version": inside["version"],
            "process_pass": inside["pass"], "load": max(load, os.getloadavg()[0])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=image_name(BASE))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--process-runs", type=int, default=30)
    parser.add_argument("--output", type=Path, default=HERE / "image_startup.md")
    args = parser.parse_args()

    labels = json.loads(docker("image", "inspect", args.image))[0]["Config"]["Labels"] or {}
    python_base = labels.get("org.opencontainers.image.base.name", "?")
    times = startup(args.image, args.runs, args.process_runs)
    load = times["load"]
    version_s, pass_s = times["docker_version"], times["docker_pass"]
    inside = {"version": times["process_version"], "pass": times["process_pass"]}

    sizes = docker(
        "run", "--rm", "--entrypoint", "sh", args.image, "-c",
        "cd /opt/xnatnode/lib/python3*/site-packages && du -sk -- */ | sort -rn | head -n 5",
    )
    largest = ", ".join(
        f"{name.rstrip('/')} {int(kb) / 1000:.1f} MB"
        for kb, name in (line.split(maxsplit=1) for line in sizes.splitlines())
    )
    base_mb, python_mb = image_mb(args.image), image_mb(python_base)
    v, p = statistics.median(version_s), statistics.median(pass_s)
    rows = [
        ("base image size", f"{base_mb:.0f} MB", f"of which the Python base `{python_base}` {python_mb:.0f} MB, "
         f"the xnatnode venv {base_mb - python_mb:.0f} MB"),
        ("largest packages in the venv", "", largest),
        ("`docker run ... xnatnode --version`", f"{v:.3f} s", f"median of {args.runs}: "
         + ", ".join(f"{t:.3f}" for t in version_s)),
        ("`docker run ... python3 -c pass`", f"{p:.3f} s", f"median of {args.runs}: "
         + ", ".join(f"{t:.3f}" for t in pass_s)),
        ("ratio (--version / pass), with Docker", f"{v / p:.2f}", ""),
        ("in one container: `xnatnode --version`", f"{inside['version']:.3f} s",
         f"process only, no Docker; median of {args.process_runs}, alternating with the next row"),
        ("in one container: `python3 -c pass`", f"{inside['pass']:.3f} s", "process only, no Docker"),
        ("ratio, process only", f"{inside['version'] / inside['pass']:.2f}", ""),
    ]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Image size and start-up",
        "",
        f"`benchmarks/image_startup.py` on {now}: image `{args.image}` (revision "
        f"{labels.get('org.opencontainers.image.revision', '?')}), {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} CPUs shared with other jobs (load average {load:.1f}), Docker "
        f"{docker('version', '--format', '{{.Server.Version}}').strip()}.",
        f"Containers run with `{' '.join(LOCKED_DOWN)}`, image already local, after one warm-up pair.",
        "",
        "| measure | value | detail |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        "Notes. The base holds xnatnode and requests only: xnatpy (which pulled pydicom, click,",
        "progressbar2, pyyaml and more into every image) is the xnatnode[xnatpy] extra, which no",
        "command needs; images that read DICOM install pydicom themselves. pip and setuptools",
        "are removed from the venv. Where `python:3.11-slim` cannot be pulled the Python base is",
        "built with debootstrap (Debian bookworm minbase + python3, python3-venv, ca-certificates,",
        "without documentation, manuals and translations, as Debian's slim images do: 169 -> 125 MB);",
        "`python:3.11-slim` itself is usually 120-150 MB (reference/performance-anchors.md §3.1).",
        "",
    ]
    args.output.write_text("\n".join(lines), encoding="utf-8")
    sys.stdout.write("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
