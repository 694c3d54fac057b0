"""Listings under hostile conditions: links in the mount (issue 8 item 2), items that cannot be
read (item 7), impossible numbers and repeated rows (item 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_http import FakeServer, Reply
from test_listings import PROJECT, FakeXnat, fake_project, make_archive
from xnatnode.cli import main
from xnatnode.errors import Unauthorized, XnatError
from xnatnode.listings import (
    GIVE_UP_AFTER,
    ItemFailures,
    Session,
    Subject,
    list_subject_resources,
    mounted_sessions,
    parse_count,
    parse_int,
    read_archive,
    read_project,
)

SESSIONS = [Session("E1", "subj001_mr", "S1", "xnat:mrSessionData")]


# -- item 2: links in the mount are not followed ------------------------------------------------


def test_links_out_of_the_mount_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    for i in range(50):
        (outside / "deep" / f"f{i}").write_bytes(b"x" * 1000)
    root = make_archive(tmp_path / "mount")
    dicom = root / "arc001" / "subj001_mr" / "SCANS" / "1" / "DICOM"
    (dicom / "to_outside").symlink_to(outside)
    (dicom / "file_link").symlink_to(outside / "deep" / "f0")
    (root / "arc001" / "subj001_mr" / "RESOURCES" / "OPT").symlink_to(outside)
    links: list[str] = []
    found = read_archive(mounted_sessions(str(root), PROJECT, SESSIONS), links=links)
    dicom_row = next(r for r in found if r.level == "scan" and r.scan_id == "1")
    assert (dicom_row.file_count, dicom_row.file_size) == (2, 150), "as without the links"
    assert not any(r.label == "OPT" for r in found)
    assert sorted(Path(p).name for p in links) == ["OPT", "file_link", "to_outside"]
    assert "symbolic link" in caplog.text
    assert "not followed" in caplog.text


def test_a_session_folder_that_is_a_link_is_not_read(tmp_path: Path) -> None:
    elsewhere = make_archive(tmp_path / "elsewhere") / "arc001" / "subj001_mr"
    root = tmp_path / "mount" / "arc001"
    root.mkdir(parents=True)
    (root / "subj001_mr").symlink_to(elsewhere)
    links: list[str] = []
    assert mounted_sessions(str(root), PROJECT, SESSIONS, links) == {}
    assert links == [str(root / "subj001_mr")]


# -- item 8: impossible numbers and repeated rows -----------------------------------------------


@pytest.mark.parametrize("text", ["-5", "1e400", "NaN", "inf", "1.5", "9" * 30, "-0.0e1x"])
def test_impossible_counts_are_unknown(text: str) -> None:
    assert parse_count(text) is None


def test_possible_counts_and_int_parsing() -> None:
    assert parse_count("0") == 0
    assert parse_count("1.0E3") == 1000
    assert parse_int("1e400") is None


def test_impossible_statistics_are_recounted_and_repeated_rows_counted_once() -> None:
    xnat = fake_project()
    xnat.tables[f"/data/projects/{PROJECT}/resources"] = [
        {"xnat_abstractresource_id": "10", "label": "DOCS", "file_count": "2", "file_size": "-300"},
        {"xnat_abstractresource_id": "10", "label": "DOCS", "file_count": "2", "file_size": "-300"},
        {"xnat_abstractresource_id": "15", "label": "BIG", "file_count": "1", "file_size": "1e400"},
    ]
    xnat.tables[f"/data/projects/{PROJECT}/resources/10/files"] = [
        {"Name": "a", "Size": "100", "URI": "/a"}, {"Name": "a", "Size": "100", "URI": "/a"},
        {"Name": "b", "Size": "200", "URI": "/b"},
    ]
    xnat.tables[f"/data/projects/{PROJECT}/resources/15/files"] = [
        {"Name": "c", "Size": "NaN", "URI": "/c"},
    ]
    data = read_project(xnat, PROJECT, sizes="rest")
    project_level = {r.label: r for r in data.resources if r.level == "project"}
    assert set(project_level) == {"DOCS", "BIG"}
    assert (project_level["DOCS"].file_count, project_level["DOCS"].file_size) == (2, 300)
    assert (project_level["BIG"].file_count, project_level["BIG"].file_size) == (1, None)
    assert all((r.file_size or 0) >= 0 for r in data.resources)


# -- item 7: one item that cannot be read does not sink the rest --------------------------------


class Broken(FakeXnat):
    def __init__(self, broken: set[str], error: XnatError) -> None:
        super().__init__(fake_project().tables)
        self.broken = broken
        self.error = error

    def get_table(self, path: str, params: object = None) -> list[dict[str, str]]:
        if path in self.broken:
            raise self.error
        return super().get_table(path, params)  # type: ignore[arg-type]


def test_an_item_that_fails_after_retries_is_missing_and_the_rest_is_read() -> None:
    xnat = Broken({"/data/experiments/E1/resources"},
                  XnatError("XNAT answered 500 Server Error", status=500))
    data = read_project(xnat, PROJECT, sizes="rest")
    assert data.missing == ["session subj001_mr: XNAT answered 500 Server Error"]
    assert not data.complete
    assert {r.owner_id for r in data.resources} >= {PROJECT, "S2"}, "the rest was read"


def test_refused_credentials_still_end_the_read() -> None:
    xnat = Broken({"/data/experiments/E1/resources"}, Unauthorized("401", status=401))
    with pytest.raises(Unauthorized):
        read_project(xnat, PROJECT, sizes="rest")


def test_many_failures_in_a_row_end_the_read() -> None:
    subjects = [Subject(f"S{i}", f"s{i}") for i in range(GIVE_UP_AFTER + 5)]
    xnat = Broken({f"/data/projects/{PROJECT}/subjects/S{i}/resources" for i in range(40)},
                  XnatError("500", status=500))
    missing: list[str] = []
    with pytest.raises(XnatError):
        list_subject_resources(xnat, PROJECT, subjects, workers=1,
                               failures=ItemFailures([], missing))
    assert len(missing) == GIVE_UP_AFTER - 1


def test_project_summary_exits_6_partial_with_the_gap_in_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = fake_project().tables
    monkeypatch.setenv("XNAT_USER", "someone")
    monkeypatch.setenv("XNAT_PASS", "a-long-password")
    with FakeServer() as srv:
        for path, rows in tables.items():
            if not path.endswith("#scans"):
                srv.route("GET", path, Reply(200, {"ResultSet": {"Result": rows}}))
        srv.route("GET", "/data/experiments/E1/resources", Reply(500, "boom"))
        code = main(["project-summary", "--project", PROJECT, "--sizes", "rest", "--retries", "1",
                     "--xnat-host", srv.url, "--output", str(tmp_path), "--input",
                     str(tmp_path / "none")])
    assert code == 6
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["source"]["complete"] is False
    assert summary["gaps"]["unread"]["count"] == 1
    assert "subj001_mr" in summary["gaps"]["unread"]["items"][0]
    assert "Could not be read from XNAT" in (tmp_path / "summary.html").read_text()
    record = json.loads((tmp_path / "xnatnode-run.json").read_text())
    assert record["status"] == "partial"
