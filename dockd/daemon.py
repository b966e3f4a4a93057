"""`dockd run`: wire config, drivers, catalog, watcher and supervisor together."""

from __future__ import annotations

import json
import queue
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from dockd.anchors import append_anchor, read_anchors
from dockd.catalog import Catalog, EventKind
from dockd.catalog.live import close_stale
from dockd.charge_watch import ChargeWatch
from dockd.config import check_for_ingest, load_config
from dockd.config_watch import ConfigWatcher
from dockd.console import LiveConsole
from dockd.custody import partial_in_custody
from dockd.devices import DeviceOpener
from dockd.errors import ConfigError, DockdError, IncompleteIngest
from dockd.events import DeviceEvent
from dockd.flags import Flag, SignalFlags
from dockd.health.service import refresh_findings
from dockd.ingest import IngestContext, Progress, ProgressFn, SessionReport
from dockd.logs import CurrentStdout, configure_logging
from dockd.matching import Matcher
from dockd.metrics import MetricsServer, start_metrics
from dockd.registry import DriverRegistry
from dockd.reload import Reloader
from dockd.retention import sweep_local
from dockd.sdnotify import Heartbeat, Liveness, Notifier
from dockd.simulation import open_simulation
from dockd.store import (
    STORE_MARKER,
    clean_partials,
    ensure_dir,
    list_partials,
    sidecar_path,
    write_atomic,
)
from dockd.supervisor import SWEEP_WORKER, Supervisor

log = structlog.get_logger(__name__)
#: how long a silent worker counts as stalled for the metrics when systemd set no watchdog
#: (the unit's WatchdogSec)
WATCHDOG_FALLBACK_S = 30.0


