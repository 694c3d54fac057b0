"""XNAT's label rules and the label shapes (:mod:`xnatnode.labels`), no server."""

from __future__ import annotations

import pytest
from xnatnode.labels import (
    MAX_LENGTH,
    NO_VISIT,
    Kind,
    check_label,
    clean_label,
    is_legal,
    label_pattern,
    label_suffix,
    near_duplicate_key,
    problems_text,
    suggest_label,
    visit_of,
)


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("DOE^JOHN", "DOE_JOHN"),  # PatientName born as a subject label (reference §1)
        ("sub 01.v2", "sub_01_v2"),
        ("a  b", "a__b"),  # XNAT does not collapse runs
        ("Zoë-1", "Zo_-1"),  # Java \w is ASCII
        ("ok_Label-9", "ok_Label-9"),
        ("", ""),
    ],
)
def test_clean_label_as_xnat(text: str, cleaned: str) -> None:
    assert clean_label(text) == cleaned


def test_legal_labels_have_no_problems() -> None:
    for kind in Kind:
        assert check_label("sub001_baseline-MR", kind) == []
        assert is_legal("sub001_baseline-MR", kind)
        assert suggest_label("sub001_baseline-MR", kind) is None


def test_illegal_characters_give_code_message_and_suggestion() -> None:
    [problem] = check_label("sub 001/base", Kind.SESSION)
    assert problem.code == "label-characters"
    assert problem.kind is Kind.SESSION
    assert "' '" in problem.message
    assert "'/'" in problem.message
    assert problem.suggestion == "sub_001_base"
    assert "XNAT would use 'sub_001_base'" in problems_text([problem])


def test_scan_ids_may_hold_dots_but_sessions_may_not() -> None:
    assert is_legal("1.1", Kind.SCAN)
    assert not is_legal("1.1", "session")
    assert suggest_label("1.1", "session") == "1_1"
    assert suggest_label("1 1", Kind.SCAN) == "1_1"


def test_project_ids_follow_the_same_characters() -> None:
    assert is_legal("DPUK-01_x", Kind.PROJECT)
    assert [p.code for p in check_label("DPUK 01", Kind.PROJECT)] == ["label-characters"]


def test_length_limit() -> None:
    assert is_legal("a" * MAX_LENGTH)
    [problem] = check_label("a" * (MAX_LENGTH + 1))
    assert problem.code == "label-length"
    assert problem.suggestion == "a" * MAX_LENGTH
    codes = [p.code for p in check_label("é" * 300)]
    assert codes == ["label-characters", "label-length"]


def test_empty_and_blank_labels() -> None:
    [problem] = check_label("", Kind.SUBJECT)
    assert (problem.code, problem.suggestion) == ("label-empty", None)
    assert suggest_label("   ") is None
    assert suggest_label(" sub01 ") == "sub01"


def test_dicom_upload_placeholder_is_flagged_for_sessions_only() -> None:
    assert [p.code for p in check_label("dicom_upload")] == ["label-placeholder"]
    assert check_label("dicom_upload", Kind.SUBJECT) == []


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="experiment"):
        check_label("x", "experiment")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Sub-01_MR", "sub_1_mr", True),
        ("sub001_baseline", "SUB001.BASELINE", True),
        ("sub001_v1", "sub001_v10", False),
        ("sub001", "sub002", False),
    ],
)
def test_near_duplicate_key(a: str, b: str, same: bool) -> None:
    assert (near_duplicate_key(a) == near_duplicate_key(b)) is same


@pytest.mark.parametrize(
    ("label", "subject", "suffix", "visit"),
    [
        ("subj001_baseline_mr", "subj001", "baseline_mr", "baseline"),
        ("SUBJ001-Followup-PET", "subj001", "Followup_PET", "Followup"),
        ("subj001_v2", "subj001", "v2", "v2"),
        ("subj001", "subj001", "", NO_VISIT),
        ("subj001_MR", "subj001", "MR", NO_VISIT),
        ("baseline_subj001_mr", "subj001", "baseline_mr", "baseline"),
        ("subj0012_baseline", "subj001", None, NO_VISIT),  # another subject's prefix
        ("weird label!", "subj002", None, NO_VISIT),
        ("", "subj002", None, NO_VISIT),
        ("anything", "", None, NO_VISIT),
        ("site.A_subj 7__week 4 .mr", "site.A_subj 7", "week_4_mr", "week_4"),
    ],
)
def test_visit_from_label(label: str, subject: str, suffix: str | None, visit: str) -> None:
    assert label_suffix(label, subject) == suffix
    assert visit_of(label, subject) == visit


def test_label_pattern() -> None:
    assert label_pattern("subj001_v2_mr", "subj001") == "{subject}_v#_mr"
    assert label_pattern("x_subj001_3", "subj001") == "x_{subject}_#"
    assert label_pattern("MR12345", "subj001") == "MR#"


