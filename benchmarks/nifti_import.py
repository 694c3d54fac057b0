"""nifti-import against the raw loopback upload rate and a per-file xnatpy loop, on xnatsim.

Two batches of real NIfTI-1 files (headers written by nibabel), BIDS-named, no sidecars:

* ``small``: 1,000 images of ~100 KB in 50 sessions (20 scans each);
* ``large``: 20 images of 200 MB in 4 sessions (5 scans each).

For each added latency (default 0 and 25 ms per request) and each batch, against an xnatsim
subprocess on 127.0.0.1, each measured in a child process (wall time, the child's own peak RSS
by ``measure.run_measured``, requests from ``/xnatsim/stats``):

* ``raw``: the batch's bytes PUT as one stream to one file of a project resource (the loopback
  upload rate: what the server and the socket can take);
* ``nifti-import``: ``xnatnode nifti-import --source <batch> --workers W`` into a fresh project;
* ``xnatpy loop``: what sites script today, one file at a time with xnatpy 0.8.1: PUT the session,
  PUT the scan, upload the file (``session.upload_file``) for every file.

Usage::

    .venv/bin/python benchmarks/nifti_import.py --json benchmarks/nifti_import.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from measure import run_measured

REPO = Path(__file__).resolve().parent.parent

LOOP_CHILD = r"""
import json, sys, time
from pathlib import Path
import xnat
url, user, password, project, listing = sys.argv[1:6]
files = json.loads(Path(listing).read_text())
t0 = time.monotonic()
with xnat.connect(url, user=user, password=password, loglevel="ERROR") as session:
    for item in files:
        base = f"/data/projects/{project}/subjects/{item['subject']}/experiments/{item['session']}"
        session.put(base, query={"xsiType": "xnat:mrSessionData"})
        session.put(f"{base}/scans/{item['scan']}", query={"xsiType": "xnat:mrScanData", "type": item["type"]})
        session.upload_file(f"{base}/scans/{item['scan']}/resources/NIFTI/files/{item['name']}", item["path"],
                            verbose=False)
print(json.dumps({"seconds": time.monotonic() - t0}))
"""

RAW_CHILD = r"""
import json, sys, time
from pathlib import Path
import requests
url, user, password, project, listing = sys.argv[1:6]
paths = [item["path"] for item in json.loads(Path(listing).read_text())]

class Concat:
    def __init__(self, paths):
        self.paths, self.index, self.handle = paths, 0, None
        self.length = sum(Path(p).stat().st_size for p in paths)
    def __len__(self):
        return self.length
    def read(self, size=-1):
        while self.index < len(self.paths):
            if self.handle is None:
                self.handle = open(self.paths[self.index], "rb")
            chunk = self.handle.read(size)
            if chunk:
                return chunk
            self.handle.close()
            self.handle = None
            self.index += 1
        return b""

t0 = time.monotonic()
body = Concat(paths)
r = requests.put(f"{url}/data/projects/{project}/resources/RAW/files/raw.bin", data=body,
                 auth=(user, password), headers={"Content-Type": "application/octet-stream"}, timeout=3600)
