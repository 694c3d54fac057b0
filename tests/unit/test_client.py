"""xnatnode.client against a scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import argparse
import base64
import io
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3
from fake_http import DROP, FakeServer, Reply, Slow
from xnatnode import client
from xnatnode.client import (
    Connection,
    Forbidden,
    NotFound,
    Unauthorized,
    Unreachable,
    XnatError,
    connect,
    connect_with,
)
from xnatnode.logs import remove_logging, setup_logging
from xnatnode.redact import forget_secrets
from xnatnode.settings import (
    MAX_DELAY,
    NoOptions,
    SettingsParser,
    add_connection_arguments,
    load_settings,
)

PASSWORD = "s3cr3t-Pa55word!"
ALIAS = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS", "NETRC", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(client, "running_in_container", lambda: False)
    yield
    forget_secrets()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def conn_to(server: FakeServer, **kwargs: object) -> Connection:
    kwargs.setdefault("backoff", 0.0)
    return connect(server.url, "alice", PASSWORD, **kwargs)  # type: ignore[arg-type]


# -- auth, counting, keep-alive ----------------------------------------------------------------


def test_connect_sends_nothing_and_requests_use_basic_auth_on_one_connection(srv: FakeServer) -> None:
    srv.route("GET", "/data/projects", Reply(200, {"ResultSet": {"Result": [{"ID": "P1"}]}}))
    with conn_to(srv) as conn:
        assert conn.request_count == 0
        assert srv.seen == []
        for _ in range(3):
            conn.get_json("/data/projects")
        assert conn.request_count == 3
    expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert [s.headers["Authorization"] for s in srv.seen] == [expected] * 3
    assert all(s.query == {"format": "json"} for s in srv.seen)
    assert len({s.client_port for s in srv.seen}) == 1, "keep-alive: one TCP connection"


def test_alias_token_from_environment_is_basic_auth(srv: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNAT_HOST", srv.url + "/")
    monkeypatch.setenv("XNAT_USER", ALIAS)
    monkeypatch.setenv("XNAT_PASS", PASSWORD)
    srv.route("GET", "/data/version", Reply(200, "1.8.10"))
    with connect() as conn:
        assert conn.host == srv.url
        assert conn.user == ALIAS
        assert conn.get("/data/version").text == "1.8.10"
    sent = base64.b64decode(srv.seen[0].headers["Authorization"].split()[1]).decode()
    assert sent == f"{ALIAS}:{PASSWORD}"


PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                   "no_proxy", "NO_PROXY")


@pytest.mark.parametrize("bypass", [False, True])
def test_proxy_variables_are_honoured_as_requests_reads_them(monkeypatch: pytest.MonkeyPatch,
                                                             bypass: bool) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    listing = Reply(200, {"ResultSet": {"Result": []}})
    with FakeServer() as xnat, FakeServer() as proxy:
        xnat.route("GET", "/data/projects", listing)
        proxy.route("GET", "/data/projects", listing)
        monkeypatch.setenv("http_proxy", proxy.url)
        if bypass:
            monkeypatch.setenv("no_proxy", "127.0.0.1")
        with conn_to(xnat) as conn:
            conn.get_json("/data/projects")
        assert (len(xnat.seen), len(proxy.seen)) == ((1, 0) if bypass else (0, 1))


def test_the_environment_is_read_once_when_the_connection_is_made(
        srv: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests would look the proxy and CA-bundle variables up again on every request (a third of
    a small request's CPU); the connection resolves them once, for its host."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    srv.route("GET", "/data/projects", Reply(200, {"ResultSet": {"Result": []}}))
    with FakeServer() as proxy, conn_to(srv) as conn:
        conn.get_json("/data/projects")
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setattr(requests.utils, "get_environ_proxies", _never)
        monkeypatch.setattr(requests.sessions, "get_environ_proxies", _never)
        conn.get_json("/data/projects")
        assert proxy.seen == []
    assert len(srv.seen) == 2


def _never(*args: object, **kwargs: object) -> dict[str, str]:
    raise AssertionError("the environment was read again for a request")


def test_cookies_headers_and_query_go_out_as_requests_sends_them(srv: FakeServer) -> None:
    """XNAT's session cookie comes back on every later request (also after a redirect), the
    caller's headers join the connection's, and the query is encoded as requests encodes it."""
    srv.route("GET", "/data/projects", Reply(200, {"ResultSet": {"Result": []}},
                                             {"Set-Cookie": "JSESSIONID=ABC123; Path=/; HttpOnly"}),
              Reply(200, {"ResultSet": {"Result": []}}))
    srv.route("PUT", "/data/projects/P1/files/a%20b.nii", Reply(200, ""))
    srv.route("GET", "/old", Reply(302, "", {"Location": "/data/projects"}))
    with conn_to(srv) as conn:
        conn.get_json("/data/projects")
        conn.upload("/data/projects/P1/files/a%20b.nii", b"x" * 10, {"event_reason": "a b&c", "format": "NIFTI"})
        conn.get_json("/old")
    first, put, old, redirected = srv.seen
    assert "Cookie" not in first.headers
    assert [s.headers.get("Cookie") for s in (put, old, redirected)] == ["JSESSIONID=ABC123"] * 3
    assert all(s.headers["User-Agent"] == client.USER_AGENT for s in srv.seen)
    assert all(s.headers["Authorization"].startswith("Basic ") for s in srv.seen)
    assert put.headers["Content-Type"] == "application/octet-stream"
    assert put.headers["Content-Length"] == "10"
    assert put.body == b"x" * 10
    assert put.query == {"event_reason": "a b&c", "format": "NIFTI"}


def test_get_table_returns_text_rows(srv: FakeServer) -> None:
    rows = [{"ID": "E1", "label": "S1_MR1", "frames": 120, "note": None}]
    srv.route("GET", "/data/projects/P1/experiments", Reply(200, {"ResultSet": {"Result": rows}}))
    with conn_to(srv) as conn:
        table = conn.get_table("/data/projects/P1/experiments", {"columns": "ID,label"})
    assert table == [{"ID": "E1", "label": "S1_MR1", "frames": "120", "note": ""}]
    assert srv.seen[0].query == {"columns": "ID,label", "format": "json"}


def test_get_json_on_html_is_a_clear_error(srv: FakeServer) -> None:
    srv.route("GET", "/data/projects", Reply(200, "<html><body>Login page</body></html>",
                                             {"Content-Type": "text/html"}))
    with conn_to(srv) as conn, pytest.raises(XnatError, match=r"expected JSON .* text/html: Login page"):
        conn.get_json("/data/projects")


def test_redirect_hops_are_counted(srv: FakeServer) -> None:
    srv.route("GET", "/old", Reply(302, "", {"Location": "/data/new"}))
    srv.route("GET", "/data/new", Reply(200, "ok"))
    with conn_to(srv) as conn:
        assert conn.get("/old").text == "ok"
        assert conn.request_count == 2


def test_paths_must_be_absolute_on_the_host(srv: FakeServer) -> None:
    with conn_to(srv) as conn:
        assert conn.url("/data/x") == srv.url + "/data/x"
        assert conn.url(srv.url + "/data/x") == srv.url + "/data/x"
        with pytest.raises(ValueError, match="start with '/'"):
            conn.url("data/x")
        with pytest.raises(ValueError, match="start with '/'"):
            conn.url("http://elsewhere.example/data/x")


# -- retries -------------------------------------------------------------------------------


def test_503_then_200_is_retried(srv: FakeServer) -> None:
    srv.route("GET", "/data/x", Reply(503, "busy"), Reply(200, "ok"))
    with conn_to(srv) as conn:
        assert conn.get("/data/x").text == "ok"
        assert conn.request_count == 2
    assert len(srv.requests_to("/data/x")) == 2


def test_persistent_503_ends_as_unreachable_after_all_retries(srv: FakeServer) -> None:
    srv.route("GET", "/data/x", Reply(503, "busy"))
    with conn_to(srv, retries=2) as conn:
        with pytest.raises(Unreachable, match=r"503 .* after 3 attempts") as info:
            conn.get("/data/x")
        assert info.value.status == 503
        assert conn.request_count == 3


def test_dropped_connection_is_retried_for_get(srv: FakeServer) -> None:
    srv.route("GET", "/data/x", DROP, Reply(200, "ok"))
    with conn_to(srv) as conn:
        assert conn.get("/data/x").text == "ok"
        assert conn.request_count == 2


def test_dropped_post_is_not_repeated(srv: FakeServer) -> None:
    srv.route("POST", "/data/services/import", DROP, Reply(200, "/data/prearchive/x"))
    with conn_to(srv) as conn:
        with pytest.raises(Unreachable, match="POST /data/services/import"):
            conn.post("/data/services/import", data=b"zip")
        assert conn.request_count == 1
    assert len(srv.requests_to("/data/services/import")) == 1


def test_put_retry_resends_the_whole_file(srv: FakeServer, tmp_path: Path) -> None:
    source = tmp_path / "image.nii"
    source.write_bytes(b"\x01" * 5000)
    path = "/data/experiments/E1/resources/NIFTI/files/image.nii"
    srv.route("PUT", path, Reply(502), Reply(200))
    with conn_to(srv) as conn:
        conn.upload(path, source, {"overwrite": "true"})
    bodies = [s.body for s in srv.requests_to(path)]
    assert bodies == [source.read_bytes()] * 2
    assert srv.seen[-1].headers["Content-Type"] == "application/octet-stream"
    assert srv.seen[-1].query == {"overwrite": "true"}


def test_generator_body_is_not_retried(srv: FakeServer) -> None:
    srv.route("PUT", "/data/x", Reply(503), Reply(200))
    with conn_to(srv) as conn, pytest.raises(Unreachable):
        conn.put("/data/x", data=iter([b"a", b"b"]))


def test_retry_after_is_honoured_and_bounded(srv: FakeServer) -> None:
    with conn_to(srv, backoff=0.5) as conn:
        assert 0.5 <= conn._delay(0, None) <= 0.55, "doubling back-off with up to 10% jitter"
        assert 2.0 <= conn._delay(2, None) <= 2.2
        assert conn._delay(0, "3") == 3.0
        assert 0.5 <= conn._delay(0, "soon") <= 0.55
        assert 0.5 <= conn._delay(0, "nan") <= 0.55
        assert conn._delay(20, None) == MAX_DELAY
        assert conn._delay(0, "99999") == MAX_DELAY


def test_timeout_is_unreachable_with_the_time(srv: FakeServer) -> None:
    srv.route("GET", "/data/slow", Slow(1.0, Reply(200, "late")))
    with conn_to(srv, timeout=0.2, retries=0) as conn, pytest.raises(
        Unreachable, match=r"no answer within 0\.2 s"
    ):
        conn.get("/data/slow")


def test_timeout_then_success_is_retried(srv: FakeServer) -> None:
    srv.route("GET", "/data/slow", Slow(1.0, Reply(200, "late")), Reply(200, "fast"))
    with conn_to(srv, timeout=0.3, retries=1) as conn:
        assert conn.get("/data/slow").text == "fast"
        assert conn.request_count == 2


# -- error mapping -------------------------------------------------------------------------


def test_refused_connection_names_the_url_and_is_retried_even_for_post() -> None:
    port = closed_port()
    with connect(f"http://127.0.0.1:{port}", "alice", PASSWORD, retries=2, backoff=0.0) as conn:
        with pytest.raises(Unreachable) as info:
            conn.post("/data/services/import")
        assert conn.request_count == 3, "never sent, so a POST may be repeated"
    message = str(info.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "connection refused" in message
    assert "after 3 attempts" in message
    assert "Processing URL" not in message


def test_localhost_in_a_container_gets_the_processing_url_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "running_in_container", lambda: True)
    port = closed_port()
    with connect(f"http://localhost:{port}", "alice", PASSWORD, retries=0) as conn, pytest.raises(
        Unreachable, match="Processing URL"
    ) as info:
        conn.get("/data/projects")
    assert "localhost inside a container is the container itself" in str(info.value)


def test_a_slow_local_xnat_gets_no_processing_url_hint(
    srv: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It answered the connection, so it is a slow XNAT, not the container itself.
    monkeypatch.setattr(client, "running_in_container", lambda: True)
    srv.route("GET", "/data/slow", Slow(1.0, Reply(200, "late")))
    with conn_to(srv, timeout=0.2, retries=0) as conn, pytest.raises(Unreachable) as info:
        conn.get("/data/slow")
    assert "no answer within" in str(info.value)
    assert "Processing URL" not in str(info.value)


def test_unknown_host_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DNS failure, simulated (tests send no traffic beyond 127.0.0.1)."""

    def fail(*args: object, **kwargs: object) -> requests.Response:
        reason = urllib3.exceptions.NameResolutionError("xnat.invalid", None, socket.gaierror(-2, "Name or service not known"))  # type: ignore[arg-type]
        raise requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]

    with connect("https://xnat.invalid", "alice", PASSWORD, retries=1, backoff=0.0) as conn:
        monkeypatch.setattr(conn._session, "send", fail)
        with pytest.raises(Unreachable, match=r"https://xnat.invalid .*unknown host") as info:
            conn.get("/data/projects")
        assert conn.request_count == 2
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (401, Unauthorized, "check XNAT_USER/XNAT_PASS"),
        (401, Unauthorized, "alias tokens expire"),
        (403, Forbidden, "may not GET /data/projects/P1"),
        (404, NotFound, "not found on XNAT: GET /data/projects/P1"),
    ],
)
def test_status_errors(srv: FakeServer, status: int, error: type[XnatError], words: str) -> None:
    srv.route("GET", "/data/projects/P1",
              Reply(status, "<html><head><style>p{}</style></head><body><h3>Internal error while reading P1</h3></body></html>"))
    with conn_to(srv) as conn, pytest.raises(error, match=words) as info:
        conn.get("/data/projects/P1")
    assert type(info.value) is error
    assert info.value.status == status
    assert conn.request_count == 1, "client errors are not retried"
    assert "<h3>" not in str(info.value)


