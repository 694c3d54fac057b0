"""label-validation: the on-archive path and the project audit, measured.

1. **Event to findings** (real Docker engine, xnatsim's Event Service and Container Service): a
   DICOM study archived through the import service fires ``SessionEvent``/``CREATED``; the
   subscription launches label-validation's session wrapper; the time until its findings are
   uploaded as the session's LABEL_CHECK resource, against a no-op container (``--version``, the
   same image) launched the same way: same wrapper shape, mount and event. Median of ``--runs``.
   Requests per session from the server's own counter.
2. **Audit**: one project of ``--sessions`` sessions (DICOM on the mounted archive, two series
   each), xnatsim with 20 ms added per request: wall time, requests and peak memory (RSS of the
   process) of ``xnatnode label-validation --project``, against a per-session REST walk doing the
   same checks (one ``GET /data/experiments/<ID>?format=json`` per session, as a validator that
   reads sessions one by one does), run on the first ``--walk-sessions`` sessions and extrapolated.
3. **Start-up**: ``xnatnode --version`` against ``python3 -c pass`` in the same image, with
   ``docker run`` and as processes inside one container, interleaved, in ``--startup-rounds``
   rounds with the load average of each.

Writes benchmarks/label_validation.md. Run (under the docker lock, after ``./build.sh build
label-validation``): ``.venv/bin/python benchmarks/label_validation.py [--runs 10] [--sessions 10000]``;
``--skip-event``, ``--skip-startup``, ``--skip-audit`` leave a part's saved result as it is.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import requests
from measure import run_measured
from xnatnode import __version__
from xnatsim.testing import running_server

REPO = Path(__file__).resolve().parents[1]
IMAGE = f"xnatnode/label-validation:{__version__}"
COMMAND_JSON = REPO / "command-json" / "label-validation.json"
CONVENTION = """\
subject: '^LVB_S[0-9]{4}$'
session: '{subject}_{modality}{visit}'
fields: {visit: ['1', '2']}
modality: {MR: xnat:mrSessionData}
scan-types: [localizer, T1w]
"""
#: The no-op: the same image and wrapper shape (session input, archive mount), doing nothing.
NOOP = {
    "name": "lv-noop", "version": "1", "image": IMAGE, "command-line": "--version",
    "mounts": [{"name": "archive", "path": "/input"}],
    "xnat": [{"name": "lv-noop-session", "contexts": ["xnat:imageSessionData"],
              "external-inputs": [{"name": "session", "type": "Session",
                                   "provides-files-for-command-mount": "archive"}]}],
}
TERMINAL = ("Complete", "Failed", "Killed")


def _dicom_zip(project: str, subject: str, session: str) -> bytes:
    from xnatsim import synth

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for scan, description in (("1", "localizer"), ("2", "T1w")):
            labels = synth.DicomLabels(project, subject, session, scan, description, "MR", "2024-03-04")
            zf.writestr(f"{scan}.dcm", synth.dicom_bytes(labels, rows=8, columns=8))
    return buf.getvalue()


def _enable(http: requests.Session, url: str, wid: int, project: str) -> None:
    for path in (f"/xapi/wrappers/{wid}/enabled", f"/xapi/projects/{project}/wrappers/{wid}/enabled"):
        http.put(url + path, timeout=30).raise_for_status()


def _subscribe(http: requests.Session, url: str, wid: int, project: str) -> None:
    body = {"name": f"bench {project}", "active": True,
            "action-key": f"org.nrg.containers.services.CommandActionProvider:{wid}",
            "event-filter": {"event-type": "org.nrg.xnat.eventservice.events.SessionEvent",
                             "status": "CREATED", "project-ids": [project]}}
    r = http.post(f"{url}/xapi/projects/{project}/events/subscription", json=body, timeout=30)
    assert r.status_code == 201, r.text


def _wait_container(http: requests.Session, url: str, project: str, label: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in http.get(f"{url}/xapi/projects/{project}/events/delivered", timeout=30).json():
            if d["trigger"]["label"] == label and d.get("container-id"):
                doc = http.get(f"{url}/xapi/containers/{d['container-id']}", timeout=30).json()
                if str(doc.get("status", "")).startswith(TERMINAL):
                    return str(doc["status"])
        time.sleep(0.05)
    raise TimeoutError(f"{project}/{label}: no finished container after {timeout} s")


def event_to_findings(runs: int) -> dict[str, Any]:
    with running_server() as server:
        url, http = server.url, server.session()
        http.put(f"{url}/xapi/events/prefs", json={"enabled": True}, timeout=30).raise_for_status()
        for project in ("LVB", "LVN"):
            http.put(f"{url}/data/projects/{project}", params={"xsiType": "xnat:projectData"}, timeout=30)
        http.put(f"{url}/data/projects/LVB/config/xnatnode/labels", params={"inbody": "true"},
                 data=CONVENTION.encode(), timeout=30).raise_for_status()
        http.post(f"{url}/xapi/docker/images/save", params={"image": IMAGE}, timeout=60).raise_for_status()
        (command,) = [c for c in http.get(f"{url}/xapi/commands", timeout=30).json() if c["name"] == "label-validation"]
        lv = next(int(w["id"]) for w in command["xnat"] if w["name"] == "label-validation-session")
        cid = http.post(f"{url}/xapi/commands", json=NOOP, timeout=30).json()
        noop = int(http.get(f"{url}/xapi/commands/{cid}", timeout=30).json()["xnat"][0]["id"])
        _enable(http, url, lv, "LVB")
        _enable(http, url, noop, "LVN")
        _subscribe(http, url, lv, "LVB")
        _subscribe(http, url, noop, "LVN")
        times: dict[str, list[float]] = {"label-validation": [], "no-op": []}
        requests_per_session: list[int] = []
        for i in range(runs + 1):  # the first round warms the engine's caches and is not counted
            for project, key in (("LVN", "no-op"), ("LVB", "label-validation")):
                subject = f"LVB_S{i + 1:04d}"
                label = f"{subject}_MR1"
                data = _dicom_zip(project, subject, label)
                t0 = time.perf_counter()
                r = http.post(f"{url}/data/services/import", params={"dest": "/archive"}, data=data,
                              headers={"Content-Type": "application/zip"}, timeout=60)
                r.raise_for_status()
                status = _wait_container(http, url, project, label)
                if key == "label-validation":
                    path = f"{url}/data/projects/LVB/experiments/{label}/resources/LABEL_CHECK/files/findings.json"
                    doc = http.get(path, timeout=30).json()
                    if i:
                        requests_per_session.append(int(doc["source"]["requests"]))
                    assert doc["verdict"] == "pass", doc["findings"]
                elapsed = time.perf_counter() - t0
                assert status.startswith("Complete"), (key, status)
                if i:
                    times[key].append(elapsed)
        return {"times": times, "requests": requests_per_session}


# --------------------------------------------------------------------------- start-up

def startup(runs: int, rounds: int) -> dict[str, Any]:
    """``--version`` against a bare ``python3 -c pass`` in the same image, with ``docker run`` (as
    XNAT starts a container) and as processes inside one container (image_startup.startup), in
    ``rounds`` rounds with the load average of each."""
    from image_startup import startup as measure

    out: list[dict[str, Any]] = []
    for _ in range(rounds):
        times = measure(IMAGE, runs, runs * 3)
        out.append({"at": time.strftime("%H:%M", time.gmtime()), "load": times["load"],
                    "docker_version": statistics.median(times["docker_version"]),
                    "docker_pass": statistics.median(times["docker_pass"]),
                    "process_version": times["process_version"], "process_pass": times["process_pass"]})
        print(json.dumps(out[-1]), flush=True)
    return {"runs": runs, "process_runs": runs * 3, "rounds": out}


# --------------------------------------------------------------------------- audit


def walk(project: str, input_dir: str, limit: int) -> None:
    """The per-session REST walk (run in a child process by :func:`audit`)."""
    from xnatnode.client import connect
    from xnatnode.labelcheck.checks import run_checks
    from xnatnode.labelcheck.convention import load_convention
    from xnatnode.labelcheck.headers import read_headers
    from xnatnode.labelcheck.records import ScanRec, SessionRec, Snapshot
    from xnatnode.labelcheck.source import list_experiments, list_subjects, read_convention_text
    from xnatnode.listings import archive_root, parse_date

    with connect() as conn:
        convention = load_convention(read_convention_text(conn, project) or "", "config", "config")
        subjects = list_subjects(conn, project)
        listed = list_experiments(conn, project, subjects)[:limit]
        labels = {s.id: s.label for s in subjects}
        sessions, scans = [], []
        for s in listed:
            item = conn.get_json(f"/data/experiments/{s.id}")["items"][0]
            f = item["data_fields"]
            sessions.append(SessionRec(s.id, f["label"], f["subject_ID"], labels.get(f["subject_ID"], ""),
                                       item["meta"]["xsi:type"], parse_date(f.get("date")),
                                       str(f.get("dcmPatientId") or ""), str(f.get("dcmPatientName") or ""),
                                       str(f.get("UID") or "")))
            for child in item.get("children") or []:
                if child.get("field") == "scans/scan":
                    scans += [ScanRec(s.id, str(c["data_fields"]["ID"]), str(c["data_fields"].get("type") or ""),
                                      str(c["data_fields"].get("modality") or "")) for c in child["items"]]
        snap = Snapshot(project, "project", subjects=subjects, sessions=sessions, scans=scans,
                        targets=[s.id for s in sessions])
        snap.headers = read_headers(Path(input_dir), archive_root(input_dir, project), sessions, snap.unreadable)
        findings = run_checks(snap, convention)
        print(json.dumps({"requests": conn.request_count, "findings": len(findings)}), file=sys.stderr)


def audit(sessions: int, walk_sessions: int, latency_ms: float, data: Path) -> dict[str, Any]:
    from xnatsim.store import Store

    from xnatsim import seed as seeder

    spec = {"project_prefix": "LVB", "subjects": sessions // 2, "sessions_per_subject": 2,
            "scans_per_session": 2, "files_per_scan": 1, "files": "dicom", "image_size": 4,
            "inconsistent_headers": 0.01}
    t0 = time.perf_counter()
    totals_file = data / "lv-bench-totals.json"  # a kept --data folder is seeded once
    if totals_file.exists():
        totals = json.loads(totals_file.read_text("utf-8"))
    else:
        store = Store(data)
        totals = seeder.apply(store, spec)["totals"]
        store.close()
        totals_file.write_text(json.dumps(totals), "utf-8")
    seeded = time.perf_counter() - t0
    with running_server(data, in_process=False, latency_ms=latency_ms) as server:
        http = server.session()
        http.put(f"{server.url}/data/projects/LVB/config/xnatnode/labels", params={"inbody": "true"},
                 data=CONVENTION.encode(), timeout=60).raise_for_status()
        env = dict(os.environ, XNAT_HOST=server.url, XNAT_USER=server.user, XNAT_PASS=server.password)
        mount = str(data / "archive" / "LVB" / "arc001")
        out = data / "out"
        shutil.rmtree(out, ignore_errors=True)
        server.reset_stats()
        audit = run_measured(
            [sys.executable, "-m", "xnatnode", "label-validation", "--project", "LVB", "--input", mount,
             "--output", str(out), "--log-level", "WARNING"], env).checked("label-validation")
        served = int(server.stats()["requests"])
        doc = json.loads((out / "findings.json").read_text("utf-8"))
        server.reset_stats()
        walked = run_measured(
            [sys.executable, __file__, "--walk", mount, "--walk-sessions", str(walk_sessions)], env).checked("walk")
        wserved = int(server.stats()["requests"])
    return {"seeded_s": seeded, "sessions": totals["sessions"], "scans": totals["scans"],
            "wall": audit.wall_s, "requests": served, "rss_kib": audit.peak_rss_kib, "findings": doc["totals"],
            "series_read": doc["checked"]["dicom_series"],
            "walk": {"sessions": walk_sessions, "wall": walked.wall_s, "requests": wserved,
                     "rss_kib": walked.peak_rss_kib}}


# --------------------------------------------------------------------------- report


def _median(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f})"


def write(path: Path, event: dict[str, Any] | None, startup_result: dict[str, Any] | None,
          result: dict[str, Any] | None, notes: list[str] | None = None) -> None:
    """The report; ``notes`` (kept in the .json under ``notes``) are written as they are."""
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=REPO, check=False).stdout.strip()
    lines = [
        "# label-validation: on archive and project audit",
        "",
        f"`benchmarks/label_validation.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, revision "
        f"{rev}, {platform.machine()}, {os.cpu_count()} CPUs shared with other jobs (load average "
        f"{os.getloadavg()[0]:.1f} when written), Python {platform.python_version()}, image `{IMAGE}`.",
        "",
    ]
    if event is not None:
        lv, noop = event["times"]["label-validation"], event["times"]["no-op"]
        diff = statistics.median(lv) - statistics.median(noop)
        lines += [
            "## Event to findings (target: within 3 s of the no-op, at most 5 requests per session)",
            "",
            "A 2-series DICOM study archived through the import service; SessionEvent/CREATED → the",
            "subscription → the Container Service launches the wrapper (real Docker engine) → for",
            "label-validation, until `LABEL_CHECK/findings.json` is on the session; for the no-op",
            f"(`--version` in the same image, same wrapper shape and mount), until Complete. {len(lv)} runs each",
            "after one warm-up round.",
            "",
            "| | median (min, max) |",
            "|---|---|",
            f"| label-validation, event → findings uploaded | {_median(lv)} |",
            f"| no-op container, event → Complete | {_median(noop)} |",
            f"| difference of medians | {diff:.2f} s |",
            f"| REST requests per session (findings.json `source.requests`) | {sorted(set(event['requests']))} |",
            "",
        ]
    if startup_result is not None:
        rounds = startup_result["rounds"]

        def row(what: str, key: str) -> str:
            ratios = [r[f"{key}_version"] / r[f"{key}_pass"] for r in rounds]
            mid = rounds[sorted(range(len(rounds)), key=ratios.__getitem__)[len(rounds) // 2]]
            return (f"| {what} | {mid[f'{key}_version']:.3f} s | {mid[f'{key}_pass']:.3f} s | "
                    f"{statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)}) |")

        lines += [
            "## Start-up: `xnatnode --version` against a bare `python3 -c pass` in the same image",
            "",
            f"(target: within 1.5 times; `--user 4242:4242 --read-only`; {len(rounds)} rounds ending "
            f"{rounds[0]['at']}-{rounds[-1]['at']} UTC, load average {min(r['load'] for r in rounds):.1f}-"
            f"{max(r['load'] for r in rounds):.1f}; in each round the two",
            f"command lines run alternately, after one warm-up pair: {startup_result.get('runs', 10)} pairs of "
            f"`docker run`, then {startup_result.get('process_runs', 30)} pairs of",
            "processes inside one container; the times are those of the round with the median ratio)",
            "",
            "| | `--version` | `python3 -c pass` | ratio: median of the rounds (each round) |",
            "|---|---|---|---|",
            row("`docker run`", "docker"),
            row("process inside one container", "process"),
            "",
        ]
    if result is not None:
        walk = result["walk"]
        per = walk["wall"] / max(walk["sessions"], 1)
        lines += [
            f"## Audit of {result['sessions']:,} sessions, {result['latency_ms']:g} ms added per request",
            "",
            f"One project, {result['sessions']:,} sessions with {result['scans']:,} scans, one DICOM file per",
            "scan on the mounted archive (1% with headers that disagree with the labels), convention in",
            "the config service. The audit: `xnatnode label-validation --project` in its own process.",
            "The walk: the same checks, reading each session with `GET /data/experiments/<ID>?format=json`",
            f"(one request per session), run on the first {walk['sessions']:,} sessions and extrapolated.",
            "",
            "| | audit | per-session walk |",
            "|---|---|---|",
            f"| sessions read | {result['sessions']:,} | {walk['sessions']:,} |",
            f"| wall | {result['wall']:.1f} s | {walk['wall']:.1f} s (≈ {per * result['sessions']:.0f} s for "
            f"{result['sessions']:,}) |",
            f"| REST requests (server-counted) | {result['requests']} | {walk['requests']:,} |",
            f"| peak memory (RSS) | {result['rss_kib'] / 1024:.0f} MB | {walk['rss_kib'] / 1024:.0f} MB |",
            f"| DICOM series headers read | {result['series_read']:,} | |",
            f"| findings | {result['findings']['findings']:,} ({result['findings']['error']} errors) | |",
            "",
            "Targets: at most 10 requests plus mount reads, under a minute, under 500 MB. Seeding is not "
            "counted.",
            "",
        ]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    path.write_text("\n".join(lines), "utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--walk-sessions", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--skip-event", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--skip-audit", action="store_true")
    parser.add_argument("--startup-rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, help="keep the seeded audit project here (seeded once)")
    parser.add_argument("--walk", metavar="MOUNT", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "label_validation.md")
    args = parser.parse_args()
    if args.walk:
        walk("LVB", args.walk, args.walk_sessions)
        return 0
    # Each part can run alone (the event and start-up parts need the docker lock); results are
    # kept in the .json beside the report and the report is written from all of them.
    saved_path = args.out.with_suffix(".json")
    saved = json.loads(saved_path.read_text("utf-8")) if saved_path.exists() else {}
    if not args.skip_event:
        saved["event"] = event_to_findings(args.runs)
        print(json.dumps(saved["event"]), flush=True)
    if not args.skip_startup:
        saved["startup"] = startup(args.runs, args.startup_rounds)
    if not args.skip_audit:
        import tempfile

        if args.data is not None:
            saved["audit"] = audit(args.sessions, args.walk_sessions, args.latency_ms, args.data)
        else:
            with tempfile.TemporaryDirectory(prefix="lv-bench-") as tmp:
                saved["audit"] = audit(args.sessions, args.walk_sessions, args.latency_ms, Path(tmp) / "data")
        saved["audit"]["latency_ms"] = args.latency_ms
        print(json.dumps(saved["audit"]), flush=True)
    saved_path.write_text(json.dumps(saved, indent=2) + "\n", "utf-8")
    write(args.out, saved.get("event"), saved.get("startup"), saved.get("audit"), saved.get("notes"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
