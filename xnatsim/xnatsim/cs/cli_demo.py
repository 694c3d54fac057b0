"""``python -m xnatsim demo``: the whole admin path on a laptop, with the project's own images.

Starts xnatsim with the ``demo`` seed, adds every local image that a command JSON file of the
repository names and that carries an ``org.nrg.commands`` label (as ``POST
/xapi/docker/images/save`` does), enables every wrapper on
the site and the demo project, launches ``project-summary`` on the project through the launch
route, waits, and prints the container's status, log tail and where the HTML report landed; then,
when the nifti-import image is there, uploads a BIDS batch and launches ``nifti-import-project``
(:mod:`xnatsim.cs.demo_nifti`); when the label-validation image is there, audits the project's
labels against a convention and shows the on-archive path (:mod:`xnatsim.cs.demo_labels`).

``--swarm`` runs the launches as a Docker Swarm service: the engine becomes a single-node swarm
(``docker swarm init --advertise-addr 127.0.0.1``) unless it is a manager already, the admin
setting is switched as in XNAT (``POST /xapi/docker/server`` with ``swarm-mode: true``), and a swarm
made here is left again at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

NAME = "demo"
HELP = "seed a demo project, add the local xnatnode images, run project-summary on it, show the report"

DEMO_WRAPPER = "project-summary"
#: The repository's command JSON, beside xnatsim/ when run from a checkout.
COMMAND_JSON = Path(__file__).resolve().parents[3] / "command-json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="data folder (default: a temporary one, removed at the end)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--command-json", type=Path, default=COMMAND_JSON, metavar="DIR",
                        help="command JSON files whose images to add (default: the checkout's command-json/)")
    parser.add_argument("--version", dest="image_version",
                        help="image tag to use (default: the tag each command JSON names)")
    parser.add_argument("--wrapper", default=DEMO_WRAPPER, help=f"wrapper to launch (default {DEMO_WRAPPER})")
    parser.add_argument("--serve", action="store_true", help="keep serving after the demo (Ctrl-C stops)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the container")
    parser.add_argument("--swarm", action="store_true",
                        help="launch as a Docker Swarm service (a single-node swarm is made and left if needed)")


def command_images(folder: Path) -> list[str]:
    """The images the command JSON files in ``folder`` name, in file order.

    The image-name rule lives in the xnatnode package (``xnatnode.images``), which xnatsim shares no
    code with; its output is written in each command's ``image`` field, read here.
    """
    images: list[str] = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text("utf-8"))
        for command in doc if isinstance(doc, list) else [doc]:
            image = command.get("image") if isinstance(command, dict) else None
            if isinstance(image, str) and image:
                images.append(image)
    return list(dict.fromkeys(images))


def local_images(folder: Path, version: str | None) -> list[str]:
    """The images of :func:`command_images` (tag ``version`` if given) that exist locally with an
    ``org.nrg.commands`` label."""
    import docker

    from xnatsim.cs.images import LABEL

    client = docker.from_env(timeout=60)
    found: list[str] = []
    for image in command_images(folder):
        if version:
            image = f"{image.rpartition(':')[0]}:{version}"
        try:
            labels = client.images.get(image).attrs.get("Config", {}).get("Labels") or {}
        except docker.errors.ImageNotFound:
            continue
        if LABEL in labels:
            found.append(image)
    return found


def _report(client: Any, record: dict[str, Any], store_dir: Path) -> None:
    for output in record.get("outputs") or []:
        if not output.get("ok") or not output.get("created"):
            continue
        uri = str(output["created"])
        files = client.request("GET", "/data" + uri.removeprefix("/archive") + "/files", query={"format": "json"})
        rows = files.get("ResultSet", {}).get("Result", []) if isinstance(files, dict) else []
        names = [r.get("Name") for r in rows]
        html = [n for n in names if str(n).endswith(".html")]
        print(f"report resource: {client.url}/data{uri.removeprefix('/archive')}")
        for name in html or names[:5]:
            print(f"  {name}: {client.url}/data{uri.removeprefix('/archive')}/files/{name}")
        parts = uri.strip("/").split("/")
        if len(parts) >= 5 and parts[1] == "projects" and parts[3] == "resources":
            folder = store_dir / "archive" / parts[2] / "resources" / parts[4]
            for name in html:
                print(f"  file: {folder / str(name)}")


def status_of(record: dict[str, Any]) -> int:
    return 0 if record["status"] == "Complete" else 1


def run(args: argparse.Namespace) -> int:
    from xnatsim.cs import demo_labels, demo_nifti
    from xnatsim.cs.cli_common import Client, CLIError
    from xnatsim.cs.cli_launch import launch, show, wait_for
    from xnatsim.seed import DEMO_PROJECT, SeedError
    from xnatsim.seed import apply as apply_seed
    from xnatsim.server import ServerConfig, make_server, serve_in_thread, stop_in_thread

    try:
        images = local_images(args.command_json, args.image_version)
    except (OSError, ValueError) as exc:
        print(f"cannot read the command JSON in {args.command_json}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # docker SDK errors: no engine, no socket
        print(f"cannot list Docker images: {exc}", file=sys.stderr)
        return 1
    if not images:
        print(f"no image named in {args.command_json}/*.json is built (with org.nrg.commands); "
              "run ./build.sh first", file=sys.stderr)
        return 1
    tmp = None if args.data else tempfile.TemporaryDirectory(prefix="xnatsim-demo-")
    data = args.data or Path(tmp.name)  # type: ignore[union-attr]
    server = make_server(ServerConfig(data_dir=data, host="127.0.0.1", port=args.port, fetch_schemas=False))
    thread = serve_in_thread(server)
    status = 1
    made_swarm = False
    try:
        apply_seed(server.app.store, "demo")
        print(f"xnatsim on {server.app.url} (data {data}); demo project {DEMO_PROJECT}")
        client = Client(server.app.url, "admin", "admin")
        if args.swarm:
            made_swarm = _use_swarm(client)
        wrappers: dict[str, int] = {}
        for image in images:
            saved = client.request("POST", "/xapi/docker/images/save", query={"image": image})
            if not saved:  # a re-run on kept data: the label's commands are there already
                saved = client.request("GET", "/xapi/commands", query={"image": image})
            if not saved:
                print(f"{image}: no command saved (invalid label)", file=sys.stderr)
            for command in saved:
                for wrapper in command["xnat"]:
                    client.request("PUT", f"/xapi/wrappers/{wrapper['id']}/enabled")
                    client.request("PUT", f"/xapi/projects/{DEMO_PROJECT}/wrappers/{wrapper['id']}/enabled")
                    wrappers[wrapper["name"]] = wrapper["id"]
                print(f"added {image}: {', '.join(w['name'] for w in command['xnat'])}")
        if args.wrapper not in wrappers:
            print(f"no wrapper {args.wrapper!r} among the local images ({', '.join(wrappers) or 'none'})",
                  file=sys.stderr)
            return 1
        ids = launch(client, args.wrapper, [f"/archive/projects/{DEMO_PROJECT}"], project=DEMO_PROJECT,
                     root=None, params={})
        print(f"launched {args.wrapper} on {DEMO_PROJECT}: container {ids[0]}")
        record = wait_for(client, ids, args.timeout)[0]
        show(client, record, 15)
        _report(client, record, data)
        if status_of(record) == 0 and demo_nifti.WRAPPER in wrappers:
            status = demo_nifti.run_step(client, "admin", "admin", DEMO_PROJECT, args.timeout,
                                         lambda r: _report(client, r, data))
            if status != 0:
                return status
        if status_of(record) == 0 and demo_labels.PROJECT_WRAPPER in wrappers:
            status = demo_labels.run_step(client, DEMO_PROJECT, wrappers, args.timeout,
                                          lambda r: _report(client, r, data))
            if status != 0:
                return status
        if tmp is not None and not args.serve:
            print("  (the data folder is temporary and is removed now; use --data DIR to keep it)")
        status = status_of(record)
        if args.serve:
            print(f"serving on {server.app.url} (admin/admin); Ctrl-C stops", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                thread.join()
        return status
    except (CLIError, SeedError) as exc:
        print(exc, file=sys.stderr)
        return getattr(exc, "status", 1)
    finally:
        stop_in_thread(server, thread)
        if made_swarm:
            _leave_swarm()
        if tmp is not None:
            tmp.cleanup()


def _use_swarm(client: Any) -> bool:
    """Join (or make) a swarm and switch the backend as an XNAT admin does; True if a swarm was made."""
    import docker

    from xnatsim.cs.swarm import join_local_swarm

    made = join_local_swarm(docker.from_env(timeout=60))
    if made:
        print("made a single-node swarm (docker swarm init --advertise-addr 127.0.0.1); it is left at the end")
    setting = client.request("POST", "/xapi/docker/server", body={"swarm-mode": True})
    print(f"compute backend: {setting['backend']} (launches become Swarm services)")
    return made


def _leave_swarm() -> None:
    import docker

    from xnatsim.cs.swarm import leave_local_swarm

    leave_local_swarm(docker.from_env(timeout=60))
    print("left the swarm (docker swarm leave --force)")
