"""`dockd run`: wire config, drivers, catalog, watcher and supervisor together."""

from __future__ import annotations

import queue
import signal
import socket
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from dockd.catalog import Catalog
from dockd.config import check_for_ingest, load_config
from dockd.crypto.keys import parse_recipient
from dockd.devices import DeviceOpener
from dockd.errors import IncompleteIngest
from dockd.events import DeviceEvent
from dockd.ingest import IngestContext
from dockd.logs import configure_logging
from dockd.registry import DriverRegistry
from dockd.store import clean_partials, list_partials, sidecar_path
from dockd.supervisor import Supervisor

log = structlog.get_logger(__name__)


def run_daemon(config_path: Path | None, *, scenario: Path | None, sim_state: Path | None,
               sim_reset: bool, once: bool) -> None:
    config = load_config(config_path)
    check_for_ingest(config)
    configure_logging(config.log.format, config.log.level)
    registry = DriverRegistry.discover()
    recipients = [parse_recipient(r) for r in config.encryption.recipients]
    catalog = Catalog.open(config.catalog.url)
    _clean_unresumable(config.storage.path)

    stop = threading.Event()
    ctx = IngestContext(config=config, catalog=catalog, recipients=recipients,
                        dock_name=socket.gethostname(), stop=stop)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sim: Any = None
    watcher: Any = None
    backend: Any = None
    events: queue.Queue[DeviceEvent] = queue.Queue()
    try:
        if scenario is not None:
            from dockd.simulate import open_simulation  # noqa: PLC0415

            sim = open_simulation(scenario, registry, events.put,
                                  state_dir=sim_state, reset=sim_reset)
            ctx.dock_name = sim.scenario.dock.name
            backend = sim.backend
        opener = DeviceOpener.from_registry(registry, config.drivers.dropin_dir, backend)
        supervisor = Supervisor(
            ctx, opener, timeout_s=config.ingest.transfer_timeout_s, once=once,
            more_to_come=(sim.dock.pending if sim is not None else lambda: False), events=events)
        log.info("dockd_started", drivers=sorted(registry.drivers), simulate=str(scenario or ""),
                 storage=str(config.storage.path), once=once)
        if sim is not None:
            sim.dock.start()
        else:
            from dockd.watch import UdevWatcher  # noqa: PLC0415

            watcher = UdevWatcher(supervisor.on_event)
            watcher.start()
        state = supervisor.run()
    finally:
        if watcher is not None:
            watcher.stop()
        if sim is not None:
            sim.close()
        catalog.close()
    incomplete = [r for r in state.reports if not r.complete]
    log.info("dockd_stopped", sessions=len(state.reports), incomplete=len(incomplete),
             broken=len(state.broken), interrupted=stop.is_set())
    if once and (incomplete or state.broken):
        what = [f"{r.serial} slot {r.slot}: {r.outcome}, {len(r.failures)} not stored"
                for r in incomplete] + [f"{k}: {v}" for k, v in state.broken.items()]
        raise IncompleteIngest("not every recording is stored and verified: " + "; ".join(what))


def _clean_unresumable(root: Path) -> None:
    """Partials with a resume sidecar are kept for the next attempt; the rest can never
    complete (they were cut before their first checkpoint) and are removed."""
    if not root.exists():
        return
    keep = [p for p in list_partials(root) if sidecar_path(p).exists()]
    for path in clean_partials(root, keep=keep):
        log.info("partial_removed", path=str(path), reason="no resume checkpoint")
