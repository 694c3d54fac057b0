"""label-validation against xnatsim: good and bad labels, DICOM written with pydicom whose headers
agree and disagree, conventions from the config service and from files, a project without one;
through the library and the CLI, with the request budget checked on the server's own counter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from label_data import (
    CONVENTION,
    OTHER_PROJECT_LABEL,
    SESSIONS,
    SUBJECT_EXPECT,
    Series,
    SessionSpec,
    build_project,
)
from xnatnode.cli import main
from xnatnode.client import connect
from xnatnode.labelcheck.checks import run_checks
from xnatnode.labelcheck.convention import load_convention
from xnatnode.labelcheck.source import read_convention_text, read_project, read_session
from xnatnode.reports import page_problems
from xnatsim.testing import Server, running_server

from tests.xnat_env import point_xnatnode_at

P, OTHER, BARE = "LVP", "LVOTHER", "LVBARE"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """A private xnatsim (its request counter is ours alone) with the test projects."""
    with running_server(tmp_path_factory.mktemp("lv-sim")) as server:
        http = server.session()
        ids = build_project(http, server.url, P)
        build_project(http, server.url, OTHER, subjects=("sub001",),
                      sessions=[SessionSpec("sub001", OTHER_PROJECT_LABEL, series=[Series("1", "T1w")])])
        build_project(http, server.url, BARE, convention=None, subjects=("a b",),
                      sessions=[SessionSpec("a b", "weird label!")])
        yield server, ids


@pytest.fixture
def env(sim: tuple[Server, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> Server:
    server = sim[0]
    return point_xnatnode_at(server, monkeypatch)


def _mount(server: Server, project: str) -> Path:
    return server.store.archive_dir / project / "arc001"


def _rules_by_label(doc: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in doc["findings"]:
        label = f["object_label"].split("/")[0] if f["object_type"] == "scan" else f["object_label"]
        out.setdefault(label, set()).add(f["rule"])
    return out


def _expected() -> dict[str, set[str]]:
    expected = {s.label: set(s.expect) for s in SESSIONS if s.expect}
    expected.update(SUBJECT_EXPECT)
    # the two spellings of sub002_m12_mr are near-duplicates of each other
    expected["sub002 m12.mr"].add("near-duplicate")
    expected["sub002_m12_mr"].add("near-duplicate")
    # the good session's label is also used in another project, and the convention asks for site-wide uniqueness
    expected.setdefault(OTHER_PROJECT_LABEL, set()).add("duplicate-site")
    return expected


def test_project_audit_finds_exactly_the_planted_problems(env: Server, tmp_path: Path) -> None:
    env.reset_stats()
    code = main(["label-validation", "--project", P, "--input", str(_mount(env, P)), "--output", str(tmp_path)])
    assert code == 0  # fail-on defaults to never
    doc = json.loads((tmp_path / "findings.json").read_text("utf-8"))
    assert doc["schema_version"] == "1.0"
    assert doc["context"] == "project"
    assert doc["convention"]["source"] == "config"
    assert _rules_by_label(doc) == _expected()
    assert doc["verdict"] == "fail"
    assert doc["checked"]["sessions"] == len(SESSIONS)
    assert doc["headers"]["sources"]["mount"] >= 5
    # a constant number of requests: convention, subjects, experiments, scans, site listing
    assert doc["source"]["requests"] == 5
    assert env.stats()["requests"] == 5
    html = (tmp_path / "findings.html").read_text("utf-8")
    assert page_problems(html) == []
    assert "Labels break the rules" in html
    assert "session-modality: Modality token disagrees with the session type" in html
    assert "rename to &#39;sub001_m12_mr&#39;" in html
    rows = (tmp_path / "findings.csv").read_text("utf-8").splitlines()
    assert rows[0] == "rule,severity,object_type,object_id,object_label,message,suggestion"
    assert len(rows) == 1 + doc["totals"]["findings"]


@pytest.mark.parametrize("spec", [s for s in SESSIONS if " " not in s.label], ids=lambda s: s.label)
def test_session_context_within_five_requests(env: Server, sim: tuple[Server, dict[str, str]],
                                              spec: SessionSpec, tmp_path: Path) -> None:
    session_id = sim[1][spec.label]
    env.reset_stats()
    code = main(["label-validation", "--project", P, "--session", session_id,
                 "--input", str(_mount(env, P) / spec.label), "--output", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "findings.json").read_text("utf-8"))
    assert env.stats()["requests"] <= 5
    assert doc["session"]["label"] == spec.label
    expected = _expected().get(spec.label, set())
    assert _rules_by_label(doc).get(spec.label, set()) == expected
    assert doc["verdict"] == ("pass" if not expected else doc["verdict"])
    if not expected:
        assert "All labels follow the rules" in (tmp_path / "findings.html").read_text("utf-8")
    if spec.series:
        assert doc["session"]["header_source"] == "mount"


def test_session_by_label_and_stored_headers_without_mount(env: Server, tmp_path: Path) -> None:
    code = main(["label-validation", "--project", P, "--session", "sub002_baseline_mr",
                 "--input", str(tmp_path / "nothing"), "--output", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "findings.json").read_text("utf-8"))
    # nothing mounted: the stored fields (none set over REST) and the scans' modality column
    assert doc["session"]["header_source"] == "none"
    assert {f["rule"] for f in doc["findings"]} == {"dicom-modality"}
    assert "scans' modality fields in XNAT" in doc["findings"][0]["message"]


def test_fail_on_exits_6_and_still_writes_the_report(env: Server, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    code = main(["label-validation", "--project", P, "--session", "sub002_m36_mr", "--fail-on", "error",
                 "--input", str(tmp_path / "nothing"), "--output", str(tmp_path)])
    assert code == 6
    doc = json.loads((tmp_path / "findings.json").read_text("utf-8"))
    assert doc["verdict"] == "fail"
    assert "verdict fail: " in caplog.text
    assert "(fail-on error: exit 6)" in caplog.text  # why this verdict fails the job
    # XNAT uploads nothing of a failed job: the findings must be readable in its log
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for finding in doc["findings"]:
        assert any(finding["message"] in line and line.startswith(f"{finding['severity']} {finding['rule']}: ")
                   for line in logged), finding
    record = json.loads((tmp_path / "xnatnode-run.json").read_text("utf-8"))
    assert record["exit_code"] == 6
    assert code == main(["label-validation", "--project", P, "--session", "sub001_baseline_mr",
                         "--fail-on", "warning", "--input", str(tmp_path / "nothing"),
                         "--output", str(tmp_path / "2")])  # a site duplicate is an error too


def test_project_without_convention_gets_xnat_rules_only(env: Server, tmp_path: Path) -> None:
    code = main(["label-validation", "--project", BARE, "--output", str(tmp_path), "--input", str(tmp_path / "x")])
    assert code == 0
    doc = json.loads((tmp_path / "findings.json").read_text("utf-8"))
    assert doc["convention"]["source"] == "none"
    assert any("no naming convention" in n for n in doc["notes"])
    assert {f["rule"] for f in doc["findings"]} == {"xnat-characters"}
    assert sorted(f["suggestion"].split("'")[1] for f in doc["findings"]) == ["a_b", "weird_label_"]


def test_convention_file_overrides_the_config(env: Server, tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"subject": "^[a-z ]+$", "session": "{subject}", "fail-on": "warning"}))
    code = main(["label-validation", "--project", BARE, "--convention", str(path),
                 "--output", str(tmp_path / "out"), "--input", str(tmp_path / "x")])
    doc = json.loads((tmp_path / "out" / "findings.json").read_text("utf-8"))
    assert doc["convention"] == {"source": "file", "location": str(path), "template": "{subject}",
                                 "subject": "^[a-z ]+$"}
    assert {f["rule"] for f in doc["findings"]} == {"session-subject", "xnat-characters"}
    assert code == 6


@pytest.mark.parametrize(("text", "message"), [
    ("subject: [unclosed\n", "line 2, column 1"),
    ("\ufeffsubjet: x\n", "line 1: subjet: unknown key"),
    ("fields:\n\tvisit: [a]\n", "line 2, column 1: a tab character"),
])
def test_bad_convention_in_config_is_a_usage_error(env: Server, text: str, message: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    http = env.session()
    project = f"LVBAD{abs(hash(text)) % 10000}"
    build_project(http, env.url, project, convention=text, sessions=[], subjects=())
    code = main(["label-validation", "--project", project, "--output", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"config xnatnode/labels of project {project}: {message}" in err


def test_library_reads_match_the_cli(sim: tuple[Server, dict[str, str]]) -> None:
    server, ids = sim
    with connect(server.url, server.user, server.password) as conn:
        text = read_convention_text(conn, P)
        assert text == CONVENTION
        convention = load_convention(text, "config", "x")
        project = read_project(conn, P, site=True)
        one = read_session(conn, P, "sub001_m24_mr", site=True)
        assert conn.request_count == 1 + 4 + 4
    assert one.targets == [ids["sub001_m24_mr"]]
    assert [f.rule for f in run_checks(one, convention)] == ["session-subject"]
    assert len(project.sessions) == len(SESSIONS)
    assert project.site_labels is not None
    assert {s.project for s in project.site_labels} == {P, OTHER, BARE}


def test_missing_session_or_project_is_exit_5_naming_it(env: Server, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    assert main(["label-validation", "--project", P, "--session", "nope", "--output", str(tmp_path)]) == 5
    assert f"session nope of project {P} not found (or not visible to this user)" in caplog.text
    assert main(["label-validation", "--project", "NOSUCH", "--output", str(tmp_path)]) == 5
    assert "project NOSUCH not found (or not visible to this user)" in caplog.text
