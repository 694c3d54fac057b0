"""The client against slow, dribbling, truncating and misleading servers (issue 8 items 5, 7, 11)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_http import DROP, Cut, Dribble, FakeServer, Reply, Trickle
from xnatnode import client
from xnatnode.cli import main
from xnatnode.client import Connection, Unauthorized, Unreachable, XnatError, connect
from xnatnode.deadline import Deadline, DeadlineExceeded
from xnatnode.redact import forget_secrets

LISTING = {"ResultSet": {"Result": [{"ID": "S1", "label": "one"}]}}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(client, "running_in_container", lambda: False)
    yield
    forget_secrets()


def conn_to(server: FakeServer, **kwargs: object) -> Connection:
    kwargs.setdefault("backoff", 0.0)
    return connect(server.url, "alice", "pw", **kwargs)  # type: ignore[arg-type]


# -- item 5: per-request and overall deadlines -------------------------------------------------


def test_a_dribbling_server_is_cut_off_at_the_request_deadline(srv: FakeServer) -> None:
    srv.route("GET", "/data/projects", Dribble(0.1, Reply(200, LISTING)))
    started = time.monotonic()
    with conn_to(srv, timeout=1.0, retries=0) as conn, pytest.raises(
            Unreachable, match=r"no complete answer within 1 s"):
        conn.get_table("/data/projects")
    assert time.monotonic() - started < 4, "cut at the time-out, not when the last byte came"


def test_the_overall_deadline_ends_retries_with_a_clear_message(srv: FakeServer) -> None:
    srv.route("GET", "/data/projects", Dribble(0.1, Reply(200, LISTING)))
    started = time.monotonic()
    with conn_to(srv, timeout=1.0, retries=50, deadline=Deadline(2.0)) as conn, pytest.raises(
            DeadlineExceeded, match=r"deadline \(2 s\) passed .* --deadline") as info:
        conn.get_table("/data/projects")
    assert isinstance(info.value, Unreachable), "exit 3"
    assert time.monotonic() - started < 5


def test_project_summary_at_its_deadline_exits_3_with_a_record(
    srv: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv.route("GET", "/data/projects/P/subjects", Dribble(0.2, Reply(200, LISTING)))
    monkeypatch.setenv("XNAT_USER", "someone")
    monkeypatch.setenv("XNAT_PASS", "a-long-password")
    started = time.monotonic()
    code = main(["project-summary", "--project", "P", "--xnat-host", srv.url, "--deadline", "2",
                 "--output", str(tmp_path), "--input", str(tmp_path / "none")])
    assert code == 3
    assert time.monotonic() - started < 8
    record = json.loads((tmp_path / "xnatnode-run.json").read_text())
    assert record["status"] == "unreachable"
    assert "deadline (2 s) passed" in record["error"]


# -- downloads: a stall rule, not a whole-download limit --------------------------------------

BLOB = bytes(range(256)) * 1024  # 256 KiB
#: A regression would hang (a dribble of 256 KiB takes hours): fail fast instead.
bounded = pytest.mark.timeout(30)


@bounded
def test_a_download_dribbling_a_byte_at_a_time_stalls_and_exits_3(
    srv: FakeServer, tmp_path: Path
) -> None:
    """Each read is within the time-out, but 64 KiB never come within one: stalled, retried
    with back-off, then Unreachable (exit 3) naming the URL and the rate, long before the
    run's deadline; no file is left behind."""
    srv.route("GET", "/data/files/a.zip", Trickle(0.2, 1, Reply(200, BLOB)))
    started = time.monotonic()
    with conn_to(srv, timeout=1.0, retries=1, deadline=Deadline(30)) as conn, pytest.raises(
            Unreachable, match=r"stalled") as info:
        conn.download("/data/files/a.zip", tmp_path / "a.zip")
    text = str(info.value)
    assert not isinstance(info.value, DeadlineExceeded), text
    assert "/data/files/a.zip" in text
    assert "2 attempts" in text
    assert "below 64.0 KiB/s" in text
    assert " B/s" in text
    assert len(srv.requests_to("/data/files/a.zip")) == 2
    assert time.monotonic() - started < 10
    assert not list(tmp_path.iterdir())


@bounded
def test_a_stalled_download_is_retried_and_then_completes(srv: FakeServer, tmp_path: Path) -> None:
    srv.route("GET", "/data/files/a.zip", Trickle(0.2, 1, Reply(200, BLOB)), Reply(200, BLOB))
    with conn_to(srv, timeout=1.0, retries=2) as conn:
        dest = conn.download("/data/files/a.zip", tmp_path / "a.zip")
    assert dest.read_bytes() == BLOB
    assert len(srv.requests_to("/data/files/a.zip")) == 2


