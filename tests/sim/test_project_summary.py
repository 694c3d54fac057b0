"""project-summary against xnatsim: every count and size equals the truth, within the request bound.

Truth comes from the xnatsim seeder's manifest (demo and synthetic projects) and from a small
project built here through plain REST PUTs with odd labels, an undated session, a scan without
files, and resources at every level.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from xnatnode.cli import main
from xnatnode.client import connect
from xnatnode.listings import mounted_sessions, read_project
from xnatnode.summary import summarise
from xnatsim.testing import Server, running_server

from tests.xnat_env import point_xnatnode_at
from xnatsim import seed as seeder

KEYS = ("subjects", "sessions", "scans", "resources", "files", "bytes")
ODD = "PSODD"

#: (subject, session, xsiType, date, {scan id: (type, {resource: {file: size}})}, {session resource: {file: size}})
ODD_SESSIONS: list[tuple[str, str, str, str, dict[str, Any], dict[str, dict[str, int]]]] = [
    ("s-01", "s-01_baseline_mr", "xnat:mrSessionData", "2022-12-31",
     {"1": ("T1w", {"DICOM": {"a.dcm": 100, "sub/b.dcm": 50}}), "2": ("T2w", {})}, {}),
    ("s-01", "odd label.v2", "xnat:mrSessionData", "", {}, {"NOTES": {"n.txt": 7}}),
    ("S.02", "S.02_fu_pet", "xnat:petSessionData", "2023-01-05",
     {"1": ("PET", {"DICOM": {"p1.dcm": 10, "p2.dcm": 11, "p3.dcm": 12}, "NIFTI": {"p.nii.gz": 300}})}, {}),
    ("S.02", "S.02_ct", "xnat:ctSessionData", "2023-01-06", {}, {}),
]
ODD_SUBJECTS = ("s-01", "S.02", "lonely")
ODD_SUBJECT_RESOURCES = {"s-01": {"CONSENT": {"c.pdf": 1234}}}
ODD_PROJECT_RESOURCES = {"DOCS": {"x.txt": 5, "y.txt": 6}}


def _odd_truth() -> dict[str, int]:
    res = [*list(ODD_SUBJECT_RESOURCES.values()), ODD_PROJECT_RESOURCES]
    for *_, scans, sres in ODD_SESSIONS:
        res.append(sres)
        res += [r for _, r in scans.values()]
    resources = [files for group in res for files in group.values()]
    return {
        "subjects": len(ODD_SUBJECTS),
        "sessions": len(ODD_SESSIONS),
        "scans": sum(len(s[4]) for s in ODD_SESSIONS),
        "resources": len(resources),
        "files": sum(len(f) for f in resources),
        "bytes": sum(sum(f.values()) for f in resources),
    }


def _build_odd(server: Server) -> None:
    http = server.session()

    def put(path: str, **params: str) -> None:
        r = http.put(server.url + path, params=params, timeout=30)
        assert r.status_code in (200, 201), (path, r.status_code, r.text[:200])

    def upload(path: str, size: int) -> None:
        r = http.put(server.url + path, data=b"x" * size, timeout=30,
                     headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, (path, r.status_code, r.text[:200])

    p = f"/data/projects/{ODD}"
    put(p, **{"xsiType": "xnat:projectData", "xnat:projectData/name": ODD})
    for subject in ODD_SUBJECTS:
        put(f"{p}/subjects/{subject}")
    for label, files in ODD_PROJECT_RESOURCES.items():
        for name, size in files.items():
            upload(f"{p}/resources/{label}/files/{name}", size)
    for subject, groups in ODD_SUBJECT_RESOURCES.items():
        for label, files in groups.items():
            for name, size in files.items():
                upload(f"{p}/subjects/{subject}/resources/{label}/files/{name}", size)
    for subject, session, xsi, date, scans, sres in ODD_SESSIONS:
        e = f"{p}/subjects/{subject}/experiments/{session}"
        put(e, xsiType=xsi, **({"date": date} if date else {}))
        for scan_id, (scan_type, groups) in scans.items():
            put(f"{e}/scans/{scan_id}", xsiType=xsi.replace("Session", "Scan"), type=scan_type,
                series_description=f"{scan_type} series")
            for label, files in groups.items():
                for name, size in files.items():
                    upload(f"{e}/scans/{scan_id}/resources/{label}/files/{name}", size)
        for label, files in sres.items():
            for name, size in files.items():
                upload(f"{e}/resources/{label}/files/{name}", size)
    put("/data/projects/PSEMPTY", **{"xsiType": "xnat:projectData", "xnat:projectData/name": "PSEMPTY"})


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A private xnatsim (its request counter is ours alone) with DEMO, PSSYN, PSODD and PSEMPTY."""
    with running_server(tmp_path_factory.mktemp("ps-sim")) as server:
        manifests = {
            "DEMO": seeder.apply(server.store, "demo")["projects"]["DEMO"],
            "PSSYN": seeder.apply(server.store, {
                "project_prefix": "PSSYN", "subjects": 5, "sessions_per_subject": 2,
                "scans_per_session": 3, "files_per_scan": 2, "files": "tiny", "tiny_size": 33,
                "modalities": ["MR", "PT", "CT"],
            })["projects"]["PSSYN"],
        }
        _build_odd(server)
        manifests[ODD] = _odd_truth()
        yield server, manifests


