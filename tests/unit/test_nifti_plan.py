"""The import plan without a server: deterministic scan IDs against what a session already holds,
skip / conflict / overwrite per file, label templates."""

from __future__ import annotations

from pathlib import Path

import pytest
from xnatnode.imports import plan
from xnatnode.imports.sources import FolderSource
from xnatnode.imports.state import ExistingFile, ExistingSession, ProjectState
from xnatnode.nifti import scan_file, scan_image

from tests.nifti_batches import bids_batch


def _scanned(source: FolderSource, grouping: plan.Grouping) -> dict[str, object]:
    result = {}
    for acq in grouping.acquisitions:
        with source.open(acq.image) as handle:
            result[acq.image] = scan_image(handle, gzipped=acq.image.endswith(".gz"))
        for path in acq.sidecars:
            with source.open(path) as handle:
                result[path] = scan_file(handle, keep=1 << 20)
    return result


@pytest.fixture
def batch(tmp_path: Path) -> FolderSource:
    bids_batch(tmp_path / "batch", subjects=("01",), sessions=(None,))
    return FolderSource(tmp_path / "batch")


def _build(source: FolderSource, state: ProjectState, **settings: object) -> plan.Plan:
    grouping = plan.group(source, mapping=None, mapping_file=None, session_context=None)
    return plan.build("P", grouping, _scanned(source, grouping), state,  # type: ignore[arg-type]
                      plan.Settings(**settings))  # type: ignore[arg-type]


def test_new_session_numbers_scans_by_datatype_then_type(batch: FolderSource) -> None:
    result = _build(batch, ProjectState("P"))
    (session,) = result.sessions
    assert (session.label, session.subject, session.exists) == ("01_mr", "01", False)
    assert [(s.scan_id, s.fields["type"]) for s in session.scans] == [
        ("1", "T1w"), ("2", "task-rest_run-1_bold"), ("3", "task-rest_run-2_bold"), ("4", "dwi")]
    assert result.writes() == 1 + 4 + 8  # session, scans, NIFTI and BIDS uploads


def test_existing_scans_keep_their_ids_and_identical_files_are_skipped(batch: FolderSource) -> None:
    fresh = _build(batch, ProjectState("P"))
    digests = {(c.scan_id, f.resource, f.name): f.md5 for c in fresh.sessions[0].scans for f in c.files}
    existing = ExistingSession("E1", "01_mr", "S1", "01", "xnat:mrSessionData",
                               scans={"7": ("T1w", "xnat:mrScanData"), "1": ("localizer", "xnat:mrScanData")})
    # T1w is scan 7 there, with its image identical and its sidecar different
    existing.files[("7", "NIFTI", "sub-01_T1w.nii.gz")] = ExistingFile(0, digests[("1", "NIFTI", "sub-01_T1w.nii.gz")])
    existing.files[("7", "BIDS", "sub-01_T1w.json")] = ExistingFile(2, "0" * 32)
    state = ProjectState("P", {"01_mr": existing})
    result = _build(batch, state)
    scans = {s.fields["type"]: s for s in result.sessions[0].scans}
    assert scans["T1w"].scan_id == "7"
    assert not scans["T1w"].write
    assert {s.scan_id for s in scans.values()} == {"7", "2", "3", "4"}  # 1 is taken by the localizer
    actions = {f.name: f.action for f in scans["T1w"].files}
    assert actions == {"sub-01_T1w.nii.gz": plan.Action.SKIP, "sub-01_T1w.json": plan.Action.CONFLICT}
    again = _build(batch, state, overwrite=True)
    t1 = next(s for s in again.sessions[0].scans if s.fields["type"] == "T1w")
    sidecar = next(f for f in t1.files if f.name == "sub-01_T1w.json")
    assert (sidecar.action, sidecar.overwrite) == (plan.Action.CREATE, True)
    assert t1.write  # --overwrite updates the scan's fields too


def test_session_of_another_subject_is_a_conflict(batch: FolderSource) -> None:
    state = ProjectState("P", {"01_mr": ExistingSession("E1", "01_mr", "S9", "other", "xnat:mrSessionData")})
    result = _build(batch, state)
    assert result.sessions == []
    assert {r.outcome for r in result.rows if r.session} == {"conflict"}
    assert all("under subject other" in r.reason for r in result.rows if r.session)


def test_scan_of_another_xsi_type_is_a_conflict(batch: FolderSource) -> None:
    existing = ExistingSession("E1", "01_mr", "S1", "01", "xnat:mrSessionData",
                               scans={"1": ("T1w", "xnat:petScanData")})
    result = _build(batch, ProjectState("P", {"01_mr": existing}))
    rejected = [r for r in result.rows if r.source.endswith("T1w.nii.gz")]
    assert rejected[0].outcome == "conflict"
    assert "exists as xnat:petScanData" in rejected[0].reason


@pytest.mark.parametrize(("template", "values", "expected"), [
    ("{sub}_{ses}_{modality}", {"sub": "01", "ses": "v1", "modality": "mr"}, "01_v1_mr"),
    ("{sub}_{ses}_{modality}", {"sub": "01", "ses": None, "modality": "mr"}, "01_mr"),
    ("{ses}-{sub}", {"sub": "01", "ses": None}, "01"),
    ("{sub}_{datatype}", {"sub": "01", "datatype": "anat"}, "01_anat"),
])
def test_label_templates(template: str, values: dict[str, str | None], expected: str) -> None:
    assert plan.fill_template(template, values) == expected


def test_unknown_template_field() -> None:
    with pytest.raises(ValueError, match="unknown or bad field"):
        plan.check_template("{sub}_{visit}")