@bounded
def test_a_slow_but_steady_download_may_take_longer_than_the_timeout(
    srv: FakeServer, tmp_path: Path
) -> None:
    """No whole-download limit: 256 KiB over ~2.4 s with a 1 s time-out, 96 KiB a second."""
    srv.route("GET", "/data/files/a.zip", Trickle(0.3, 32 * 1024, Reply(200, BLOB)))
    started = time.monotonic()
    with conn_to(srv, timeout=1.0, retries=0) as conn:
        dest = conn.download("/data/files/a.zip", tmp_path / "a.zip")
    assert time.monotonic() - started > 1.5
    assert dest.read_bytes() == BLOB


@bounded
def test_the_run_deadline_cuts_a_download_that_keeps_within_the_stall_rule(
    srv: FakeServer, tmp_path: Path
) -> None:
    srv.route("GET", "/data/files/a.zip", Trickle(0.2, 1, Reply(200, BLOB)))
    started = time.monotonic()
    with conn_to(srv, timeout=20.0, retries=0, deadline=Deadline(2.0)) as conn, pytest.raises(
            DeadlineExceeded, match=r"deadline \(2 s\) passed"):
        conn.download("/data/files/a.zip", tmp_path / "a.zip")
    assert time.monotonic() - started < 5


@bounded
def test_a_stalled_body_without_a_length_is_not_taken_as_complete(
    srv: FakeServer, tmp_path: Path
) -> None:
    srv.route("GET", "/data/files/a.zip",
              Trickle(0.2, 1, Reply(200, BLOB), announce_length=False))
    with conn_to(srv, timeout=1.0, retries=0) as conn, pytest.raises(Unreachable, match="stalled"):
        conn.download("/data/files/a.zip", tmp_path / "a.zip")
    assert not list(tmp_path.iterdir())


# -- item 7: truncated JSON is retryable -------------------------------------------------------


def test_truncated_json_is_asked_for_again(srv: FakeServer) -> None:
    srv.route("GET", "/data/projects",
              Cut(20, Reply(200, LISTING), announce_length=False), Reply(200, LISTING))
    with conn_to(srv) as conn:
        assert conn.get_table("/data/projects") == [{"ID": "S1", "label": "one"}]
        assert conn.request_count == 2


def test_truncated_json_every_time_is_a_clear_error(srv: FakeServer) -> None:
    srv.route("GET", "/data/projects", Cut(20, Reply(200, LISTING), announce_length=False))
    with conn_to(srv, retries=1) as conn, pytest.raises(
            XnatError, match=r"not valid JSON .* cut short \(2 attempts\)") as info:
        conn.get_table("/data/projects")
    assert "got application/json" not in str(info.value)


# -- item 11: messages that say what happened --------------------------------------------------


def test_invalid_json_is_not_reported_as_its_content_type(srv: FakeServer) -> None:
    srv.route("GET", "/data/projects", Reply(200, b"{oops", {"Content-Type": "application/json"}))
    with conn_to(srv, retries=0) as conn, pytest.raises(XnatError) as info:
        conn.get_json("/data/projects")
    assert "not valid JSON" in str(info.value)
    assert "got application/json" not in str(info.value)


def test_https_to_a_plain_http_port_is_not_called_a_certificate_failure(srv: FakeServer) -> None:
    with connect(srv.url.replace("http://", "https://"), "a", "b", retries=0) as conn, \
            pytest.raises(Unreachable) as info:
        conn.get("/data/projects")
    text = str(info.value)
    assert "does not speak TLS" in text
    assert "certificate" not in text


def test_a_dropped_answer_exits_3_not_1(
    srv: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv.route("GET", "/data/projects/P/subjects", Cut(30, Reply(200, LISTING)))
    with conn_to(srv, retries=0) as conn, pytest.raises(Unreachable, match="dropped"):
        conn.get_table("/data/projects/P/subjects")
    monkeypatch.setenv("XNAT_USER", "someone")
    monkeypatch.setenv("XNAT_PASS", "a-long-password")
    code = main(["project-summary", "--project", "P", "--xnat-host", srv.url, "--retries", "0",
                 "--output", str(tmp_path), "--input", str(tmp_path / "none")])
    assert code == 3


def test_the_processing_url_hint_is_not_shown_when_the_server_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client, "running_in_container", lambda: True)
    with FakeServer() as local:
        local.route("GET", "/data/projects", DROP)
        url = local.url.replace("127.0.0.1", "localhost")
        with connect(url, "a", "b", retries=0) as conn, pytest.raises(Unreachable) as info:
            conn.get("/data/projects")
    assert "Processing URL" not in str(info.value)
    assert "dropped" in str(info.value)


def test_a_redirect_to_the_login_page_is_an_authentication_error(srv: FakeServer) -> None:
    srv.route("GET", "/data/projects", Reply(302, "", {"Location": "/app/template/Login.vm"}))
    srv.route("GET", "/app/template/Login.vm", Reply(200, "<html>Log in</html>",
                                                     {"Content-Type": "text/html"}))
    with conn_to(srv) as conn, pytest.raises(Unauthorized, match="login page"):
        conn.get_json("/data/projects")
