"""The seeder: manifests tell the truth, headers match labels, runs are deterministic, the CLI is strict."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import pydicom
import pytest
from xnatsim.store import Parent, Store
from xnatsim.testing import running_server

from xnatsim import seed

KEYS = ("subjects", "sessions", "scans", "resources", "files", "bytes")


def _store(tmp_path: Path, name: str = "data") -> Store:
    return Store(tmp_path / name)


def _db_truth(store: Store, project: str) -> dict[str, int]:
    """Counts and bytes of a project read back from the store's tables and the archive folder."""
    q = store.query
    files = q("SELECT r.directory, f.path, f.size FROM files f JOIN resources r ON r.id=f.resource_id "
              "WHERE r.project=?", (project,))
    on_disk = sum((store.archive_dir / d / p).stat().st_size for d, p, _ in files)
    assert on_disk == sum(int(s) for _, _, s in files)
    return {
        "subjects": q("SELECT count(*) FROM subjects WHERE project=?", (project,))[0][0],
        "sessions": q("SELECT count(*) FROM experiments WHERE project=? AND session_id IS NULL", (project,))[0][0],
        "scans": q("SELECT count(*) FROM scans s JOIN experiments e ON e.id=s.experiment_id WHERE e.project=?",
                   (project,))[0][0],
        "resources": q("SELECT count(*) FROM resources WHERE project=?", (project,))[0][0],
        "files": len(files),
        "bytes": on_disk,
    }


def _md5s(store: Store) -> list[tuple[str, str]]:
    return sorted((str(p.relative_to(store.archive_dir)), hashlib.md5(p.read_bytes()).hexdigest())
                  for p in store.archive_dir.rglob("*") if p.is_file() and not p.name.endswith("_catalog.xml"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, Any]]:
    store = Store(tmp_path_factory.mktemp("demo"))
    return store, seed.apply(store, "demo")


def test_demo_manifest_matches_store(demo: tuple[Store, dict[str, Any]]) -> None:
    store, manifest = demo
    truth = _db_truth(store, "DEMO")
    assert {k: manifest["projects"]["DEMO"][k] for k in KEYS} == truth
    assert {k: manifest["totals"][k] for k in KEYS} == truth
    assert manifest["totals"]["projects"] == 1
    assert sum(s["scans"] for s in manifest["sessions"]) == truth["scans"]


def test_demo_is_small_and_varied(demo: tuple[Store, dict[str, Any]]) -> None:
    store, _manifest = demo
    size = sum(p.stat().st_size for p in store.archive_dir.rglob("*") if p.is_file())
    assert size < 20 * 1024 * 1024
    subjects = {s.label for s in store.list_subjects("DEMO")}
    sessions = store.list_experiments(project="DEMO")
    with_sessions = {e.subject_label for e in sessions}
    assert 6 <= len(subjects) <= 10
    assert subjects - with_sessions == set(seed.DEMO_EMPTY_SUBJECTS)
    types = {e.xsi_type for e in sessions}
    assert {"xnat:mrSessionData", "xnat:petSessionData", "xnat:ctSessionData"} <= types
    assert any(not store.list_scans(e.id) for e in sessions), "a session without scans"
    assert any(not e.date for e in sessions), "a session without a date"
    assert any(not e.label.replace("_", "").isalnum() or e.label != e.label.upper() for e in sessions)
    assert [r.label for r in store.list_resources(Parent("project", "DEMO"))] == ["PROTOCOLS"]
    empty_scans = 0
    for exp in sessions:
        for scan in store.list_scans(exp.id):
            labels = {r.label for r in store.list_resources(Parent("scan", "DEMO", exp.subject_id, exp.id, scan.pk))}
            empty_scans += not labels
    assert empty_scans == len(seed.DEMO_SCANS_WITHOUT_FILES)
    descriptions = {scan.fields["series_description"] for e in sessions for scan in store.list_scans(e.id)}
    assert len(descriptions) >= 8


def test_demo_headers_match_labels(demo: tuple[Store, dict[str, Any]]) -> None:
    store, _ = demo
    checked = nifti = 0
    for exp in store.list_experiments(project="DEMO"):
        for scan in store.list_scans(exp.id):
            parent = Parent("scan", "DEMO", exp.subject_id, exp.id, scan.pk)
            for resource in store.list_resources(parent):
                for entry in store.list_files(resource.id):
                    path = store.file_path(resource, entry)
                    if resource.label == "DICOM":
                        ds = pydicom.dcmread(path)
                        assert str(ds.PatientName) == exp.subject_label
                        assert ds.PatientID == exp.label
                        assert ds.AccessionNumber == exp.label
                        assert ds.StudyDescription == "DEMO"
                        assert str(ds.SeriesNumber) == scan.id
                        assert ds.SeriesDescription == scan.fields["series_description"]
                        assert ds.StudyDate == exp.date.replace("-", "")
                        assert ds.Modality == scan.fields["modality"]
                        checked += 1
                    elif entry.path.endswith(".nii.gz"):
                        image = nib.load(path)
                        assert len(image.shape) == 3
                        assert image.header["descrip"].tobytes().rstrip(b"\0").decode() == \
                            scan.fields["series_description"]
                        nifti += 1
    assert checked >= 60
    assert nifti >= 10


def test_demo_reapply_is_skipped(demo: tuple[Store, dict[str, Any]]) -> None:
    store, _ = demo
    again = seed.apply(store, "demo")
    assert again["skipped"] is True
    assert again["totals"]["sessions"] == 0


