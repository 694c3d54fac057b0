"""``python -m xnatsim demo``: the project's images added from their labels and project-summary run
through the Container Service launch route, end to end on the real engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def test_demo_runs_project_summary(built_images: dict[str, str], tmp_path: Path) -> None:
    assert "project-summary" in built_images
    data = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "xnatsim", "demo", "--data", str(data)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "container 1: Complete (exit code 0)" in proc.stdout
    report = data / "archive" / "DEMO" / "resources" / "SUMMARY" / "summary.html"
    assert f"file: {report}" in proc.stdout
    assert report.stat().st_size > 1000
    assert "/data/projects/DEMO/resources/SUMMARY/files/summary.html" in proc.stdout
    # the nifti-import step: a BIDS batch in NIFTI_UPLOAD, imported through the project wrapper
    assert "launched nifti-import-project on DEMO" in proc.stdout
    assert "container 2: Complete (exit code 0)" in proc.stdout
    imported = data / "archive" / "DEMO" / "resources" / "IMPORT_REPORT" / "import-report.html"
    assert f"file: {imported}" in proc.stdout


def test_demo_runs_project_summary_on_swarm(built_images: dict[str, str], tmp_path: Path) -> None:
    """``demo --swarm``: a single-node swarm made for the demo, the backend switched over REST, the
    launch run as a service, and the swarm left again."""
    assert "project-summary" in built_images
    data = tmp_path / "demo"
    try:
        proc = subprocess.run([sys.executable, "-m", "xnatsim", "demo", "--swarm", "--data", str(data)],
                              capture_output=True, text=True, timeout=600, check=False)
    finally:
        state = subprocess.run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
                               capture_output=True, text=True, timeout=60, check=False).stdout.strip()
        if state != "inactive":
            subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "made a single-node swarm" in proc.stdout
    assert "compute backend: swarm" in proc.stdout
    assert "container 1: Complete (exit code 0)" in proc.stdout
    assert "container 2: Complete (exit code 0)" in proc.stdout  # the nifti-import step, on Swarm too
    assert "left the swarm" in proc.stdout
    assert state == "inactive"
    assert (data / "archive" / "DEMO" / "resources" / "SUMMARY" / "summary.html").stat().st_size > 1000
