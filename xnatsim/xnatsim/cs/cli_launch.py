"""``python -m xnatsim launch``: launch a wrapper on objects through XNAT's launch routes, and wait."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

NAME = "launch"
HELP = "launch a wrapper on one object (or bulk-launch on several), wait, and show status and logs"

TERMINAL = ("Complete", "Failed", "Killed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from xnatsim.cs.cli_common import add_connection_arguments

    parser.add_argument("wrapper", help="wrapper id or name")
    parser.add_argument("target", nargs="+",
                        help="the root input's value: a URI (/archive/experiments/E, /archive/projects/P) or an id;"
                             " several → bulk launch")
    parser.add_argument("--project", help="launch in this project (its configuration applies)")
    parser.add_argument("--root", help="root input name (default: the wrapper's first external input)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="another input value (repeatable)")
    parser.add_argument("--no-wait", action="store_true", help="return once queued (only with --url)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait (default 900)")
    parser.add_argument("--log-lines", type=int, default=20, help="stdout/stderr lines to show (default 20)")
    add_connection_arguments(parser)


def wait_for(client: Any, container_ids: list[int], timeout: float) -> list[dict[str, Any]]:
    """Poll until every container is terminal (CLIError on timeout)."""
    from xnatsim.cs.cli_common import CLIError

    deadline = time.monotonic() + timeout
    pending = set(container_ids)
    done: dict[int, dict[str, Any]] = {}
    delay = 0.1
    while pending:
        for cid in sorted(pending):
            record = client.request("GET", f"/xapi/containers/{cid}")
            if str(record["status"]).startswith(TERMINAL):
                done[cid] = record
        pending -= set(done)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise CLIError(f"containers {sorted(pending)} still running after {timeout:.0f} s", 3)
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)
    return [done[c] for c in container_ids]


def show(client: Any, record: dict[str, Any], lines: int) -> None:
    from xnatsim.cs.cli_common import CLIError

    print(f"container {record['id']}: {record['status']} (exit code {record.get('exit-code')})")
    last = record["history"][-1]
    if last.get("message"):
        print(f"  {last['message']}")
    print(f"  command line: {record.get('command-line')}")
    for output in record.get("outputs") or []:
        state = f"-> {output['created']}" if output.get("ok") else f"FAILED: {output.get('message')}"
        print(f"  output {output['name']} ({output['from-output-handler']}) {state}")
    for stream in ("stdout", "stderr"):
        try:
            text = client.request("GET", f"/xapi/containers/{record['id']}/logs/{stream}")
        except CLIError:
            continue
        tail = str(text).rstrip("\n").splitlines()[-lines:]
        if tail:
            print(f"  --- {stream} (last {len(tail)} lines)")
            for line in tail:
                print(f"  {line}")


def launch(client: Any, wrapper_ref: str, targets: list[str], *, project: str | None, root: str | None,
           params: dict[str, str]) -> list[int]:
    """Launch through the real routes; returns the queued container ids."""
    from xnatsim.cs.cli_common import CLIError
    from xnatsim.cs.cli_enable import find_wrapper

    wid, command = find_wrapper(client, wrapper_ref)
    wrapper = next(w for w in command["xnat"] if w["id"] == wid)
    if root is None:
        if not wrapper["external-inputs"]:
            raise CLIError(f"wrapper {wid} has no external input; give --root", 2)
        root = str(wrapper["external-inputs"][0]["name"])
    base = f"/xapi/projects/{project}/wrappers/{wid}" if project else f"/xapi/wrappers/{wid}"
    if len(targets) == 1:
        answer = client.request("POST", f"{base}/root/{root}/launch", body={**params, root: targets[0]})
        if answer.get("status") != "success":
            raise CLIError(f"launch refused: {answer.get('message')}")
        return [int(answer["container-id"])]
    answer = client.request("POST", f"{base}/root/{root}/bulklaunch", body={**params, root: json.dumps(targets)})
    for failure in answer["failures"]:
        print(f"refused: {failure.get('message')}", file=sys.stderr)
    return [int(s["container-id"]) for s in answer["successes"]]


def run(args: argparse.Namespace) -> int:
    from xnatsim.cs.cli_common import CLIError, connect

    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"--param needs NAME=VALUE, not {item!r}", file=sys.stderr)
            return 2
        params[name] = value
    try:
        with connect(args) as client:
            ids = launch(client, args.wrapper, args.target, project=args.project, root=args.root, params=params)
            print(f"queued container(s): {', '.join(map(str, ids))}")
            if args.no_wait and args.url:
                return 0
            records = wait_for(client, ids, args.timeout)
            for record in records:
                show(client, record, args.log_lines)
            return 0 if all(r["status"] == "Complete" for r in records) else 1
    except CLIError as exc:
        print(exc, file=sys.stderr)
        return exc.status
