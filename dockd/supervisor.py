"""The daemon's main loop: device events in, one worker per docked camera, signals handled.

The watcher callbacks only enqueue (they run on watcher threads); this loop owns the state.
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog

from dockd.catalog.types import EventKind
from dockd.charge_watch import WORKER as CHARGE_WORKER
from dockd.charge_watch import ChargeWatch
from dockd.devices import DeviceOpener
from dockd.errors import CatalogUnavailable, DeviceError, DeviceGone, DockdError, NoDriver
from dockd.events import Action, AnyRef, DeviceEvent
from dockd.flags import Flag
from dockd.ingest import IngestContext, SessionReport, run_dock_session
from dockd.sdnotify import Liveness

log = structlog.get_logger(__name__)

#: how often cameras waiting for store space look again, and how much room must have returned
SPACE_CHECK_S = 10.0
SPACE_MARGIN = 64 << 20
#: how often health findings are re-judged without a dock (overdue cameras, storage)
HEALTH_EVERY_S = 3600.0
#: the retention sweep's name among the workers the watchdog watches
SWEEP_WORKER = "retention-sweep"
#: a session the catalog cut short (PostgreSQL restarted or unreachable) starts again after
#: this pause, doubled at each failure up to CATALOG_RETRY_MAX_S; --once gives up on a
#: camera after CATALOG_RETRIES_ONCE tries (the camera keeps everything meanwhile)
CATALOG_RETRY_S = 1.0
CATALOG_RETRY_MAX_S = 60.0
CATALOG_RETRIES_ONCE = 4
#: the thread that re-judges health findings
HEALTH_WORKER = "health"


@dataclass
class SupervisorState:
    """What has happened so far; read by --once, the console and the exit code."""

    reports: list[SessionReport] = field(default_factory=list)
    #: sessions that could not even start (identify failed, no driver, a driver bug)
    broken: dict[str, str] = field(default_factory=dict)


class Supervisor:
    def __init__(self, ctx: IngestContext, opener: DeviceOpener, *,
                 timeout_s: float, once: bool = False,
                 more_to_come: Callable[[], bool] = lambda: False,
                 heartbeat: Callable[[], None] | None = None,
                 events: queue.Queue[DeviceEvent] | None = None,
                 liveness: Liveness | None = None) -> None:
        self.ctx = ctx
        self.opener = opener
        self.timeout_s = timeout_s
        self.once = once
        #: for --once under simulation: cameras the scenario will still dock
        self.more_to_come = more_to_come
        self.heartbeat = heartbeat
        #: SIGHUP sets the flag; the main loop (not the signal handler) calls `reload`
        self.reload_requested = Flag()
        #: set by the SIGTERM/SIGINT handler (a flag only: dockd/flags.py); the main loop
        #: says so in the log and to systemd, then stops
        self.stop_requested: Flag | None = None
        self.on_stop_requested: Callable[[], None] | None = None
        self.reload: Callable[[Supervisor], object] | None = None
        #: workers register here so the watchdog can tell a stuck one (dockd/sdnotify.py)
        self.liveness = liveness if liveness is not None else Liveness()
        self.events: queue.Queue[DeviceEvent] = events if events is not None else queue.Queue()
        self.state = SupervisorState()
        self._pool = ThreadPoolExecutor(ctx.config.ingest.max_parallel_cameras,
                                        thread_name_prefix="camera")
        self._active: dict[str, Future[None]] = {}
        self._docked: dict[str, AnyRef] = {}
        self._lock = threading.Lock()
        self._space_wait: dict[str, AnyRef] = {}
        #: cameras whose session the catalog cut short: (ref, when to start again), and how
        #: many times in a row that happened
        self._catalog_wait: dict[str, tuple[AnyRef, float]] = {}
        self._catalog_failures: dict[str, int] = {}
        #: docked devices that changed while their session ran: looked at again after it
        self._rescan: set[str] = set()
        #: re-evaluates health findings; None = no health checks (tests, probe)
        self.health: Callable[[], object] | None = None
        #: battery readings of cameras that stay docked after their session
        #: (dockd/charge_watch.py); None = not watched (never with --once)
        self.charge_watch: ChargeWatch | None = None
        #: the retention sweep (dockd/retention.py), every `sweep_every_s`; None = none
        self.sweep: Callable[[], object] | None = None
        self.sweep_every_s = 3600.0
        self._swept: float | None = None
        self._sweeper: threading.Thread | None = None
        #: set by a worker when its session ended; the main loop re-judges the fleet once
        #: for however many sessions ended meanwhile (a shift change docks many at once)
        self._health_due = threading.Event()
        self._health_checked = time.monotonic()
        self._judge: threading.Thread | None = None
        self._space_checked = 0.0

    # called from watcher threads: only enqueue
    def on_event(self, event: DeviceEvent) -> None:
        self.events.put(event)

    def run(self) -> SupervisorState:
        """Until stopped (or, with --once, until every camera has been processed)."""
        try:
            while not self.ctx.stop.is_set():
                self._check_stop_request()
                if self.ctx.stop.is_set():
                    break
                try:
                    event = self.events.get(timeout=0.1)
                except queue.Empty:
                    event = None
                if event is not None:
                    self._dispatch(event)
                self._reap()
                self._retry_when_space()
                self._retry_when_catalog()
                self._watch_charging()
                self._health_when_due()
                self._sweep_when_due()
                if self.reload_requested.is_set() and self.reload is not None:
                    self.reload_requested.clear()
                    self.reload(self)
                if self.heartbeat is not None:
                    self.heartbeat()
                if self.once and self._all_done():
                    break
        finally:
            self._await_workers()  # they see ctx.stop and checkpoint
            self._reap()
            if self._judge is not None:
                self._judge.join()
            if self._health_due.is_set():  # no dock can wait for it any more
                self.refresh_health()
        return self.state

    def _check_stop_request(self) -> None:
        """A signal asked to stop: stop the workers, and say so (outside the handler)."""
        if self.stop_requested is not None and self.stop_requested.is_set():
            self.stop_requested.clear()
            first = not self.ctx.stop.is_set()  # a storm of signals is said once
            self.ctx.stop.set()
            if first and self.on_stop_requested is not None:
                self.on_stop_requested()

    def _await_workers(self) -> None:
        """Wait for the camera workers, still noticing a stop asked for meanwhile (a
        SIGTERM while --once waits for its last camera)."""
        while True:
            self._check_stop_request()
            with self._lock:
                running = [f for f in self._active.values() if not f.done()]
            if not running:
                break
            time.sleep(0.05)
        self._pool.shutdown(wait=True)
        if self._sweeper is not None:  # it sees ctx.stop between files
            self._sweeper.join()

    def _all_done(self) -> bool:
        # more_to_come first: the simulated dock queues a camera's ADD before it stops
        # counting it as to come, so asked the other way round a camera docking at that
        # moment was neither (and --once left without it)
        return (not self.more_to_come() and self.events.empty() and not self._active
                and not self._catalog_wait)

    def docked_count(self) -> int:
        return len(self._docked)

    def _dispatch(self, event: DeviceEvent) -> None:
        ref = event.device
        if event.action is Action.REMOVE:
            self._rescan.discard(ref.key)
            if self._docked.pop(ref.key, None) is not None:
                log.info("camera_undocked", slot=ref.slot, port=ref.port_path)
                if self.charge_watch is not None and self.charge_watch.left(ref):
                    self._health_due.set()  # its "not charging here" no longer holds
            return
        if event.action is Action.CHANGE:
            # something new on a docked device (a folder got files): look again, once its
            # current session (if any) has ended
            if ref.key in self._docked:
                if ref.key in self._active:
                    self._rescan.add(ref.key)
                else:
                    self._start(self._docked[ref.key])
            return
        if ref.key in self._docked:
            return  # duplicate add
        if self.opener.match(ref) is None:
            return  # logged once by the opener
        self._docked[ref.key] = ref
        if ref.key not in self._active:
            self._start(ref)

    def _start(self, ref: AnyRef) -> None:
        self._active[ref.key] = self._pool.submit(self._work, ref)

    def _health_when_due(self) -> None:
        """Re-judge the fleet after sessions end, and every HEALTH_EVERY_S (so an overdue
        camera is raised without a dock), in a thread of its own: on a year of a fleet's
        catalog one judgement took 14-15 s, and on the main loop a camera docked meanwhile
        waited that long to start (docs/performance.md). One judgement at a time; sessions
        that end during one make the next one due, which starts when it is done."""
        if self.health is None:
            return
        if not (self._health_due.is_set()
                or time.monotonic() - self._health_checked > HEALTH_EVERY_S):
            return
        if self._judge is not None and self._judge.is_alive():
            return
        self._judge = threading.Thread(target=self._judge_once, name=HEALTH_WORKER,
                                       daemon=True)
        self._judge.start()

    def _judge_once(self) -> None:
        try:
            self.refresh_health()
        except Exception as exc:  # a bug in a judgement: logged in full, ingest carries on
            log.exception("health_refresh_crashed", error=str(exc))

    def refresh_health(self) -> None:
        """Re-judge the fleet now, in the calling thread (the health thread; the main loop
        only once the workers are done). Health never stands in the way of ingest. Not a
        watched worker: a judgement has no progress to beat with, and a slow one must not
        withhold the watchdog."""
        self._health_checked = time.monotonic()
        self._health_due.clear()
        if self.health is None:
            return
        try:
            self.health()
        except DockdError as exc:
            log.error("health_refresh_failed", error=str(exc))

    def _sweep_when_due(self) -> None:
        """The retention sweep: at start, then every sweep_every_s, in a worker thread of
        its own (it re-hashes each file before deleting it: minutes on a big store, which
        must never hold up a dock). One sweep at a time; a failure is logged, never fatal."""
        if self.sweep is None:
            return
        now = time.monotonic()
        if self._swept is not None and now - self._swept < self.sweep_every_s:
            return
        if self._sweeper is not None and self._sweeper.is_alive():
            return
        self._swept = now
        self._sweeper = threading.Thread(target=self._sweep_once, name=SWEEP_WORKER,
                                         daemon=True)
        self._sweeper.start()

    def _sweep_once(self) -> None:
        assert self.sweep is not None
        with self.liveness.working(SWEEP_WORKER):
            try:
                self.sweep()
            except DockdError as exc:
                log.error("retention_sweep_failed", error=str(exc))

    def _retry_when_space(self) -> None:
        """Cameras still docked whose recordings waited for space get a new session once the
        store has room again (checked every SPACE_CHECK_S; ENOSPC is never a busy loop)."""
        now = time.monotonic()
        if not self._space_wait or now - self._space_checked < SPACE_CHECK_S:
            return
        self._space_checked = now
        storage = self.ctx.config.storage
        try:
            free = shutil.disk_usage(storage.path).free
        except OSError:
            return
        if free < (storage.min_free_mib << 20) + SPACE_MARGIN:
            return
        with self._lock:
            waiting, self._space_wait = self._space_wait, {}
        for key, ref in waiting.items():
            if key in self._docked and key not in self._active:
                log.info("store_has_space_again", slot=ref.slot, port=ref.port_path,
                         free_mib=free >> 20)
                self._start(ref)

    def _reap(self) -> None:
        for key, fut in list(self._active.items()):
            if fut.done():
                del self._active[key]
                if key in self._rescan and key in self._docked and not self.ctx.stop.is_set():
                    self._rescan.discard(key)
                    self._start(self._docked[key])

    def _work(self, ref: AnyRef) -> None:
        with self.liveness.working(ref.worker):
            try:
                self._session(ref)
            except Exception as exc:  # a driver or core bug: log it fully, keep the daemon up
                log.exception("dock_session_crashed", slot=ref.slot, port=ref.port_path,
                              error=str(exc))
                self._broken(ref, f"internal error: {type(exc).__name__}: {exc}")

    def _session(self, ref: AnyRef) -> None:
        """One camera, from open to reconciliation; `_work` catches what escapes, so other
        cameras carry on."""
        bound = log.bind(slot=ref.slot, port=ref.port_path)
        try:
            matched, session = self.opener.open(ref, timeout_s=self.timeout_s)
        except DeviceGone as exc:
            bound.info("camera_gone_before_session", error=str(exc))
            return
        except (DeviceError, NoDriver) as exc:
            self._broken(ref, f"cannot open session: {exc}")
            return
        try:
            report = run_dock_session(self.ctx, ref, session, matched.driver.name)
        except CatalogUnavailable as exc:
            self._catalog_failed(ref, exc)
            return
        except DockdError as exc:
            self._broken(ref, f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            self._catalog_failures.pop(ref.key, None)
            self.state.reports.append(report)
            if report.waiting_for_space and not self.once:
                self._space_wait[ref.key] = ref
        if self.charge_watch is not None and not self.once:
            self.charge_watch.after_session(ref, report)
        self._health_due.set()

    def _watch_charging(self) -> None:
        """Cameras that stay docked after their session get a battery reading when due, run
        in the worker pool as the device's one job: never while a session runs or waits to
        run (space, catalog), so a reading never holds a device a session wants."""
        watch = self.charge_watch
        if watch is None or self.once or self.ctx.stop.is_set():
            return
        with self._lock:
            busy = set(self._active) | set(self._space_wait) | set(self._catalog_wait)
        for ref in watch.due(self._docked, busy):
            self._active[ref.key] = self._pool.submit(self._read_charge, ref)

    def _read_charge(self, ref: AnyRef) -> None:
        assert self.charge_watch is not None
        with self.liveness.working(CHARGE_WORKER):
            try:
                if self.charge_watch.poll(ref):
                    self._health_due.set()
            except Exception as exc:  # a bug: logged in full, the dock carries on
                log.exception("charge_reading_crashed", slot=ref.slot, port=ref.port_path,
                              error=str(exc))

    def _catalog_failed(self, ref: AnyRef, exc: CatalogUnavailable) -> None:
        """The catalog dropped out under a session: what it did is in the catalog up to the
        last commit (as after a crash), its partial is kept, nothing was deleted unproven.
        The camera's session starts again by itself once the pause is over."""
        with self._lock:
            failures = self._catalog_failures.get(ref.key, 0) + 1
            self._catalog_failures[ref.key] = failures
        if self.once and failures > CATALOG_RETRIES_ONCE:
            self._broken(ref, f"the catalog failed {failures} times: {exc}")
            return
        pause = min(CATALOG_RETRY_S * 2 ** (failures - 1), CATALOG_RETRY_MAX_S)
        log.error("dock_session_failed", slot=ref.slot, port=ref.port_path, error=str(exc),
                  error_kind="catalog_unavailable", retry_in_s=pause,
                  advice="the camera keeps its recordings; its session starts again by itself")
        with self._lock:
            self._catalog_wait[ref.key] = (ref, time.monotonic() + pause)

    def _retry_when_catalog(self) -> None:
        """Start again the sessions the catalog cut short, once their pause is over (for a
        camera still docked)."""
        if not self._catalog_wait:
            return
        now = time.monotonic()
        with self._lock:
            due = {k: ref for k, (ref, at) in self._catalog_wait.items() if at <= now}
            for key in due:
                del self._catalog_wait[key]
        for key, ref in due.items():
            if key in self._docked and key not in self._active and not self.ctx.stop.is_set():
                log.info("dock_session_retried", slot=ref.slot, port=ref.port_path,
                         after="catalog_unavailable")
                self._start(ref)

    def _broken(self, ref: AnyRef, reason: str) -> None:
        """A camera that could not even be identified or opened: said in the log and in the
        catalog (`camera_refused`), so `dockctl status` shows it too."""
        log.error("dock_session_failed", slot=ref.slot, port=ref.port_path, error=reason)
        with self._lock:
            self.state.broken[f"slot {ref.slot} ({ref.port_path})"] = reason
        try:
            self.ctx.catalog.record_event(EventKind.CAMERA_REFUSED, details={
                "dock": self.ctx.dock_name, "slot": ref.slot, "port": ref.port_path,
                "bus": ref.bus, "device_serial": ref.serial, "reason": reason})
        except DockdError as exc:
            log.error("camera_refusal_not_recorded", slot=ref.slot, error=str(exc))
