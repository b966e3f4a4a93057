"""Health findings say what a technician should do, and that matches how bad it is.

* A severity promises a kind of advice (docs/health.md): only a critical finding takes
  something out of service; a notice asks for nothing now. A 52 °C battery (hot, not
  critical) must not be "taken out of service".
* Failures the host caused (store full, storage, dockd stopping) are never the port's or the
  camera's.
* The report: a store that lasts past a year is "not filling"; relative times follow the
  catalog's clock when it is ahead (a fleet played over simulated days); every chart label
  lies inside its SVG.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from dockd.catalog import Catalog
from dockd.catalog.rows import CameraRow, CaptureRow, TransferRecord
from dockd.cli.dockctl_cmd import main as dockctl_main
from dockd.config import Config, HealthConfig
from dockd.health import findings as F
from dockd.health.findings import Finding, Severity, check_transfers
from dockd.health.overview import FleetView
from dockd.health.report import render_report
from dockd.health.svg import port_bars, shift_chart, text_width, trend_chart
from dockd.health.transfers import by_camera, by_port, transfer_cells
from dockd.model import CameraIdentity

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
CFG = HealthConfig()
OUT_OF_SERVICE = re.compile(r"out of (service|use)|do not charge", re.IGNORECASE)


def capture(**changes: object) -> CaptureRow:
    base: dict[str, object] = dict(
        id=1, camera_serial="NC-206", session_id=1, at=T0, clock_offset_s=0.0,
        clock_set=False, soc_percent=80.0, voltage_mv=4000, current_ma=500, temperature_c=28.0,
        cycle_count=100, design_capacity_mah=3000, full_charge_capacity_mah=2900,
        charging="charging", storage_total_bytes=None, storage_free_bytes=None)
    base.update(changes)
    return CaptureRow(**base)  # type: ignore[arg-type]


def hot(temp: float) -> Finding:
    [found] = [f for f in F.check_battery("NC-206", [capture(temperature_c=temp)], CFG)
               if f.code == "battery_hot"]
    return found


# --- severity and advice ------------------------------------------------------------------


def test_a_hot_battery_short_of_critical_is_not_taken_out_of_service():
    warm = hot(52.0)  # hot_battery_c 45 ≤ 52 < 55
    assert warm.severity is Severity.WARNING
    assert not OUT_OF_SERVICE.search(warm.advice), warm.advice
    assert "cool" in warm.advice and "inspect" in warm.advice
    critical = hot(CFG.hot_battery_c + 10)
    assert critical.severity is Severity.CRITICAL
    assert "out of service" in critical.advice and "swelling" in critical.advice


def every_kind_of_finding() -> list[Finding]:
    """Each check at each severity it can give, from plain rows."""
    cam = CameraRow("NC-1", "NetCo", "BC-300", "3.2.1", T0, T0, 0.0)
    out = [hot(50), hot(60)]
    out += F.check_battery("NC-1", [capture(full_charge_capacity_mah=2250)], CFG)  # 75 %
    out += F.check_battery("NC-1", [capture(full_charge_capacity_mah=1800)], CFG)  # 60 %
    out += F.check_battery("NC-1", [capture(cycle_count=900)], CFG)
    out += F.check_battery("NC-1", [capture(charging="fault")], CFG)
    out += F.check_battery("NC-1", [capture(current_ma=0, soc_percent=50.0)], CFG)
    out += F.check_battery("NC-1", [capture(voltage_mv=65_535)], CFG)
    out += F.check_overdue(cam, T0 + timedelta(days=4), CFG)
    out += F.check_overdue(cam, T0 + timedelta(days=9), CFG)
    out += F.check_clock("NC-1", [capture(clock_offset_s=120.0, clock_set=True)], CFG)
    out += F.check_clock("NC-1", [capture(clock_offset_s=120.0, clock_set=False)], CFG)
    gb = 10**9
    for free_per_day in (40, 100):  # 14 → ~6 days left, and ~2
        caps = [capture(at=T0 + timedelta(days=d), storage_total_bytes=1000 * gb,
                        storage_free_bytes=(300 - free_per_day * d) * gb) for d in range(3)]
        out += F.check_storage(caps, "/var/lib/dockd/evidence", CFG)
    port_bad = [record(c, 4, "timeout", i) for i, c in enumerate("AABB")]
    cam_bad = [record("C", s, "timeout", 10 + i) for i, s in enumerate([1, 1, 2, 2])]
    lone = [record("E", 5, "timeout", 20), record("E", 5, "timeout", 21)]
    out += check_transfers(port_bad + cam_bad + lone, CFG)
    return out


def test_every_severity_gets_the_kind_of_advice_it_promises():
    found = every_kind_of_finding()
    codes = {(f.code, f.severity) for f in found}
    assert len(codes) >= 16, sorted(codes)  # the checks above really produced each kind
    for f in found:
        if f.severity is not Severity.CRITICAL:  # only critical takes anything away
            assert not OUT_OF_SERVICE.search(f.advice), (f.code, f.severity, f.advice)
        if f.severity is Severity.NOTICE:  # a notice asks for nothing now
            assert re.match(r"(Nothing|Clock was corrected)", f.advice), (f.code, f.advice)
    # and the same code never gives the same advice at two severities unless it says so
    by_code: dict[str, set[tuple[Severity, str]]] = {}
    for f in found:
        by_code.setdefault(f.code, set()).add((f.severity, f.advice))
    for code in ("battery_hot", "overdue", "storage_low", "battery_soh"):
        advice = {a for _, a in by_code[code]}
        assert len(advice) == 2, (code, by_code[code])


def test_docs_say_per_finding_what_happens_if_it_is_ignored():
    """docs/health.md's table has an "if ignored" column, filled for every code."""
    lines = (REPO / "docs" / "health.md").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| code |"))
    header = lines[start]
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    table = [ln for ln in lines[start:end] if ln.startswith("| `")]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert "if ignored" in columns, header
    col = columns.index("if ignored")
    documented = {}
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        documented.setdefault(cells[0].strip("`"), []).append(cells[col])
    source = (REPO / "dockd" / "health" / "findings.py").read_text()
    codes = set(re.findall(r'Finding\(\s*"([a-z_]+)"', source))
    assert codes <= set(documented), codes - set(documented)
    assert all(all(len(v) > 20 for v in vs) for vs in documented.values()), documented


