"""``python -m xnatsim demo-dicom-upload``: dicom-upload's image on a small deep-storage batch.

Serves xnatsim with its DICOM C-STORE receiver (short idle time), writes three sessions of
synthetic DICOM (MR and CT, one folder per session, a stray text file) and a CSV map into
``DATA/deepstore``, creates project ``DEMO_DICOM``, then runs the ``xnatnode/dicom-upload``
image the way a site runs it next to its deep storage (``docker run`` with the deep storage
mounted read-only, host networking, a non-root user, a read-only root): first ``--dry-run``,
then the upload by C-STORE. Prints the outcome per row and where ``upload-report.html`` is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

NAME = "demo-dicom-upload"
HELP = "upload a small DICOM batch into xnatsim with the dicom-upload image (C-STORE), show the report"
PROJECT = "DEMO_DICOM"
SESSIONS = (("DEMO01", "DEMO01_MR1", "MR", {"1": 4, "2": 3}), ("DEMO02", "DEMO02_MR1", "MR", {"1": 4}),
            ("DEMO03", "DEMO03_CT1", "CT", {"3": 5}))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="folder for the simulator and the batch")
    parser.add_argument("--image", default=None, help="image (default: the tag command-json/dicom-upload.json names)")
    parser.add_argument("--command-json", type=Path,
                        default=Path(__file__).resolve().parents[3] / "command-json" / "dicom-upload.json")


def write_batch(folder: Path) -> Path:
    """The deep-storage folders and ``map.csv``; returns the CSV."""
    from xnatsim import synth

    shutil.rmtree(folder, ignore_errors=True)
    lines = ["source,project,subject,session"]
    for subject, session, modality, series in SESSIONS:
        base = synth.DicomLabels("PACS", subject, session, "1", "", modality, "2021-03-04")
        target = folder / subject.lower() / "study1"
        target.mkdir(parents=True)
        for scan_id, count in series.items():
            for k in range(1, count + 1):
                one = replace(base, scan_id=scan_id, series_description=f"series {scan_id}", instance=k)
                (target / f"{scan_id}_{k:03d}.dcm").write_bytes(synth.dicom_bytes(one, rows=64, columns=64))
        lines.append(f"{subject.lower()}/study1,{PROJECT},{subject},{session}")
    (folder / "demo01" / "study1" / "README.txt").write_text("retrieved from tape 17\n")
    csv = folder / "map.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def run(args: argparse.Namespace) -> int:
    from xnatsim.server import ADMIN_PASSWORD, ADMIN_USER
    from xnatsim.testing import running_server

    image = args.image or json.loads(args.command_json.read_text())[0]["image"]
    data: Path = args.data.resolve()
    deep = data / "deepstore"
    out = data / "upload-report"
    write_batch(deep)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.chmod(out, 0o777)
    with running_server(data / "xnat", dicom_port=0, session_idle_seconds=2.0, fetch_schemas=False) as server:
        store = server.store
        if store.get_project(PROJECT) is None:
            store.put_project(PROJECT, {}, user=ADMIN_USER)
        port = server.app.state["dicomscp"].settings[0]["port"] if server.app else 8104
        print(f"xnatsim on {server.url}, DICOM receiver XNAT on 127.0.0.1:{port}; batch in {deep}", flush=True)
        base = ["docker", "run", "--rm", "--network", "host", "--user", f"{os.getuid() or 4242}:{os.getgid() or 4242}",
                "--read-only", "--tmpfs", "/tmp", "-v", f"{deep}:/input:ro", "-v", f"{out}:/output",
                "-e", f"XNAT_HOST={server.url}", "-e", f"XNAT_USER={ADMIN_USER}", "-e", "XNAT_PASS",
                image, "dicom-upload", "--csv", "/input/map.csv", "--dicom-port", str(port), "--verify-timeout", "120"]
        env = {**os.environ, "XNAT_PASS": ADMIN_PASSWORD}
        for extra in (["--dry-run"], []):
            step = "dry run" if extra else "upload by C-STORE"
            print(f"--- {step}: {' '.join(base[-8:] + extra)}", flush=True)
            done = subprocess.run(base + extra, env=env, capture_output=True, text=True, timeout=600, check=False)
            print("\n".join(done.stderr.splitlines()[-6:]), flush=True)
            if done.returncode not in (0, 6):
                print(f"dicom-upload exited {done.returncode}", file=sys.stderr)
                return 1
        report = json.loads((out / "upload-report.json").read_text())
        for row in report["rows"]:
            print(f"  line {row['line']} {row['source']} -> {row['project']}/{row['subject']}/{row['session']}: "
                  f"{row['outcome']} ({row['objects_archived']} of {row['objects_found']} objects archived)")
        print(f"report: {out / 'upload-report.html'}", flush=True)
        return 0 if report["totals"]["verified"] == len(report["rows"]) else 1
