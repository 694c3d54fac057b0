"""Fault matrix: project-summary against a faulty XNAT, N runs per fault (issue 8).

Each run is a fresh ``xnatnode project-summary --sizes rest`` child process against xnatsim
(served as a subprocess on 127.0.0.1, seeded once), with xnatsim's fault controls or, for the
byte-dribbling rows, a loopback relay written here (xnatsim has no dribbling mode) between the
command and xnatsim. A run is classified from its exit status, summary.json and run record:

* ``correct``: exit 0 and every total equals the seeder's manifest;
* ``partial``: exit 6, summary.json written, the unread items listed in ``gaps.unread`` and the
  totals no higher than the truth;
* ``failed clearly``: exit 1-5 with a one-line reason in xnatnode-run.json and no traceback;
* ``wrong``: anything else (a wrong total with exit 0, a traceback, a hang killed at 10 min).

Usage::

    .venv/bin/python benchmarks/fault_matrix.py --runs 10 --json benchmarks/fault_matrix.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

KEYS = ("subjects", "sessions", "scans", "resources", "files", "bytes")
HANG_LIMIT_S = 600


class DribbleRelay:
    """A TCP relay on 127.0.0.1 to ``upstream``; each accepted connection, with probability
    ``share``, gets its answers one byte every ``interval`` seconds (the rest pass at once)."""

    def __init__(self, upstream: tuple[str, int], share: float, interval: float, seed: int) -> None:
        self.upstream = upstream
        self.share = share
        self.interval = interval
        self.random = random.Random(seed)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.dribbled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            slow = self.random.random() < self.share
            self.dribbled += slow
            threading.Thread(target=self._serve, args=(client, slow), daemon=True).start()

    def _serve(self, client: socket.socket, slow: bool) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
        self._pipe(upstream, client, slow)

    def _pipe(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        try:
            while not self._stop.is_set():
                data = source.recv(65536)
                if not data:
                    break
                if not slow:
                    sink.sendall(data)
                    continue
                for i in range(len(data)):
                    sink.sendall(data[i:i + 1])
                    time.sleep(self.interval)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@contextmanager
def relay(url: str, share: float, interval: float, seed: int) -> Iterator[tuple[str, DribbleRelay]]:
    host, port = url.split("://", 1)[1].split(":")
    r = DribbleRelay((host, int(port)), share, interval, seed)
    try:
        yield f"http://127.0.0.1:{r.port}", r
    finally:
        r.close()


def classify(code: int | None, out: Path, stderr: str, truth: dict[str, int]) -> tuple[str, str]:
    """(class, detail) of one run (see the module docstring)."""
    if code is None:
        return "wrong", "hung (killed)"
    if "Traceback" in stderr:
        return "wrong", f"exit {code} with a traceback"
    record: dict[str, Any] = {}
    if (out / "xnatnode-run.json").exists():
        record = json.loads((out / "xnatnode-run.json").read_text())
    summary: dict[str, Any] = {}
    if (out / "summary.json").exists():
        summary = json.loads((out / "summary.json").read_text())
    totals = summary.get("totals", {})
    if code == 0:
        if all(totals.get(k) == truth[k] for k in KEYS):
            return "correct", ""
        return "wrong", f"exit 0 with totals {totals}"
    if code == 6:
        unread = summary.get("gaps", {}).get("unread", {}).get("count", 0)
        low = all((totals.get(k) or 0) <= truth[k] for k in KEYS)
        if unread and low and record.get("status") == "partial":
            return "partial", f"{unread} unread"
        return "wrong", f"exit 6 but unread={unread}, totals {totals}"
    error = str(record.get("error") or "")
    if 1 <= code <= 5 and error and "\n" not in error:
        return "failed clearly", f"exit {code}: {error[:160]}"
    return "wrong", f"exit {code}, record error {error[:100]!r}"


FAULTS: list[dict[str, Any]] = [
    {"name": "no faults (control)", "faults": {}},
    {"name": "5% HTTP 500", "faults": {"fail_rate": 0.05, "fail_status": 500}},
    {"name": "20% HTTP 503 + 5% dropped connections",
     "faults": {"fail_rate": 0.20, "fail_status": 503, "drop_every": 20}},
    {"name": "1 connection in 4 dribbles (1 byte / 2 s), --timeout 5",
     "relay": {"share": 0.25, "interval": 2.0}, "flags": ["--timeout", "5"]},
    {"name": "every answer dribbles (1 byte / 2 s), --deadline 20",
     "relay": {"share": 1.0, "interval": 2.0}, "flags": ["--deadline", "20"]},
]


def seed(data_dir: Path, subjects: int) -> dict[str, Any]:
    from xnatsim.store import Store

    from xnatsim import seed as seeder

    store = Store(data_dir)
    try:
        manifest: dict[str, Any] = seeder.apply(store, {
            "project_prefix": "FM", "subjects": subjects, "sessions_per_subject": 2,
            "scans_per_session": 4, "files_per_scan": 1, "files": "tiny", "tiny_size": 16,
        })
    finally:
        store.close()
    return manifest


def one_run(url: str, server: Any, project: str, fault: dict[str, Any], seed_n: int,
            truth: dict[str, int], tmp: Path) -> dict[str, Any]:
    out = tmp / f"out-{seed_n}"
    env = dict(os.environ, XNAT_HOST=url, XNAT_USER=server.user, XNAT_PASS=server.password)
    cmd = [sys.executable, "-m", "xnatnode", "project-summary", "--project", project,
           "--sizes", "rest", "--output", str(out), "--input", str(tmp / "no-mount"),
           *fault.get("flags", [])]
    server.reset_stats()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        _, stderr = proc.communicate(timeout=HANG_LIMIT_S)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        code = None
    wall = time.monotonic() - started
    kind, detail = classify(code, out, stderr, truth)
    stats = server.stats()
    return {"seed": seed_n, "exit": code, "class": kind, "detail": detail,
            "seconds": round(wall, 1), "requests": stats["requests"],
            "failed": stats.get("failed"), "dropped": stats.get("dropped")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--only", help="run only the faults whose name contains this")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()

    from xnatsim.testing import running_server

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fm-") as tmp_name:
        tmp = Path(tmp_name)
        manifest = seed(tmp / "data", args.subjects)
        project = next(iter(manifest["projects"]))
        truth = manifest["projects"][project]
        print(f"project {project}: {truth}", flush=True)
        with running_server(tmp / "data", in_process=False) as server:
            for fault in FAULTS:
                if args.only and args.only not in fault["name"]:
                    continue
                runs = []
                for n in range(args.runs):
                    server.set_faults(latency_ms=0, fail_rate=0, drop_every=0, fail_status=503)
                    if "faults" in fault:
                        server.set_faults(seed=1000 + n, **fault["faults"])
                    if "relay" in fault:
                        with relay(server.url, seed=n, **fault["relay"]) as (url, dribbler):
                            run = one_run(url, server, project, fault, n, truth, tmp)
                            run["dribbled_connections"] = dribbler.dribbled
                    else:
                        run = one_run(server.url, server, project, fault, n, truth, tmp)
                    server.set_faults(fail_rate=0, drop_every=0)
                    runs.append(run)
                    slow = (f" {run['dribbled_connections']} dribbled conn."
                            if "dribbled_connections" in run else "")
                    print(f"{fault['name']:<55} run {n}: {run['class']:<15} {run['seconds']:6.1f} s "
                          f"{run['requests']:>4} req{slow}  {run['detail']}", flush=True)
                counts = {k: sum(r["class"] == k for r in runs)
                          for k in ("correct", "partial", "failed clearly", "wrong")}
                results.append({"fault": fault["name"], "counts": counts, "runs": runs})
                print(f"== {fault['name']}: {counts}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"truth": truth, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