def test_500_on_a_read_is_retried_then_reported_with_xnats_message(srv: FakeServer) -> None:
    srv.route("GET", "/data/projects/P1", Reply(500, "<html><body><h3>Internal error while reading P1"
                                                     "</h3></body></html>"))
    with conn_to(srv, retries=2) as conn, pytest.raises(XnatError, match=r"500 .* Internal error while "
                                                        r"reading P1") as info:
        conn.get("/data/projects/P1")
    assert type(info.value) is XnatError
    assert conn.request_count == 3, "a read is retried on 500 (issue 8 item 7)"
    srv.route("GET", "/data/projects/P2", Reply(500, "oops"), Reply(200, "fine"))
    with conn_to(srv, retries=2) as conn:
        assert conn.get("/data/projects/P2").text == "fine"


def test_500_on_a_write_is_not_repeated(srv: FakeServer) -> None:
    srv.route("PUT", "/data/projects/P1/resources/R", Reply(500, "half done"))
    with conn_to(srv, retries=3) as conn, pytest.raises(XnatError, match="500"):
        conn.put("/data/projects/P1/resources/R")
    assert conn.request_count == 1


def test_tls_failure_is_not_retried_and_suggests_a_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> requests.Response:
        raise requests.exceptions.SSLError("certificate verify failed: unable to get local issuer")

    with connect("https://xnat.example", "alice", PASSWORD, retries=3) as conn:
        monkeypatch.setattr(conn._session, "send", fail)
        with pytest.raises(Unreachable, match="--ca-bundle"):
            conn.get("/data/projects")
        assert conn.request_count == 1