# --- host-side failures are nobody's fault on the dock ------------------------------------


def record(cam: str, slot: int, kind: str | None, rec: int, session: int | None = None
           ) -> TransferRecord:
    return TransferRecord(cam, rec, session if session is not None else rec, "dock-a", slot,
                          T0, T0 + timedelta(seconds=2), 0 if kind else 1000, kind is None,
                          kind)


@pytest.mark.parametrize("kind", ["store_full", "storage", "interrupted"])
def test_host_side_failures_never_count_against_a_port_or_a_camera(kind):
    # two cameras hitting a full store (or a failing disk, or a shutdown) on one port, and
    # one camera on two ports: the "take the dock port out of use"
    records = [record(c, 4, kind, i) for i, c in enumerate("AABB")]
    records += [record("C", s, kind, 10 + i) for i, s in enumerate([1, 1, 2, 2])]
    assert check_transfers(records, CFG) == []
    cells = transfer_cells(records)
    port = by_port(cells)["dock-a/4"]
    assert (port.failed, port.fail_rate, port.retries, port.host_failed) == (0, 0.0, 0, 4)
    assert by_camera(cells)["C"].failed == 0
    # the camera's own failures still count, next to the host's
    records += [record(c, 4, "timeout", 20 + i) for i, c in enumerate("AABB")]
    assert {(f.code, f.subject) for f in check_transfers(records, CFG)} == {
        ("transfer_port", "dock-a/4")}


def test_a_retry_after_a_host_side_failure_is_not_the_pairings_retry():
    records = [record("A", 1, "storage", 1, session=7), record("A", 1, None, 1, session=7)]
    cell = transfer_cells(records)["A", "dock-a/1"]
    assert (cell.failed, cell.retries, cell.host_failed) == (0, 0, 1)
    # the pairing's own failure, then its retry, still count
    records = [record("A", 1, "timeout", 2, session=8), record("A", 1, None, 2, session=8)]
    cell = transfer_cells(records)["A", "dock-a/1"]
    assert (cell.failed, cell.retries, cell.host_failed) == (1, 1, 0)


# --- the report -------------------------------------------------------------------------


def view(**storage: object) -> FleetView:
    return FleetView(now=T0, findings=[], cameras=[], ports=[],
                     storage={"free_bytes": 900 * 10**9, "total_bytes": 10**12,
                              "free_share": 0.9, "bytes_per_day": 16_000_000,
                              "since": T0.isoformat(), "at": T0.isoformat(), **storage})


def test_a_store_lasting_past_a_year_reads_not_filling():
    html = render_report(view(days_left=55536.0))
    assert "not filling" in html
    assert "55536" not in html and "55,536" not in html
    assert ">12 d<" in render_report(view(days_left=12.4))


