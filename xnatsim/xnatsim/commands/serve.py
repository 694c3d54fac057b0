"""``python -m xnatsim serve``: run the XNAT stand-in until interrupted."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from xnatsim.serverconfig import DEFAULT_DICOM_PROCESSES

if TYPE_CHECKING:
    from xnatsim.store import Store

NAME = "serve"
HELP = "run the XNAT REST stand-in (user admin/admin) on HOST:PORT with its data in DIR"

log = logging.getLogger("xnatsim.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (0 picks a free one; default 8080)")
    parser.add_argument("--data", type=Path, required=True, help="data folder (database + archive)")
    parser.add_argument("--seed", default=None, help="load a named data set first (e.g. demo)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to each request")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="fraction of requests answered 5xx")
    parser.add_argument("--fail-every", type=int, default=0, help="answer every Nth request with 5xx")
    parser.add_argument("--drop-every", type=int, default=0, help="close the connection on every Nth request")
    parser.add_argument("--fail-status", type=int, default=503, help="status of injected failures (5xx)")
    parser.add_argument("--max-body-mb", type=float, default=4096, help="largest accepted request body, MiB")
    parser.add_argument("--schema-cache", type=Path, default=None, help="XNAT schema cache folder")
    parser.add_argument("--no-fetch-schemas", action="store_true", help="never download schemas")
    parser.add_argument("--site-id", default="XNATSIM", help="prefix of generated IDs (default XNATSIM)")
    parser.add_argument("--strict-labels", action="store_true",
                        help="refuse subject/experiment labels outside [A-Za-z0-9_-] with 417")
    parser.add_argument("--log-requests", action="store_true", help="log every request")
    parser.add_argument("--idle-timeout", type=float, default=120.0,
                        help="close a connection idle or stalled this many seconds (default 120; 0 = never)")
    parser.add_argument("--dicom-port", type=int, default=None,
                        help="also run a DICOM C-STORE receiver on this port (XNAT's is 8104; 0 = a free one)")
    parser.add_argument("--dicom-ae", default="XNAT", help="AE title of that receiver (default XNAT)")
    parser.add_argument("--dicom-processes", type=int, default=DEFAULT_DICOM_PROCESSES,
                        help="worker processes serving each receiver's associations "
                             f"(default {DEFAULT_DICOM_PROCESSES}: one per core, at most 4)")
    parser.add_argument("--session-idle-seconds", type=float, default=300.0,
                        help="seconds a received DICOM session stays idle before it is built (default 300)")
    parser.add_argument("--ready-file", type=Path, default=None,
                        help="write the base URL to this file once listening")


def run(args: argparse.Namespace) -> int:
    from xnatsim.server import ServerConfig, make_server

    if not 0 <= args.fail_rate <= 1:
        print("--fail-rate must be between 0 and 1", file=sys.stderr)
        return 2
    if not 500 <= args.fail_status <= 599:
        print("--fail-status must be a 5xx status", file=sys.stderr)
        return 2
    config = ServerConfig(
        data_dir=args.data, host=args.host, port=args.port, latency_ms=args.latency_ms,
        fail_rate=args.fail_rate, fail_every=args.fail_every, drop_every=args.drop_every,
        fail_status=args.fail_status, max_body=int(args.max_body_mb * 1024 * 1024),
        schema_cache=args.schema_cache, fetch_schemas=not args.no_fetch_schemas, site_id=args.site_id,
        strict_labels=args.strict_labels, log_requests=args.log_requests, idle_timeout=args.idle_timeout,
        dicom_port=args.dicom_port, dicom_ae=args.dicom_ae, dicom_processes=args.dicom_processes,
        session_idle_seconds=args.session_idle_seconds,
    )
    try:
        server = make_server(config)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    if args.seed:
        status = apply_seed(server.app.store, args.seed)
        if status:
            server.server_close()
            server.app.close()
            return status

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    log.info("xnatsim listening on %s (data %s)", server.app.url, config.data_dir)
    print(f"xnatsim listening on {server.app.url}", flush=True)
    for receiver in server.app.state["dicomscp"].settings:
        if receiver.get("enabled", True) and args.dicom_port is not None:
            print(f"DICOM receiver {receiver['aeTitle']} on {args.host}:{receiver['port']}", flush=True)
    if args.ready_file:
        tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
        tmp.write_text(server.app.url + "\n", encoding="utf-8")
        tmp.replace(args.ready_file)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.app.close()
    return 0


def apply_seed(store: Store, name: str) -> int:
    """Load data set ``name`` through ``xnatsim.seed.apply(store, name)``; 0 or an exit status."""
    try:
        from xnatsim import seed
    except ImportError:
        print(f"--seed {name}: the seed module (xnatsim.seed) is not available yet", file=sys.stderr)
        return 2
    try:
        seed.apply(store, name)
    except (KeyError, ValueError) as exc:
        print(f"--seed {name}: {exc}", file=sys.stderr)
        return 2
    return 0
