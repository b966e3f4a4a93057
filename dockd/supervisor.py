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
from dockd.devices import DeviceOpener
from dockd.errors import DeviceError, DeviceGone, DockdError, NoDriver
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
        #: docked devices that changed while their session ran: looked at again after it
        self._rescan: set[str] = set()
        #: re-evaluates health findings; None = no health checks (tests, probe)
        self.health: Callable[[], object] | None = None
        #: set by a worker when its session ended; the main loop re-judges the fleet once
        #: for however many sessions ended meanwhile (a shift change docks many at once)
        self._health_due = threading.Event()
        self._health_checked = time.monotonic()
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
                if (self._health_due.is_set()
                        or time.monotonic() - self._health_checked > HEALTH_EVERY_S):
                    self.refresh_health()
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
            if self._health_due.is_set():
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

    def _all_done(self) -> bool:
        return (self.events.empty() and not self._active and not self.more_to_come())

    def docked_count(self) -> int:
        return len(self._docked)

    def _dispatch(self, event: DeviceEvent) -> None:
        ref = event.device
        if event.action is Action.REMOVE:
            self._rescan.discard(ref.key)
            if self._docked.pop(ref.key, None) is not None:
                log.info("camera_undocked", slot=ref.slot, port=ref.port_path)
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

    def refresh_health(self) -> None:
        """Re-judge the fleet (after sessions end, and every HEALTH_EVERY_S, so an overdue
        camera is raised without a dock), on the main loop only. Health never stands in the
        way of ingest."""
        self._health_checked = time.monotonic()
        self._health_due.clear()
        if self.health is None:
            return
        try:
            self.health()
        except DockdError as exc:
            log.error("health_refresh_failed", error=str(exc))

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
        except DockdError as exc:
            self._broken(ref, f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            self.state.reports.append(report)
            if report.waiting_for_space and not self.once:
                self._space_wait[ref.key] = ref
        self._health_due.set()

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
