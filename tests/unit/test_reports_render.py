"""Report pages render in headless Chromium at desktop and phone widths, and nothing on a page is
wider than a phone (wide tables scroll inside their own box, long words wrap).

Skipped when chromium is absent, unless env CI is set (CI installs it). Screenshots are kept in
the pytest tmp dir for a look.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from summary_fixtures import small_project
from xnatnode.reports import (
    Chart,
    Column,
    Fact,
    Facts,
    Items,
    Note,
    Page,
    RunRecord,
    Section,
    Table,
    Total,
    Verdict,
    render,
)
from xnatnode.reports.project_summary import render_html, write_all
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


#: Run inside the page (a test copy only; report pages have no script): how much wider than its
#: frame the page is, written onto the parent document (srcdoc frames share its origin).
_PROBE = (
    '<script>addEventListener("load",()=>{const d=document.documentElement;'
    'parent.document.body.setAttribute("data-overflow-"+frameElement.id,'
    "String(d.scrollWidth-d.clientWidth))})</script>"
)
LONG = "sub-0001_ses-baseline_acq-highres_rec-norm_run-01_desc-preproc_T1w_" * 3


def overflows(pages: dict[str, str], tmp_path: Path, width: int = 390) -> dict[str, int]:
    """Pixels by which each page is wider than a ``width``-px screen (0: it fits); one browser
    run for all of them."""
    frames = "".join(
        f'<iframe id="{name}" width="{width}" height="600" '
        f'srcdoc="{html.escape(page.replace("</body>", _PROBE + "</body>"), quote=True)}"></iframe>'
        for name, page in pages.items()
    )
    wrapper = tmp_path / "frames.html"
    wrapper.write_text(f"<!DOCTYPE html><html><body>{frames}</body></html>", "utf-8")
    cmd = [_chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1300,900", "--dump-dom", wrapper.as_uri()]
    dom = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=90).stdout
    found = dict(re.findall(r'data-overflow-(\w+)="(-?\d+)"', dom))
    assert set(found) == set(pages), dom[-2000:]
    return {name: int(v) for name, v in found.items()}


def _wide_page() -> str:
    rows = [(LONG, "rejected", LONG, 123456789, LONG) for _ in range(5)]
    return render(Page(
        title=LONG, heading=LONG, subtitle=LONG,
        verdict=Verdict("error", LONG, LONG),
        totals=[Total(LONG, LONG, level="error"), Total("Files", 1234567)],
        parts=[Section(LONG, [
            Chart.columns("Per month", [(f"2024-{m:02d}", float(m)) for m in range(1, 13)] * 4),
            Chart.bars(LONG, [(LONG, 1.0), ("b", 2.0)]),
            Table([Column("Source", 0), Column("Outcome", 1, levels={"rejected": "error"}),
                   Column("Reason", 2, wrap=True), Column("Bytes", 3, numeric=True),
                   Column("Path", 4)], rows, title=LONG),
            Note(f"{LONG} `{LONG}`", title=LONG),
            Facts([Fact(LONG, LONG, LONG)]),
            Items(LONG, [LONG] * 3),
            Section(LONG, [Note(LONG)], collapsible=True, badge=LONG, badge_level="warning"),
        ], id="s")],
        run=RunRecord({"command": "c", "version": "1", "arguments": {"source": LONG}}),
        footer=[LONG],
    ))


def test_nothing_is_wider_than_a_phone(tmp_path: Path) -> None:
    wide = _wide_page()
    got = overflows({
        "summary": render_html(summarise(small_project(), generated=dt.datetime(2026, 11, 24, tzinfo=dt.UTC))),
        "wide": wide,
        # the check can fail: the same page without the tables' own scrolling boxes is too wide
        "unboxed": wide.replace('<div class="scroll"><table>', "<div><table>"),
    }, tmp_path)
    assert got["summary"] == 0
    assert got["wide"] == 0
    assert got["unboxed"] > 100
