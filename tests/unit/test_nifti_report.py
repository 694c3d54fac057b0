"""nifti-import's report page: its verdict counts files with the report layer's plural rule."""

from __future__ import annotations

import pytest
from xnatnode.imports.plan import FileRow
from xnatnode.imports.report import Summary, page


def _summary() -> Summary:
    return Summary("P", None, "/input", False, "2026-11-30T12:00:00Z", "xnatnode test", 3, 1.0, [])


@pytest.mark.parametrize(("rows", "text"), [
    ([FileRow("a.nii.gz", "imported")], "The file is in XNAT"),
    ([FileRow("a.nii.gz", "imported"), FileRow("b.nii.gz", "skipped")], "All 2 files are in XNAT"),
    ([FileRow("a.nii.gz", "rejected", "not NIfTI")], "1 of 1 file rejected or in conflict"),
    ([FileRow("a.nii.gz", "rejected", "not NIfTI"), FileRow("b.nii.gz", "imported")],
     "1 of 2 files rejected or in conflict"),
])
def test_the_verdict_counts_files_in_words(rows: list[FileRow], text: str) -> None:
    verdict = page(rows, _summary()).verdict
    assert verdict is not None
    assert verdict.text == text