def run_daemon(config_path: Path | None, *, scenario: Path | None, sim_state: Path | None,
               sim_reset: bool, once: bool, signals: SignalFlags | None = None) -> None:
    # signals are flags (dockd/flags.py): handlers store one attribute and return; the main
    # loop logs, tells systemd and stops. `dockd run` installs them before importing this
    # module, so a SIGTERM during start-up is a clean stop too.
    signals = signals or SignalFlags().install()
    stop_requested, reload_requested = signals.stop, signals.reload
    config = load_config(config_path)
    recipients = check_for_ingest(config)
    # a person at a terminal gets the live per-camera view; journald gets JSON lines
    live = sys.stdout.isatty() and config.log.format != "json"
    configure_logging(config.log.format, config.log.level,
                      stream=CurrentStdout() if live else None)
    registry = DriverRegistry.discover()
    catalog = Catalog.open(config.catalog.url, migrate_in_child=True, host=config.host_id)
    mode = "simulated" if scenario is not None else "real"
    try:
        guard_evidence_mode(catalog, config.storage.path, mode)
    except DockdError:
        catalog.close()
        raise
    if stop_requested.is_set():  # asked to stop while the catalog opened: nothing started
        catalog.close()
        signum = stop_requested.value
        log.info("stopping", signal=signal.Signals(signum).name if isinstance(signum, int)
                 else str(signum), during="start-up")
        log.info("dockd_stopped", sessions=0, incomplete=0, broken=0, interrupted=True,
                 during="start-up")
        _ignore_late_signals()
        return
    _clean_unresumable(config.storage.path, catalog)
    stale_sessions, stale_attempts = close_stale(catalog)
    if stale_sessions or stale_attempts:
        log.warning("previous_run_did_not_stop_cleanly", sessions_closed=stale_sessions,
                    attempts_closed=stale_attempts)

    _check_witness(catalog, config.storage.path)
    started_at_head = catalog.head()
    stop = Flag()
    # the host's docks are named after its host id: two dock PCs on one catalog whose
    # hostnames agree (cloned images) still keep apart whose sessions are whose
    ctx = IngestContext(config=config, catalog=catalog, recipients=recipients,
                        dock_name=config.host_id, stop=stop)
    notifier, liveness = Notifier(), Liveness()
    ctx.on_progress = _chain(ctx.on_progress, liveness.on_progress)  # progress = liveness

    def announce_stop() -> None:
        signum = stop_requested.value
        log.info("stopping", signal=signal.Signals(signum).name if isinstance(signum, int)
                 else str(signum))
        notifier.stopping("stopping: checkpointing transfers in progress")

    sim: Any = None
    watchers: list[Any] = []
    backend: Any = None
    events: queue.Queue[DeviceEvent] = queue.Queue()
    config_watch: ConfigWatcher | None = None
    metrics: MetricsServer | None = None
    try:
        if scenario is not None:
            sim = open_simulation(scenario, events.put, state_dir=sim_state, reset=sim_reset)
            ctx.dock_name = sim.scenario.dock.name
            backend = sim.backend
        opener = DeviceOpener.from_registry(registry, config.drivers.dropin_dir, backend)
        supervisor = Supervisor(
            ctx, opener, timeout_s=config.ingest.transfer_timeout_s, once=once,
            more_to_come=(sim.dock.pending if sim is not None else lambda: False), events=events,
            liveness=liveness)
        supervisor.health = lambda: refresh_findings(catalog, ctx.config, now=catalog.now())
        if not once:  # cameras that stay docked: their charging is watched (docs/health.md)
            supervisor.charge_watch = ChargeWatch(
                ctx, opener, timeout_s=config.ingest.transfer_timeout_s)
        if ctx.config.retention.default_days or ctx.config.retention.categories:
            supervisor.sweep = lambda: sweep_local(
                catalog, ctx.config, catalog.now(), stop=stop,
                beat=lambda: liveness.beat(SWEEP_WORKER, "sweeping"))
            supervisor.sweep_every_s = ctx.config.retention.sweep_every_h * 3600
        supervisor.reload_requested = reload_requested
        supervisor.stop_requested, supervisor.on_stop_requested = stop_requested, announce_stop
        config_watch = ConfigWatcher(config.source, config.drivers.dropin_dir, reload_requested)
        config_watch.start()
        supervisor.reload = Reloader(config_path, ctx, registry, backend,
                                     CurrentStdout() if live else None).reload
        # READY=1 once the start-up enumeration queued below has been dispatched
        supervisor.heartbeat = Heartbeat(notifier, liveness, settled=events.empty,
                                         status=lambda: _status_line(supervisor, liveness))
        claim_evidence_mode(catalog, config.storage.path, mode)
        # Prometheus endpoint ([metrics] listen; a change takes effect at the next start)
        stalled_after = notifier.watchdog_interval() or WATCHDOG_FALLBACK_S
        metrics = start_metrics(catalog, config, docked=supervisor.docked_count,
                                stalled_workers=lambda: len(liveness.stale(stalled_after)))
        log.info("dockd_started", drivers=sorted(registry.drivers), simulate=str(scenario or ""),
                 storage=str(config.storage.path), once=once)
        if sim is not None:
            sim.dock.start()
        else:
            watchers = start_watchers(opener.matcher, supervisor.on_event)
        if live:
            with LiveConsole() as console:
                ctx.on_progress = _chain(ctx.on_progress, console.on_progress)
                state = supervisor.run()
        else:
            state = supervisor.run()
    finally:
        for watcher in watchers:
            watcher.stop()
        if config_watch is not None:
            config_watch.stop()
        if metrics is not None:
            metrics.stop()
        if sim is not None:
            sim.close()
        _witness(catalog, config.storage.path, started_at_head)
        catalog.close()
        notifier.close()
        _ignore_late_signals()
    incomplete = [r for r in _latest_per_camera(state.reports) if not r.complete]
    interrupted = stop.is_set() or stop_requested.is_set()
    log.info("dockd_stopped", sessions=len(state.reports), incomplete=len(incomplete),
             broken=len(state.broken), interrupted=interrupted)
    # a stop asked for by a signal is a clean stop (exit 0, as systemd expects): transfers
    # were checkpointed and resume at the next start; the log's dock_session lines say which
    if once and not interrupted and (incomplete or state.broken):
        what = [f"{r.serial} slot {r.slot}: {r.summary()}"
                for r in incomplete] + [f"{k}: {v}" for k, v in state.broken.items()]
        raise IncompleteIngest("not every recording is stored and verified: " + "; ".join(what)
                               + " (the reasons: dockctl recordings, or the dock_session lines)")


def start_watchers(matcher: Matcher, on_event: Callable[[DeviceEvent], None]) -> list[Any]:
    """The watchers the match rules call for: udev for `usb`, the mount table for `volume`,
    the export folders the `folder` rules name. Each enumerates what is there first."""
    started: list[Any] = []
    buses = matcher.buses()
    if "usb" in buses:
        from dockd.watch import UdevWatcher  # noqa: PLC0415 - pyudev only when used

        started.append(UdevWatcher(on_event))
    if "volume" in buses:
        from dockd.watch_mounts import MountWatcher  # noqa: PLC0415

        started.append(MountWatcher(on_event))
    if "folder" in buses:
        from dockd.watch_folders import (  # noqa: PLC0415
            DEFAULT_SETTLE_S,
            FolderWatcher,
            WatchedRoot,
        )

        roots = {rule.root: WatchedRoot(Path(rule.root), float(rule.options.get(
            "settle_s", DEFAULT_SETTLE_S))) for rule in matcher.rules if rule.root}
        started.append(FolderWatcher(on_event, roots.values()))
    for watcher in started:
        watcher.start()
    return started


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


