"""summary.html renders in headless Chromium at desktop and phone widths.

Skipped when chromium is absent, unless env CI is set (CI installs it). Screenshots are kept in
the pytest tmp dir for a look.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from summary_fixtures import small_project
from xnatnode.reports.project_summary import write_all
from xnatnode.summary import summarise

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is required when CI is set (apt-get install -y chromium)")
    pytest.skip("chromium is not installed")


def screenshot(html: Path, png: Path, width: int, height: int, profile: Path) -> None:
    cmd = [
        _chromium(), *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
        f"--window-size={width},{height}", html.as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=90)


@pytest.mark.parametrize(("width", "height"), [(1280, 2400), (390, 4200)], ids=["desktop", "phone"])
def test_renders_in_chromium(tmp_path: Path, width: int, height: int) -> None:
    write_all(summarise(small_project(), generated=dt.datetime(2026, 11, 24, tzinfo=dt.UTC)), tmp_path)
    png = tmp_path / f"summary-{width}.png"
    screenshot(tmp_path / "summary.html", png, width, height, tmp_path / "profile")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w = int.from_bytes(data[16:20], "big")
    assert w == width
    assert len(data) > 20_000  # not a blank page
