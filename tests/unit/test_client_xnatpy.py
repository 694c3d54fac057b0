"""Connection.xnatpy(): a real xnatpy 0.8.1 session, opened lazily and counted."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fake_http import FakeServer, Reply, xnatpy_routes
from xnatnode.client import Unauthorized, Unreachable, connect
from xnatnode.redact import forget_secrets

PASSWORD = "xnatpy-Secret-42"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS", "XNATPY_HOST", "XNATPY_USER",
                 "XNATPY_PASS", "NETRC", "XNAT_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    yield
    forget_secrets()


@pytest.fixture
def srv() -> Iterator[FakeServer]:
    """The endpoints ``xnat.connect(..., no_parse_model=True)`` needs (xnatpy-internals §1)."""
    with FakeServer() as server:
        xnatpy_routes(server)
        yield server


def test_xnatpy_is_lazy_counted_and_closed(srv: FakeServer) -> None:
    original_session = requests.Session
    conn = connect(srv.url, "alice", PASSWORD, backoff=0.0)
    conn.get_json("/data/projects")
    assert conn.request_count == 1
    assert [s.path for s in srv.seen] == ["/data/projects"], "no xnatpy cost until asked"

    session = conn.xnatpy(parse_model=False)
    assert conn.xnatpy() is session, "opened once"
    assert requests.Session is original_session, "the counting patch is undone"
    login = [(s.method, s.path) for s in srv.seen[1:]]
    assert login == [("GET", "/"), ("PUT", "/data/services/auth"), ("GET", "/data/auth"),
                     ("GET", "/data/JSESSION")]
    assert conn.request_count == 1 + len(login)
    assert session.logged_in_user == "alice"

    session.get("/data/projects", query={"format": "json"})
    assert conn.request_count == 2 + len(login), "requests of the xnatpy session are counted"

    conn.close()
    assert (srv.seen[-1].method, srv.seen[-1].path) == ("DELETE", "/data/JSESSION")
    conn.close()  # twice is harmless


def test_xnatpy_login_failure_is_unauthorized(srv: FakeServer) -> None:
    srv.route("PUT", "/data/services/auth", Reply(401, "<h3>Bad credentials</h3>"))
    with connect(srv.url, "alice", PASSWORD) as conn, pytest.raises(
        Unauthorized, match="alias tokens expire"
    ) as info:
        conn.xnatpy(parse_model=False)
    assert PASSWORD not in str(info.value)


def test_xnatpy_unreachable() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with connect(f"http://127.0.0.1:{port}", "alice", PASSWORD, timeout=2) as conn, pytest.raises(
        Unreachable, match="connection refused"
    ):
        conn.xnatpy(parse_model=False)


def test_xnatpy_debug_log_shows_no_secret(srv: FakeServer) -> None:
    import io

    from xnatnode.logs import remove_logging, setup_logging

    stream = io.StringIO()
    handler = setup_logging("DEBUG", stream)
    try:
        with connect(srv.url, "alice", PASSWORD) as conn:
            conn.xnatpy(parse_model=False).get("/data/projects")
    finally:
        remove_logging(handler)
    text = stream.getvalue()
    assert "xnatpy session open: 4 requests" in text
    assert "PUT /data/services/auth" in text, "urllib3's DEBUG request lines are there"
    assert PASSWORD not in text
    sent = [s.body for s in srv.seen if s.path == "/data/services/auth"]
    assert PASSWORD.encode() in sent[0], "the password did go to the server, in the body"


def test_without_the_xnatpy_extra_the_message_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """xnatpy is the optional xnatnode[xnatpy] extra: the images do not carry it."""
    from xnatnode.client import ConfigError, Connection
    from xnatnode.credentials import Credentials

    monkeypatch.setitem(sys.modules, "xnat", None)  # import xnat -> ImportError
    conn = Connection(Credentials("http://127.0.0.1:9", "alice", "pw-Extra-1"))
    with pytest.raises(ConfigError, match=r"pip install 'xnatnode\[xnatpy\]'"):
        conn.xnatpy()
    assert conn.request_count == 0
