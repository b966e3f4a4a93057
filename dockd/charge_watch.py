"""Charging watched while docked: a camera that stays on the dock after its ingest has its
battery read every `health.charge_poll_s`, so "not charging on this dock" is said while it
is still there (docs/health.md), not a shift later from its log.

The supervisor owns the schedule (dockd/supervisor.py): it asks `due()` which docked
devices want a reading — never one with a session running or waiting to run — and runs
`poll(ref)` in its worker pool, so a reading never holds the USB device while a session
wants it. A poll opens a short session through the same opener as ingest, asks who the
camera is and how its battery is, and closes: no recording is touched. Time is the
catalog's (`catalog.now()`), so a simulated calendar runs the watch too.

Knows no vendor: it drives a `CameraSession` like the ingest does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from dockd.devices import DeviceOpener
from dockd.errors import DeviceError, DeviceGone, DockdError, NoDriver, Unsupported
from dockd.events import AnyRef
from dockd.health.docked import DOCKED_HISTORY, current_stays, judge_stay
from dockd.ingest import IngestContext, Progress, SessionReport

log = structlog.get_logger(__name__)

#: a camera's readings older than this are forgotten when it leaves (only the current stay is
#: judged or drawn)
KEEP_READINGS = timedelta(days=7)
#: the live view's and the watchdog's name for the watch's readings
WORKER = "charge-watch"


@dataclass
class _Watched:
    serial: str
    session_id: int | None
    #: how the camera's last session ended (the live view keeps saying it)
    outcome: str
    last_poll: datetime | None = None
    #: the charge state last judged ("not charging" raises a finding)
    state: str | None = None


class ChargeWatch:
    def __init__(self, ctx: IngestContext, opener: DeviceOpener, *, timeout_s: float) -> None:
        self.ctx = ctx
        self.opener = opener
        self.timeout_s = timeout_s
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()

    @property
    def interval_s(self) -> float:
        return self.ctx.config.health.charge_poll_s  # a reload may change it

    def after_session(self, ref: AnyRef, report: SessionReport) -> None:
        """A session ended with the camera (as far as it knows) still docked: watch it."""
        if self.interval_s <= 0 or report.outcome in ("camera_gone", "interrupted"):
            return
        sessions = self.ctx.catalog.sessions(camera=report.serial)
        with self._lock:
            self._watched[ref.key] = _Watched(report.serial,
                                              sessions[-1].id if sessions else None,
                                              report.outcome)

    def due(self, docked: Mapping[str, AnyRef], busy: set[str]) -> list[AnyRef]:
        """Docked devices whose next reading is due; `busy`: keys with a session running or
        waiting to run (they are left alone)."""
        if self.interval_s <= 0:
            return []
        now = self.ctx.catalog.now()
        every = timedelta(seconds=self.interval_s)
        out = []
        with self._lock:
            for key in [k for k in self._watched if k not in docked]:
                del self._watched[key]  # left without our noticing (a stop, a restart)
            for key, w in self._watched.items():
                if key not in busy and (w.last_poll is None or now - w.last_poll >= every):
                    w.last_poll = now
                    out.append(docked[key])
        return out

    def poll(self, ref: AnyRef) -> bool:
        """Read the battery once; True when the camera's charge verdict changed (the fleet's
        findings should be judged again)."""
        with self._lock:
            w = self._watched.get(ref.key)
        if w is None:
            return False
        bound = log.bind(slot=ref.slot, port=ref.port_path, serial=w.serial)
        try:
            _matched, session = self.opener.open(ref, timeout_s=self.timeout_s)
        except DeviceGone:
            return False  # it is leaving: the watcher's remove event says so
        except (DeviceError, NoDriver) as exc:
            bound.warning("charge_reading_failed", error_kind=getattr(exc, "kind", "driver"),
                          error=str(exc))
            return False
        try:
            serial = session.identity().serial
            battery = session.battery()
        except Unsupported:
            bound.info("charge_watch_unsupported", reason="the camera does not tell its battery")
            self._forget(ref.key)
            return False
        except DeviceError as exc:
            if not isinstance(exc, DeviceGone):
                bound.warning("charge_reading_failed", error_kind=exc.kind, error=str(exc))
            return False
        finally:
            with contextlib.suppress(DockdError):
                session.close()
        if serial != w.serial:  # another camera in the slot: its own session will come
            self._forget(ref.key)
            return False
        catalog = self.ctx.catalog
        at = catalog.now()
        catalog.health.record_docked_charge(w.serial, session_id=w.session_id, at=at,
                                            battery=battery)
        state, before = self._state(w, at), w.state
        if state != before:
            bound.info("charge_state", state=state, soc_percent=battery.soc_percent,
                       current_ma=battery.current_ma, charging=battery.charging.value)
        w.state = state
        if self.ctx.on_progress is not None:  # the live view: its charge on the dock
            self.ctx.on_progress(Progress(
                slot=ref.slot, worker=WORKER, serial=w.serial,
                battery_percent=battery.soc_percent,
                state=f"{w.outcome} · on dock: {state}"))
        # only "not charging" raises a finding: re-judge the fleet when it comes or goes
        return state != before and "not charging" in (state, before)

    def left(self, ref: AnyRef) -> bool:
        """The device left: mark the end of its stay (a "not charging" finding clears)."""
        w = self._forget(ref.key)
        if w is None or w.last_poll is None:
            return False
        catalog = self.ctx.catalog
        now = catalog.now()
        try:
            catalog.health.record_docked_charge(w.serial, session_id=w.session_id, at=now,
                                                battery=None, docked=False)
            catalog.health.prune_docked_charge(w.serial, before=now - KEEP_READINGS)
        except DockdError as exc:
            log.error("charge_watch_not_recorded", serial=w.serial, error=str(exc))
            return False
        return True

    def _forget(self, key: str) -> _Watched | None:
        with self._lock:
            return self._watched.pop(key, None)

    def _state(self, w: _Watched, now: datetime) -> str:
        health = self.ctx.catalog.health
        rows = health.docked_charge(w.serial, since=now - DOCKED_HISTORY, until=now)
        caps = {w.serial: health.captures(w.serial, since=now - DOCKED_HISTORY)}
        stay = current_stays(rows, caps).get(w.serial)
        if stay is None:
            return "unknown"
        return judge_stay(stay, self.ctx.config.health, now=now).state
