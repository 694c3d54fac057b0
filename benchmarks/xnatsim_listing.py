"""xnatsim: seeding a big project and one ``columns=`` listing over ~100,000 scan rows.

Seeds ``--sessions`` sessions x ``--scans`` scans (default 8,334 x 12 = 100,008 scan rows) through
the store's bulk path (``xnatsim.seed``), starts ``python -m xnatsim serve`` on 127.0.0.1 in its
own process, and times the pyxnat-style bulk listing (spec §5.1, one row per session x scan)::

    GET /data/experiments?project=P&xsiType=xnat:mrSessionData&format=json
        &columns=ID,label,subject_label,date,xnat:mrScanData/ID,xnat:mrScanData/type,
                 xnat:mrScanData/series_description,xnat:mrScanData/quality

Reports seed time, listing time (``--repeat`` runs), response bytes, rows and the server's peak
RSS. Also times seeding 10,000 sessions x 12 scans with one tiny file per scan when
``--seed-files`` is given (the issue's benchmark size). Everything is bounded and cleans up.

    python benchmarks/xnatsim_listing.py [--sessions 8334] [--scans 12] [--repeat 3] [--seed-files]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from xnatsim.store import Store
from xnatsim.testing import running_server

from xnatsim import seed

PROJECT = "BIGLIST"
COLUMNS = ("ID,label,subject_label,date,xnat:mrScanData/ID,xnat:mrScanData/type,"
           "xnat:mrScanData/series_description,xnat:mrScanData/quality")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def seed_project(data: Path, sessions: int, scans: int, files: str, prefix: str) -> tuple[float, dict[str, Any]]:
    store = Store(data)
    started = time.perf_counter()
    manifest = seed.apply(store, {"project_prefix": prefix, "subjects": (sessions + 1) // 2,
                                  "sessions_per_subject": 2, "scans_per_session": scans,
                                  "files_per_scan": 1 if files != "none" else 0, "files": files})
    seconds = time.perf_counter() - started
    store.close()
    return seconds, manifest["totals"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8334)
    parser.add_argument("--scans", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed-files", action="store_true",
                        help="also time seeding 10,000 sessions x 12 scans with one tiny file per scan")
    parser.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    args = parser.parse_args(argv)
    if not (1 <= args.sessions <= 200_000 and 1 <= args.scans <= 100 and 1 <= args.repeat <= 20):
        parser.error("sessions 1..200000, scans 1..100, repeat 1..20")
    results: dict[str, Any] = {"sessions": args.sessions, "scans_per_session": args.scans}
    with tempfile.TemporaryDirectory(prefix="xnatsim-bench-") as tmp:
        data = Path(tmp) / "data"
        seconds, totals = seed_project(data, args.sessions, args.scans, "none", PROJECT)
        results["seed_no_files_s"] = round(seconds, 2)
        results["seed_totals"] = totals
        print(f"seeded {totals['sessions']} sessions / {totals['scans']} scans (no files) in {seconds:.1f} s",
              file=sys.stderr)
        with running_server(data, in_process=False, fetch_schemas=False) as server:
            assert server.process is not None
            session = server.session()
            session.get(server.url + "/data/JSESSION", timeout=60).raise_for_status()  # log in once
            params = {"project": PROJECT, "xsiType": "xnat:mrSessionData", "columns": COLUMNS,
                      "format": "json"}
            times: list[float] = []
            size = rows = 0
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = session.get(server.url + "/data/experiments", params=params, timeout=600)
                response.raise_for_status()
                body = response.json()
                times.append(time.perf_counter() - started)
                size = len(response.content)
                rows = len(body["ResultSet"]["Result"])
            results.update({
                "listing_rows": rows, "listing_bytes": size, "listing_s_median": round(statistics.median(times), 3),
                "listing_s_min": round(min(times), 3), "listing_s_max": round(max(times), 3),
                "server_peak_rss_mb": round(peak_rss_mb(server.process.pid), 1),
                "first_row": body["ResultSet"]["Result"][0],
            })
        if args.seed_files:
            big = Path(tmp) / "files"
            seconds, totals = seed_project(big, 10_000, 12, "tiny", "BIGFILES")
            results["seed_10000x12_tiny_s"] = round(seconds, 1)
            results["seed_10000x12_tiny_totals"] = totals
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
