"""`dockctl report`: one self-contained HTML file (inline CSS and SVG; no script, no network).

Fleet overview first (tiles, findings worst first, cameras, ports), then per camera the
battery curves of its recent shifts (charge over time, the camera's state as bands), its
state-of-health trend and its transfer failures by dock port. Every device-given string is
escaped.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from html import escape
from typing import Any

from dockd.health.docked import DockStay
from dockd.health.findings import Finding
from dockd.health.overview import CameraSummary, FleetView, ago, days_left_text
from dockd.health.shifts import Shift
from dockd.health.svg import STATE_COLOURS, charge_chart, port_bars, shift_chart, trend_chart

#: shifts drawn per camera
RECENT_SHIFTS = 3

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:24px;color:#222;background:#fafafa;max-width:1220px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid
 #1d3557;padding-bottom:4px} h3{font-size:16px;margin:0 0 6px}
.sub{color:#666;font-size:13px;margin-bottom:16px}
.tiles{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.tile{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:130px}
.tile b{display:block;font-size:24px} .tile span{font-size:12px;color:#666}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #e2e2e2;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef2f5}
.sev{display:inline-block;border-radius:4px;padding:1px 7px;font-size:12px;font-weight:600;
 color:#fff} .critical{background:#c0392b} .warning{background:#e08e0b} .notice{background:#2e86ab}
 .ok{background:#3c9d5d}
.advice{color:#444;font-style:italic}
.camera{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 14px;margin:14px 0}
.charts{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px;
 opacity:.6}
.find{margin:2px 0 2px;font-size:13px}
"""


def _sev(label: str) -> str:
    return f'<span class="sev {escape(label)}">{escape(label)}</span>'


def _f(value: float | None, unit: str = "", nd: int = 0) -> str:
    if value is None:
        return "-"
    return f"{round(value, nd) + 0.0:.{nd}f}{unit}"  # + 0.0: no "-0"


def render_report(view: FleetView, *, shift_hours: float = 10.0,
                  soh_warn: float = 80.0, soh_critical: float = 70.0) -> str:
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width,initial-scale=1'>",
             "<title>dockd fleet health</title><style>", _CSS, "</style></head><body>",
             "<h1>dockd fleet health</h1>",
             f"<div class='sub'>As of {view.now:%Y-%m-%d %H:%M} UTC{_clock(view)} · "
             f"{len(view.cameras)} cameras · {len(view.ports)} dock ports with transfers</div>"]
    parts += _overview(view)
    parts.append("<h2>Cameras</h2>")
    parts.append(_legend())
    for cam in view.cameras:
        parts.append(_camera(view, cam, shift_hours, soh_warn, soh_critical))
    parts.append("</body></html>")
    return "".join(parts)


def _clock(view: FleetView) -> str:
    if view.clock != "catalog":
        return ""
    return (" (the catalog's latest dock, later than the clock of the host that wrote this "
            "report: a simulated fleet)")


def _fill_tile(st: dict[str, Any] | None) -> tuple[str, str]:
    """The "until store full" tile; with retention counted it says so (or why the store
    does not fill: what it holds steady with the default retention)."""
    days_left = st.get("days_left") if st else None
    counted = st is not None and "retention_days" in st
    if counted and days_left is None and st is not None and st.get("steady_bytes"):
        return "not filling", str(st["forecast"]).removesuffix(": not filling")
    text = days_left_text(days_left)
    if text == "not filling":
        return text, "store: over a year at this rate"
    return text, "until store full" + (", counting retention" if counted else "")


def _overview(view: FleetView) -> list[str]:
    counts = Counter(f.severity.label for f in view.findings)
    st = view.storage
    tiles = [(str(len(view.cameras)), "cameras"),
             (str(counts.get("critical", 0)), "critical findings"),
             (str(counts.get("warning", 0)), "warnings"),
             (str(counts.get("notice", 0)), "notices"),
             (f"{st['free_share']:.0%}" if st else "-", "store free"),
             _fill_tile(st)]
    out = ["<h2>Fleet overview</h2><div class='tiles'>"]
    out += [f"<div class='tile'><b>{escape(v)}</b><span>{escape(k)}</span></div>"
            for v, k in tiles]
    out.append("</div><h3>Findings, worst first</h3>")
    if not view.findings:
        out.append("<p>No findings: the fleet is healthy.</p>")
    else:
        out.append("<table><tr><th>severity</th><th>subject</th><th>finding</th>"
                   "<th>what to do</th></tr>")
        out += [f"<tr><td>{_sev(f.severity.label)}</td><td>{escape(f.subject_kind)} "
                f"<b>{escape(f.subject)}</b></td><td>{escape(f.summary)}</td>"
                f"<td class='advice'>{escape(f.advice)}</td></tr>" for f in view.findings]
        out.append("</table>")
    out.append("<h3>Cameras</h3><table><tr><th>camera</th><th>status</th><th>last docked</th>"
               "<th>charge</th><th>battery health</th><th>cycles</th><th>temp</th>"
               "<th>full charge lasts</th><th>clock offset</th><th>transfers failed</th></tr>")
    out += [f"<tr><td><b>{escape(c.serial)}</b> {escape(c.model)}</td><td>{_sev(c.worst)}</td>"
            f"<td>{ago(c.days_since_docked)}</td><td>{_f(c.soc_percent, '%')}</td>"
            f"<td>{_f(c.soh_percent, '%')}</td><td>{_f(c.cycle_count)}</td>"
            f"<td>{_f(c.temperature_c, ' °C')}</td><td>{_f(c.predicted_runtime_h, ' h', 1)}</td>"
            f"<td>{_f(c.clock_offset_s, ' s')}</td><td>{c.failed}/{c.attempts}</td></tr>"
            for c in view.cameras]
    out.append("</table><h3>Dock ports</h3><table><tr><th>port</th><th>status</th>"
               "<th>attempts</th><th>failed</th><th>fail rate</th><th>retries</th><th>MB/s</th>"
               "<th>cameras</th><th>note</th></tr>")
    out += [f"<tr><td><b>{escape(p.port)}</b></td><td>{_sev(p.worst)}</td><td>{p.attempts}"
            f"</td><td>{p.failed}</td><td>{p.fail_rate:.0%}</td><td>{p.retries}</td>"
            f"<td>{_f(p.mb_s, '', 1)}</td><td>{escape(', '.join(p.cameras))}</td>"
            f"<td>{_follow(p.failures_follow)}</td></tr>"
            for p in view.ports]
    out.append("</table>")
    return out