@pytest.fixture
def env(sim: tuple[Server, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Server:
    server = sim[0]
    return point_xnatnode_at(server, monkeypatch)


def _rest_bound(subjects: int, sessions: int, image_sessions_with_scans: int, blank_stats: int = 0) -> int:
    """The documented request bound of --sizes rest (see xnatnode.listings)."""
    return 3 + 1 + subjects + sessions + image_sessions_with_scans + blank_stats


@pytest.mark.parametrize("project", ["DEMO", "PSSYN", ODD])
@pytest.mark.parametrize("sizes", ["rest", "mount"])
def test_library_counts_equal_truth(sim: tuple[Server, dict[str, Any]], project: str, sizes: str) -> None:
    server, truth = sim
    server.reset_stats()
    with connect(server.url, server.user, server.password) as conn:
        data = read_project(conn, project, sizes=sizes,  # type: ignore[arg-type]
                            input_dir=str(server.store.archive_dir / project / "arc001"))
        count = conn.request_count
    assert data.sizes == sizes
    totals = summarise(data).summary["totals"]
    assert {k: totals[k] for k in KEYS} == {k: truth[project][k] for k in KEYS}
    served = int(server.stats()["requests"])
    assert served == count
    with_scans = len({s.session_id for s in data.scans})
    bound = _rest_bound(len(data.subjects), len(data.sessions), with_scans)
    if sizes == "mount":
        # REST only for the sessions whose folder is not on the mount (1-2 requests each).
        on_disk = mounted_sessions(str(server.store.archive_dir / project / "arc001"), project,
                                   data.sessions)
        assert on_disk, "the mount must hold sessions for this test to mean anything"
        bound = 3 + 1 + len(data.subjects) + 2 * (len(data.sessions) - len(on_disk))
    assert served <= bound


def test_odd_project_details(sim: tuple[Server, dict[str, Any]]) -> None:
    server, _ = sim
    with connect(server.url, server.user, server.password) as conn:
        report = summarise(read_project(conn, ODD, sizes="rest"))
    s = report.summary
    assert s["sessions"]["by_data_type"] == {"MR": 2, "PET": 1, "CT": 1, "other": 0}
    assert s["sessions"]["undated"] == 1
    assert s["sessions"]["oldest"]["date"] == "2022-12-31"
    assert s["sessions"]["newest"]["session"] == "S.02_ct"
    assert s["sessions"]["by_month"] == {"2022-12": 1, "2023-01": 2}
    assert s["sessions"]["by_visit"]["baseline"] == 1
    assert s["gaps"]["subjects_without_sessions"]["items"] == ["lonely"]
    assert sorted(s["gaps"]["sessions_without_scans"]["items"]) == ["S.02_ct", "odd label.v2"]
    assert s["gaps"]["scans_without_files"]["items"] == [
        {"session": "s-01_baseline_mr", "scan": "2", "type": "T2w"}
    ]
    assert s["volume"]["by_level"]["subject"] == {"resources": 1, "files": 1, "bytes": 1234}
    assert s["volume"]["project_resources"] == [{"label": "DOCS", "files": 2, "bytes": 11}]
    assert s["volume"]["by_resource_label"]["DICOM"] == {"resources": 2, "files": 5, "bytes": 183}
    assert s["volume"]["largest_sessions"][0]["label"] == "S.02_fu_pet"


def test_cli_writes_the_report(env: Server, sim: tuple[Server, dict[str, Any]], tmp_path: Path) -> None:
    truth = sim[1]["DEMO"]
    code = main(["project-summary", "--project", "DEMO", "--output", str(tmp_path),
                 "--input", str(tmp_path / "no-mount")])
    assert code == 0
    doc = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert {k: doc["totals"][k] for k in KEYS} == {k: truth[k] for k in KEYS}
    assert doc["source"]["sizes"] == "rest"
    for name in ("summary.html", "subjects.csv", "sessions.csv", "scans.csv", "resources.csv",
                 "xnatnode-run.json"):
        assert (tmp_path / name).stat().st_size > 0
    lines = (tmp_path / "sessions.csv").read_text("utf-8").splitlines()
    assert len(lines) == 1 + truth["sessions"]
    record = json.loads((tmp_path / "xnatnode-run.json").read_text("utf-8"))
    assert record["status"] == "ok"
    assert env.password not in (tmp_path / "xnatnode-run.json").read_text("utf-8")
    assert env.password not in (tmp_path / "summary.html").read_text("utf-8")


def test_cli_mount_mode(env: Server, sim: tuple[Server, dict[str, Any]], tmp_path: Path) -> None:
    arc = env.store.archive_dir / "PSSYN" / "arc001"
    code = main(["project-summary", "--project", "PSSYN", "--output", str(tmp_path), "--input", str(arc)])
    assert code == 0
    doc = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert doc["source"]["sizes"] == "mount"
    assert {k: doc["totals"][k] for k in KEYS} == {k: sim[1]["PSSYN"][k] for k in KEYS}


def test_sizes_none_and_empty_project(env: Server, tmp_path: Path) -> None:
    assert main(["project-summary", "--project", ODD, "--sizes", "none", "--output", str(tmp_path / "a")]) == 0
    doc = json.loads((tmp_path / "a" / "summary.json").read_text("utf-8"))
    assert doc["totals"]["sessions"] == 4
    assert doc["totals"]["files"] is None
    assert main(["project-summary", "--project", "PSEMPTY", "--output", str(tmp_path / "b")]) == 0
    doc = json.loads((tmp_path / "b" / "summary.json").read_text("utf-8"))
    assert doc["totals"] == dict.fromkeys(KEYS, 0)


def test_unknown_project_exits_not_found(env: Server, tmp_path: Path) -> None:
    assert main(["project-summary", "--project", "NOSUCH", "--output", str(tmp_path)]) == 5
    record = json.loads((tmp_path / "xnatnode-run.json").read_text("utf-8"))
    assert "NOSUCH" in record["error"]
    assert not (tmp_path / "summary.json").exists()


def test_bad_credentials_exit_auth(env: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNAT_PASS", "wrong-password")
    assert main(["project-summary", "--project", "DEMO", "--output", str(tmp_path)]) == 4


def test_no_access_exits_auth_or_not_found(env: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user with no role on a private project: XNAT answers 403 (AUTH) or hides it (404)."""
    if not env.store.user_exists("outsider"):
        env.store.add_user("outsider", "outsider-pw")
    monkeypatch.setenv("XNAT_USER", "outsider")
    monkeypatch.setenv("XNAT_PASS", "outsider-pw")
    code = main(["project-summary", "--project", "DEMO", "--output", str(tmp_path)])
    assert code in (4, 5)
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize("fault", [{"fail_every": 7}, {"drop_every": 9}], ids=["503", "dropped"])
def test_survives_transient_faults(sim: tuple[Server, dict[str, Any]], fault: dict[str, int]) -> None:
    """Every 7th request answered 503 / every 9th connection dropped: retried, totals still exact."""
    server, truth = sim
    server.set_faults(**fault)
    try:
        with connect(server.url, server.user, server.password, retries=3, backoff=0.01) as conn:
            data = read_project(conn, "PSSYN", sizes="rest", workers=4)
    finally:
        server.set_faults(fail_every=0, drop_every=0)
    totals = summarise(data).summary["totals"]
    assert {k: totals[k] for k in KEYS} == {k: truth["PSSYN"][k] for k in KEYS}
