"""The fleet at a glance: findings, one summary per camera and per dock port, storage.

What `dockctl health|cameras|ports` print and the HTML report draws; computed fresh from the
catalog (read only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from dockd.catalog import Catalog
from dockd.config import Config
from dockd.health.findings import (
    Finding,
    Severity,
    judge,
    last_real_shift,
    read_fleet,
    soh_percent,
    soh_trend,
    storage_outlook,
)
from dockd.health.shifts import Shift, split_shifts
from dockd.health.transfers import CellStats, by_camera, by_port, transfer_cells


@dataclass
class CameraSummary:
    serial: str
    model: str
    firmware: str
    last_docked: datetime
    days_since_docked: float
    soc_percent: float | None = None
    soh_percent: float | None = None
    soh_per_30d: float | None = None
    cycle_count: int | None = None
    temperature_c: float | None = None
    predicted_runtime_h: float | None = None
    last_shift_lasted_h: float | None = None
    clock_offset_s: float | None = None
    attempts: int = 0
    failed: int = 0
    mb_s: float | None = None
    worst: str = "ok"
    findings: int = 0


@dataclass
class PortSummary:
    port: str
    cameras: list[str] = field(default_factory=list)
    attempts: int = 0
    failed: int = 0
    fail_rate: float = 0.0
    retries: int = 0
    mb_s: float | None = None
    worst: str = "ok"
    #: why failures here are not the port's: the cameras they follow
    failures_follow: list[str] = field(default_factory=list)


@dataclass
class FleetView:
    now: datetime
    findings: list[Finding]
    cameras: list[CameraSummary]
    ports: list[PortSummary]
    storage: dict[str, Any] | None
    #: per camera: its recent shifts (for charts)
    shifts: dict[str, list[Shift]] = field(default_factory=dict)
    #: per camera: (time, state of health %) at each dock
    soh_history: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    #: per camera: port → transfer statistics
    camera_ports: dict[str, dict[str, CellStats]] = field(default_factory=dict)


def _worst(findings: list[Finding]) -> str:
    return max(findings, key=lambda f: f.severity).severity.label if findings else "ok"


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def fleet_view(catalog: Catalog, config: Config, *, now: datetime) -> FleetView:
    data = read_fleet(catalog, now=now)  # read once: the findings and the views share it
    findings = judge(data, config.health, now=now, store=str(config.storage.path))
    cells = transfer_cells(data.transfers)
    per_cam, per_port = by_camera(cells), by_port(cells)
    view = FleetView(now=now, findings=findings, cameras=[], ports=[],
                     storage=storage_outlook(data.recent_captures))
    for cam in data.cameras:
        caps = data.captures[cam.serial]
        mine = [f for f in findings if f.camera == cam.serial]
        s = CameraSummary(cam.serial, cam.model, cam.firmware, cam.last_seen,
                          max(0.0, round((now - cam.last_seen).total_seconds() / 86400, 2)),
                          worst=_worst(mine), findings=len(mine))
        batt = [c for c in caps if c.design_capacity_mah]
        if batt:
            last = batt[-1]
            s.soc_percent, s.cycle_count = last.soc_percent, last.cycle_count
            s.temperature_c, s.soh_percent = last.temperature_c, _r(soh_percent(last))
            trend = soh_trend(batt)
            s.soh_per_30d = trend["per_30d"] if trend else None
            view.soh_history[cam.serial] = [
                (c.at, v) for c in batt if (v := soh_percent(c)) is not None]
        if caps:
            s.clock_offset_s = round(caps[-1].clock_offset_s, 3)
        shifts = split_shifts(data.samples[cam.serial], data.events[cam.serial])
        view.shifts[cam.serial] = shifts
        shift = last_real_shift(shifts)
        if shift is not None:
            s.predicted_runtime_h = _r(shift.predicted_runtime_h(), 2)
            s.last_shift_lasted_h = _r(shift.lasted_hours, 2)
        stats = per_cam.get(cam.serial)
        if stats is not None:
            s.attempts, s.failed, s.mb_s = stats.attempts, stats.failed, _r(stats.mb_s, 2)
        view.camera_ports[cam.serial] = {p: c for (k, p), c in cells.items() if k == cam.serial}
        view.cameras.append(s)
    view.cameras.sort(key=lambda c: (-_rank(c.worst), c.serial))
    faulty_cameras = {f.subject for f in findings if f.code == "transfer_camera"}
    for port, stats in per_port.items():
        mine = [f for f in findings if f.subject == port
                or f.evidence.get("port") == port]
        used = sorted({k for (k, p) in cells if p == port})
        view.ports.append(PortSummary(
            port=port, cameras=used, attempts=stats.attempts, failed=stats.failed,
            fail_rate=round(stats.fail_rate, 3), retries=stats.retries, mb_s=_r(stats.mb_s, 2),
            worst=_worst(mine),
            failures_follow=[c for c in used if c in faulty_cameras and cells[c, port].failed]))
    view.ports.sort(key=lambda p: (-_rank(p.worst), port_sort_key(p.port)))
    return view


def port_sort_key(port: str) -> tuple[str, int]:
    """"dock-a/10" after "dock-a/9"."""
    dock, _, slot = port.rpartition("/")
    return (dock, int(slot) if slot.isdigit() else 0)


def ago(days: float) -> str:
    """"5 h ago" under a day, "3.2 d ago" after."""
    return f"{days * 24:.0f} h ago" if days < 1 else f"{days:.1f} d ago"


def _rank(label: str) -> int:
    return 0 if label == "ok" else int(Severity[label.upper()])


def camera_json(c: CameraSummary) -> dict[str, Any]:
    d = asdict(c)
    d["last_docked"] = c.last_docked.isoformat()
    return d


def port_json(p: PortSummary) -> dict[str, Any]:
    return asdict(p)
