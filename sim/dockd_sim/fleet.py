"""Play a fleet scenario's days against one catalog: the real stack, a simulated calendar.

For day d the host clock (the catalog's) is the real time plus d days and every camera's
clock moves with it, so what dockd measures is each camera's own `clock_offset_s`. Each
day's cameras are docked at once and handled one after another through the simulator, the
pyusb core, the camera's driver, the ingest engine and `capture_dock`; then the fleet's
findings are refreshed. See docs/simulator.md ("Several docking sessions over simulated days").
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dockd.catalog import Catalog
from dockd.config import Config
from dockd.crypto.keys import X25519Recipient
from dockd.devices import DeviceOpener
from dockd.errors import DeviceError, DockdError
from dockd.events import Action, DeviceEvent
from dockd.health.capture import DiskUsageFn
from dockd.health.capture import _disk_usage as real_disk_usage
from dockd.health.findings import Finding
from dockd.health.service import refresh_findings
from dockd.ingest import IngestContext, SessionReport, run_dock_session
from dockd.registry import DriverRegistry
from dockd_sim.dock import SimulatedDock
from dockd_sim.pyusb_backend import SimBackend
from dockd_sim.simulate import camera_factory
from dockd_sim.spec import Scenario
from dockd_sim.state import load_states


class FleetClock:
    """The host's clock on the simulated calendar: real time plus `shift`."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


@dataclass
class DayResult:
    day: int
    sessions: list[SessionReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: docks that failed before a session could report (e.g. the camera could not be opened)
    errors: list[str] = field(default_factory=list)


def day_scenario(scenario: Scenario, day: int, shift: timedelta) -> Scenario:
    """The cameras docking on `day`, all at once, their clocks moved with the calendar."""
    cams = tuple(replace(c, clock_offset_s=c.clock_offset_s + shift.total_seconds(),
                         dock_at_s=0.0, undock_at_s=None, redock_after_s=None)
                 for c in scenario.cameras if c.day == day)
    return replace(scenario, cameras=cams)


def run_fleet(scenario: Scenario, catalog: Catalog, clock: FleetClock, config: Config,
              recipients: list[X25519Recipient], state_dir: Path, *,
              disk_usage: Callable[[int], DiskUsageFn] | None = None,
              days: Iterable[int] | None = None) -> list[DayResult]:
    """Play each day (all days in the scenario by default). `catalog` must use `clock`.

    `disk_usage(day)` gives the host-storage reading for that day (default: the real disk).
    """
    registry = DriverRegistry.discover()
    wanted = sorted(set(days) if days is not None else {c.day for c in scenario.cameras})
    results = []
    for day in wanted:
        clock.shift = timedelta(days=day)
        usage = disk_usage(day) if disk_usage is not None else real_disk_usage
        results.append(_play_day(scenario, day, catalog, clock, config, recipients,
                                 state_dir / f"day-{day}", registry, usage))
    return results


def _play_day(scenario: Scenario, day: int, catalog: Catalog, clock: FleetClock,
              config: Config, recipients: list[X25519Recipient], state_dir: Path,
              registry: DriverRegistry, usage: DiskUsageFn) -> DayResult:
    result = DayResult(day)
    today = day_scenario(scenario, day, clock.shift)
    if not today.cameras:
        return result
    states = load_states(today, state_dir, reset=True)
    backend = SimBackend()
    events: queue.Queue[DeviceEvent] = queue.Queue()
    dock = SimulatedDock(today, states, backend, camera_factory(today), events.put)
    opener = DeviceOpener.from_registry(registry, config.drivers.dropin_dir, backend)
    ctx = IngestContext(config=config, catalog=catalog, recipients=recipients,
                        dock_name=today.dock.name, disk_usage=usage)
    dock.start()
    try:
        while not events.empty():
            event = events.get_nowait()
            if event.action is not Action.ADD:
                continue
            try:
                matched, session = opener.open(event.device,
                                               timeout_s=config.ingest.transfer_timeout_s)
            except DockdError as exc:
                result.errors.append(f"{event.device.port_path}: {exc}")
                continue
            try:  # the daemon's own session, health capture included
                result.sessions.append(run_dock_session(ctx, event.device, session,
                                                        matched.driver.name))
            except DeviceError as exc:  # as the supervisor does: a camera never stops the dock
                result.errors.append(f"{event.device.port_path}: {exc}")
    finally:
        dock.stop()
        for state in states:
            state.save()
    result.findings, _, _ = refresh_findings(catalog, config, now=clock())
    return result

