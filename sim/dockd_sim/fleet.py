"""Play a fleet scenario's days against one catalog: the real stack, a simulated calendar.

For day d the host clock (the catalog's) is the real time plus `start` plus d days and every
camera's clock moves with it, so what dockd measures is each camera's own `clock_offset_s`.
Each day's cameras are docked at once and handled one after another through the simulator,
the pyusb core, the camera's driver, the ingest engine and `capture_dock`; then the fleet's
findings are refreshed. See docs/simulator.md ("Several docking sessions over simulated days").

`play_file` is what `dockd run --simulate FLEET.toml --once` calls (through the
`dockd.simulation` entry point `fleet`): the days end today, so `dockctl health` and
`dockctl report` read them without `--at`.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dockd.catalog import Catalog
from dockd.charge_watch import ChargeWatch
from dockd.config import Config, check_for_ingest, load_config
from dockd.crypto.keys import X25519Recipient
from dockd.devices import DeviceOpener
from dockd.errors import DeviceError, DockdError
from dockd.events import Action, AnyRef, DeviceEvent
from dockd.health.capture import DiskUsageFn
from dockd.health.capture import _disk_usage as real_disk_usage
from dockd.health.findings import Finding
from dockd.health.service import refresh_findings
from dockd.ingest import IngestContext, ProgressFn, SessionReport, run_dock_session
from dockd.registry import DriverRegistry
from dockd_sim.dock import SimulatedDock
from dockd_sim.pyusb_backend import SimBackend
from dockd_sim.scenario import load_scenario
from dockd_sim.simulate import camera_factory
from dockd_sim.spec import Scenario
from dockd_sim.state import default_state_dir, load_states


class FleetClock:
    """The host's clock on the simulated calendar: real time plus `shift` (`start` plus the
    day being played)."""

    def __init__(self, start: timedelta = timedelta(0)) -> None:
        self.start = start
        self.shift = start

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


@dataclass
class DayResult:
    day: int
    sessions: list[SessionReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: docks that failed before a session could report (e.g. the camera could not be opened)
    errors: list[str] = field(default_factory=list)
    #: with a charge watch (`run_fleet(watch_min=...)`): the findings judged at its end,
    #: the cameras still on the dock
    docked_findings: list[Finding] = field(default_factory=list)


#: a dock port's random stream goes on from day to day: day d draws from seed + d * this
PORT_SEED_PER_DAY = 7919


def day_scenario(scenario: Scenario, day: int, shift: timedelta) -> Scenario:
    """The cameras docking on `day`, all at once, their clocks moved with the calendar. A
    faulty port's stream of hits is its own each day (a worn contact does not replay the
    same luck every morning); day 0 keeps the scenario's seed."""
    cams = tuple(replace(c, clock_offset_s=c.clock_offset_s + shift.total_seconds(),
                         dock_at_s=0.0, undock_at_s=None, redock_after_s=None)
                 for c in scenario.cameras if c.day == day)
    faults = tuple(replace(f, seed=f.seed + day * PORT_SEED_PER_DAY)
                   for f in scenario.dock.port_faults)
    return replace(scenario, cameras=cams, dock=replace(scenario.dock, port_faults=faults))


def run_fleet(scenario: Scenario, catalog: Catalog, clock: FleetClock, config: Config,
              recipients: list[X25519Recipient], state_dir: Path, *,
              disk_usage: Callable[[int], DiskUsageFn] | None = None,
              days: Iterable[int] | None = None, watch_min: float | None = None,
              on_progress: ProgressFn | None = None) -> list[DayResult]:
    """Play each day (all days in the scenario by default). `catalog` must use `clock`.

    `disk_usage(day)` gives the host-storage reading for that day (default: the real disk).
    `watch_min`: after each day's sessions the cameras stay on the dock this many simulated
    minutes, their battery read every `health.charge_poll_s` by the daemon's own charge
    watch (dockd/charge_watch.py) on the simulated calendar, and the fleet is judged before
    they leave (`DayResult.docked_findings`). `on_progress` sees what the daemon's live
    view would (sessions, then the charge on the dock).
    """
    registry = DriverRegistry.discover()
    wanted = sorted(set(days) if days is not None else {c.day for c in scenario.cameras})
    results = []
    for day in wanted:
        clock.shift = clock.start + timedelta(days=day)
        usage = disk_usage(day) if disk_usage is not None else real_disk_usage
        results.append(_play_day(scenario, day, catalog, clock, config, recipients,
                                 state_dir / f"day-{day}", registry, usage, watch_min,
                                 on_progress))
    return results


