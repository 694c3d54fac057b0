"""Where host, user and password come from: arguments, XNAT_* environment, netrc."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from xnatnode.credentials import normalize_host, resolve_credentials
from xnatnode.errors import ConfigError
from xnatnode.redact import forget_secrets, redact

SECRET = "n3trc-secret-value"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    yield
    forget_secrets()


def write_netrc(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("https://xnat.example.org/xnat/", "https://xnat.example.org/xnat"),
        ("xnat.example.org", "https://xnat.example.org"),
        ("  http://xnat  ", "http://xnat"),
    ],
)
def test_normalize_host(given: str, expected: str) -> None:
    assert normalize_host(given) == expected


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("", "empty"),
        ("ftp://xnat", "http:// or https://"),
        ("http://", "no host name"),
        ("http://xnat:port", "bad port"),
        ("http://xnat/?a=b", "query"),
    ],
)
def test_bad_hosts(given: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        normalize_host(given)


def test_host_with_embedded_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as info:
        normalize_host(f"https://bob:{SECRET}@xnat.example.org")
    assert SECRET not in str(info.value)
    assert "XNAT_USER/XNAT_PASS" in str(info.value)


def test_environment_is_the_container_service_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNAT_HOST", "http://xnat-web:8080")
    monkeypatch.setenv("XNAT_USER", "0f8fad5b-d9cb-469f-a165-70867728950e")
    monkeypatch.setenv("XNAT_PASS", SECRET)
    creds = resolve_credentials()
    assert (creds.host, creds.password) == ("http://xnat-web:8080", SECRET)
    assert creds.is_alias_token
    assert creds.source == "user from XNAT_USER, password from XNAT_PASS"


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNAT_HOST", "http://env-host")
    monkeypatch.setenv("XNAT_USER", "envuser")
    monkeypatch.setenv("XNAT_PASS", "envpass")
    creds = resolve_credentials("http://arg-host", "arguser", "argpass")
    assert (creds.host, creds.user, creds.password) == ("http://arg-host", "arguser", "argpass")
    assert not creds.is_alias_token


def test_netrc_by_host_and_port(tmp_path: Path) -> None:
    netrc = write_netrc(tmp_path / "netrc",
                        "machine 127.0.0.1:18765 login admin password " + SECRET + "\n"
                        "machine 127.0.0.1 login other password other-pass\n")
    creds = resolve_credentials("http://127.0.0.1:18765", netrc_file=netrc)
    assert (creds.user, creds.password) == ("admin", SECRET)
    assert str(netrc) in creds.source
    # Without the port, the bare host name entry applies (as curl reads it).
    creds = resolve_credentials("http://127.0.0.1:9999", netrc_file=netrc)
    assert (creds.user, creds.password) == ("other", "other-pass")


def test_netrc_from_home_and_from_NETRC(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_netrc(Path.home() / ".netrc", "machine xnat.example.org login home password home-pass\n")
    assert resolve_credentials("https://xnat.example.org").user == "home"
    other = write_netrc(tmp_path / "other", "machine xnat.example.org login env password env-pass\n")
    monkeypatch.setenv("NETRC", str(other))
    assert resolve_credentials("https://xnat.example.org").user == "env"


def test_netrc_login_must_match_the_given_user(tmp_path: Path) -> None:
    netrc = write_netrc(tmp_path / "netrc", f"machine xnat login admin password {SECRET}\n")
    assert resolve_credentials("http://xnat", "admin", netrc_file=netrc).password == SECRET
    with pytest.raises(ConfigError, match="no password for XNAT user 'bob'"):
        resolve_credentials("http://xnat", "bob", netrc_file=netrc)


def test_environment_password_wins_over_netrc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    netrc = write_netrc(tmp_path / "netrc", f"machine xnat login admin password {SECRET}\n")
    monkeypatch.setenv("XNAT_USER", "admin")
    monkeypatch.setenv("XNAT_PASS", "from-env")
    assert resolve_credentials("http://xnat", netrc_file=netrc).password == "from-env"


def test_missing_host_and_credentials_say_what_to_set() -> None:
    with pytest.raises(ConfigError, match=r"set XNAT_HOST .* --xnat-host"):
        resolve_credentials()
    with pytest.raises(ConfigError, match=r"set XNAT_USER and XNAT_PASS .* 'machine xnat:8080'"):
        resolve_credentials("http://xnat:8080")


def test_a_named_netrc_file_that_is_missing_or_lacks_the_host_is_named(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"the netrc file {tmp_path}/none \\(--netrc\\) does not exist"):
        resolve_credentials("http://xnat", netrc_file=tmp_path / "none")
    monkeypatch.setenv("NETRC", str(tmp_path / "gone"))
    with pytest.raises(ConfigError, match=r"the netrc file .*/gone \(\$NETRC\) does not exist"):
        resolve_credentials("http://xnat")
    other = write_netrc(tmp_path / "other", "machine elsewhere login a password b\n")
    monkeypatch.setenv("NETRC", str(other))
    with pytest.raises(ConfigError, match=f"add 'machine xnat' to {other}$"):  # not ~/.netrc
        resolve_credentials("http://xnat")
    monkeypatch.delenv("NETRC")
    with pytest.raises(ConfigError, match=r"add 'machine xnat' to ~/\.netrc$"):
        resolve_credentials("http://xnat")


def test_broken_netrc_is_reported_without_its_content(tmp_path: Path) -> None:
    netrc = write_netrc(tmp_path / "netrc", f"machine xnat login admin password\n{SECRET} bogus\n")
    with pytest.raises(ConfigError, match="cannot parse netrc file") as info:
        resolve_credentials("http://xnat", netrc_file=netrc)
    assert SECRET not in str(info.value)


def test_credentials_never_show_the_password_and_register_it() -> None:
    creds = resolve_credentials("http://xnat", "admin", SECRET)
    for text in (repr(creds), str(creds), f"{creds}", str([creds])):
        assert SECRET not in text
        assert "***" in text
    assert redact(f"oops {SECRET} leaked") == "oops *** leaked"
    resolve_credentials("http://xnat", "admin", "p@ss/wo rd")
    assert redact("username=admin&password=p%40ss%2Fwo+rd") == "username=admin&password=***"
    assert redact("GET /x?password=p%40ss%2Fwo%20rd") == "GET /x?password=***"
