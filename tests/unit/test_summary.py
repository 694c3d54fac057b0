"""Aggregation of in-memory records into the project-summary report (no server)."""

from __future__ import annotations

import datetime as dt

from summary_fixtures import small_project
from xnatnode.labels import NO_VISIT
from xnatnode.listings import ProjectData, Resource
from xnatnode.summary import SCHEMA_VERSION, data_type, summarise

NOW = dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)


def test_data_type() -> None:
    assert data_type("xnat:mrSessionData") == "MR"
    assert data_type("XNAT:PETSESSIONDATA") == "PET"
    assert data_type("xnat:ctSessionData") == "CT"
    assert data_type("xnat:subjectVariablesData") == "other"
    assert data_type("") == "other"


def test_totals_and_counts() -> None:
    report = summarise(small_project(), generated=NOW, source={"requests": 7})
    s = report.summary
    assert s["schema_version"] == SCHEMA_VERSION
    assert s["project"] == "PRJ"
    assert s["generated"] == "2026-11-24T07:00:00Z"
    assert s["source"] == {"sizes": "rest", "complete": True, "requests": 7}
    assert s["totals"] == {
        "subjects": 3,
        "sessions": 5,
        "scans": 6,
        "resources": 9,
        "files": 169,
        "bytes": 3_904_060,
    }
    for key in ("subjects", "sessions", "scans", "resources", "files", "bytes"):
        assert type(s["totals"][key]) is int
    assert s["sessions"]["by_data_type"] == {"MR": 2, "PET": 1, "CT": 1, "other": 1}
    assert s["sessions"]["by_visit"] == {"baseline": 2, NO_VISIT: 1, "followup": 1, "notes": 1}
    assert s["scans"]["by_type"] == {"T1w": 3, "PET": 1, "T2w": 1, "dwi": 1}
    assert s["scans"]["by_series_description"]["MPRAGE"] == 2
    assert s["scans"]["by_series_description"]["(blank)"] == 1


def test_time() -> None:
    s = summarise(small_project(), generated=NOW).summary["sessions"]
    assert s["undated"] == 2
    assert s["oldest"] == {"date": "2023-01-15", "session": "subj001_baseline_mr", "subject": "subj001"}
    assert s["newest"]["date"] == "2024-02-29"
    months = s["by_month"]
    assert next(iter(months)) == "2023-01"
    assert list(months)[-1] == "2024-02"
    assert len(months) == 14  # gaps filled with zero
    assert months["2023-01"] == 1
    assert months["2023-02"] == 0
    assert months["2024-02"] == 1
    assert sum(months.values()) + s["undated"] == 5
    assert s["first_added"] == {"date": "2023-01-16", "session": "subj001_baseline_mr"}
    assert s["last_added"] == {"date": "2024-03-01", "session": "weird label!"}


def test_subjects_by_session_count() -> None:
    s = summarise(small_project(), generated=NOW).summary
    assert s["subjects"]["by_session_count"] == {"0": 1, "2": 1, "3": 1}


def test_volume() -> None:
    report = summarise(small_project(), generated=NOW)
    v = report.summary["volume"]
    assert v["by_level"]["project"] == {"resources": 1, "files": 2, "bytes": 1000}
    assert v["by_level"]["subject"] == {"resources": 1, "files": 1, "bytes": 50}
    assert v["by_level"]["session"] == {"resources": 1, "files": 1, "bytes": 10}
    assert v["by_level"]["scan"] == {"resources": 6, "files": 165, "bytes": 3_903_000}
    assert v["by_resource_label"]["DICOM"] == {"resources": 5, "files": 163, "bytes": 3_403_000}
    assert next(iter(v["by_resource_label"])) == "DICOM"  # largest first
    assert v["by_data_type"]["MR"] == {"resources": 6, "files": 156, "bytes": 1_903_010}
    assert v["by_data_type"]["PET"]["bytes"] == 2_000_000
    assert v["by_data_type"]["CT"] == {"resources": 0, "files": 0, "bytes": 0}
    assert v["project_resources"] == [{"label": "PROTOCOLS", "files": 2, "bytes": 1000}]
    assert v["largest_sessions"][0]["label"] == "subj001_followup_pet"
    assert v["largest_subjects"][0] == {"label": "subj001", "files": 164, "bytes": 3_900_060}

    sessions = {r.id: r for r in report.sessions}
    assert (sessions["E1"].scans, sessions["E1"].resources, sessions["E1"].files) == (3, 5, 153)
    assert sessions["E3"].files == 0
    assert sessions["E3"].date == ""
    subjects = {r.id: r for r in report.subjects}
    assert (subjects["S2"].sessions, subjects["S2"].scans, subjects["S2"].bytes) == (3, 2, 3000)
    assert subjects["S3"].sessions == 0
    scans = {(r.session_id, r.id): r for r in report.scans}
    assert scans[("E1", "1")].files == 102
    assert scans[("E1", "1")].resources == 2
    assert len(report.resources) == 9


def test_gaps() -> None:
    g = summarise(small_project(), generated=NOW).summary["gaps"]
    assert g["subjects_without_sessions"] == {"count": 1, "items": ["subj003"]}
    assert g["sessions_without_scans"]["items"] == ["subj002_baseline_ct", "subj002_notes"]
    assert g["scans_without_files"]["items"] == [
        {"session": "subj001_baseline_mr", "scan": "3", "type": "dwi"},
        {"session": "weird label!", "scan": "10", "type": "T1w"},
    ]
    assert g["resources_without_statistics"] == 0


def test_missing_statistics_make_totals_unknown_not_wrong() -> None:
    data = small_project()
    data.resources.append(Resource("session", "RAW", "E3", "", None, None))
    s = summarise(data, generated=NOW).summary
    assert s["totals"]["resources"] == 10
    assert s["totals"]["files"] is None
    assert s["totals"]["bytes"] is None
    assert s["gaps"]["resources_without_statistics"] == 1


def test_sizes_none() -> None:
    data = small_project(sizes="none")
    data.resources = []
    s = summarise(data, generated=NOW).summary
    assert s["totals"]["sessions"] == 5
    assert s["totals"]["files"] is None
    assert s["volume"]["by_level"] is None
    assert s["gaps"]["scans_without_files"] is None


def test_empty_project() -> None:
    s = summarise(ProjectData(project="EMPTY", sizes="rest"), generated=NOW).summary
    assert s["totals"] == dict.fromkeys(("subjects", "sessions", "scans", "resources", "files", "bytes"), 0)
    assert s["sessions"]["by_month"] == {}
    assert s["sessions"]["oldest"] is None
    assert s["volume"]["largest_sessions"] == []


def test_skipped_objects_are_reported() -> None:
    data = small_project()
    data.skipped = ["session gone_mr"]
    s = summarise(data, generated=NOW).summary
    assert s["source"]["complete"] is False
    assert s["gaps"]["skipped"] == {"count": 1, "items": ["session gone_mr"]}
