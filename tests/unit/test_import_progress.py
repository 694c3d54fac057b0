"""nifti-import's progress lines: files and MB done, readable for a batch of any size."""

from __future__ import annotations

import logging

import pytest
from xnatnode.imports.writer import Throughput


@pytest.mark.parametrize(("done", "total", "shown"), [
    (21_000, 43_000, "0.021/0.043 MB"),
    (2_100_000, 4_300_000, "2.10/4.30 MB"),
    (21_000_000, 430_000_000, "21.0/430.0 MB"),
])
def test_progress_shows_a_small_batch_in_mb(done: int, total: int, shown: str) -> None:
    progress = Throughput(files_total=3, bytes_total=total, logger=logging.getLogger("t"))
    progress.files, progress.bytes = 1, done
    assert f"uploaded 1/3 files, {shown}, " in progress.line()
