"""xnatsim under 100 concurrent clients: each logs in, then lists and uploads in a bounded loop.

Starts ``python -m xnatsim serve`` on 127.0.0.1 (own process, seed ``small``), then runs
``--clients`` threads. Each client: ``PUT /data/services/auth`` (JSESSIONID cookie), then
``--rounds`` x [``GET /data/projects/P/subjects?format=json``, ``GET …/experiments/E/scans``,
``PUT …/experiments/E/resources/LOAD/files/c<client>_<round>.bin`` (``--size`` bytes)].
Reports errors (must be 0), wall time, request rate and latency percentiles, and checks the
server stored every upload (file count and bytes in the resource).

    python benchmarks/xnatsim_concurrency.py [--clients 100] [--rounds 5] [--size 16384]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from xnatsim.store import Parent
from xnatsim.testing import running_server

PROJECT = "SYN"  # the `small` preset's project
TIMEOUT = 120


def client(url: str, user: str, password: str, number: int, rounds: int, payload: bytes, session_path: str,
           latencies: list[float], errors: list[str], lock: threading.Lock) -> None:
    http = requests.Session()
    mine: list[float] = []
    problems: list[str] = []
    try:
        started = time.perf_counter()
        login = http.put(url + "/data/services/auth", data={"username": user, "password": password},
                         timeout=TIMEOUT)
        mine.append(time.perf_counter() - started)
        if login.status_code != 200:
            problems.append(f"client {number}: login {login.status_code}")
            return
        http.cookies.set("JSESSIONID", login.text.strip())
        for n in range(rounds):
            for method, path, body in (
                ("GET", f"/data/projects/{PROJECT}/subjects?format=json", None),
                ("GET", f"{session_path}/scans?format=json", None),
                ("PUT", f"{session_path}/resources/LOAD/files/c{number:03d}_{n:03d}.bin", payload),
            ):
                started = time.perf_counter()
                response = http.request(method, url + path, data=body, timeout=TIMEOUT,
                                        headers={"Content-Type": "application/octet-stream"} if body else None)
                mine.append(time.perf_counter() - started)
                if response.status_code != 200:
                    problems.append(f"client {number}: {method} {path} -> {response.status_code}")
    except requests.RequestException as exc:
        problems.append(f"client {number}: {type(exc).__name__}: {exc}")
    finally:
        with lock:
            latencies.extend(mine)
            errors.extend(problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=16384, help="bytes per uploaded file")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 500 and 1 <= args.rounds <= 100 and 0 < args.size <= 10 * 1024**2):
        parser.error("clients 1..500, rounds 1..100, size 1..10 MiB")
    payload = bytes(i % 251 for i in range(args.size))
    with tempfile.TemporaryDirectory(prefix="xnatsim-bench-") as tmp, \
            running_server(Path(tmp), in_process=False, seed="small", fetch_schemas=False) as server:
        exp = server.store.list_experiments(project=PROJECT)[0]
        session_path = f"/data/projects/{PROJECT}/subjects/{exp.subject_id}/experiments/{exp.id}"
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        threads = [threading.Thread(target=client, args=(server.url, server.user, server.password, n, args.rounds,
                                                         payload, session_path, latencies, errors, lock),
                                    daemon=True) for n in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TIMEOUT * (args.rounds * 3 + 1))
        wall = time.perf_counter() - started
        alive = sum(t.is_alive() for t in threads)
        resource = server.store.get_resource(Parent("experiment", PROJECT, exp.subject_id, exp.id), "LOAD")
        stored = (resource.file_count, resource.file_size) if resource else (0, 0)
        requests_done = len(latencies)
        ordered = sorted(latencies)
        results: dict[str, Any] = {
            "clients": args.clients, "rounds": args.rounds, "upload_bytes": args.size,
            "requests": requests_done, "errors": len(errors), "first_errors": errors[:5], "stuck_clients": alive,
            "wall_s": round(wall, 2), "requests_per_s": round(requests_done / wall, 1),
            "latency_ms_p50": round(1000 * statistics.median(ordered), 1) if ordered else None,
            "latency_ms_p95": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1) if ordered else None,
            "latency_ms_max": round(1000 * ordered[-1], 1) if ordered else None,
            "stored_files": stored[0], "stored_bytes": stored[1],
            "expected_files": args.clients * args.rounds, "expected_bytes": args.clients * args.rounds * args.size,
        }
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    ok = not errors and not alive and stored == (results["expected_files"], results["expected_bytes"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