def test_synthetic_manifest_matches_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    spec = {"projects": 2, "project_prefix": "T", "subjects": 3, "sessions_per_subject": 2, "scans_per_session": 5,
            "files_per_scan": 3, "files": "tiny", "tiny_size": 100, "modalities": ["MR", "PT", "CT"]}
    manifest = seed.apply(store, spec)
    assert list(manifest["projects"]) == ["T01", "T02"]
    for project in ("T01", "T02"):
        assert manifest["projects"][project] == _db_truth(store, project)
        assert manifest["projects"][project] == {"subjects": 3, "sessions": 6, "scans": 30, "resources": 30,
                                                 "files": 90, "bytes": 9000}
    assert manifest["totals"]["sessions"] == 12
    assert len(manifest["sessions"]) == 12
    assert {s["modality"] for s in manifest["sessions"]} == {"MR", "PT", "CT"}
    store.close()


@pytest.mark.parametrize("kind", ["dicom", "nifti", "none"])
def test_file_kinds(tmp_path: Path, kind: str) -> None:
    store = _store(tmp_path)
    manifest = seed.apply(store, {"project_prefix": "K", "subjects": 2, "sessions_per_subject": 1,
                                  "scans_per_session": 2, "files_per_scan": 2, "files": kind})
    truth = _db_truth(store, "K")
    assert manifest["projects"]["K"] == truth
    assert truth["files"] == (0 if kind == "none" else 8)
    store.close()


def test_deterministic(tmp_path: Path) -> None:
    spec = {"project_prefix": "D", "subjects": 3, "scans_per_session": 2, "files_per_scan": 2, "files": "dicom",
            "random_seed": 42, "inconsistent_headers": 0.5}
    one, two, other = _store(tmp_path, "a"), _store(tmp_path, "b"), _store(tmp_path, "c")
    m1, m2 = seed.apply(one, spec), seed.apply(two, spec)
    m3 = seed.apply(other, {**spec, "random_seed": 43})
    assert m1 == m2
    assert _md5s(one) == _md5s(two)
    assert [s["date"] for s in m1["sessions"]] != [s["date"] for s in m3["sessions"]]
    for s in (one, two, other):
        s.close()


def test_inconsistent_headers_are_recorded(tmp_path: Path) -> None:
    store = _store(tmp_path)
    manifest = seed.apply(store, {"project_prefix": "ODD", "subjects": 10, "sessions_per_subject": 2,
                                  "scans_per_session": 2, "files_per_scan": 1, "files": "dicom",
                                  "inconsistent_headers": 0.3, "random_seed": 1})
    odd = {o["session"]: o for o in manifest["inconsistent"]}
    assert 2 <= len(odd) <= 12
    assert {o["field"] for o in odd.values()} == {"PatientName", "PatientID", "StudyDate"}
    for exp in store.list_experiments(project="ODD"):
        scan = store.list_scans(exp.id)[0]
        resource = store.list_resources(Parent("scan", "ODD", exp.subject_id, exp.id, scan.pk))[0]
        ds = pydicom.dcmread(store.file_path(resource, store.list_files(resource.id)[0]))
        header = {"PatientName": str(ds.PatientName), "PatientID": ds.PatientID, "StudyDate": ds.StudyDate}
        label = {"PatientName": exp.subject_label, "PatientID": exp.label, "StudyDate": exp.date.replace("-", "")}
        wrong = {k for k in header if header[k] != label[k]}
        if exp.label in odd:
            assert wrong == {odd[exp.label]["field"]}
            assert header[odd[exp.label]["field"]] == odd[exp.label]["header"]
        else:
            assert wrong == set()
    store.close()


@pytest.mark.parametrize("bad", [
    {"files": "jpeg"}, {"subjects": -1}, {"inconsistent_headers": 0.2, "files": "tiny"},
    {"modalities": ["US"]}, {"nonsense": 1},
])
def test_bad_specs_are_refused(tmp_path: Path, bad: dict[str, Any]) -> None:
    store = _store(tmp_path)
    with pytest.raises(seed.SeedError):
        seed.apply(store, bad)
    with pytest.raises(seed.SeedError, match="unknown seed"):
        seed.apply(store, "no-such-preset")
    store.close()


def test_partial_existing_projects_are_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.put_project("P02", {})
    with pytest.raises(seed.SeedError, match="already exists"):
        seed.apply(store, {"projects": 2, "project_prefix": "P", "subjects": 1})
    store.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xnatsim", "seed", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_cli_writes_manifest_and_validates(tmp_path: Path) -> None:
    data = tmp_path / "cli"
    done = _cli("--data", str(data), "--project-prefix", "CLI", "--subjects", "2", "--files", "nifti",
                "--random-seed", "3")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((data / "seed-manifest-CLI.json").read_text())
    assert manifest["totals"]["sessions"] == 4
    assert manifest["spec"]["random_seed"] == 3
    bad = _cli("--data", str(data), "--files", "tiny", "--inconsistent-headers", "0.5")
    assert bad.returncode == 2
    assert "DICOM" in bad.stderr
    again = _cli("--data", str(data), "--project-prefix", "CLI", "--subjects", "2")
    assert again.returncode == 0
    assert "exist already" in again.stderr
    assert _cli("--data", str(data), "--preset", "nope").returncode == 2


def test_serve_seed_demo_twice_on_one_folder(tmp_path: Path) -> None:
    """``serve --seed demo`` seeds once; a restart on the same data folder keeps the data and starts."""
    data = tmp_path / "serve"
    for _ in range(2):
        with running_server(data, in_process=False, seed="demo", fetch_schemas=False) as server:
            store = server.store
            assert len(store.list_experiments(project="DEMO")) == len(seed.DEMO_SESSIONS)
