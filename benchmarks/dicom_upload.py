"""dicom-upload's throughput: C-STORE (1 and 4 associations), the import service and dcmtk's
``storescu`` on the same files, against the raw loopback rate.

Data: ``--sessions`` sessions x ``--slices`` slices of 256x256 16-bit MR written by pydicom
(default 10 x 200 = 2,000 files, ~128 KiB each). xnatsim serves REST and its C-STORE receiver
as a subprocess on 127.0.0.1 with a short session idle time (``--idle``). Every run goes to a
fresh project and is measured in a child process (wall time; the child's own peak RSS, by
``measure.run_measured``):

* ``raw loopback``: the same files read and written to a TCP socket on 127.0.0.1 whose peer
  discards them (no DICOM, no HTTP): the ceiling of any upload on this machine;
* ``import client to a discarding HTTP sink``: dicom-upload's import path without a server
  (headers read before the timing, then the stored zip of each session sent by
  ``xnatnode.importzip.zip_body`` through ``Connection.request``, the call ``--via import``
  makes, to an HTTP sink that discards the body the way the raw peer does): what the client
  itself costs against the raw rate;
* ``import client to a sink that keeps the body and its MD5``: the same client to a sink that
  writes the body to a file and computes its MD5 on the way (see KEEPING_SINK): the ceiling of
  the end-to-end import path, whatever the server, on this machine. These three rows: median of
  PASSES passes (see PASSES); their peak RSS includes the peer in the same process (<= 2 MB);
* ``dicom-upload --via cstore --workers 1`` and ``--workers 4``;
* ``dicom-upload --via import``;
* ``storescu +sd +r`` (dcmtk, one association, the files' own PatientComments route them).

For dicom-upload the send rate (files/s, MB/s over the time spent sending) and the time from
the first object sent to the last row verified come from its report; for storescu the send rate
is its wall time, and first-sent-to-verified is measured by polling the archive. Memory: peak
RSS of each child; ``--memory-check`` also runs the import path on one session (1/10 of the
files) to show that memory does not grow with the batch. Usage::

    .venv/bin/python benchmarks/dicom_upload.py --json benchmarks/dicom_upload.json
    # only the raw loopback and the import client to the two sinks, alternating, 5 rounds (no server):
    .venv/bin/python benchmarks/dicom_upload.py --client-only 5 --json benchmarks/dicom_upload_client.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from measure import Measured, run_measured
from xnatsim.serverconfig import DEFAULT_DICOM_PROCESSES

REPO = Path(__file__).resolve().parent.parent

#: The two client-side rows measure the same way: the same files (read from the page cache, warm
#: after make_data), a peer thread in the same process that discards what arrives with
#: ``recv(1 MiB)``, each pass timed until the peer has read everything and answered, PASSES passes,
#: the median reported (wall and process CPU). Startup, imports and the pre-flight header reads
#: (scan_source, which dicom-upload does before it sends) are outside the timing.
PASSES = 5

RAW_CHILD = r"""
import json, socket, sys, threading, time
from pathlib import Path
folder, passes = Path(sys.argv[1]), int(sys.argv[2])
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
port = server.getsockname()[1]
def sink():  # each pass: everything read and discarded, then one byte back (as an HTTP answer)
    while True:
        conn, _ = server.accept()
        while conn.recv(1 << 20):
            pass
        conn.sendall(b"k"); conn.close()
threading.Thread(target=sink, daemon=True).start()
files = sorted(p for p in folder.rglob("*.dcm"))
wall, cpu = [], []
for _ in range(passes):
    t0, c0 = time.monotonic(), time.process_time(); total = 0
    with socket.create_connection(("127.0.0.1", port)) as out:
        for p in files:
            data = p.read_bytes(); total += len(data); out.sendall(data)
        out.shutdown(socket.SHUT_WR); out.recv(1)  # timed until the peer has it all
    wall.append(time.monotonic() - t0); cpu.append(time.process_time() - c0)
