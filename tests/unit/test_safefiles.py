"""Safe output writes (issue 8 item 3): planted links and files never redirect a write."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from summary_fixtures import small_project
from xnatnode.reports.project_summary import write_all
from xnatnode.runtime import RUN_RECORD, Run
from xnatnode.safefiles import leftovers, open_output, write_text
from xnatnode.summary import summarise

OLD_NAMES = ("summary.json.tmp", "summary.html.tmp", "subjects.csv.tmp", "xnatnode-run.json.part")


def plant_links(out: Path, victim: Path, names: tuple[str, ...]) -> None:
    for name in names:
        (out / name).symlink_to(victim)


def test_links_planted_at_temporary_and_final_names_are_never_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    plant_links(out, victim, (*OLD_NAMES, "summary.json", "scans.csv", RUN_RECORD))
    with Run("project-summary", output_dir=out, stream=io.StringIO()):
        write_all(summarise(small_project()), out)
    assert victim.read_text() == "precious"
    for name in ("summary.json", "scans.csv", RUN_RECORD):
        assert not (out / name).is_symlink()
        assert (out / name).stat().st_size > 0
    assert leftovers(out) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    def fail_half_way() -> None:
        with open_output(target) as fh:
            fh.write("half")
            raise RuntimeError("disk trouble")

    with pytest.raises(RuntimeError):
        fail_half_way()
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_temporary_names_are_unpredictable_and_created_exclusively(tmp_path: Path) -> None:
    seen: set[str] = set()
    for _ in range(3):
        with open_output(tmp_path / "x.txt") as fh:
            seen.add(Path(os.readlink(f"/proc/self/fd/{fh.fileno()}")).name)
    assert len(seen) == 3
    assert all(name != "x.txt.tmp" for name in seen)


def test_written_files_are_readable_by_the_group(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "r.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644, "XNAT's user must read what it uploads"


def test_the_writability_probe_follows_no_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / f".xnatnode-probe-{os.getpid()}").symlink_to(victim)  # the old, predictable name
    with Run("x", output_dir=out, stream=io.StringIO()):
        pass
    assert victim.read_text() == "precious"
