"""Charging watched while docked: the battery readings of a camera still on the dock, judged.

After a camera's ingest the daemon keeps reading its battery while it stays on the dock
(`health.charge_poll_s`, dockd/charge_watch.py) into `docked_charge_readings`, and marks the
moment it leaves. This module turns those rows into the current stay on the dock (its
curve, its port), tells whether the camera is still there and watched, and whether it
charges: a camera below FULL_PERCENT that gains less than `min_charge_gain_percent` over
`charge_stall_min` minutes of readings is not charging on that port.

Evidence a verdict needs: readings reaching back a whole window (one at or before the
window's start and the last one), at least MIN_READINGS of them, the last no older than
the watch's staleness limit, and battery temperatures a charger charges at (a battery
docked from a winter patrol, or hot, is held by its charger until it is in range; that
wait is not a fault).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dockd.catalog import Catalog
from dockd.catalog.rows import CaptureRow, DockedChargeRow
from dockd.config import HealthConfig
from dockd.health.transfers import port_name

#: a battery at or above this is (nearly) full: a charger tops it off slowly, no gain needed
FULL_PERCENT = 95.0
#: a verdict needs at least this many readings across the window
MIN_READINGS = 3
#: the daemon no longer watches a stay whose last reading is older than this many poll
#: intervals (and at least STALE_MIN): the daemon stopped, or the camera left unseen
STALE_POLLS = 3
STALE_MIN = timedelta(minutes=5)
#: Li-ion chargers do not charge below this (nor at or above `hot_battery_c`)
CHARGE_MIN_C = 5.0
#: how far back readings are read: the current stay is all that is judged and drawn
DOCKED_HISTORY = timedelta(days=2)


@dataclass(frozen=True)
class DockStay:
    """One camera's latest stay on a dock: its readings, oldest first (the dock capture of
    the session first, when there is one), and when it left (None: still there)."""

    serial: str
    session_id: int | None
    port: str
    readings: tuple[DockedChargeRow, ...]
    left_at: datetime | None

    @property
    def since(self) -> datetime:
        return self.readings[0].at


@dataclass(frozen=True)
class ChargeVerdict:
    #: charging | full | not charging | too cold to charge | too hot to charge | watching
    #: (not a window of readings yet) | unknown (not watched any more) | left
    state: str
    last: DockedChargeRow | None
    #: the evidence of "not charging" (None otherwise)
    stalled: dict[str, Any] | None = None

    @property
    def present(self) -> bool:
        return self.state not in ("left", "unknown")


def capture_reading(cap: CaptureRow, dock: str | None, slot: int | None) -> DockedChargeRow:
    """The battery read at the start of a dock session, as the stay's first reading."""
    return DockedChargeRow(
        camera_serial=cap.camera_serial, session_id=cap.session_id, dock=dock, slot=slot,
        at=cap.at, docked=True, soc_percent=cap.soc_percent, voltage_mv=cap.voltage_mv,
        current_ma=cap.current_ma, temperature_c=cap.temperature_c, charging=cap.charging)


def current_stays(rows: Sequence[DockedChargeRow], captures: dict[str, list[CaptureRow]]
                  ) -> dict[str, DockStay]:
    """Per camera, its latest stay (the readings of its latest watched session)."""
    by_camera: dict[str, list[DockedChargeRow]] = {}
    for r in rows:
        by_camera.setdefault(r.camera_serial, []).append(r)
    stays: dict[str, DockStay] = {}
    for serial, mine in by_camera.items():
        session = mine[-1].session_id
        here = [r for r in mine if r.session_id == session]
        readings = [r for r in here if r.docked]
        left = [r.at for r in here if not r.docked]
        first = here[0]
        cap = next((c for c in reversed(captures.get(serial, []))
                    if session is not None and c.session_id == session
                    and c.soc_percent is not None), None)
        if cap is not None and (not readings or cap.at < readings[0].at):
            readings.insert(0, capture_reading(cap, first.dock, first.slot))
        if not readings:
            continue
        stays[serial] = DockStay(serial, session, port_name(first.dock, first.slot),
                                 tuple(readings), max(left) if left else None)
    return stays