def _follow(cameras: list[str]) -> str:
    if not cameras:
        return ""
    return "failures follow camera " + escape(", ".join(cameras)) + ", not this port"


def _legend() -> str:
    items = "".join(f"<span><i style='background:{c}'></i>{escape(s)}</span>"
                    for s, c in STATE_COLOURS.items())
    return (f"<div class='legend'>Camera state: {items}<span>— charge %</span>"
            "<span>┆ configured shift length</span></div>")


def _camera(view: FleetView, cam: CameraSummary, shift_hours: float, soh_warn: float,
            soh_critical: float) -> str:
    mine: list[Finding] = [f for f in view.findings if f.camera == cam.serial]
    out = [f"<div class='camera'><h3>{escape(cam.serial)} {_sev(cam.worst)}</h3>",
           f"<div class='sub'>{escape(cam.model)} · firmware {escape(cam.firmware)} · last "
           f"docked {cam.last_docked:%Y-%m-%d %H:%M} UTC</div>"]
    out += [f"<div class='find'>{_sev(f.severity.label)} {escape(f.summary)} — "
            f"<span class='advice'>{escape(f.advice)}</span></div>" for f in mine]
    out.append("<div class='charts'>")
    shifts = [s for s in view.shifts.get(cam.serial, []) if s.samples][-RECENT_SHIFTS:]
    if not shifts:
        out.append(shift_chart([], [], hours=shift_hours, shift_hours=shift_hours,
                               title="no shift log yet"))
    for shift in shifts:
        out.append(_shift_svg(shift, shift_hours))
    out.append(trend_chart(view.soh_history.get(cam.serial, []), warn=soh_warn,
                           critical=soh_critical, title="battery health % (full / design)"))
    cells = view.camera_ports.get(cam.serial, {})
    out.append(port_bars([(p, c.attempts, c.failed) for p, c in sorted(cells.items())],
                         title="transfer attempts failed by port"))
    stay = view.dock_stays.get(cam.serial)
    if stay is not None:
        out.append(_dock_charge_svg(view, stay, mine))
    out.append("</div></div>")
    return "".join(out)


def _dock_charge_svg(view: FleetView, stay: DockStay, mine: list[Finding]) -> str:
    """The dock charge curve of the camera's latest stay on a dock, as the daemon read it."""
    def hrs(t: datetime) -> float:
        return (t - stay.since).total_seconds() / 3600

    points = [(hrs(r.at), r.soc_percent) for r in stay.readings
              if r.soc_percent is not None and r.at <= view.now]
    stalled = next((f for f in mine if f.code == "dock_not_charging"), None)
    since = stalled.evidence.get("from_at") if stalled is not None else None
    end = stay.left_at if stay.left_at is not None and stay.left_at <= view.now else None
    where = f"left {end:%H:%M}" if end is not None else "still docked"
    return charge_chart(points, hours=max([t for t, _ in points] + [0.0]),
                        title=f"on dock {stay.port} from {stay.since:%m-%d %H:%M} · {where}",
                        stalled_from=hrs(datetime.fromisoformat(since)) if since else None)


def _shift_svg(shift: Shift, shift_hours: float) -> str:
    def hrs(t: datetime) -> float:
        return (t - shift.start).total_seconds() / 3600

    samples = [(hrs(s.at), s.soc_percent) for s in shift.samples]
    bands = [(hrs(b.start), hrs(b.end), b.state) for b in shift.bands]
    ran_out = " · ran out" if shift.ran_out_at else ""
    title = f"shift {shift.start:%m-%d %H:%M} · {shift.hours:.1f} h{ran_out}"
    return shift_chart(samples, bands, hours=shift.hours, shift_hours=shift_hours, title=title)
