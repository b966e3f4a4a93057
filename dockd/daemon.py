"""`dockd run`: wire config, drivers, catalog, watcher and supervisor together."""

from __future__ import annotations

import queue
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from dockd.catalog import Catalog
from dockd.catalog.live import close_stale
from dockd.config import check_for_ingest, load_config
from dockd.config_watch import ConfigWatcher
from dockd.console import LiveConsole
from dockd.devices import DeviceOpener
from dockd.errors import IncompleteIngest
from dockd.events import DeviceEvent
from dockd.health.service import refresh_findings
from dockd.ingest import IngestContext, Progress, ProgressFn, SessionReport
from dockd.logs import CurrentStdout, configure_logging
from dockd.registry import DriverRegistry
from dockd.reload import Reloader
from dockd.sdnotify import Heartbeat, Liveness, Notifier
from dockd.store import clean_partials, list_partials, sidecar_path
from dockd.supervisor import Supervisor

log = structlog.get_logger(__name__)


def run_daemon(config_path: Path | None, *, scenario: Path | None, sim_state: Path | None,
               sim_reset: bool, once: bool) -> None:
    config = load_config(config_path)
    recipients = check_for_ingest(config)
    # a person at a terminal gets the live per-camera view; journald gets JSON lines
    live = sys.stdout.isatty() and config.log.format != "json"
    configure_logging(config.log.format, config.log.level,
                      stream=CurrentStdout() if live else None)
    registry = DriverRegistry.discover()
    catalog = Catalog.open(config.catalog.url, migrate_in_child=True)
    _clean_unresumable(config.storage.path)
    stale_sessions, stale_attempts = close_stale(catalog)
    if stale_sessions or stale_attempts:
        log.warning("previous_run_did_not_stop_cleanly", sessions_closed=stale_sessions,
                    attempts_closed=stale_attempts)

    stop = threading.Event()
    ctx = IngestContext(config=config, catalog=catalog, recipients=recipients,
                        dock_name=socket.gethostname(), stop=stop)
    notifier, liveness = Notifier(), Liveness()
    ctx.on_progress = _chain(ctx.on_progress, liveness.on_progress)  # progress = liveness

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()
        notifier.stopping("stopping: checkpointing transfers in progress")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    reload_requested = threading.Event()
    signal.signal(signal.SIGHUP, lambda _s, _f: reload_requested.set())

    sim: Any = None
    watcher: Any = None
    backend: Any = None
    events: queue.Queue[DeviceEvent] = queue.Queue()
    config_watch: ConfigWatcher | None = None
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
            more_to_come=(sim.dock.pending if sim is not None else lambda: False), events=events,
            liveness=liveness)
        supervisor.health = lambda: refresh_findings(catalog, ctx.config, now=catalog.now())
        supervisor.reload_requested = reload_requested
        config_watch = ConfigWatcher(config.source, config.drivers.dropin_dir, reload_requested)
        config_watch.start()
        supervisor.reload = Reloader(config_path, ctx, registry, backend,
                                     CurrentStdout() if live else None).reload
        # READY=1 once the start-up enumeration queued below has been dispatched
        supervisor.heartbeat = Heartbeat(notifier, liveness, settled=events.empty,
                                         status=lambda: _status_line(supervisor, liveness))
        log.info("dockd_started", drivers=sorted(registry.drivers), simulate=str(scenario or ""),
                 storage=str(config.storage.path), once=once)
        if sim is not None:
            sim.dock.start()
        else:
            from dockd.watch import UdevWatcher  # noqa: PLC0415

            watcher = UdevWatcher(supervisor.on_event)
            watcher.start()
        if live:
            with LiveConsole() as console:
                ctx.on_progress = _chain(ctx.on_progress, console.on_progress)
                state = supervisor.run()
        else:
            state = supervisor.run()
    finally:
        if watcher is not None:
            watcher.stop()
        if config_watch is not None:
            config_watch.stop()
        if sim is not None:
            sim.close()
        catalog.close()
        notifier.close()
        # the work is done and we are leaving: a late SIGHUP/SIGTERM must not turn a clean
        # exit into death by signal while the interpreter shuts down
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    incomplete = [r for r in _latest_per_camera(state.reports) if not r.complete]
    log.info("dockd_stopped", sessions=len(state.reports), incomplete=len(incomplete),
             broken=len(state.broken), interrupted=stop.is_set())
    # a stop asked for by a signal is a clean stop (exit 0, as systemd expects): transfers
    # were checkpointed and resume at the next start; the log's dock_session lines say which
    if once and not stop.is_set() and (incomplete or state.broken):
        what = [f"{r.serial} slot {r.slot}: {r.outcome}, {len(r.failures)} not stored"
                for r in incomplete] + [f"{k}: {v}" for k, v in state.broken.items()]
        raise IncompleteIngest("not every recording is stored and verified: " + "; ".join(what)
                               + " (the reasons: dockctl recordings, or the dock_session lines)")


def _status_line(supervisor: Supervisor, liveness: Liveness) -> str:
    """What `systemctl status dockd` shows, e.g. "3 cameras docked, 1 transferring"."""
    docked = supervisor.docked_count()
    return (f"{docked} camera{'' if docked == 1 else 's'} docked, "
            f"{liveness.count('transferring')} transferring")


def _chain(*hooks: ProgressFn | None) -> ProgressFn:
    live = [h for h in hooks if h is not None]

    def call(progress: Progress) -> None:
        for hook in live:
            hook(progress)

    return call


def _latest_per_camera(reports: list[SessionReport]) -> list[SessionReport]:
    """A camera docked again (after an unplug) has a later session that lists everything
    still on it; that session's reconciliation supersedes the earlier, cut-short one.
    Reports are in order of completion."""
    latest: dict[tuple[str, int], SessionReport] = {}
    for report in reports:
        latest[(report.serial, report.slot)] = report
    return list(latest.values())


def _clean_unresumable(root: Path) -> None:
    """Partials with a resume sidecar are kept for the next attempt; the rest can never
    complete (they were cut before their first checkpoint) and are removed."""
    found = list_partials(root)  # one walk of the store: sidecars are in it too
    listed = set(found)
    keep = [p for p in found if sidecar_path(p) in listed]
    for path in clean_partials(root, keep=keep, found=found):
        log.info("partial_removed", path=str(path), reason="no resume checkpoint")