# -- downloads ------------------------------------------------------------------------------


def test_download_streams_to_the_file(srv: FakeServer, tmp_path: Path) -> None:
    content = bytes(range(256)) * 4096
    srv.route("GET", "/data/files/big.zip", Reply(200, content))
    with conn_to(srv) as conn:
        dest = conn.download("/data/files/big.zip", tmp_path / "sub" / "big.zip")
    assert dest.read_bytes() == content
    assert not (tmp_path / "sub" / "big.zip.part").exists()


def test_upload_bytes(srv: FakeServer) -> None:
    srv.route("PUT", "/data/r/files/a.txt", Reply(200))
    with conn_to(srv) as conn:
        conn.upload("/data/r/files/a.txt", b"hello")
    assert srv.seen[0].body == b"hello"


# -- secrets ---------------------------------------------------------------------------------


def test_no_secret_in_repr_messages_or_debug_log(srv: FakeServer) -> None:
    # A server that echoes the credentials back in its error page.
    srv.route("GET", "/data/echo", Reply(500, f"bad login alice/{PASSWORD} header {base64.b64encode(f'alice:{PASSWORD}'.encode()).decode()}"))
    srv.route("GET", "/data/denied", Reply(401))
    stream = io.StringIO()
    handler = setup_logging("DEBUG", stream)
    try:
        with conn_to(srv) as conn:
            texts = [repr(conn), str(conn), repr(conn._credentials), str(conn._credentials)]
            for path in ("/data/echo", "/data/denied"):
                with pytest.raises(XnatError) as info:
                    conn.get(path)
                texts.append(str(info.value))
                logging.getLogger("test").error("failed", exc_info=info.value)
            logging.getLogger("test").info("the password is %s", PASSWORD)
    finally:
        remove_logging(handler)
    log_text = stream.getvalue()
    assert "GET /data/echo -> 500" in log_text, "DEBUG request lines were logged"
    assert "bad login alice/*** header ***" in texts[4]
    assert "the password is ***" in log_text
    for text in [*texts, log_text]:
        assert PASSWORD not in text
        assert base64.b64encode(f"alice:{PASSWORD}".encode()).decode() not in text