def _play_day(scenario: Scenario, day: int, catalog: Catalog, clock: FleetClock,
              config: Config, recipients: list[X25519Recipient], state_dir: Path,
              registry: DriverRegistry, usage: DiskUsageFn, watch_min: float | None = None,
              on_progress: ProgressFn | None = None) -> DayResult:
    result = DayResult(day)
    today = day_scenario(scenario, day, clock.shift)
    if not today.cameras:
        return result
    states = load_states(today, state_dir, reset=True)
    for state in states:  # a camera's battery charges on the simulated calendar
        state.monotonic = lambda: clock().timestamp()
    backend = SimBackend()
    events: queue.Queue[DeviceEvent] = queue.Queue()
    dock = SimulatedDock(today, states, backend, camera_factory(today), events.put)
    opener = DeviceOpener.from_registry(registry, config.drivers.dropin_dir, backend)
    ctx = IngestContext(config=config, catalog=catalog, recipients=recipients,
                        dock_name=today.dock.name, disk_usage=usage, on_progress=on_progress)
    dock.start()
    stayed: list[tuple[AnyRef, SessionReport]] = []
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
                report = run_dock_session(ctx, event.device, session, matched.driver.name)
                result.sessions.append(report)
                stayed.append((event.device, report))
            except DeviceError as exc:  # as the supervisor does: a camera never stops the dock
                result.errors.append(f"{event.device.port_path}: {exc}")
        if watch_min is not None:
            result.docked_findings = _watch_docked(ctx, opener, stayed, clock, watch_min)
    finally:
        dock.stop()
        for state in states:
            state.save()
    result.findings, _, _ = refresh_findings(catalog, config, now=clock())
    return result


def _watch_docked(ctx: IngestContext, opener: DeviceOpener,
                  stayed: list[tuple[AnyRef, SessionReport]], clock: FleetClock,
                  minutes: float) -> list[Finding]:
    """The cameras stay on the dock for `minutes` of the simulated calendar, watched as the
    daemon's supervisor watches them; the fleet is judged before they leave, then they do."""
    watch = ChargeWatch(ctx, opener, timeout_s=ctx.config.ingest.transfer_timeout_s)
    docked: dict[str, AnyRef] = {}
    for ref, report in stayed:
        watch.after_session(ref, report)
        docked[ref.key] = ref
    step = timedelta(seconds=max(1.0, ctx.config.health.charge_poll_s))
    end = clock.shift + timedelta(minutes=minutes)
    while clock.shift < end:
        for ref in watch.due(docked, set()):
            watch.poll(ref)
        clock.shift += step
    findings, _, _ = refresh_findings(ctx.catalog, ctx.config, now=clock())
    for ref in docked.values():
        watch.left(ref)
    return findings


@dataclass
class FleetPlay:
    """What `dockd run --simulate FLEET.toml` played."""

    days: list[DayResult]
    #: the host time day 0 was played at, and the last day's
    first: datetime
    last: datetime


def play_file(path: Path, config_path: Path | None, *, state_dir: Path | None = None
              ) -> FleetPlay | None:
    """Play a multi-day fleet scenario into the configured store and catalog, its last day
    ending now; None when the scenario is one day (the daemon plays that). A simulated run
    never touches a catalog or store that holds real evidence (docs/storage.md)."""
    scenario = load_scenario(path)
    days = sorted({c.day for c in scenario.cameras})
    if days == [0]:
        return None
    from dockd.daemon import claim_evidence_mode, guard_evidence_mode  # noqa: PLC0415

    config = load_config(config_path)
    recipients = check_for_ingest(config)
    clock = FleetClock(start=-timedelta(days=days[-1]))
    catalog = Catalog.open(config.catalog.url, clock=clock)
    try:
        guard_evidence_mode(catalog, config.storage.path, "simulated")
        claim_evidence_mode(catalog, config.storage.path, "simulated")
        first = clock.start
        results = run_fleet(scenario, catalog, clock, config, recipients,
                            state_dir or default_state_dir(path))
    finally:
        catalog.close()
    now = datetime.now(UTC)
    return FleetPlay(results, now + first, now + first + timedelta(days=days[-1]))