r.raise_for_status()
print(json.dumps({"seconds": time.monotonic() - t0, "bytes": len(body)}))
"""


def _write_header(handle: IO[bytes], shape: tuple[int, ...]) -> None:
    import nibabel as nib
    import numpy as np

    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int16)
    header.set_zooms((1.0,) * len(shape))
    header.set_qform(np.eye(4), code=1)
    header.set_sform(np.eye(4), code=1)
    header["vox_offset"] = 352
    header.write_to(handle)
    handle.write(b"\x00" * (352 - handle.tell()))


def make_batch(root: Path, images: int, sessions: int, shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """BIDS-named NIfTI-1 files with random int16 data; returns what the xnatpy loop needs."""
    import math

    per_session = images // sessions
    size = math.prod(shape) * 2
    block = os.urandom(16 << 20)
    files = []
    for s in range(sessions):
        sub = f"{s + 1:03d}"
        folder = root / f"sub-{sub}" / "anat"
        folder.mkdir(parents=True, exist_ok=True)
        for run in range(per_session):
            name = f"sub-{sub}_run-{run + 1:02d}_T1w.nii"
            path = folder / name
            with path.open("wb") as handle:
                _write_header(handle, shape)
                left, offset = size, (s * per_session + run) * 4099 % len(block)
                while left:
                    piece = block[offset:offset + left] or block[: min(left, len(block))]
                    handle.write(piece)
                    left -= len(piece)
                    offset = 0
            files.append({"path": str(path), "name": name, "subject": sub, "session": f"{sub}_mr",
                          "scan": str(run + 1), "type": f"run-{run + 1:02d}_T1w"})
    return files


def _requests(server: Any) -> int:
    return int(server.stats()["requests"])


def measure(server: Any, batch: Path, files: list[dict[str, Any]], label: str, latency: float,
            workers: int, loop_limit: int) -> dict[str, Any]:
    from xnatsim.testing import Api

    api = Api(server)
    total = sum(Path(f["path"]).stat().st_size for f in files)
    mb = total / 1e6
    sessions = len({f["session"] for f in files})
    result: dict[str, Any] = {"batch": label, "latency_ms": latency, "files": len(files), "sessions": sessions,
                              "mb": round(mb, 1)}
    env = dict(os.environ, XNAT_HOST=server.url, XNAT_USER=server.user, XNAT_PASS=server.password)
    listing = batch.parent / f"{label}-files.json"
    listing.write_text(json.dumps(files))

    def project(name: str) -> str:
        pid = f"{name}{int(latency)}{label}"
        api.put(f"/data/projects/{pid}", params={"xsiType": "xnat:projectData"})
        return pid

    def cleanup(pid: str) -> None:
        shutil.rmtree(server.store.archive_dir / pid, ignore_errors=True)

    server.set_faults(latency_ms=0)
    raw_project = project("RAW")
    server.set_faults(latency_ms=latency)
    raw = run_measured([sys.executable, "-c", RAW_CHILD, server.url, server.user, server.password,
                        raw_project, str(listing)], env).checked("raw upload")
    raw_seconds = json.loads(raw.stdout)["seconds"]
    result["raw"] = {"seconds": round(raw_seconds, 2), "mb_s": round(mb / raw_seconds, 1)}
    cleanup(raw_project)

    server.set_faults(latency_ms=0)
    ni_project = project("NI")
    server.set_faults(latency_ms=latency)
    server.reset_stats()
    out_dir = batch.parent / f"out-{label}-{int(latency)}"
    run = run_measured([sys.executable, "-m", "xnatnode", "nifti-import", "--project", ni_project,
                        "--source", str(batch), "--output", str(out_dir), "--workers", str(workers),
                        "--log-level", "WARNING"], env).checked("nifti-import")
    wall = run.wall_s
    requests_made = _requests(server)
    report = json.loads((out_dir / "import-report.json").read_text())
    assert report["totals"]["imported"] == len(files), report["totals"]
    routes = server.stats()["routes"]
    scan_requests = sum(n for r, n in routes.items() if "/scans/{scan}" in r)
    result["nifti_import"] = {
        "seconds": round(wall, 2), "files_s": round(len(files) / wall, 1), "mb_s": round(mb / wall, 1),
        "requests": requests_made, "requests_per_scan": round(scan_requests / len(files), 2),
        "requests_per_session_other": round((requests_made - scan_requests - 1) / sessions, 2),
        "peak_rss_mb": run.peak_rss_mib, "of_raw": round(raw_seconds / wall, 3)}
    server.set_faults(latency_ms=0)
    server.reset_stats()
    run_measured([sys.executable, "-m", "xnatnode", "nifti-import", "--project", ni_project,
                  "--source", str(batch), "--output", str(out_dir) + "-again",
                  "--workers", str(workers), "--log-level", "WARNING"], env).checked("the re-run")
    result["nifti_import"]["rerun_requests"] = _requests(server)
    result["nifti_import"]["rerun_writes"] = sum(
        n for r, n in server.stats()["routes"].items() if r.startswith(("PUT", "POST", "DELETE")))
    cleanup(ni_project)

    loop_project = project("LOOP")
    subset = files[:loop_limit] if loop_limit else files
    subset_listing = batch.parent / f"{label}-loop.json"
    subset_listing.write_text(json.dumps(subset))
    server.set_faults(latency_ms=latency)
    server.reset_stats()
    loop = run_measured([sys.executable, "-c", LOOP_CHILD, server.url, server.user, server.password,
                         loop_project, str(subset_listing)], env).checked("xnatpy loop")
    loop_seconds = json.loads(loop.stdout)["seconds"]
    scale = len(files) / len(subset)
    result["xnatpy_loop"] = {
        "seconds": round(loop_seconds * scale, 2), "measured_files": len(subset), "extrapolated": scale != 1,
        "files_s": round(len(subset) / loop_seconds, 1), "mb_s": round(mb / (loop_seconds * scale), 1),
        "requests": round(_requests(server) * scale), "peak_rss_mb": loop.peak_rss_mib}
    result["speedup_vs_loop"] = round(loop_seconds * scale / result["nifti_import"]["seconds"], 1)
    cleanup(loop_project)
    server.set_faults(latency_ms=0)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 25.0])
    parser.add_argument("--batches", nargs="+", default=["small", "large"], choices=["small", "large"])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--large-mb", type=float, default=200.0, help="size of each large image")
    parser.add_argument("--loop-limit", type=int, default=0,
                        help="time the xnatpy loop on the first N files only and extrapolate (0: all)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    from xnatsim.testing import running_server

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ni-") as tmp:
        work = Path(tmp)
        batches: dict[str, tuple[Path, list[dict[str, Any]]]] = {}
        if "small" in args.batches:
            batches["small"] = (work / "small", make_batch(work / "small", 1000, 50, (64, 64, 12)))
        if "large" in args.batches:
            slices = int(args.large_mb * 1e6 / (512 * 512 * 2))
            batches["large"] = (work / "large", make_batch(work / "large", 20, 4, (512, 512, slices)))
        with running_server(work / "data", in_process=False) as server:
            for latency in args.latency_ms:
                for label, (batch, files) in batches.items():
                    result = measure(server, batch, files, label, latency, args.workers, args.loop_limit)
                    results.append(result)
                    print(json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "workers": args.workers,
                                         "cpus": os.cpu_count()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
