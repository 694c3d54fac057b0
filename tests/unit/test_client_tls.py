"""TLS: verification on by default, a CA bundle option (lean path, xnatpy, register), --insecure."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_http import FakeServer, Reply, xnatpy_routes
from xnatnode.cli import main
from xnatnode.client import Unreachable, connect
from xnatnode.redact import forget_secrets

PASSWORD = "tls-Secret-9"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA bundle)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def srv(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
                 "XNAT_HOST", "XNAT_USER", "XNAT_PASS"):
        monkeypatch.delenv(name, raising=False)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with FakeServer(tls=context) as server:
        xnatpy_routes(server)
        yield server
    forget_secrets()


def test_verification_is_on_by_default_and_not_retried(srv: FakeServer) -> None:
    with connect(srv.url, "alice", PASSWORD, retries=3, backoff=0.0) as conn:
        with pytest.raises(Unreachable, match="TLS certificate verification failed") as info:
            conn.get_table("/data/projects")
        assert conn.request_count == 1
    assert "--ca-bundle" in str(info.value)
    assert srv.seen == []


def test_ca_bundle_is_used(srv: FakeServer, certificate: tuple[Path, Path]) -> None:
    with connect(srv.url, "alice", PASSWORD, verify=str(certificate[0])) as conn:
        assert conn.get_table("/data/projects") == []


def test_requests_ca_bundle_variable_is_honoured(srv: FakeServer, certificate: tuple[Path, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """REQUESTS_CA_BUNDLE stands in for the default ``verify=True``, as in requests (the
    connection reads it once, when it is made); an explicit bundle or ``verify=False`` wins."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    with connect(srv.url, "alice", PASSWORD) as conn:
        assert conn.get_table("/data/projects") == []
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[1].parent / "missing.pem"))
    with connect(srv.url, "alice", PASSWORD, verify=str(certificate[0])) as conn:
        assert conn.get_table("/data/projects") == []


def test_insecure_skips_verification(srv: FakeServer) -> None:
    with connect(srv.url, "alice", PASSWORD, verify=False) as conn:
        assert conn.get_table("/data/projects") == []


def test_xnatpy_gets_the_ca_bundle_too(srv: FakeServer, certificate: tuple[Path, Path]) -> None:
    """xnat.connect() 0.8.1 ignores a CA-bundle path given as ``verify``; ours reaches it."""
    with connect(srv.url, "alice", PASSWORD, verify=str(certificate[0])) as conn:
        session = conn.xnatpy(parse_model=False)
        assert session.logged_in_user == "alice"
        assert conn.request_count == 4
    with connect(srv.url, "alice", PASSWORD) as conn, pytest.raises(
        Unreachable, match="TLS certificate verification failed"
    ):
        conn.xnatpy(parse_model=False)


# --- xnatnode register has the same TLS options ----------------------------------------------


def _register(srv: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
              monkeypatch: pytest.MonkeyPatch, *flags: str) -> tuple[int, str]:
    srv.route("POST", "/xapi/commands", Reply(201, "7"))
    path = tmp_path / "probe.json"
    path.write_text(json.dumps([{"name": "probe", "version": "1.0", "image": "xnatnode/probe:1.0",
                                 "command-line": ""}]))
    monkeypatch.setenv("XNAT_PASS", PASSWORD)
    status = main(["register", "--xnat-host", srv.url, "--xnat-user", "alice", "--retries", "0",
                   *flags, str(path)])
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    return status, out + err


def test_register_verifies_tls_by_default(
    srv: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status, text = _register(srv, tmp_path, capsys, monkeypatch)
    assert status == 3
    assert "TLS certificate verification failed" in text
    assert srv.requests_to("/xapi/commands") == []


@pytest.mark.parametrize("insecure", [False, True])
def test_register_takes_a_ca_bundle_or_insecure(
    srv: FakeServer, certificate: tuple[Path, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, insecure: bool,
) -> None:
    flags = ("--insecure",) if insecure else ("--ca-bundle", str(certificate[0]))
    status, text = _register(srv, tmp_path, capsys, monkeypatch, *flags)
    assert status == 0, text
    assert "registered probe 1.0 (xnatnode/probe:1.0): id 7" in text
    (seen,) = srv.requests_to("/xapi/commands")
    assert json.loads(seen.body)["name"] == "probe"
