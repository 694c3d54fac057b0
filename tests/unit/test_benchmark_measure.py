"""benchmarks/measure.py: a benchmark child's peak RSS is its own, not its parent's high-water mark."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ALLOCATE_200_MB = "b = bytearray(200 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1"


@pytest.fixture(scope="module")
def measure(repo_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_measure", repo_dir / "benchmarks" / "measure.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import does (dataclasses look their module up there)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def big_parent() -> Iterator[None]:
    """This process (the children's parent) touches 128 MiB first, so that its high-water mark is
    far above any tiny child's: a child that inherited it could not pass."""
    ballast = bytearray(128 << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    yield
    del ballast


@pytest.mark.usefixtures("big_parent")
def test_a_tiny_child_reports_its_own_small_peak(measure: ModuleType) -> None:
    got = measure.run_measured([sys.executable, "-c", "pass"])
    assert got.exit == 0
    assert got.peak_rss_kib < 32 << 10, f"python -c pass peaked at {got.peak_rss_mib} MiB"


@pytest.mark.usefixtures("big_parent")
def test_a_200_mb_child_reports_a_200_mb_peak(measure: ModuleType) -> None:
    got = measure.run_measured([sys.executable, "-c", ALLOCATE_200_MB])
    assert got.exit == 0
    assert 200 <= got.peak_rss_mib < 260


def test_exit_status_and_output_are_the_childs(measure: ModuleType) -> None:
    got = measure.run_measured([sys.executable, "-c", "import sys; print('out'); sys.exit('err')"])
    assert (got.exit, got.stdout, got.stderr) == (1, "out\n", "err\n")
    killed = measure.run_measured([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert killed.exit == -9


def test_a_missing_command_raises_as_popen_would(measure: ModuleType) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-command-here"):
        measure.run_measured(["no-such-command-here"])
