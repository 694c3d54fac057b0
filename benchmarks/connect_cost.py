"""What it costs to connect to XNAT and make the first useful call, per way of connecting.

Cases (each run ``--repeat`` times on a fresh connection; requests counted by
``Connection.request_count`` and, against xnatsim, cross-checked with the server's own count):

* ``xnatpy default``      ``xnat.connect()`` with its defaults (all schemas, class generation)
* ``xnatpy lean model``   ``xnat.connect(extension_types=False)`` (xnat + xdat schemas only)
* ``xnatpy no model``     ``xnat.connect(no_parse_model=True)`` (login only, raw get/put)
* ``xnatnode lean``       :func:`xnatnode.client.connect` (no request) + the first call

The first useful call is the project listing (``GET /data/projects`` on the lean path,
``session.projects`` on xnatpy). The import time of ``xnat`` and ``xnatnode.client`` is measured
in fresh interpreters, since a Container Service job pays it on every launch.

Usage::

    python benchmarks/connect_cost.py                  # starts `python -m xnatsim serve` on 127.0.0.1
    XNAT_PASS=... python benchmarks/connect_cost.py --url http://127.0.0.1:8080 --user admin

The password comes from ``XNAT_PASS`` or the netrc file, never from a flag.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from xnatnode.client import Connection, XnatError, connect
from xnatnode.credentials import resolve_credentials

# -- a minimal XNAT for xnatpy's connect (fallback while xnatsim lacks the endpoints) ----------

#: Element names a stock XNAT 1.8 lists under /data/search/elements (an assumption: a typical
#: site with MR/CT/PET data; real sites list more with plugins installed).
STOCK_ELEMENTS = (
    "xnat:projectData", "xnat:subjectData", "xnat:mrSessionData", "xnat:ctSessionData",
    "xnat:petSessionData", "xnat:petmrSessionData", "xnat:crSessionData", "xnat:dxSessionData",
    "xnat:usSessionData", "xnat:otherDicomSessionData", "xnat:mrScanData", "xnat:ctScanData",
    "xnat:petScanData", "xnat:otherDicomScanData", "xnat:qcAssessmentData",
    "xnat:qcManualAssessorData", "xnat:subjectAssessorData", "xnat:imageAssessorData",
    "xdat:user", "wrk:workflowData",
)
#: What the recorded minimal trace (xnatpy-internals §1) served.
TRACE_SCHEMAS = ("xnat", "xdat", "security")
TRACE_ELEMENTS = ("xnat:projectData", "xnat:subjectData", "xnat:mrSessionData")


class MinimalXnat:
    """Just enough XNAT on 127.0.0.1 for ``xnat.connect()`` and a project listing; counts requests.

    ``profile="trace"`` serves what the recorded trace saw (3 schemas, 3 search elements);
    ``profile="stock"`` the 17 schema names of a stock XNAT 1.8 and :data:`STOCK_ELEMENTS`.
    Schema texts: XNAT's real xnat/xdat XSDs (as cached by ``xnatsim fetch-schemas``), minimal
    valid XSDs for the others.
    """

    user = "admin"
    password = "admin"

    def __init__(self, profile: str, latency_ms: float = 0.0) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from xnatsim.schemas import SCHEMA_NAMES, Schemas

        docs = Schemas().documents
        names = TRACE_SCHEMAS if profile == "trace" else SCHEMA_NAMES
        elements = TRACE_ELEMENTS if profile == "trace" else STOCK_ELEMENTS
        self.count = 0
        outer = self
        projects = {"ResultSet": {"Result": [
            {"ID": f"P{i}", "name": f"Project {i}", "URI": f"/data/projects/P{i}"} for i in (1, 2)
        ]}}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body in one segment (no delayed-ACK stalls)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def reply(self, status: int, body: bytes | str | Any, kind: str = "text/plain") -> None:
                if not isinstance(body, bytes | str):
                    body, kind = json.dumps(body), "application/json"
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                if self.path.startswith("/data/services/auth"):
                    self.send_header("Set-Cookie", "JSESSIONID=0123456789ABCDEF; Path=/")
                self.end_headers()
                self.wfile.write(data)

            def serve(self) -> None:
                outer.count += 1
                if latency_ms:
                    time.sleep(latency_ms / 1000)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                key = (self.command, path)
                if key == ("GET", "/"):
                    return self.reply(200, "<html><body>XNAT</body></html>", "text/html")
                if key == ("PUT", "/data/services/auth"):
                    return self.reply(200, "0123456789ABCDEF")
                if key == ("GET", "/data/auth"):
                    return self.reply(200, f"User '{outer.user}' is logged in")
                if path == "/data/JSESSION":
                    return self.reply(200, "0123456789ABCDEF" if self.command == "GET" else "")
                if key == ("GET", "/data/version"):
                    return self.reply(200, "1.8.10")
                if key == ("GET", "/xapi/schemas"):
                    return self.reply(200, list(names))
                if self.command == "GET" and path.startswith("/xapi/schemas/"):
                    name = path[len("/xapi/schemas/"):]
                    if name in names:
                        return self.reply(200, docs[name], "application/xml")
                if key == ("GET", "/data/search/elements"):
                    return self.reply(200, {"ResultSet": {"Result": [
                        {"ELEMENT_NAME": e, "SINGULAR": e, "PLURAL": e, "SECURED": "true", "COUNT": 0}
                        for e in elements]}})
                if self.command == "GET" and path.startswith("/data/search/elements/"):
                    return self.reply(200, {"ResultSet": {"Result": [{
                        "FIELD_ID": "ID", "HEADER": "ID", "SUMMARY": "ID", "TYPE": "string",
                        "REQUIRES_VALUE": "false", "DESC": "", "ELEMENT_NAME": path.rsplit("/", 1)[1],
                        "SRC": "0"}]}})
                if key in (("GET", "/data/projects"), ("GET", "/data/archive/projects")):
                    return self.reply(200, projects)
                return self.reply(404, "not found")

            do_GET = do_PUT = do_POST = do_DELETE = serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def reset_stats(self) -> None:
        self.count = 0

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@dataclass
class Case:
    key: str
    name: str
    requests: list[int] = field(default_factory=list)  # connect + first call
    close_requests: list[int] = field(default_factory=list)
    server_requests: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # connect + first call, in the process
    process_seconds: list[float] = field(default_factory=list)  # the whole fresh process
    projects: int = 0
    error: str | None = None

    def row(self) -> str:
        if self.error is not None:
            return f"| {self.name} | failed: {self.error} | | | | |"
        server = "" if not self.server_requests else f"{statistics.median(self.server_requests):g}"
        return (
            f"| {self.name} | {statistics.median(self.requests):g} | "
            f"{statistics.median(self.close_requests):g} | {server} | "
            f"{_spread(self.seconds)} | {_spread(self.process_seconds)} |"
        )


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered):.3f} ({ordered[0]:.3f}-{ordered[-1]:.3f})"


def lean(conn: Connection) -> int:
    return len(conn.get_table("/data/projects"))


def via_xnatpy(**options: Any) -> Callable[[Connection], int]:
    def call(conn: Connection) -> int:
        session = conn.xnatpy(**options)
        if options.get("parse_model", True):
            return len(session.projects)
        return len(session.get_json("/data/projects")["ResultSet"]["Result"])

    return call


CASES: dict[str, tuple[str, Callable[[Connection], int]]] = {
    "xnatpy-default": ("xnatpy default", via_xnatpy()),
    "xnatpy-lean-model": ("xnatpy lean model (extension_types=False)",
                          via_xnatpy(extension_types=False)),
    "xnatpy-no-model": ("xnatpy no model (no_parse_model=True)", via_xnatpy(parse_model=False)),
    "lean": ("xnatnode lean (requests.Session)", lean),
}


def run_one(key: str) -> dict[str, Any]:
    """One case in this (fresh) process, credentials from XNAT_HOST/XNAT_USER/XNAT_PASS."""
    started = time.perf_counter()
    conn = connect()
    try:
        projects = CASES[key][1](conn)
    except XnatError as exc:
        conn.close()
        return {"error": str(exc)}
    seconds = time.perf_counter() - started
    count = conn.request_count
    conn.close()
    return {"requests": count, "close_requests": conn.request_count - count, "seconds": seconds,
            "projects": projects}


def measure(url: str, user: str, password: str, repeat: int,
            server_count: Callable[[], int] | None, reset: Callable[[], None] | None) -> list[Case]:
    """Every case ``repeat`` times, each in a fresh interpreter (as every CS launch is)."""
    env = {**os.environ, "XNAT_HOST": url, "XNAT_USER": user, "XNAT_PASS": password}
    results = []
    for key, (name, _call) in CASES.items():
        case = Case(key, name)
        for _ in range(repeat):
            if reset is not None:
                reset()
            started = time.perf_counter()
            child = subprocess.run([sys.executable, __file__, "--one", key], env=env, check=True,
                                   capture_output=True, text=True, timeout=300)
            case.process_seconds.append(time.perf_counter() - started)
            outcome = json.loads(child.stdout.strip().splitlines()[-1])
            if "error" in outcome:
                case.error = outcome["error"]
                break
            case.requests.append(outcome["requests"])
            case.close_requests.append(outcome["close_requests"])
            case.seconds.append(outcome["seconds"])
            case.projects = outcome["projects"]
            if server_count is not None:
                case.server_requests.append(server_count())
        results.append(case)
    return results


def import_seconds(module: str, repeat: int) -> float:
    """Median wall time of ``python -c 'import <module>'`` in a fresh interpreter."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@contextlib.contextmanager
