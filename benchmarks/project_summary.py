"""project-summary against a straightforward xnatpy object walk, side by side on xnatsim.

For each project size (sessions; 2 sessions per subject, 12 scans per session, one tiny file per
scan) this seeds a fresh xnatsim data folder, serves it as a subprocess with ``--latency-ms``
added to every request, then measures in child processes (wall time, REST requests from
``/xnatsim/stats``, the child's own peak RSS: ``measure.run_measured``):

* ``project-summary --sizes rest`` (metadata listings + resource listings over REST);
* ``project-summary --sizes mount`` (metadata listings + the archive folder as XNAT would mount it);
* an xnatpy 0.8.1 walk: project.subjects → experiments → scans → resources, plus subject, session
  and project resources, summing ``file_count``/``file_size``.  When the walk would exceed
  ``--walk-budget`` seconds it stops there and the time and request count are extrapolated
  linearly from the sessions walked (every session is alike), and the report says so.

Every run's counts are checked against the seeder's manifest.  Usage::

    .venv/bin/python benchmarks/project_summary.py --sizes 100 1000 10000 --latency-ms 20 \
        --json benchmarks/project_summary.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from measure import run_measured

REPO = Path(__file__).resolve().parent.parent

WALK_CHILD = r"""
import json, sys, time
import xnat
url, user, password, project, budget = sys.argv[1:6]
budget = float(budget)
t0 = time.monotonic()
totals = dict(subjects=0, sessions=0, scans=0, resources=0, files=0, bytes=0)
complete = True
def add(res):
    totals["resources"] += 1
    totals["files"] += res.file_count
    totals["bytes"] += res.file_size
with xnat.connect(url, user=user, password=password, loglevel="ERROR") as session:
    proj = session.projects[project]
    for res in proj.resources.values():
        add(res)
    for subject in proj.subjects.values():
        if time.monotonic() - t0 > budget:
            complete = False
            break
        totals["subjects"] += 1
        for res in subject.resources.values():
            add(res)
        for exp in subject.experiments.values():
            totals["sessions"] += 1
            for res in exp.resources.values():
                add(res)
            for scan in exp.scans.values():
                totals["scans"] += 1
                for res in scan.resources.values():
                    add(res)
print(json.dumps({"totals": totals, "complete": complete, "seconds": time.monotonic() - t0}))
"""


def seed(data_dir: Path, sessions: int) -> dict[str, Any]:
    from xnatsim.store import Store

    from xnatsim import seed as seeder

    store = Store(data_dir)
    try:
        spec = {
            "project_prefix": f"PS{sessions}",
            "subjects": max(1, sessions // 2),
            "sessions_per_subject": 2 if sessions > 1 else 1,
            "scans_per_session": 12,
            "files_per_scan": 1,
            "files": "tiny",
            "tiny_size": 16,
        }
        manifest: dict[str, Any] = seeder.apply(store, spec)
    finally:
        store.close()
    return manifest


def bench_size(sessions: int, latency_ms: float, walk_budget: float, workers: int) -> dict[str, Any]:
    from xnatsim.testing import running_server

    result: dict[str, Any] = {"sessions": sessions, "latency_ms": latency_ms}
    with tempfile.TemporaryDirectory(prefix="bench-ps-") as tmp:
        data = Path(tmp) / "data"
        t0 = time.monotonic()
        manifest = seed(data, sessions)
        result["seed_seconds"] = round(time.monotonic() - t0, 1)
        project = next(iter(manifest["projects"]))
        truth = manifest["projects"][project]
        result["truth"] = truth
        with running_server(data, latency_ms=latency_ms, in_process=False) as server:
            env = dict(os.environ, XNAT_HOST=server.url, XNAT_USER=server.user,
                       XNAT_PASS=server.password)
            arc = data / "archive" / project / "arc001"
            for mode in ("rest", "mount"):
                out = Path(tmp) / f"out-{mode}"
                server.reset_stats()
                cmd = [sys.executable, "-m", "xnatnode", "project-summary", "--project", project,
                       "--sizes", mode, "--workers", str(workers), "--output", str(out),
                       "--input", str(arc if mode == "mount" else Path(tmp) / "no-mount")]
                run = run_measured(cmd, env)
                requests = int(server.stats()["requests"])
                summary = json.loads((out / "summary.json").read_text()) if run.exit == 0 else {}
                got = summary.get("totals", {})
                result[f"summary_{mode}"] = {
                    "seconds": round(run.wall_s, 2), "requests": requests, "peak_rss_mb": run.peak_rss_mib,
                    "exit": run.exit,
                    "correct": all(got.get(k) == truth[k] for k in
                                   ("subjects", "sessions", "scans", "resources", "files", "bytes")),
                    "totals": got,
                }
                print(f"{sessions:>6} sessions  summary --sizes {mode:5}: {run.wall_s:7.2f} s "
                      f"{requests:>7} requests {run.peak_rss_mib:6.1f} MB  exit {run.exit}", flush=True)
            server.reset_stats()
            cmd = [sys.executable, "-c", WALK_CHILD, server.url, server.user, server.password,
                   project, str(walk_budget)]
            run = run_measured(cmd)
            wall, text = run.wall_s, run.stdout
            requests = int(server.stats()["requests"])
            walk = json.loads(text.strip().splitlines()[-1]) if run.exit == 0 and text.strip() else {}
            done = walk.get("totals", {}).get("sessions", 0)
            entry: dict[str, Any] = {"seconds": round(wall, 2), "requests": requests,
                                     "peak_rss_mb": run.peak_rss_mib, "exit": run.exit,
                                     "complete": walk.get("complete", False),
                                     "sessions_walked": done, "totals": walk.get("totals")}
            if walk and not walk["complete"] and done:
                scale = truth["sessions"] / done
                entry["extrapolated_seconds"] = round(wall * scale, 1)
                entry["extrapolated_requests"] = int(requests * scale)
            elif walk:
                got = walk["totals"]
                entry["correct"] = all(got.get(k) == truth[k] for k in
                                       ("subjects", "sessions", "scans", "resources", "files", "bytes"))
            result["walk"] = entry
            shown = entry.get("extrapolated_seconds", entry["seconds"])
            note = f"  (extrapolated from {done} sessions)" if "extrapolated_seconds" in entry else ""
            print(f"{sessions:>6} sessions  xnatpy walk        : {shown:7.2f} s "
                  f"{entry.get('extrapolated_requests', requests):>7} requests {run.peak_rss_mib:6.1f} MB"
                  f"{note}", flush=True)
    walk_s = result["walk"].get("extrapolated_seconds", result["walk"]["seconds"])
    for mode in ("rest", "mount"):
        result[f"summary_{mode}"]["speedup_vs_walk"] = round(walk_s / result[f"summary_{mode}"]["seconds"], 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000],
                        help="project sizes in sessions")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--walk-budget", type=float, default=600.0,
                        help="seconds after which the xnatpy walk stops and is extrapolated")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    results = [bench_size(n, args.latency_ms, args.walk_budget, args.workers) for n in args.sizes]
    doc = {"latency_ms": args.latency_ms, "walk_budget_s": args.walk_budget, "workers": args.workers,
           "cpu_count": os.cpu_count(), "results": results}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
