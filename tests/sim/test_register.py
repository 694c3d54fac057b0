"""``xnatnode register`` against xnatsim's ``POST /xapi/commands`` (Kubernetes sites register this way)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from xnatnode.images import image_name
from xnatsim.testing import Server, running_server

REPO = Path(__file__).resolve().parents[2]
FILES = sorted((REPO / "command-json").glob("*.json"))
MEMBER, MEMBER_PASSWORD = "member", "member-Pw-77"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("register")) as srv:
        srv.store.add_user(MEMBER, MEMBER_PASSWORD)
        yield srv


def register(server: Server, *args: str, password: str | None = None, user: str | None = None,
             home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XNAT_") and k != "NETRC"}
    if "--xnat-host" not in args:  # with all three variables set, connection flags are refused
        env["XNAT_HOST"] = server.url
    env["XNAT_USER"] = user or server.user
    if password is not None:
        env["XNAT_PASS"] = password
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "xnatnode", "register", *args],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


def registered(server: Server) -> list[dict[str, object]]:
    reply = requests.get(f"{server.url}/xapi/commands", auth=(server.user, server.password), timeout=30)
    reply.raise_for_status()
    commands: list[dict[str, object]] = reply.json()
    return commands


def test_every_command_json_file_is_registered_once(server: Server) -> None:
    first = register(server, password=server.password)
    assert first.returncode == 0, first.stderr
    names = {str(c["name"]): c["image"] for c in registered(server)}
    for path in FILES:
        for command in json.loads(path.read_text("utf-8")):
            assert names[command["name"]] == image_name(path.stem)
            assert f"registered {command['name']} {command['version']} ({command['image']}): id " in first.stdout
    again = register(server, password=server.password)
    assert again.returncode == 0, again.stderr
    assert "already registered" in again.stdout
    assert len(registered(server)) == len(names)
    assert server.password not in first.stdout + first.stderr + again.stdout + again.stderr


def test_credentials_from_a_netrc_file(server: Server, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    host = server.url.split("://", 1)[1]
    netrc.write_text(f"machine {host} login {server.user} password {server.password}\n")
    netrc.chmod(0o600)
    result = register(server, "--netrc", str(netrc), home=tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_wrong_password_is_exit_4_and_never_shown(server: Server) -> None:
    result = register(server, password="Wrong-pw-123")
    assert result.returncode == 4
    assert "refused the credentials" in result.stderr
    assert "Wrong-pw-123" not in result.stdout + result.stderr


def test_a_user_who_is_no_container_manager_is_told_so(server: Server) -> None:
    result = register(server, password=MEMBER_PASSWORD, user=MEMBER)
    assert result.returncode == 4
    assert "Container Manager role" in result.stderr
    assert MEMBER_PASSWORD not in result.stdout + result.stderr


def test_a_file_xnat_would_refuse_sends_nothing(server: Server, tmp_path: Path) -> None:
    bad = json.loads(FILES[0].read_text("utf-8"))
    bad[0]["name"] = "not registered"
    bad[0]["inputs"][0]["name"] = "a bad name"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    before = len(registered(server))
    result = register(server, str(path), password=server.password)
    assert result.returncode == 1
    assert "XNAT would refuse these commands, nothing was sent" in result.stderr
    assert "E-INPUT-NAME-CHARS" in result.stderr
    assert len(registered(server)) == before


def test_a_password_in_the_url_is_refused_and_redacted(server: Server) -> None:
    url = server.url.replace("http://", "http://admin:Url-secret-9@")
    result = register(server, "--xnat-host", url, password=server.password)
    assert result.returncode == 2
    assert "must not contain a user or password" in result.stderr
    assert "Url-secret-9" not in result.stdout + result.stderr


def test_without_a_password_or_a_terminal_it_says_where_to_put_one(server: Server, tmp_path: Path) -> None:
    result = register(server, home=tmp_path)
    assert result.returncode == 2
    assert "no password for XNAT user" in result.stderr
