"""The fleet at a glance: findings, one summary per camera and per dock port, storage.

What `dockctl health|cameras|ports` print and the HTML report draws; computed fresh from the
catalog (read only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from dockd.catalog import Catalog
from dockd.config import Config
from dockd.health.docked import DockStay, current_stays, on_dock
from dockd.health.findings import (
    Finding,
    Severity,
    judge,
    last_real_shift,
    read_fleet,
    soh_percent,
    soh_trend,
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
    #: on a dock now (watched by the daemon): the port and its charge state there
    dock_port: str | None = None
    dock_charge: str | None = None


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
    #: failed attempts the host caused (store full, storage, dockd stopping): not the port's
    host_failed: int = 0


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
    #: per camera: its latest stay on a dock watched by the daemon (the dock charge curve)
    dock_stays: dict[str, DockStay] = field(default_factory=dict)
    #: whose clock `now` is: "given" (--at), "host" (this machine's), or "catalog" (the
    #: latest dock, later than this host's time: a simulated fleet's days)
    clock: str = "given"


def _worst(findings: list[Finding]) -> str:
    return max(findings, key=lambda f: f.severity).severity.label if findings else "ok"


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def fleet_clock(catalog: Catalog, wall: datetime | None = None) -> tuple[datetime, str]:
    """When to judge the fleet if nobody said: this host's clock, unless the catalog's latest
    dock is later — a fleet played over simulated days (`dockd_sim.fleet`, a catalog clock
    days ahead) is judged as of its own last day, so a camera docked on day 2 of 9 reads
    "7.0 d ago", not "0 h ago". Returns (time, "host" | "catalog")."""
    wall = wall or datetime.now(UTC)
    latest = max((c.last_seen for c in catalog.cameras()), default=None)
    recorded = catalog.health.latest_at()  # docks, captures, readings on the dock
    if recorded is not None and (latest is None or recorded > latest):
        latest = recorded
    if latest is not None and latest > wall:
        return latest, "catalog"
    return wall, "host"


def fleet_view(catalog: Catalog, config: Config, *, now: datetime | None = None) -> FleetView:
    """The fleet as of `now` (default: `fleet_clock`)."""
    clock = "given"
    if now is None:
        now, clock = fleet_clock(catalog)
    # read once: the findings and the views share it
    data = read_fleet(catalog, now=now, retention=config.retention)
    findings = judge(data, config.health, now=now, store=str(config.storage.path))
    cells = transfer_cells(data.transfers)
    per_cam, per_port = by_camera(cells), by_port(cells)
    view = FleetView(now=now, findings=findings, cameras=[], ports=[],
                     storage=data.storage(), clock=clock)
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
            s.clock_offset_s = round(caps[-1].clock_offset_s, 3) + 0.0  # never "-0.0"
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
    view.dock_stays = current_stays(data.docked_charge, data.captures)
    for d in on_dock(view.dock_stays, config.health, now=now):
        summary = next(c for c in view.cameras if c.serial == d.serial)
        summary.dock_port, summary.dock_charge = d.port, d.state
    view.cameras.sort(key=lambda c: (-_rank(c.worst), c.serial))
    # the ports' view says what the findings say: a camera found at fault "explains" the
    # failures it had on each port (`failures_on`), and those are not the port's
    follows: dict[str, list[str]] = {}
    for f in findings:
        if f.code == "transfer_camera":
            for p in f.evidence.get("failures_on", []):
                follows.setdefault(p, []).append(f.subject)
    for port, stats in per_port.items():
        mine = [f for f in findings if f.code.startswith("transfer_") and (
            f.subject == port or f.evidence.get("port") == port)]
        used = sorted({k for (k, p) in cells if p == port})
        view.ports.append(PortSummary(
            port=port, cameras=used, attempts=stats.attempts, failed=stats.failed,
            fail_rate=round(stats.fail_rate, 3), retries=stats.retries, mb_s=_r(stats.mb_s, 2),
            worst=_worst(mine), failures_follow=sorted(follows.get(port, [])),
            host_failed=stats.host_failed))
    view.ports.sort(key=lambda p: (-_rank(p.worst), port_sort_key(p.port)))
    return view


def port_sort_key(port: str) -> tuple[str, int]:
    """"dock-a/10" after "dock-a/9"."""
    dock, _, slot = port.rpartition("/")
    return (dock, int(slot) if slot.isdigit() else 0)


def ago(days: float) -> str:
    """"5 h ago" under a day, "3.2 d ago" after."""
    return f"{days * 24:.0f} h ago" if days < 1 else f"{days:.1f} d ago"


#: a store that lasts longer than this at the current rate is "not filling"
NOT_FILLING_DAYS = 365.0


def days_left_text(days: float | None) -> str:
    """"12 d", or "not filling" past a year (a rate of a few MB a day divided into a large
    disk gives "55536 d", which means nothing), or "-" without a rate."""
    if days is None:
        return "-"
    return "not filling" if days > NOT_FILLING_DAYS else f"{days:.0f} d"


def _rank(label: str) -> int:
    return 0 if label == "ok" else int(Severity[label.upper()])


def camera_json(c: CameraSummary) -> dict[str, Any]:
    d = asdict(c)
    d["last_docked"] = c.last_docked.isoformat()
    return d


def port_json(p: PortSummary) -> dict[str, Any]:
    return asdict(p)