def target(args: argparse.Namespace) -> Iterator[tuple[str, str, str, Callable[[], int] | None,
                                                       Callable[[], None] | None]]:
    """``(url, user, password, server request count, reset of that count)``."""
    if args.url:
        creds = resolve_credentials(args.url, args.user)
        yield creds.host, creds.user, creds.password, None, None
        return
    if args.server == "xnatsim":
        from xnatsim.testing import running_server

        with running_server(in_process=False, seed=args.seed, latency_ms=args.latency_ms) as srv:
            yield (srv.url, srv.user, srv.password, lambda: int(srv.stats()["requests"]),
                   srv.reset_stats)
        return
    minimal = MinimalXnat(args.server.split("-", 1)[1], args.latency_ms)
    try:
        yield minimal.url, minimal.user, minimal.password, lambda: minimal.count, minimal.reset_stats
    finally:
        minimal.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="XNAT to measure (default: a local server, see --server)")
    parser.add_argument("--server", choices=("xnatsim", "minimal-trace", "minimal-stock"),
                        default="xnatsim",
                        help="local server to start when no --url: `python -m xnatsim serve`, or "
                        "the built-in minimal XNAT with the recorded trace's or a stock site's "
                        "schemas and search elements (default: xnatsim)")
    parser.add_argument("--user", help="user (default: XNAT_USER or netrc); password: XNAT_PASS or netrc")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", default="small", help="xnatsim seed preset (default: small)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="xnatsim per-request latency")
    parser.add_argument("--json", help="also write the raw numbers to this file")
    parser.add_argument("--one", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one)))
        return 0

    with target(args) as (url, user, password, server_count, reset):
        cases = measure(url, user, password, args.repeat, server_count, reset)
    imports = {m: import_seconds(m, args.repeat) for m in ("xnatnode.client", "xnat")}

    if args.url:
        where = url
    elif args.server == "xnatsim":
        where = f"xnatsim (seed {args.seed!r}, latency {args.latency_ms:g} ms)"
    else:
        where = f"built-in {args.server} server (latency {args.latency_ms:g} ms)"
    print(f"Target: {where}; {args.repeat} runs per case; Python {sys.version.split()[0]}\n")
    print("| case | requests (connect + first call) | requests on close | server-counted | "
          "connect + first call, s | whole process, s |")
    print("|---|---|---|---|---|---|")
    for case in cases:
        print(case.row())
    print("\n| import in a fresh interpreter | wall s (median) |\n|---|---|")
    for module, seconds in imports.items():
        print(f"| `python -c 'import {module}'` | {seconds:.3f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"target": where, "cases": [asdict(c) for c in cases], "imports": imports},
                      out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
