"""xnatnode.runtime: directories, exit codes, log lines, progress and the run record."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_http import FakeServer, Reply
from xnatnode import __version__
from xnatnode.client import connect
from xnatnode.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unreachable,
    XnatError,
)
from xnatnode.logs import Progress, log_items
from xnatnode.redact import forget_secrets, register_secret
from xnatnode.runtime import (
    RUN_RECORD,
    ExitCode,
    Run,
    UsageError,
    exit_code_for,
)
from xnatnode.settings import Settings, SettingsParser, add_runtime_arguments, load_settings

SECRET = "run-record-Secret-77"
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S.*$")


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("XNATNODE_INPUT", "XNATNODE_OUTPUT", "XNATNODE_LOG_LEVEL", "XNAT_HOST",
                 "XNAT_USER", "XNAT_PASS"):
        monkeypatch.delenv(name, raising=False)
    yield
    forget_secrets()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = SettingsParser()
    add_runtime_arguments(parser)
    parser.add_argument("--project")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class ProjectOption:
    project: str | None


def settings(args: argparse.Namespace) -> Settings[ProjectOption]:
    return load_settings(args, ProjectOption)


def test_exit_codes_are_the_documented_ones() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "FAILED": 1, "USAGE": 2, "UNREACHABLE": 3, "AUTH": 4, "NOT_FOUND": 5, "PARTIAL": 6,
        "TERMINATED": 143,
    }


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (Unreachable("x"), ExitCode.UNREACHABLE),
        (Unauthorized("x"), ExitCode.AUTH),
        (Forbidden("x"), ExitCode.AUTH),
        (NotFound("x"), ExitCode.NOT_FOUND),
        (ConfigError("x"), ExitCode.USAGE),
        (UsageError("x"), ExitCode.USAGE),
        (Conflict("x"), ExitCode.FAILED),
        (XnatError("x"), ExitCode.FAILED),
        (ZeroDivisionError(), ExitCode.FAILED),
    ],
)
def test_exit_code_for(exc: BaseException, code: ExitCode) -> None:
    assert exit_code_for(exc) is code


def test_runtime_arguments_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse([])
    assert (args.input, args.output, args.log_level) == (Path("/input"), Path("/output"), "INFO")
    monkeypatch.setenv("XNATNODE_INPUT", "/data/in")
    monkeypatch.setenv("XNATNODE_OUTPUT", "/data/out")
    monkeypatch.setenv("XNATNODE_LOG_LEVEL", "debug")
    args = parse([])
    assert (args.input, args.output, args.log_level) == (Path("/data/in"), Path("/data/out"), "DEBUG")
    args = parse(["--input", "a", "--output", "b", "--log-level", "warning"])
    assert (args.input, args.output, args.log_level) == (Path("a"), Path("b"), "WARNING")
    with pytest.raises(SystemExit):
        parse(["--log-level", "chatty"])


def run_in(tmp_path: Path, argv: list[str] | None = None) -> tuple[Run, io.StringIO]:
    out = tmp_path / "out"
    args = parse(["--input", str(tmp_path / "in"), "--output", str(out), *(argv or [])])
    stream = io.StringIO()
    return Run("project-summary", settings(args), stream=stream), stream


def test_successful_run_writes_the_record_and_readable_log(tmp_path: Path) -> None:
    run, stream = run_in(tmp_path, ["--project", "P1"])
    with run:
        assert run.output_dir.is_dir()
        assert run.input_dir == tmp_path / "in"
        run.log.info("read %d sessions", 3)
        run.log.warning("two\nlines\r\nhere")
        run.record["sessions"] = 3
        run.record["files"] = [tmp_path / "a.json"]
    assert run.exit_code is ExitCode.OK
    lines = stream.getvalue().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert any(line.endswith(f"INFO xnatnode {__version__} project-summary: input {tmp_path / 'in'}, output {tmp_path / 'out'}") for line in lines)
    assert any(line.endswith("WARNING two / lines / here") for line in lines)
    assert lines[-1].split(" ", 2)[2].startswith("project-summary: ok (exit 0) in ")
    record = json.loads((tmp_path / "out" / RUN_RECORD).read_text())
    assert record["command"] == "project-summary"
    assert record["version"] == __version__
    assert record["status"] == "ok"
    assert record["exit_code"] == 0
    assert record["error"] is None
    assert record["request_count"] is None
    assert record["arguments"]["project"] == "P1"
    assert record["arguments"]["output"] == str(tmp_path / "out")
    assert record["sessions"] == 3
    assert record["files"] == [str(tmp_path / "a.json")]
    assert record["started"].endswith("Z")
    assert record["finished"] >= record["started"]
    assert not list((tmp_path / "out").glob("*.part"))


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (NotFound("not found on XNAT: GET /data/projects/P9 (404)"), 5, "not_found"),
        (Unauthorized("refused"), 4, "auth"),
        (Unreachable("cannot reach XNAT"), 3, "unreachable"),
        (UsageError("--mapping file has no 'subject' column"), 2, "usage"),
    ],
)
def test_known_errors_become_exit_codes_without_traceback(
    tmp_path: Path, exc: Exception, code: int, status: str
) -> None:
    run, stream = run_in(tmp_path)
    with run:
        raise exc
    assert int(run.exit_code) == code
    log_text = stream.getvalue()
    assert f"ERROR {exc}" in log_text
    assert "Traceback" not in log_text
    record = json.loads(run.record_path.read_text())
    assert (record["exit_code"], record["status"], record["error"]) == (code, status, str(exc))


def test_unexpected_error_is_failed_with_an_indented_traceback(tmp_path: Path) -> None:
    run, stream = run_in(tmp_path)
    with run:
        {}["missing"]
    assert run.exit_code is ExitCode.FAILED
    lines = stream.getvalue().splitlines()
    assert any(line.endswith("ERROR KeyError: 'missing'") for line in lines)
    continuation = [line for line in lines if not LINE.match(line)]
    assert continuation
    assert all(line.startswith("  | ") for line in continuation)
    assert any("Traceback" in line for line in continuation)


def test_partial_status_set_by_the_command_is_kept(tmp_path: Path) -> None:
    run, _ = run_in(tmp_path)
    with run:
        run.exit_code = ExitCode.PARTIAL
    assert json.loads(run.record_path.read_text())["status"] == "partial"


def test_keyboard_interrupt_propagates_after_the_record(tmp_path: Path) -> None:
    run, _ = run_in(tmp_path)
    with pytest.raises(KeyboardInterrupt), run:
        raise KeyboardInterrupt
    assert json.loads(run.record_path.read_text())["error"] == "interrupted"


def test_unwritable_output_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    stream = io.StringIO()
    with pytest.raises(SystemExit) as info, Run("x", output_dir=blocker / "out", stream=stream):
        pytest.fail("the body must not run")
    assert info.value.code == ExitCode.USAGE
    assert "cannot create the output directory" in stream.getvalue()
    assert "--output DIR" in stream.getvalue()


def test_output_that_takes_no_files_is_a_usage_error_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read-only mount, or a folder Docker created as root for a container running as 4242:
    # the directory exists, but no file can be made in it (root ignores modes, so fake that).
    real_open = os.open

    def refuse(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", refuse)
    stream = io.StringIO()
    with pytest.raises(SystemExit) as info, Run("x", output_dir=tmp_path, stream=stream):
        pytest.fail("the body must not run")
    assert info.value.code == ExitCode.USAGE
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert LINE.match(lines[0])
    assert f"the output directory {tmp_path} is not writable" in lines[0]
    assert "Permission denied" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_writable_output_keeps_no_probe_file(tmp_path: Path) -> None:
    with Run("x", output_dir=tmp_path, stream=io.StringIO()):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN_RECORD]


def test_record_counts_requests_and_never_holds_secrets(tmp_path: Path) -> None:
    with FakeServer() as srv:
        srv.route("GET", "/data/projects/P1", Reply(403, f"denied for {SECRET}"))
        srv.route("GET", "/data/projects", Reply(200, {"ResultSet": {"Result": []}}))
        args = parse(["--output", str(tmp_path / "out"), "--log-level", "DEBUG"])
        args.xnat_pass = SECRET  # a careless command storing a secret in args
        args.api_token = "tok-" + SECRET
        stream = io.StringIO()
        with Run("label-validation", settings(args), stream=stream) as run:
            conn = connect(srv.url, "alice", SECRET, backoff=0.0)
            run.connection = conn
            conn.get_table("/data/projects")
            run.record["note"] = f"used {SECRET}"
            run.log.debug("password %s", SECRET)
            conn.get("/data/projects/P1")
        conn.close()
    assert run.exit_code is ExitCode.AUTH
    text = run.record_path.read_text()
    record = json.loads(text)
    assert record["request_count"] == 2
    assert record["xnat_host"] == srv.url
    assert record["arguments"]["xnat_pass"] == "***"
    assert record["note"] == "used ***"
    assert "denied for ***" in record["error"]
    assert SECRET not in text
    assert SECRET not in stream.getvalue()
    assert "password ***" in stream.getvalue()


@pytest.mark.parametrize(("requests", "said"), [(1, "1 XNAT request"), (2, "2 XNAT requests")])
def test_closing_line_counts_requests_in_words(tmp_path: Path, requests: int, said: str) -> None:
    with FakeServer() as srv:
        srv.route("GET", "/data/projects", Reply(200, {"ResultSet": {"Result": []}}))
        stream = io.StringIO()
        with Run("x", output_dir=tmp_path, stream=stream) as run:
            conn = connect(srv.url, "alice", SECRET, backoff=0.0)
            run.connection = conn
            for _ in range(requests):
                conn.get_table("/data/projects")
        conn.close()
    closing = stream.getvalue().splitlines()[-1]
    assert closing.endswith(f" s, {said}"), closing


@pytest.mark.parametrize("xnat_root", [True, False])
def test_a_404_from_a_host_that_is_not_an_xnat_root_says_so(tmp_path: Path, xnat_root: bool) -> None:
    with FakeServer() as srv:
        srv.route("GET", "/data/projects/P1/subjects", Reply(404, "The requested resource does not exist."))
        if xnat_root:
            srv.route("GET", "/data/JSESSION", Reply(200, "0123ABCD"))
        with Run("x", output_dir=tmp_path, stream=io.StringIO()) as run:
            conn = connect(srv.url, "alice", SECRET, backoff=0.0)
            run.connection = conn
            conn.get("/data/projects/P1/subjects")
        conn.close()
    assert run.exit_code is ExitCode.NOT_FOUND
    assert run.error is not None
    assert ("does not answer as an XNAT" in run.error) is not xnat_root
    assert ("check its context path" in run.error) is not xnat_root
    assert conn.request_count == 2  # the failed request and the one probe


def test_record_reserved_keys_cannot_be_overwritten(tmp_path: Path) -> None:
    run, stream = run_in(tmp_path)
    with run:
        run.record["exit_code"] = 99
    assert json.loads(run.record_path.read_text())["exit_code"] == 0
    assert "reserved" in stream.getvalue()


def test_logging_is_restored_after_the_run(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    run, _ = run_in(tmp_path, ["--log-level", "DEBUG"])
    with run:
        assert root.level == logging.DEBUG
    assert root.handlers == handlers
    assert root.level == level


def test_registered_secret_in_an_exception_message_is_masked(tmp_path: Path) -> None:
    register_secret(SECRET)
    run, stream = run_in(tmp_path)
    with run:
        raise RuntimeError(f"boom {SECRET}")
    assert SECRET not in stream.getvalue()
    assert SECRET not in run.record_path.read_text()


# -- progress --------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_logs_periodic_lines_and_the_end(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    logger = logging.getLogger("xnatnode.test-progress")
    with caplog.at_level(logging.INFO, logger=logger.name):
        progress = Progress("sessions", 1000, logger, interval=5.0, clock=clock)
        for i in range(1000):
            clock.now = i * 0.05  # 50 s in all: one line per 5 s
            progress.advance()
        progress.finish()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "sessions: 101/1000 (10%)"
    assert messages[-1] == "sessions: 1000/1000 (100%)"
    assert 9 <= len(messages) <= 11
    assert all("\r" not in m for m in messages)


def test_log_items_names_the_first_ones_and_counts_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.items")
    with caplog.at_level(logging.INFO, logger="test.items"):
        log_items(logger, logging.WARNING, [f"item {i}" for i in range(25)], where="x.csv", limit=20)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"item {i}" for i in range(20)] + ["... and 5 more (all in x.csv)"]
    assert {r.levelname for r in caplog.records} == {"WARNING"}
    caplog.clear()
    log_items(logger, logging.WARNING, [], where="x.csv")
    assert not caplog.records


def test_progress_without_total_and_finish(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    logger = logging.getLogger("xnatnode.test-progress")
    with caplog.at_level(logging.INFO, logger=logger.name):
        with Progress("files", None, logger, interval=5.0, clock=clock) as progress:
            progress.advance(7)
            assert caplog.records == []
        assert [r.getMessage() for r in caplog.records] == ["files: 7"]


def test_run_progress_uses_the_run_log(tmp_path: Path) -> None:
    run, stream = run_in(tmp_path)
    with run:
        progress = run.progress("scans", total=4)
        for _ in range(4):
            progress.advance()
        progress.finish()
    assert stream.getvalue().count("scans: 4/4 (100%)") == 1


def test_progress_from_threads_counts_everything(caplog: pytest.LogCaptureFixture) -> None:
    from concurrent.futures import ThreadPoolExecutor

    logger = logging.getLogger("xnatnode.test-progress")
    with caplog.at_level(logging.INFO, logger=logger.name):
        progress = Progress("resources", 4000, logger, interval=3600)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: progress.advance(), range(4000)))
        progress.finish()
    assert progress.done == 4000
    assert [r.getMessage() for r in caplog.records] == ["resources: 4000/4000 (100%)"]


def test_a_password_in_a_url_argument_never_reaches_record_or_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --xnat-host http://user:password@host is refused, but the refused value is an argument too.
    from xnatnode.cli import main

    code = main(["project-summary", "--project", "P", "--output", str(tmp_path),
                 "--xnat-host", f"http://alice:{SECRET}@127.0.0.1:9", "--log-level", "DEBUG"])
    assert code == ExitCode.USAGE
    record = (tmp_path / RUN_RECORD).read_text()
    assert SECRET not in record
    assert "http://alice:***@127.0.0.1:9" in record
    out, err = capsys.readouterr()
    assert "must not contain a user or password" in err
    assert SECRET not in out + err


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://a:pw@h:8080/x", "http://a:***@h:8080/x"),
        ("https://h:8443/data/a@b", "https://h:8443/data/a@b"),
        ("user@example.org", "user@example.org"),
        ("http://token@h/", "http://token@h/"),
    ],
)
def test_url_passwords_are_masked_in_any_text(text: str, shown: str) -> None:
    from xnatnode.redact import redact

    assert redact(text) == shown
