"""A run stopped by SIGTERM, and a run on a full disk (issue 8 items 6 and 9), as real processes."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from fake_http import Dribble, FakeServer, Reply, Slow
from xnatnode.safefiles import leftovers

SUBJECTS = {"ResultSet": {"Result": [{"ID": f"S{i}", "label": f"sub{i:03d}", "group": "g"}
                                     for i in range(60)]}}
SESSIONS = {"ResultSet": {"Result": [{"ID": f"E{i}", "label": f"sub{i:03d}_MR1", "xsiType":
                                      "xnat:mrSessionData", "subject_ID": f"S{i}",
                                      "date": "2024-01-02"} for i in range(60)]}}


def command(server: FakeServer, out: Path, *extra: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "XNAT_USER": "someone", "XNAT_PASS": "a-long-password",
           "PYTHONUNBUFFERED": "1"}
    for name in ("XNAT_HOST", "XNATNODE_DEADLINE", "XNATNODE_TIMEOUT"):
        env.pop(name, None)
    argv = [sys.executable, "-m", "xnatnode", "project-summary", "--project", "P",
            "--xnat-host", server.url, "--output", str(out), "--input", str(out / "none"), *extra]
    return argv, env


def terminate_at_work(argv: list[str], env: dict[str, str], after: float) -> tuple[int, str, float]:
    """Start the command, send SIGTERM ``after`` seconds into its reading; (status, the log
    after the signal, seconds from the signal to the end)."""
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "reading project P" in line:
            break
    time.sleep(after)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    return proc.wait(30), rest, time.monotonic() - started


def test_sigterm_logs_writes_the_record_and_exits_143(tmp_path: Path) -> None:
    with FakeServer() as srv:
        srv.route("GET", "/data/projects/P/subjects", Dribble(0.5, Reply(200, SUBJECTS)))
        code, rest, _ = terminate_at_work(*command(srv, tmp_path), after=0.5)
        assert code == 143
    assert "terminated by SIGTERM" in rest
    record = json.loads((tmp_path / "xnatnode-run.json").read_text())
    assert (record["status"], record["exit_code"]) == ("terminated", 143)
    assert leftovers(tmp_path) == []


def _small_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))


def test_a_full_disk_is_one_clear_line_no_temporary_files_and_a_record(tmp_path: Path) -> None:
    with FakeServer() as srv:
        srv.route("GET", "/data/projects/P/subjects", Reply(200, SUBJECTS))
        srv.route("GET", "/data/projects/P/experiments", Reply(200, SESSIONS))
        argv, env = command(srv, tmp_path, "--sizes", "none")
        done = subprocess.run(argv, env=env, stderr=subprocess.PIPE, text=True, timeout=60,
                              preexec_fn=_small_file_limit, check=False)
    assert done.returncode == 1
    assert f"no space left to write {tmp_path}/" in done.stderr
    assert "Traceback" not in done.stderr
    assert leftovers(tmp_path) == []
    record = json.loads((tmp_path / "xnatnode-run.json").read_text())
    assert record["status"] == "failed"
    assert "no space left" in record["error"]


def test_sigterm_cuts_requests_in_flight_in_worker_threads(tmp_path: Path) -> None:
    with FakeServer() as srv:
        srv.route("GET", "/data/projects/P/subjects", Reply(200, SUBJECTS))
        srv.route("GET", "/data/projects/P/experiments", Reply(200, SESSIONS))
        srv.route("GET", "/data/projects/P/resources", Reply(200, {"ResultSet": {"Result": []}}))
        for i in range(60):  # every subject's resources answer after 60 s: workers wait
            srv.route("GET", f"/data/projects/P/subjects/S{i}/resources", Slow(60))
        code, _, took = terminate_at_work(*command(srv, tmp_path, "--sizes", "rest"), after=2)
        assert code == 143
        assert took < 5, "docker stop waits 10 s before SIGKILL"