# -- arguments -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = SettingsParser()
    add_connection_arguments(p)
    return p


def connect_from_args(args: argparse.Namespace) -> Connection:
    settings = load_settings(args, NoOptions).connection
    assert settings is not None
    return connect_with(settings)


def test_connection_flags(srv: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XNAT_PASS", PASSWORD)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    args = parser().parse_args(["--xnat-host", srv.url, "--xnat-user", "bob", "--timeout", "5",
                                "--retries", "1", "--ca-bundle", str(bundle)])
    with connect_from_args(args) as conn:
        assert (conn.host, conn.user, conn.timeout, conn.retries) == (srv.url, "bob", 5.0, 1)
        assert conn.verify == str(bundle)
    args = parser().parse_args(["--xnat-host", srv.url, "--xnat-user", "bob", "--insecure"])
    with connect_from_args(args) as conn:
        assert conn.verify is False


@pytest.mark.parametrize(
    "argv",
    [
        ["--password", "x"],
        ["--xnat-pass", "x"],
        ["--insecure", "--ca-bundle", "ca.pem"],
        ["--timeout", "0"],
        ["--retries", "-1"],
    ],
)
def test_bad_or_forbidden_flags_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parser().parse_args(argv)
    assert info.value.code == 2


def test_missing_ca_bundle_is_a_config_error(srv: FakeServer) -> None:
    with pytest.raises(client.ConfigError, match=r"CA bundle /nonexistent\.pem does not exist"):
        connect(srv.url, "a", "b", verify="/nonexistent.pem")


RESTLET_404 = (
    "<html>\n<head>\n   <title>Status page</title>\n</head>\n<body>\n"
    "<h3>The server has not found anything matching the request URI</h3>"
    '<p>You can get technical details <a href="http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html">'
    'here</a>.<br>\nPlease continue your visit at our <a href="/">home page</a>.\n</p>\n</body>\n</html>\n'
)


def test_error_message_keeps_only_the_message_of_xnats_status_page(srv: FakeServer) -> None:
    srv.route("GET", "/data/projects/NOPE", Reply(404, RESTLET_404, {"Content-Type": "text/html"}))
    with conn_to(srv) as conn, pytest.raises(NotFound) as info:
        conn.get_json("/data/projects/NOPE")
    message = str(info.value)
    assert message.endswith(": The server has not found anything matching the request URI"), message
    for noise in ("Status page", "technical details", "home page"):
        assert noise not in message
