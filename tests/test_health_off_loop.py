"""No dock waits for health: a camera docked while the fleet's findings are being judged starts
its transfer during the judgement (issue 15: on a fleet-year catalog one judgement took 14 s,
and on the main loop a docked camera waited for it).

The real pipeline (simulated NetCo camera on the in-process USB backend, the driver, ingest,
the catalog); the judgement is the real `refresh_findings`, made slow through the daemon's
documented hook (`Supervisor.health`, the callable the daemon sets): it does not return until
the camera that docked after it began has started a transfer (or 60 s have passed)."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import pytest
from helpers_ingest import make_env, recording, scenario_toml

from dockd import supervisor as supervisor_module
from dockd.catalog import Catalog
from dockd.config import check_for_ingest, load_config
from dockd.devices import DeviceOpener
from dockd.events import DeviceEvent
from dockd.health.service import refresh_findings
from dockd.ingest import IngestContext
from dockd.registry import DriverRegistry
from dockd.simulation import open_simulation
from dockd.supervisor import HEALTH_WORKER, Supervisor

SERIAL = "NC-LATE"


def _transfer_started(catalog: Catalog) -> bool:
    return any(e.kind == "transfer_started" for e in catalog.events(camera=SERIAL))


def test_a_camera_docked_during_a_slow_judgement_starts_its_transfer_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor_module, "HEALTH_EVERY_S", 0.0)  # a judgement due at once
    env = make_env(tmp_path, scenario_text=scenario_toml([{
        "serial": SERIAL, "slot": 2, "dock_at_s": 1.5,  # docks after the judgement began
        "recording": [recording("LATE_0001.MP4", 3 << 20, seed=5)]}]))
    config = load_config(env.config)
    catalog = Catalog.open(config.catalog.url)
    events: queue.Queue[DeviceEvent] = queue.Queue()
    sim = open_simulation(env.scenario, events.put, state_dir=env.sim_state, reset=True)
    ctx = IngestContext(config=config, catalog=catalog, recipients=check_for_ingest(config),
                        dock_name=sim.scenario.dock.name)
    opener = DeviceOpener.from_registry(DriverRegistry.discover(), tmp_path / "drivers.d",
                                        sim.backend)
    sup = Supervisor(ctx, opener, timeout_s=config.ingest.transfer_timeout_s, once=True,
                     more_to_come=sim.dock.pending, events=events)
    seen: dict[str, object] = {}

    def slow_health() -> None:
        refresh_findings(catalog, config, now=catalog.now())
        if seen:
            return
        seen["thread"] = threading.current_thread().name
        seen["before"] = _transfer_started(catalog)
        give_up = time.monotonic() + 60
        while not _transfer_started(catalog) and time.monotonic() < give_up:
            time.sleep(0.02)
        seen["during"] = _transfer_started(catalog)

    sup.health = slow_health
    try:
        sim.dock.start()
        state = sup.run()
    finally:
        sim.close()
    # the judgement ran on its own thread, began before the camera docked, and the camera's
    # transfer started while it was still running
    assert seen == {"thread": HEALTH_WORKER, "before": False, "during": True}
    assert [r.complete for r in state.reports] == [True]
    assert catalog.recordings()[0].status == "deleted_from_camera"
    catalog.close()
