"""`dockctl report`: a self-contained HTML file, drawn by a real browser (headless Chromium)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from health_fleet import REPO, Fleet, filling_disk, play

from dockd.catalog import Catalog
from dockd.cli.health_cmd import report
from dockd.config import Config
from dockd.health.overview import fleet_view
from dockd.health.report import render_report
from dockd.model import CameraIdentity

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trouble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    fleet = play(tmp_path_factory.mktemp("trouble"), "fleet-trouble.toml", disk=filling_disk)
    yield fleet
    fleet.catalog.close()


@pytest.fixture(scope="module")
def html_file(trouble: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "fleet.html"
    at = trouble.clock().strftime("%Y-%m-%dT%H:%M:%S")
    result = CliRunner().invoke(report, ["--config", str(trouble.config_path), "--at", at,
                                         "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_report_is_self_contained(html_file: Path) -> None:
    text = html_file.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    # nothing fetched from anywhere: no src/href/url() at all (SVG's xmlns is a name, not a fetch)
    assert not re.search(r"""\b(src|href)\s*=|url\(|@import""", text, re.IGNORECASE)
    assert text.count("<svg") >= 13 * 3  # per camera: shift(s), health trend, ports


def test_report_puts_the_fleet_first_then_each_camera(html_file: Path) -> None:
    text = html_file.read_text(encoding="utf-8")
    overview, cameras = text.index("Fleet overview"), text.index("<h2>Cameras</h2>")
    assert overview < cameras
    head = text[overview:cameras]
    assert "battery ran out after" in head and "the port is at fault" in head
    for serial in (f"NC-2{n:02d}" for n in range(1, 14)):
        assert f"<h3>{serial} " in text[cameras:]
    # NC-204's shift chart shows the battery running out, with state bands
    nc204 = text[text.index("<h3>NC-204 "):text.index("<h3>", text.index("<h3>NC-204 ") + 5)]
    assert "ran out" in nc204 and 'fill="#f3a712"' in nc204  # display bands


def test_device_given_text_is_escaped(tmp_path: Path) -> None:
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.db'}")
    now = datetime.now(UTC)
    catalog.upsert_camera(CameraIdentity(serial="<img src=x onerror=alert(1)>", model="<b>m",
                                         firmware="&", vendor="v", clock=now))
    html = render_report(fleet_view(catalog, Config(), now=now + timedelta(days=9)))
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>m" not in html


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package `chromium` is not installed")
def test_report_renders_in_headless_chromium(html_file: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1280,2000", html_file.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # a page of tables and charts, not a blank one
    # the screenshot stays in the test's tmp dir; DOCKD_KEEP_SCREENSHOT=1 refreshes the one in
    # docs/img (a test run must not change tracked files)
    if "DOCKD_SCREENSHOT_DIR" in os.environ:  # e.g. CI keeps it as an artifact
        kept = Path(os.environ["DOCKD_SCREENSHOT_DIR"]) / "report.png"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, kept)
    if os.environ.get("DOCKD_KEEP_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "img" / "report.png")