print(json.dumps({"files": len(files), "bytes": total, "wall_s": wall, "cpu_s": cpu}))
"""


SINK_CHILD = r"""
import hashlib, json, shutil, sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xnatnode.client import Connection
from xnatnode.credentials import Credentials
from xnatnode.dicom import scan_source
from xnatnode.importzip import zip_body
folder, passes, keep = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "keep"
kept = Path(tempfile.mkdtemp(prefix="sink-"))
class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as XNAT: one connection for every row
    rbufsize = 0  # headers read unbuffered, so that the body is all in the socket
    def do_POST(self):
        left, buf = int(self.headers["Content-Length"]), bytearray(1 << 20)
        out = tempfile.NamedTemporaryFile(dir=kept, delete=False) if keep else None
        digest = hashlib.md5() if keep else None
        while left:  # discarded as the raw peer does, or kept: written to a file and hashed
            n = self.connection.recv_into(buf, min(left, len(buf))); left -= n
            if out is not None and digest is not None:
                out.write(memoryview(buf)[:n]); digest.update(memoryview(buf)[:n])
        if out is not None:
            out.close()
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
threading.Thread(target=server.serve_forever, daemon=True).start()
scans = [scan_source(f) for f in sorted(p for p in folder.iterdir() if p.is_dir())]
conn = Connection(Credentials(f"http://127.0.0.1:{server.server_address[1]}", "bench", "bench"))
wall, cpu = [], []
for _ in range(passes):
    t0, c0 = time.monotonic(), time.process_time(); files = total = 0
    for scan in scans:  # as dicom-upload's _send_import: the same request through the same client
        with zip_body(scan, scan.objects) as body:
            conn.request("POST", "/data/services/import", data=body, headers={"Content-Type": "application/zip"},
                         params={"import-handler": "DICOM-zip", "project": "P", "subject": "S", "session": "E"})
        files += len(scan.objects); total += scan.bytes
    wall.append(time.monotonic() - t0); cpu.append(time.process_time() - c0)
    shutil.rmtree(kept); kept.mkdir()  # outside the timing
shutil.rmtree(kept)
print(json.dumps({"files": files, "bytes": total, "wall_s": wall, "cpu_s": cpu}))
"""


#: The least any import service keeps up with: the body written to a file and its MD5 computed
#: on the way (XNAT's ``checksums`` site preference, on by default, gives every archived file an
#: MD5 digest), nothing parsed, nothing extracted. A ceiling for the end-to-end import path.
KEEPING_SINK = "import client to a sink that keeps the body and its MD5"


def client_rates(deep: Path, passes: int = PASSES, baseline: Path | None = None) -> dict[str, dict[str, Any]]:
    """The raw loopback rate and the import client's alone (one child each, median of ``passes``);
    with ``baseline`` (a checkout of another commit) also that commit's client, for an A/B."""
    runs = [("raw loopback", RAW_CHILD, "-", None),
            ("import client to a discarding HTTP sink", SINK_CHILD, "discard", None),
            (KEEPING_SINK, SINK_CHILD, "keep", None)]
    if baseline is not None:
        env = {**os.environ, "PYTHONPATH": str(baseline.resolve() / "shared_lib")}
        runs.append(("import client to a discarding HTTP sink, baseline", SINK_CHILD, "discard", env))
    rows = {}
    for name, code, mode, child_env in runs:
        measured = run_measured([sys.executable, "-c", code, str(deep), str(passes), mode], child_env).checked(name)
        got = json.loads(measured.stdout.strip().splitlines()[-1])
        seconds = statistics.median(got["wall_s"])
        rows[name] = {"files_per_s": round(got["files"] / seconds, 1), "mb_per_s": round(got["bytes"] / 1e6 / seconds, 1),
                      "seconds": round(seconds, 3), "cpu_s": round(statistics.median(got["cpu_s"]), 3),
                      "passes_s": [round(s, 3) for s in got["wall_s"]], "peak_rss_mib": measured.peak_rss_mib,
                      "load": round(os.getloadavg()[0], 2)}
        print(name, rows[name], flush=True)
    return rows