def guard_evidence_mode(catalog: Catalog, root: Path, mode: str) -> None:
    """A simulated run never writes into a store or catalog that holds real evidence, and a
    real run never into one that holds simulated recordings: checked before anything is
    written (one line, exit 2). `claim_evidence_mode` marks them once the run starts."""
    claimed = catalog.setting("mode")
    if claimed not in (None, mode):
        raise ConfigError("catalog", "mode", f"the catalog holds {claimed} recordings: a "
                          f"{mode} run refuses it (give this run a catalog of its own)")
    stored = _store_mode(root)
    if stored not in (None, mode):
        raise ConfigError(root, None, f"the store holds {stored} recordings: a {mode} run "
                          "refuses it (give this run a store of its own)")


def claim_evidence_mode(catalog: Catalog, root: Path, mode: str) -> None:
    """The first run of a catalog and of a store claims them for its mode (the catalog's
    `mode` setting, the store's `.dockd-store` file)."""
    claimed = catalog.claim_setting("mode", mode)
    if claimed != mode:  # another process claimed it meanwhile
        raise ConfigError("catalog", "mode", f"the catalog holds {claimed} recordings")
    if _store_mode(root) is None:
        try:
            ensure_dir(root)
            write_atomic(root / STORE_MARKER, json.dumps({"mode": mode}).encode())
        except (OSError, DockdError) as exc:
            raise ConfigError(root, None, f"cannot mark the store: {exc}") from None


def _store_mode(root: Path) -> str | None:
    marker = root / STORE_MARKER
    try:
        if not marker.is_file():
            return None
        mode = json.loads(marker.read_text()).get("mode")
    except (OSError, ValueError, AttributeError):
        raise ConfigError(marker, None, "unreadable store marker: is this a dockd store?") \
            from None
    return str(mode) if mode is not None else None


def _check_witness(catalog: Catalog, root: Path) -> None:
    """At start: does the chain still hold the last head the anchor file witnessed? A
    catalog restored from an older backup, or a cut tail, says so here (and in the chain)."""
    anchors, problems = read_anchors(root)
    for problem in problems:
        log.warning("audit_anchor_unreadable", error=problem)
    if not anchors:
        return
    last = max(anchors, key=lambda a: a.seq)
    found = catalog.verify_chain_at([(last.seq, last.hash)])
    if found:
        seq, head = catalog.head()
        reason = "; ".join(p.message for p in found)
        log.error("audit_chain_disagrees_with_witness", anchor_seq=last.seq,
                  anchor_hash=last.hash, audit_seq=seq, audit_head=head, error=reason,
                  advice="the catalog was restored from an older backup or its tail was cut; "
                         "dockctl verify names what differs")
        catalog.record_event(EventKind.WITNESS_DISAGREES, details={
            "anchor_seq": last.seq, "anchor_hash": last.hash, "source": last.source,
            "head_seq": seq, "head_hash": head, "problems": reason})


def _ignore_late_signals() -> None:
    """The work is done and we are leaving: a late SIGHUP/SIGTERM (a storm's second one) must
    not turn a clean exit into death by signal while the interpreter shuts down (its
    finalisation puts back the default disposition of every signal Python handled)."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _witness(catalog: Catalog, root: Path, at_start: tuple[int, str]) -> None:
    """At stop: the head goes to the anchor file (and the log), if this run moved it."""
    try:
        seq, head = catalog.durable_head()
        if (seq, head) == at_start:
            return
        append_anchor(root, seq, head)
    except DockdError as exc:
        log.warning("audit_anchor_not_written", error=str(exc))
        return
    log.info("audit_head", audit_seq=seq, audit_head=head)


def _clean_unresumable(root: Path, catalog: Catalog) -> None:
    """Partials with a resume sidecar are kept for the next attempt; the rest can never
    complete (they were cut before their first checkpoint) and are removed. So is a
    partial whose recording reached custody meanwhile (another host of a shared catalog
    stored it, or this one did from the camera's next dock): it would never be resumed,
    and its sidecar holds a file key. No writer of this host runs yet, so none is live."""
    found = list_partials(root)  # one walk of the store: sidecars are in it too
    listed = set(found)
    keep, moot = [], {}
    for p in found:
        if sidecar_path(p) not in listed:
            continue
        done = partial_in_custody(root, catalog, p)
        if done is None:
            keep.append(p)
        else:
            moot[p] = moot[sidecar_path(p)] = done
    for path in clean_partials(root, keep=keep, found=found):
        if path in moot:
            log.info("partial_removed", path=str(path), recording_id=moot[path].id,
                     reason=f"its recording is already {moot[path].status.value}")
        else:
            log.info("partial_removed", path=str(path), reason="no resume checkpoint")
