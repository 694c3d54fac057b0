"""Bulk listings into typed records, against a fake table reader and a fake archive on disk."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import pytest
from xnatnode.errors import NotFound
from xnatnode.listings import (
    Resource,
    Session,
    complete_statistics,
    list_scans,
    list_sessions,
    list_subjects,
    mounted_sessions,
    parse_date,
    parse_int,
    read_archive,
    read_project,
)

PROJECT = "PRJ"


class FakeXnat:
    """Answers get_table from a dict of path → rows and records every call."""

    def __init__(self, tables: Mapping[str, list[dict[str, str]]]) -> None:
        self.tables = dict(tables)
        self.calls: list[tuple[str, dict[str, str]]] = []

    def get_table(self, path: str, params: Mapping[str, str] | None = None) -> list[dict[str, str]]:
        self.calls.append((path, dict(params or {})))
        key = path
        if params and "xsiType" in params:
            key += "#scans"
        if key not in self.tables:
            raise NotFound(f"404 for {path}", status=404, method="GET", url=path)
        return self.tables[key]


def fake_project() -> FakeXnat:
    p = f"/data/projects/{PROJECT}"
    return FakeXnat(
        {
            f"{p}/subjects": [
                {"ID": "S1", "label": "subj001", "group": "control", "URI": "/data/subjects/S1"},
                {"ID": "S2", "label": "subj002", "group": "", "URI": "/data/subjects/S2"},
            ],
            f"{p}/experiments": [
                {"ID": "E1", "label": "subj001_mr", "xsiType": "xnat:mrSessionData",
                 "date": "2024-05-01", "subject_ID": "S1"},
                {"ID": "E2", "label": "subj002_pet", "xsiType": "xnat:petSessionData",
                 "date": "", "subject_ID": "S2"},
            ],
            f"{p}/experiments#scans": [
                {"ID": "E1", "label": "subj001_mr", "xnat:imagescandata/id": "2",
                 "xnat:imagescandata/type": "T2w", "xnat:imagescandata/series_description": "T2",
                 "xnat:imagescandata/quality": "usable"},
                {"ID": "E1", "label": "subj001_mr", "xnat:imagescandata/id": "1",
                 "xnat:imagescandata/type": "T1w", "xnat:imagescandata/series_description": "MPRAGE",
                 "xnat:imagescandata/quality": "usable"},
                {"ID": "E1", "label": "subj001_mr", "xnat:imagescandata/id": "1",
                 "xnat:imagescandata/type": "T1w", "xnat:imagescandata/series_description": "MPRAGE",
                 "xnat:imagescandata/quality": "usable"},  # duplicate row (a join artefact)
                {"ID": "E2", "label": "subj002_pet", "xnat:imagescandata/id": "",
                 "xnat:imagescandata/type": ""},  # session without scans
            ],
            f"{p}/resources": [
                {"xnat_abstractresource_id": "10", "label": "DOCS", "file_count": "2",
                 "file_size": "300", "cat_id": "", "category": "resources"},
            ],
            f"{p}/subjects/S1/resources": [],
            f"{p}/subjects/S2/resources": [
                {"xnat_abstractresource_id": "11", "label": "CONSENT", "file_count": "",
                 "file_size": ""},  # statistics never computed
            ],
            f"{p}/subjects/S2/resources/11/files": [
                {"Name": "a.pdf", "Size": "40"}, {"Name": "b.pdf", "Size": "2"},
            ],
            "/data/experiments/E1/resources": [
                {"xnat_abstractresource_id": "12", "label": "NOTES", "file_count": "1",
                 "file_size": "5"},
            ],
            "/data/experiments/E1/scans/ALL/resources": [
                {"xnat_abstractresource_id": "13", "label": "DICOM", "file_count": "20",
                 "file_size": "2000", "category": "scans", "cat_id": "1", "cat_desc": "T1w"},
                {"xnat_abstractresource_id": "14", "label": "DICOM", "file_count": "30",
                 "file_size": "3000", "category": "scans", "cat_id": "2", "cat_desc": "T2w"},
            ],
            "/data/experiments/E2/resources": [],
        }
    )


def test_parse_values() -> None:
    assert parse_int("12") == 12
    assert parse_int(" ") is None
    assert parse_int("x") is None
    assert parse_int("1.0E3") == 1000
    assert parse_date("2024-05-01") == dt.date(2024, 5, 1)
    assert parse_date("2024-05-01 10:00:00.0") == dt.date(2024, 5, 1)
    assert parse_date("05/01/2024") == dt.date(2024, 5, 1)
    assert parse_date("20240501") == dt.date(2024, 5, 1)
    assert parse_date("") is None
    assert parse_date("soon") is None


def test_metadata_listings_use_bulk_columns() -> None:
    xnat = fake_project()
    subjects = list_subjects(xnat, PROJECT)
    sessions = list_sessions(xnat, PROJECT)
    scans = list_scans(xnat, PROJECT)
    assert [s.label for s in subjects] == ["subj001", "subj002"]
    assert sessions[0] == Session("E1", "subj001_mr", "S1", "xnat:mrSessionData", dt.date(2024, 5, 1))
    assert sessions[1].date is None
    assert [(s.session_id, s.id, s.type) for s in scans] == [("E1", "1", "T1w"), ("E1", "2", "T2w")]
    assert len(xnat.calls) == 3
    scan_call = xnat.calls[2][1]
    assert scan_call["xsiType"] == "xnat:imageSessionData"
    assert "xnat:imagescandata/id" in scan_call["columns"].split(",")
    assert all(params.get("limit") == "*" for _, params in xnat.calls)


def test_read_project_rest_counts_requests_and_fills_missing_statistics() -> None:
    xnat = fake_project()
    data = read_project(xnat, PROJECT, sizes="rest", workers=2)
    assert data.sizes == "rest"
    # 3 metadata + 1 project + 2 subjects + 2 sessions + 1 scans/ALL (E1 only) + 1 missing stats
    assert len(xnat.calls) == 10
    by_label = {(r.level, r.label, r.scan_id): r for r in data.resources}
    assert by_label[("subject", "CONSENT", "")].file_count == 2
    assert by_label[("subject", "CONSENT", "")].file_size == 42
    assert by_label[("scan", "DICOM", "2")].file_size == 3000
    assert by_label[("project", "DOCS", "")].owner_id == PROJECT
    assert len(data.resources) == 5


def test_read_project_sizes_none_reads_metadata_only() -> None:
    xnat = fake_project()
    data = read_project(xnat, PROJECT, sizes="none")
    assert len(xnat.calls) == 3
    assert data.resources == []
    assert data.sizes == "none"


def test_unknown_project_is_not_found() -> None:
    with pytest.raises(NotFound, match="project NOPE not found"):
        read_project(fake_project(), "NOPE")


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def make_archive(root: Path) -> Path:
    """XNAT layout: <root>/arc001/<SESSION>/SCANS/<scan>/<RES>/… with catalog files."""
    arc = root / "arc001"
    s = arc / "subj001_mr"
    _write(s / "SCANS" / "1" / "DICOM" / "a.dcm", 100)
    _write(s / "SCANS" / "1" / "DICOM" / "sub" / "b.dcm", 50)
    _write(s / "SCANS" / "1" / "DICOM" / "DICOM_catalog.xml", 999)  # not data
    _write(s / "SCANS" / "2" / "NIFTI" / "x.nii.gz", 7)
    (s / "SCANS" / "3" / "DICOM").mkdir(parents=True)  # empty resource
    _write(s / "RESOURCES" / "NOTES" / "n.txt", 3)
    _write(s / "ASSESSORS" / "QC" / "OUT" / "q.txt", 1)  # not read
    return root


def test_read_archive(tmp_path: Path) -> None:
    root = make_archive(tmp_path)
    sessions = [
        Session("E1", "subj001_mr", "S1", "xnat:mrSessionData"),
        Session("E2", "subj002_pet", "S2", "xnat:petSessionData"),
    ]
    dirs = mounted_sessions(str(root), PROJECT, sessions)
    assert set(dirs) == {"E1"}
    found = sorted(read_archive(dirs), key=lambda r: (r.level, r.scan_id, r.label))
    assert found == [
        Resource("scan", "DICOM", "E1", "1", 2, 150),
        Resource("scan", "NIFTI", "E1", "2", 1, 7),
        Resource("scan", "DICOM", "E1", "3", 0, 0),
        Resource("session", "NOTES", "E1", "", 1, 3),
    ]
    # the mount may also be the arc folder itself
    assert set(mounted_sessions(str(root / "arc001"), PROJECT, sessions)) == {"E1"}


def test_read_project_mount_reads_missing_sessions_over_rest(tmp_path: Path) -> None:
    xnat = fake_project()
    data = read_project(xnat, PROJECT, sizes="auto", input_dir=str(make_archive(tmp_path)))
    assert data.sizes == "mount"
    paths = [c[0] for c in xnat.calls]
    assert "/data/experiments/E1/resources" not in paths  # read from the mount
    assert "/data/experiments/E2/resources" in paths  # not on the mount: REST
    assert {(r.level, r.label, r.scan_id) for r in data.resources if r.owner_id == "E1"} == {
        ("scan", "DICOM", "1"), ("scan", "NIFTI", "2"), ("scan", "DICOM", "3"),
        ("session", "NOTES", ""),
    }


def _refuse_scandir(monkeypatch: pytest.MonkeyPatch, refused: Path) -> None:
    """os.scandir as a non-owner sees a folder with mode 0700 (root ignores modes)."""
    import os

    real = os.scandir

    def scandir(path: str) -> object:
        if Path(path) == refused:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


@pytest.mark.parametrize("where", ["SCANS/1/DICOM", "SCANS", "RESOURCES"])
def test_unreadable_folder_on_the_mount_is_read_over_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    # A partial count would be silently wrong: the whole session is read over REST instead.
    archive = make_archive(tmp_path)
    _refuse_scandir(monkeypatch, archive / "arc001" / "subj001_mr" / where)
    xnat = fake_project()
    data = read_project(xnat, PROJECT, sizes="auto", input_dir=str(archive))
    assert data.sizes == "mount"
    paths = [c[0] for c in xnat.calls]
    assert "/data/experiments/E1/resources" in paths
    from_rest = read_project(fake_project(), PROJECT, sizes="rest")
    e1 = sorted((r for r in data.resources if r.owner_id == "E1"), key=repr)
    assert e1 == sorted((r for r in from_rest.resources if r.owner_id == "E1"), key=repr)
    assert "Permission denied" in caplog.text
    assert "1 of 1 sessions on the mount were not readable" in caplog.text


def test_read_archive_without_a_list_raises_on_unreadable_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_archive(tmp_path)
    _refuse_scandir(monkeypatch, archive / "arc001" / "subj001_mr" / "SCANS")
    with pytest.raises(PermissionError):
        read_archive({"E1": str(archive / "arc001" / "subj001_mr")})


def test_auto_without_mount_uses_rest(tmp_path: Path) -> None:
    data = read_project(fake_project(), PROJECT, sizes="auto", input_dir=str(tmp_path))
    assert data.sizes == "rest"


def test_mount_mode_requires_the_archive(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no session folder"):
        read_project(fake_project(), PROJECT, sizes="mount", input_dir=str(tmp_path))


def test_complete_statistics_keeps_known_ones() -> None:
    xnat = fake_project()
    res = [Resource("project", "DOCS", PROJECT, "", 1, 2)]
    assert complete_statistics(xnat, PROJECT, res) == res
    assert xnat.calls == []


def test_scan_set_refused_falls_back_to_per_scan_listings(caplog: pytest.LogCaptureFixture) -> None:
    xnat = fake_project()
    del xnat.tables["/data/experiments/E1/scans/ALL/resources"]
    xnat.tables["/data/experiments/E1/scans/1/resources"] = [
        {"xnat_abstractresource_id": "13", "label": "DICOM", "file_count": "20", "file_size": "2000"}]
    xnat.tables["/data/experiments/E1/scans/2/resources"] = []
    data = read_project(xnat, PROJECT, sizes="rest")
    scan_res = [r for r in data.resources if r.level == "scan"]
    assert [(r.scan_id, r.label, r.file_count) for r in scan_res] == [("1", "DICOM", 20)]
    assert "scan by scan" in caplog.text


def test_objects_deleted_meanwhile_are_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    xnat = fake_project()
    del xnat.tables["/data/experiments/E2/resources"]  # E2 deleted after the sessions listing
    data = read_project(xnat, PROJECT, sizes="rest")
    assert data.skipped == ["session subj002_pet"]
    assert "disappeared" in caplog.text
    assert {r.owner_id for r in data.resources if r.level == "session"} == {"E1"}