def make_data(root: Path, sessions: int, slices: int, project: str) -> int:
    """Write the deep-storage folders and return their total size."""
    import io

    import numpy as np
    import pydicom

    from xnatsim import synth

    total = 0
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 4096, size=(256, 256), dtype=np.uint16)
    for s in range(sessions):
        labels = synth.DicomLabels(project, f"B{s:02d}", f"B{s:02d}_MR1", "1", "bench", "MR", "2024-01-01")
        folder = root / f"sess{s:02d}"
        folder.mkdir(parents=True)
        template = pydicom.dcmread(io.BytesIO(synth.dicom_bytes(labels, rows=256, columns=256)))
        for k in range(1, slices + 1):
            one = replace(labels, scan_id=str(1 + (k - 1) // 50), instance=k)
            ds = template.copy()
            ds.file_meta = template.file_meta.copy()
            ds.SOPInstanceUID = synth.uid(project, labels.session, one.scan_id, str(k))
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesInstanceUID = synth.uid(project, labels.session, one.scan_id)
            ds.SeriesNumber = int(one.scan_id)
            ds.InstanceNumber = k
            ds.PixelData = np.roll(pixels, k).tobytes()
            path = folder / f"{k:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            total += path.stat().st_size
    return total


def wait_archived(api: Any, project: str, sessions: int, files: int, timeout: float = 900) -> float:
    """Poll until ``sessions`` sessions with ``files`` files in all are archived; returns the time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = api.get(f"/data/projects/{project}/experiments", params={"format": "json"}).json()["ResultSet"]["Result"]
        if len(rows) >= sessions:
            count = 0
            for row in rows:
                res = api.get(f"/data/experiments/{row['ID']}/scans/ALL/resources", params={"format": "json"}).json()
                count += sum(int(r.get("file_count") or 0) for r in res["ResultSet"]["Result"])
            if count >= files:
                return time.time()
        time.sleep(0.5)
    raise RuntimeError(f"{project}: not archived in {timeout} s")


def run_storescu(port: int, deep: Path) -> Measured:
    """dcmtk's storescu sending every file under ``deep`` over one association (measured)."""
    return run_measured(["storescu", "-aet", "DCMTK", "-aec", "XNAT", "+sd", "+r", "+sp", "*.dcm", "127.0.0.1",
                         str(port), str(deep)]).checked("storescu")


def run_upload(api: Any, env: dict[str, str], port: int, deep: Path, work: Path, name: str, via: str, workers: int,
               sessions: int) -> tuple[Measured, dict[str, Any]]:
    """``dicom-upload`` of the first ``sessions`` folders into a fresh project: (measured, report totals)."""
    project = api.new_project("BENCH")
    csv = deep / f"{project}.csv"
    csv.write_text("source,project,subject,session\n" + "".join(
        f"sess{s:02d},{project},B{s:02d},B{s:02d}_MR1\n" for s in range(sessions)))
    out = work / f"out-{project}"
    measured = run_measured([sys.executable, "-m", "xnatnode", "dicom-upload", "--csv", str(csv), "--source-root",
                             str(deep), "--via", via, "--workers", str(workers), "--dicom-port", str(port),
                             "--output", str(out), "--verify-timeout", "900"], env).checked(name)
    return measured, json.loads((out / "upload-report.json").read_text())["totals"]


def interleaved(api: Any, port: int, env: dict[str, str], deep: Path, work: Path, args: Any,
                total: int) -> dict[str, Any]:
    """storescu, ``--via cstore --workers 1`` and ``--workers 4`` in turn, ``--interleaved`` rounds;
    per-run rates and medians (runs minutes apart see different loads; alternating shares it out)."""
    n_files = args.sessions * args.slices
    names = {1: "C-STORE, 1 association", 4: "C-STORE, 4 associations"}
    runs: dict[str, list[dict[str, float]]] = {"dcmtk storescu": [], **{name: [] for name in names.values()}}
    api.put("/data/projects/BENCH_DCMTK", params={"xsiType": "xnat:projectData"})
    for round_ in range(args.interleaved):
        measured = run_storescu(port, deep)
        runs["dcmtk storescu"].append({"files_per_s": round(n_files / measured.wall_s, 1),
                                       "load": round(os.getloadavg()[0], 2)})
        for workers, name in names.items():
            _, totals = run_upload(api, env, port, deep, work, name, "cstore", workers, args.sessions)
            runs[name].append({"files_per_s": round(totals["objects_sent"] / totals["seconds"], 1),
                               "load": round(os.getloadavg()[0], 2), "verified": totals["verified"]})
        print(round_, {k: v[-1] for k, v in runs.items()}, flush=True)
    out_runs: dict[str, Any] = {name: {"rounds": rows,
                                       "median_files_per_s": round(statistics.median(r["files_per_s"] for r in rows), 1)}
                                for name, rows in runs.items()}
    if args.json:
        args.json.write_text(json.dumps({"files": n_files, "bytes": total, "dicom_processes": args.dicom_processes,
                                         "runs": out_runs}, indent=2) + "\n")
    print(json.dumps(out_runs, indent=2))
    return out_runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--idle", type=float, default=2.0, help="receiver session idle seconds")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", type=Path, help="keep the data in this folder")
    parser.add_argument("--interleaved", type=int, metavar="ROUNDS",
                        help="only storescu and C-STORE with 1 and 4 associations, alternating, ROUNDS times (medians)")
    parser.add_argument("--client-only", type=int, metavar="ROUNDS",
                        help="only the raw loopback and the import client to the two sinks, alternating, ROUNDS times "
                             "(medians; no server)")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="with --client-only: also the import client of this checkout of another commit "
                             "(e.g. made by git worktree add), in the same rounds")
    parser.add_argument("--dicom-processes", type=int, default=DEFAULT_DICOM_PROCESSES,
                        help=f"xnatsim receiver worker processes (default {DEFAULT_DICOM_PROCESSES}: one per core, "
                             "at most 4)")
    args = parser.parse_args()

    from xnatsim.testing import Api, running_server

    work = Path(tempfile.mkdtemp(prefix="dicom-upload-bench-"))
    deep = work / "deep"
    n_files = args.sessions * args.slices
    results: dict[str, Any] = {"sessions": args.sessions, "slices": args.slices, "files": n_files,
                               "idle_s": args.idle, "cpus": os.cpu_count(), "dicom_processes": args.dicom_processes,
                               "runs": {}}
    try:
        print(f"writing {n_files} files ...", flush=True)
        total = make_data(deep, args.sessions, args.slices, "BENCH_DCMTK")
        os.sync()  # the new files' writeback would otherwise slow whichever run comes first
        results["bytes"] = total
        print(f"{total / 1e6:.1f} MB in {deep}", flush=True)

        if args.client_only:
            rounds = [client_rates(deep, baseline=args.baseline) for _ in range(args.client_only)]
            raw = statistics.median(r["raw loopback"]["mb_per_s"] for r in rounds)
            for name in rounds[0]:
                rate = statistics.median(r[name]["mb_per_s"] for r in rounds)
                results["runs"][name] = {"rounds": [r[name] for r in rounds], "median_mb_per_s": round(rate, 1),
                                         "of_raw": round(rate / raw, 3),
                                         "median_cpu_s": round(statistics.median(r[name]["cpu_s"] for r in rounds), 3),
                                         "peak_rss_mib": max(r[name]["peak_rss_mib"] for r in rounds)}
                print(f"{name}: median {rate:.1f} MB/s = {100 * rate / raw:.0f} % of raw, "
                      f"CPU {results['runs'][name]['median_cpu_s']} s per pass, "
                      f"peak RSS {results['runs'][name]['peak_rss_mib']} MiB", flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2) + "\n")
            return 0
        results["runs"].update(client_rates(deep))

        with running_server(work / "xnat", in_process=False, fetch_schemas=False, dicom_port=0,
                            session_idle_seconds=args.idle, dicom_processes=args.dicom_processes) as server:
            api = Api(server)
            port = int(api.get("/xapi/dicomscp").json()[0]["port"])
            env = {**os.environ, "XNAT_HOST": server.url, "XNAT_USER": server.user, "XNAT_PASS": server.password}
            if args.interleaved:
                results["runs"] = interleaved(api, port, env, deep, work, args, total)
                return 0
            for name, via, workers, sessions in (("C-STORE, 1 association", "cstore", 1, args.sessions),
                                                 ("C-STORE, 4 associations", "cstore", 4, args.sessions),
                                                 ("import service", "import", 1, args.sessions),
                                                 ("import service, 1 session", "import", 1, 1),
                                                 ("C-STORE, 4 associations, 1 session", "cstore", 4, 1)):
                measured, totals = run_upload(api, env, port, deep, work, name, via, workers, sessions)
                send_s = totals["seconds"]
                results["runs"][name] = {
                    "files": totals["objects_sent"], "verified_rows": totals["verified"],
                    "files_per_s": round(totals["objects_sent"] / send_s, 1),
                    "mb_per_s": round(totals["bytes_sent"] / 1e6 / send_s, 1), "send_s": send_s,
                    "first_sent_to_last_verified_s": totals["first_sent_to_last_verified_s"],
                    "wall_s": measured.wall_s, "peak_rss_mib": measured.peak_rss_mib}
                print(name, results["runs"][name], flush=True)

            if shutil.which("storescu"):
                api.put("/data/projects/BENCH_DCMTK", params={"xsiType": "xnat:projectData"})
                started = time.time()
                measured = run_storescu(port, deep)
                sent_s = measured.wall_s
                done = wait_archived(api, "BENCH_DCMTK", args.sessions, n_files)
                results["runs"]["dcmtk storescu"] = {
                    "files": n_files, "files_per_s": round(n_files / sent_s, 1),
                    "mb_per_s": round(total / 1e6 / sent_s, 1), "send_s": sent_s,
                    "first_sent_to_last_verified_s": round(done - started, 3),
                    "wall_s": sent_s, "peak_rss_mib": measured.peak_rss_mib}
                print("dcmtk storescu", results["runs"]["dcmtk storescu"], flush=True)
    finally:
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
