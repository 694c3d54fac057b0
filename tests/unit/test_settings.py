"""The settings object: flags with their environment variables, typed and validated, built once;
and the rule that a Container Service job's connection comes from the environment only."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from fake_http import FakeServer, Reply
from xnatnode.cli import build_parser, main
from xnatnode.client import ConfigError, connect_with
from xnatnode.redact import forget_secrets
from xnatnode.settings import (
    ConnectionSettings,
    NoOptions,
    SettingsParser,
    add_connection_arguments,
    add_runtime_arguments,
    load_settings,
)

TOKEN_SECRET = "alias-token-secret-4242"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS", "XNATNODE_TIMEOUT", "XNATNODE_RETRIES",
                 "XNATNODE_DEADLINE", "XNATNODE_INPUT", "XNATNODE_OUTPUT", "XNATNODE_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    yield
    forget_secrets()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = SettingsParser(prog="t")
    add_connection_arguments(parser)
    add_runtime_arguments(parser)
    return parser.parse_args(argv)


def test_settings_are_typed_frozen_and_built_from_flags() -> None:
    settings = load_settings(parse(["--timeout", "7", "--retries", "5", "--deadline", "60",
                                    "--output", "/o", "--xnat-host", "http://h"]), NoOptions)
    assert settings.connection is not None
    assert (settings.connection.timeout, settings.connection.retry.retries) == (7.0, 5)
    assert settings.connection.given == ("--xnat-host",)
    assert (settings.runtime.deadline, settings.runtime.output_dir) == (60.0, Path("/o"))
    with pytest.raises(FrozenInstanceError):
        settings.runtime.deadline = 1  # type: ignore[misc]


def test_timeout_retries_and_deadline_come_from_their_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XNATNODE_TIMEOUT", "12.5")
    monkeypatch.setenv("XNATNODE_RETRIES", "7")
    monkeypatch.setenv("XNATNODE_DEADLINE", "900")
    settings = load_settings(parse([]), NoOptions)
    assert settings.connection is not None
    assert (settings.connection.timeout, settings.connection.retry.retries) == (12.5, 7)
    assert settings.runtime.deadline == 900.0
    flagged = load_settings(parse(["--timeout", "3"]), NoOptions).connection
    assert flagged is not None
    assert flagged.timeout == 3.0, "a flag beats its variable"


def test_help_shows_each_flags_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["project-summary", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for env in ("XNATNODE_TIMEOUT", "XNATNODE_RETRIES", "XNATNODE_DEADLINE", "XNATNODE_OUTPUT"):
        assert f"[env {env}]" in text


@pytest.mark.parametrize(
    ("command", "shown"),
    [("project-summary", "REST requests in flight at most (1-32; default: 8)"),
     ("nifti-import", "(1-32; default: 16)"),
     ("dicom-upload", "C-STORE associations in parallel (1-16; default: 4)"),
     ("dicom-upload", "DICOM receiver port (1-65535; default: 8104)"),
     ("label-validation", "[env XNATNODE_RETRIES] (0-20; default: 5)")],
)
def test_help_shows_the_range_of_each_whole_number_flag(command: str, shown: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert shown in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("env", "value"),
    [("XNATNODE_TIMEOUT", "nan"), ("XNATNODE_RETRIES", "many"), ("XNATNODE_DEADLINE", "-1"),
     ("XNATNODE_LOG_LEVEL", "chatty")],
)
def test_a_bad_environment_variable_is_a_usage_error_naming_it(
    env: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SystemExit) as info:
        main(["project-summary", "--project", "P"])
    assert info.value.code == 2
    assert f"environment variable {env}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--timeout", "nan"], ["--timeout", "inf"], ["--timeout", "-3"], ["--deadline", "nan"],
        ["--retries", "1e3"], ["--retries", "99999999999999999999"], ["--workers", "8 --xnat-host"],
        ["--workers", "٣"],
    ],
)
def test_every_numeric_flag_is_checked(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["project-summary", "--project", "P", *argv])
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_no_module_reads_the_namespace_but_settings() -> None:
    root = Path(__file__).resolve().parents[2] / "shared_lib" / "xnatnode"
    offenders = [p.name for p in root.rglob("*.py") if "getattr(args" in p.read_text("utf-8")]
    assert offenders == []


# -- a Container Service job: the connection comes from the environment only -------------------


def cs_environment(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("XNAT_HOST", host)
    monkeypatch.setenv("XNAT_USER", "0f8fad5b-d9cb-469f-a165-70867728950e")
    monkeypatch.setenv("XNAT_PASS", TOKEN_SECRET)


@pytest.mark.parametrize(
    "flags",
    [["--xnat-host", "http://127.0.0.1:9"], ["--xnat-user", "admin"], ["--netrc", "/input/n"],
     ["--insecure"], ["--ca-bundle", "/input/evil.pem"]],
)
def test_in_a_cs_job_no_flag_may_redirect_the_connection(
    flags: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with FakeServer() as xnat, FakeServer() as attacker:
        cs_environment(monkeypatch, xnat.url)
        argv = ["project-summary", "--project", "P", "--output", str(tmp_path), "--input",
                str(tmp_path / "in"), *[f.replace("http://127.0.0.1:9", attacker.url) for f in flags]]
        assert main(argv) == 2
        assert attacker.seen == []
        assert xnat.seen == []
    record = json.loads((tmp_path / "xnatnode-run.json").read_text())
    assert "connection comes from the environment only" in record["error"]
    assert flags[0] in record["error"]
    assert "Running by hand? Leave XNAT_PASS unset" in record["error"]  # the way out for an admin


def test_the_launch_value_attack_of_issue_8_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # XNAT splits "8 --xnat-host http://attacker" into three arguments after --workers.
    with FakeServer() as xnat, FakeServer() as attacker:
        cs_environment(monkeypatch, xnat.url)
        code = main(["project-summary", "--project", "P", "--workers", "8", "--xnat-host",
                     attacker.url, "--output", str(tmp_path)])
        assert code == 2
        assert attacker.seen == []


def test_a_token_from_the_environment_is_never_sent_to_another_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeServer() as xnat, FakeServer() as other:
        monkeypatch.setenv("XNAT_HOST", xnat.url)
        monkeypatch.setenv("XNAT_PASS", TOKEN_SECRET)
        with pytest.raises(ConfigError, match="never sent to another host"):
            connect_with(ConnectionSettings(host=other.url, user="u"))
        assert other.seen == []


def test_outside_a_cs_job_the_flags_work(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer() as xnat:
        xnat.route("GET", "/data/projects", Reply(200, {"ResultSet": {"Result": []}}))
        monkeypatch.setenv("XNAT_PASS", TOKEN_SECRET)  # no XNAT_HOST: someone at a terminal
        settings = load_settings(parse(["--xnat-host", xnat.url, "--xnat-user", "me"]), NoOptions)
        assert settings.connection is not None
        with connect_with(settings.connection) as conn:
            assert conn.get_table("/data/projects") == []


def test_the_parser_is_a_settings_parser() -> None:
    assert isinstance(build_parser(), SettingsParser)


def test_a_redirect_to_another_host_carries_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer() as xnat, FakeServer() as other:
        other.route("GET", "/steal", Reply(200, {"ResultSet": {"Result": []}}))
        xnat.route("GET", "/data/projects", Reply(302, "", {"Location": f"{other.url}/steal"}))
        cs_environment(monkeypatch, xnat.url)
        settings = load_settings(parse([]), NoOptions)
        assert settings.connection is not None
        with connect_with(settings.connection) as conn:
            conn.get_table("/data/projects")
        assert xnat.seen[0].headers.get("Authorization", "").startswith("Basic ")
        assert [s.path for s in other.seen] == ["/steal"]
        assert "Authorization" not in other.seen[0].headers