def stale_after(cfg: HealthConfig) -> timedelta:
    return max(STALE_MIN, timedelta(seconds=STALE_POLLS * cfg.charge_poll_s))


def judge_stay(stay: DockStay, cfg: HealthConfig, *, now: datetime) -> ChargeVerdict:
    readings = [r for r in stay.readings if r.at <= now and r.soc_percent is not None]
    if not readings:
        return ChargeVerdict("unknown", None)
    last = readings[-1]
    if stay.left_at is not None and stay.left_at <= now:
        return ChargeVerdict("left", last)
    if now - last.at > stale_after(cfg):
        return ChargeVerdict("unknown", last)
    if last.charging == "full":
        return ChargeVerdict("full", last)
    temp = last.temperature_c
    if temp is not None and temp < CHARGE_MIN_C:
        return ChargeVerdict("too cold to charge", last)
    if temp is not None and temp >= cfg.hot_battery_c:
        return ChargeVerdict("too hot to charge", last)
    # the window is judged over the tail of readings at a temperature a charger charges at
    run: list[DockedChargeRow] = []
    for r in reversed(readings):
        if r.temperature_c is not None and not CHARGE_MIN_C <= r.temperature_c \
                < cfg.hot_battery_c:
            break
        run.insert(0, r)
    window = timedelta(minutes=cfg.charge_stall_min)
    base = next((r for r in reversed(run) if r.at <= last.at - window), None)
    rising = "charging" if (last.current_ma or 0) > 0 else (last.charging or "watching")
    if base is None:
        return ChargeVerdict(rising, last)
    assert base.soc_percent is not None and last.soc_percent is not None
    if base.soc_percent >= FULL_PERCENT:
        return ChargeVerdict("full", last)
    span = [r for r in run if r.at >= base.at]
    gain = last.soc_percent - base.soc_percent  # signed: a camera losing charge on a dock
    if len(span) < MIN_READINGS or gain >= cfg.min_charge_gain_percent:
        return ChargeVerdict("charging" if gain > 0 else rising, last)
    minutes = (last.at - base.at).total_seconds() / 60
    return ChargeVerdict("not charging", last, {
        "port": stay.port, "session": stay.session_id, "docked_at": stay.since.isoformat(),
        "from_at": base.at.isoformat(), "to_at": last.at.isoformat(),
        "minutes": round(minutes, 1), "soc_from": base.soc_percent,
        "soc_to": last.soc_percent, "gain": round(gain, 2), "readings": len(span),
        "current_ma": last.current_ma, "charging": last.charging,
        "temperature_c": last.temperature_c, "window_min": cfg.charge_stall_min,
        "min_gain": cfg.min_charge_gain_percent, "min_readings": MIN_READINGS})


@dataclass(frozen=True)
class OnDock:
    """A camera the daemon watches on a dock now: what `dockctl status` and the live view
    show as its charge state."""

    serial: str
    port: str
    since: datetime
    at: datetime
    soc_percent: float | None
    current_ma: int | None
    state: str


def on_dock(stays: dict[str, DockStay], cfg: HealthConfig, *, now: datetime) -> list[OnDock]:
    out = []
    for stay in stays.values():
        verdict = judge_stay(stay, cfg, now=now)
        if verdict.present and verdict.last is not None:
            last = verdict.last
            out.append(OnDock(stay.serial, stay.port, stay.since, last.at, last.soc_percent,
                              last.current_ma, verdict.state))
    return sorted(out, key=lambda d: (d.port, d.serial))


def read_on_dock(catalog: Catalog, cfg: HealthConfig, *, now: datetime) -> list[OnDock]:
    """The cameras on a dock now, with their charge state (reads the catalog only)."""
    rows = catalog.health.docked_charge(since=now - DOCKED_HISTORY, until=now)
    serials = {r.camera_serial for r in rows}
    caps = {s: catalog.health.captures(s, since=now - DOCKED_HISTORY) for s in serials}
    return on_dock(current_stays(rows, caps), cfg, now=now)