def test_relative_times_follow_the_catalogs_clock_when_it_is_ahead(tmp_path):
    """A fleet played over simulated days: the catalog's clock is days ahead of the wall
    clock. Judged as of its latest dock, a camera docked five days before reads "5.0 d ago",
    not "0 h ago"."""
    ahead = datetime.now(UTC) + timedelta(days=30)
    clock = {"now": ahead}
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite'}", clock=lambda: clock["now"])
    catalog.upsert_camera(CameraIdentity("NC-201", "BC-300", "3.2.1", "NetCo", ahead))
    clock["now"] = ahead + timedelta(days=5)
    catalog.upsert_camera(CameraIdentity("NC-202", "BC-300", "3.2.1", "NetCo", clock["now"]))
    catalog.close()
    config = tmp_path / "dockd.toml"
    config.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path / "catalog.sqlite"}"\n'
                      f'[storage]\npath = "{tmp_path}"\n')
    runner = CliRunner()
    cams = runner.invoke(dockctl_main, ["cameras", "--config", str(config), "--json"])
    assert cams.exit_code == 0, cams.output
    days = {c["serial"]: c["days_since_docked"] for c in json.loads(cams.stdout)}
    assert days == {"NC-201": 5.0, "NC-202": 0.0}
    out = tmp_path / "report.html"
    done = runner.invoke(dockctl_main, ["report", "--config", str(config), "--out", str(out)])
    assert done.exit_code == 0, done.output
    html = out.read_text()
    assert "5.0 d ago" in html
    assert f"As of {clock['now']:%Y-%m-%d %H:%M} UTC" in html
    health = runner.invoke(dockctl_main, ["health", "--config", str(config)])
    assert "the catalog's latest dock" in health.stdout


def charts() -> list[str]:
    """Charts at their edges: a shift exactly the configured length ("10h" at the right
    edge), a long shift, long port names and big counts."""
    samples = [(t / 2, 100 - t * 4.5) for t in range(21)]
    bands = [(0.0, 4.0, "recording"), (4.0, 10.0, "standby")]
    return [
        shift_chart(samples, bands, hours=10.0, shift_hours=10.0, title="shift 11-25 06:00"),
        shift_chart(samples, bands, hours=9.6, shift_hours=10.0, title="shift 11-25 06:00"),
        shift_chart(samples, bands, hours=23.5, shift_hours=12.0, title="a long shift"),
        trend_chart([(T0, 91.0), (T0 + timedelta(days=40), 72.5)], warn=80, critical=70,
                    title="battery health % (full / design)"),
        port_bars([("bench-dock-12/10", 1200, 1199), ("dock-a/1", 3, 0)],
                  title="transfer attempts failed by port"),
    ]


def text_boxes(svg: str) -> tuple[float, list[tuple[str, float, float]]]:
    """The SVG's width and each text's (label, left, right) at the widest a font draws it."""
    root = ET.fromstring(svg)
    width = float(root.get("viewBox", "0 0 0 0").split()[2])
    out = []
    for t in root.iter("{http://www.w3.org/2000/svg}text"):
        label, x, size = t.text or "", float(t.get("x", "0")), float(t.get("font-size", "10"))
        w = text_width(label, size)
        left = {"start": x, "middle": x - w / 2, "end": x - w}[t.get("text-anchor", "start")]
        out.append((label, left, left + w))
    return width, out


def test_every_chart_label_lies_inside_its_svg():
    for svg in charts():
        width, boxes = text_boxes(svg)
        outside = [(label, round(a, 1), round(b, 1)) for label, a, b in boxes
                   if a < 0 or b > width]
        assert not outside, f"outside 0…{width}: {outside}"
    _, boxes = text_boxes(charts()[0])
    assert "10h" in {label for label, _, _ in boxes}  # the last hour is labelled, not dropped


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

MEASURE = """<!DOCTYPE html><html><body>{svgs}<pre id="out"></pre><script>
const out = [];
document.querySelectorAll("svg").forEach((svg, i) => {{
  const w = svg.viewBox.baseVal.width;
  svg.querySelectorAll("text").forEach(t => {{
    const b = t.getBBox();
    if (b.x < -0.5 || b.x + b.width > w + 0.5)
      out.push(i + ":" + t.textContent + ":" + b.x.toFixed(1) + "+" + b.width.toFixed(1));
  }});
}});
document.getElementById("out").textContent = "OUTSIDE[" + out.join("|") + "]";
</script></body></html>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package `chromium` is not installed")
def test_chromium_draws_every_chart_label_inside_its_svg(tmp_path):
    """The same, measured by a browser with the fonts this machine has (getBBox)."""
    page = tmp_path / "charts.html"
    page.write_text(MEASURE.format(svgs="".join(charts())))
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True,
                          timeout=120, check=False)
    m = re.search(r"OUTSIDE\[(.*?)\]", done.stdout)
    assert m, done.stdout[-2000:] + done.stderr[-2000:]
    assert m[1] == "", m[1]


def test_the_example_config_and_the_docs_show_every_health_key_with_its_default():
    example = tomllib.loads((REPO / "config" / "dockd.toml").read_text())
    defaults = {f.name: getattr(CFG, f.name) for f in fields(HealthConfig)}
    assert example.get("health") == defaults
    assert Config().health == HealthConfig(**example["health"])
    docs = (REPO / "docs" / "configuration.md").read_text()
    for key in defaults:
        assert f"`health.{key}`" in docs, key
