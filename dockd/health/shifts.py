"""A camera's shift log cut into shifts, with the camera's state over time.

A shift is a stretch off the dock: from `undocked` (or the log's start) to `docked` (or the
log's end). Inside it the state is `off` (powered off), `recording`, `display` (display on,
not recording) or `standby`; the discharge rate of each state is measured from the charge
drop between consecutive samples, and the mix of states gives the runtime a full charge
buys in the way this camera is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dockd.catalog.rows import ShiftEventRow, ShiftSampleRow

STATES = ("recording", "display", "standby")
#: charge at or below which the battery counts as empty
EMPTY_PERCENT = 1.0
#: a power-off at or below this charge was the battery giving out, not the wearer
EMPTY_POWER_OFF_PERCENT = 3.0


@dataclass(frozen=True)
class Band:
    start: datetime
    end: datetime
    state: str  # off | recording | display | standby


@dataclass
class Shift:
    start: datetime
    end: datetime
    samples: list[ShiftSampleRow] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    #: when the battery gave out, if it did
    ran_out_at: datetime | None = None

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    @property
    def lasted_hours(self) -> float:
        """Hours until the battery gave out, or the whole shift when it did not."""
        end = self.ran_out_at or self.end
        return (end - self.start).total_seconds() / 3600

    def state_at(self, at: datetime) -> str:
        for band in self.bands:
            if band.start <= at < band.end:
                return band.state
        return self.bands[-1].state if self.bands else "standby"

    def rates(self) -> dict[str, float]:
        """Discharge rate per state, % of full charge per hour (states with samples only)."""
        drop: dict[str, float] = {}
        hours: dict[str, float] = {}
        for a, b in zip(self.samples, self.samples[1:], strict=False):
            dt = (b.at - a.at).total_seconds() / 3600
            state = self.state_at(a.at)
            if dt <= 0 or state == "off":
                continue
            drop[state] = drop.get(state, 0.0) + (a.soc_percent - b.soc_percent)
            hours[state] = hours.get(state, 0.0) + dt
        return {s: drop[s] / hours[s] for s in drop if hours[s] > 0}

    def time_shares(self) -> dict[str, float]:
        """Share of powered-on time in each state."""
        secs: dict[str, float] = {}
        for band in self.bands:
            if band.state != "off":
                secs[band.state] = secs.get(band.state, 0.0) + (
                    band.end - band.start).total_seconds()
        total = sum(secs.values())
        return {s: v / total for s, v in secs.items()} if total > 0 else {}

    def predicted_runtime_h(self) -> float | None:
        """Hours a full charge lasts with this shift's mix of states; None if unknown."""
        rates, shares = self.rates(), self.time_shares()
        known = {s: shares[s] for s in shares if s in rates}
        total = sum(known.values())
        if total <= 0:
            return None
        per_hour = sum(rates[s] * share / total for s, share in known.items())
        return 100.0 / per_hour if per_hour > 0 else None

    def temperature_range(self) -> tuple[float, float] | None:
        if not self.samples:
            return None
        temps = [s.temperature_c for s in self.samples]
        return min(temps), max(temps)


def _state(powered: bool, display: bool, recording: bool) -> str:
    if not powered:
        return "off"
    if recording:
        return "recording"
    return "display" if display else "standby"


def split_shifts(samples: Sequence[ShiftSampleRow], events: Sequence[ShiftEventRow]
                 ) -> list[Shift]:
    """The shifts in a log, oldest first (times are host times, already corrected)."""
    times = [s.at for s in samples] + [e.at for e in events]
    if not times:
        return []
    log_start, log_end = min(times), max(times)
    ordered = sorted(events, key=lambda e: e.at)
    dock_kinds = [e.kind for e in ordered if e.kind in ("docked", "undocked")]
    docked = bool(dock_kinds) and dock_kinds[0] == "undocked"
    powered, display, recording = True, False, False
    shifts: list[Shift] = []
    current = None if docked else Shift(start=log_start, end=log_end)
    band_start, band_state = log_start, _state(powered, display, recording)

    def close_band(at: datetime) -> None:
        nonlocal band_start
        if current is not None and at > band_start:
            current.bands.append(Band(band_start, at, band_state))
        band_start = at

    for e in ordered:
        close_band(e.at)
        if e.kind == "docked" and current is not None:
            current.end = e.at
            shifts.append(current)
            current = None
        elif e.kind == "undocked" and current is None:
            current = Shift(start=e.at, end=log_end)
            band_start = e.at
        elif e.kind in ("power_on", "power_off"):
            powered = e.kind == "power_on"
            if not powered:
                display = recording = False
        elif e.kind in ("display_on", "display_off"):
            display = e.kind == "display_on"
        elif e.kind in ("record_start", "record_stop"):
            recording = e.kind == "record_start"
        band_state = _state(powered, display, recording)
    if current is not None:
        close_band(current.end)
        shifts.append(current)
    for shift in shifts:
        shift.samples = [s for s in samples if shift.start <= s.at <= shift.end]
        shift.ran_out_at = _ran_out(shift, ordered)
    return [s for s in shifts if s.end > s.start]


def _ran_out(shift: Shift, events: Sequence[ShiftEventRow]) -> datetime | None:
    for s in shift.samples:
        if s.soc_percent <= EMPTY_PERCENT:
            return s.at
    for e in events:
        if e.kind == "power_off" and shift.start <= e.at <= shift.end:
            before = [s for s in shift.samples if s.at <= e.at]
            if before and before[-1].soc_percent <= EMPTY_POWER_OFF_PERCENT:
                return e.at
    return None


@dataclass(frozen=True)
class DockPeriod:
    start: datetime
    end: datetime
    samples: tuple[ShiftSampleRow, ...]

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def dock_periods(samples: Sequence[ShiftSampleRow], events: Sequence[ShiftEventRow]
                 ) -> list[DockPeriod]:
    """Stretches on a dock the log saw end (`docked` … `undocked`), oldest first."""
    out: list[DockPeriod] = []
    start: datetime | None = None
    for e in sorted(events, key=lambda e: e.at):
        if e.kind == "docked":
            start = e.at
        elif e.kind == "undocked" and start is not None:
            inside = tuple(s for s in samples if start <= s.at <= e.at)
            out.append(DockPeriod(start, e.at, inside))
            start = None
    return out
