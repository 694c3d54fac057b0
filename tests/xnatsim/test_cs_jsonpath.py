"""The JSONPath subset used by wrapper matchers and Event Service payload filters."""

from __future__ import annotations

import pytest
from xnatsim.cs.jsonpath import JsonPathError, evaluate_path, matches_filter

SESSION = {
    "label": "S1_MR1", "xsiType": "xnat:mrSessionData", "modalities-in-study": ["MR", "PT"], "frames": 3,
    "resources": [{"label": "DICOM", "files": [{"name": "a.dcm"}]}, {"label": "NIFTI"}],
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('"MR" in @.modalities-in-study', True),  # the wiki's example
        ("'CT' in @.modalities-in-study", False),
        ("'DICOM' in @.resources[*].label", True),  # dcm2niix's scan matcher
        ("'SNAPSHOTS' in @.resources[*].label", False),
        ("@.label == 'S1_MR1'", True),
        ("@.label != 'S1_MR1'", False),
        ("@.label =~ /s1_.*/i", True),
        ("@.label =~ /S1/", False),  # =~ must match the whole value
        ("@.frames > 2 && @.xsiType == 'xnat:mrSessionData'", True),
        ("@.frames >= 4 || !(@.label == 'x')", True),
        ("@.missing == 'x'", False),  # a missing property never matches
        ("@.missing", False),
        ("@.label", True),
        ("@.resources[?(@.label == 'NIFTI')]", True),
        ("@.resources[?(@.label == 'QC')]", False),
        ("@.modalities-in-study contains 'PT'", True),
        ("@.modalities-in-study anyof ['CT', 'PT']", True),
        ("@.modalities-in-study subsetof ['MR']", False),
        ("@.resources empty false", True),
    ],
)
def test_filters(expr: str, expected: bool) -> None:
    assert matches_filter(expr, SESSION) is expected


def test_filter_in_brackets_form() -> None:
    assert matches_filter("[?(@.label == 'S1_MR1')]", SESSION)


def test_paths() -> None:
    assert evaluate_path("$.resources[*].label", SESSION) == ["DICOM", "NIFTI"]
    assert evaluate_path("$.resources[0].files[0].name", SESSION) == ["a.dcm"]
    assert evaluate_path("$['label']", SESSION) == ["S1_MR1"]
    assert evaluate_path("$.resources[?(@.label == 'NIFTI')].label", SESSION) == ["NIFTI"]
    assert evaluate_path("$.nothing.here", SESSION) == []


@pytest.mark.parametrize("bad", ["@.label === 'x'", "@.label == ", "@.a[", "label == 'x'"])
def test_bad_expressions_are_errors(bad: str) -> None:
    with pytest.raises(JsonPathError):
        matches_filter(bad, SESSION)
