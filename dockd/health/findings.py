"""Findings: what needs a technician's attention, each with severity, evidence and advice.

`evaluate(catalog, config, now=...)` reads the catalog and returns the fleet's findings,
worst first. Thresholds come from `[health]` (dockd.config.HealthConfig); docs/health.md
explains each finding. Every check is a small function of plain rows, so tests can seed one
problem at a time.

Why one module of ~500 lines: the checks share the Finding type, the severity scale and the
thresholds, and docs/health.md's table follows this file top to bottom; the shift and
transfer models they judge live in shifts.py and transfers.py.
"""

from __future__ import annotations

import enum
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dockd.catalog import CameraRow, Catalog
from dockd.catalog.rows import (
    CameraRefusals,
    CaptureRow,
    DockedChargeRow,
    FindingDraft,
    ShiftEventRow,
    ShiftSampleRow,
    TransferRecord,
)
from dockd.config import HealthConfig, RetentionConfig
from dockd.health.docked import DOCKED_HISTORY, DockStay, current_stays, judge_stay
from dockd.health.shifts import Shift, dock_periods, split_shifts
from dockd.health.transfers import (
    BACKGROUND_FAIL_RATE,
    MIN_BAD_PARTNERS,
    MIN_PAIR_FAILURES,
    MIN_WORKING_ATTEMPTS,
    SIGNIFICANCE,
    Attribution,
    CellStats,
    attribute,
    transfer_cells,
)
from dockd.retention import expiring_copies, forecast_free_space

#: how far back shift logs, transfers and storage samples are read
HISTORY = timedelta(days=30)
#: how far back battery snapshots are read (the state-of-health trend wants a long view)
BATTERY_HISTORY = timedelta(days=365)
#: state-of-health trend: needs this many docks over at least this span, and health must
#: have fallen by TREND_MIN_DROP points from the first third of those docks to the last —
#: more than a fuel gauge's re-learn of its capacity (a step of a point or two, which a
#: least-squares slope over a few days turns into a steep "trend")
TREND_MIN_POINTS = 3
TREND_MIN_SPAN = timedelta(days=2)
TREND_MIN_DROP = 3.0
#: temperature rise during a shift: from its first reading (the dock's room) in time order,
#: over at least this many readings and hours, held by at least TEMP_RISE_HELD readings, to
#: a peak of at least TEMP_RISE_MIN_PEAK_C (a battery warming from a cold start to below
#: body temperature is not overheating; one that cools outdoors never "warmed")
TEMP_RISE_MIN_READINGS = 3
TEMP_RISE_MIN_HOURS = 1.0
TEMP_RISE_HELD = 2
TEMP_RISE_MIN_PEAK_C = 30.0
#: a docked stretch this long with charge below this counts for "charging does not progress"
STALL_MIN_HOURS = 0.5
STALL_BELOW_PERCENT = 95.0
#: storage: free share below which it is critical whatever the rate
STORAGE_CRITICAL_FREE = 0.02
#: hot battery: this much above the threshold is critical
HOT_CRITICAL_MARGIN_C = 10.0
#: pack voltages a body-worn camera's battery can have (one to four Li-ion cells, empty to
#: full); a reading outside is a broken gauge, a broken battery or a lying camera
PLAUSIBLE_MV = (2_500, 20_000)
#: a gauge reporting more full-charge capacity than this share of the design is wrong
PLAUSIBLE_FULL_OVER_DESIGN = 1.5


class Severity(enum.IntEnum):
    """What the advice asks for, and so what ignoring it costs (docs/health.md, per finding):
    CRITICAL — act today; the advice takes something out of service or stops a loss now.
    WARNING — plan the work; nothing is lost yet if it waits a few days.
    NOTICE — nothing to do now, or a cheap check the next time it comes by."""

    NOTICE = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    code: str
    #: camera | port | host
    subject_kind: str
    #: a camera serial, a port "dock/slot", or the storage path
    subject: str
    severity: Severity
    summary: str
    advice: str
    evidence: dict[str, Any] = field(default_factory=dict)
    #: the camera this concerns, if any (port findings name none)
    camera: str | None = None

    @property
    def key(self) -> str:
        return f"{self.code}:{self.subject}"

    def draft(self) -> FindingDraft:
        return FindingDraft(key=self.key, code=self.code, subject=self.subject,
                            severity=self.severity.label, summary=self.summary,
                            advice=self.advice,
                            evidence=json.dumps(self.evidence, sort_keys=True, default=str))

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "subject_kind": self.subject_kind, "subject": self.subject,
                "camera": self.camera, "severity": self.severity.label,
                "summary": self.summary, "advice": self.advice, "evidence": self.evidence}


def _r(x: float, nd: int = 1) -> float:
    return round(x, nd)


def soh_percent(c: CaptureRow) -> float | None:
    if not c.design_capacity_mah or c.full_charge_capacity_mah is None:
        return None
    return 100.0 * c.full_charge_capacity_mah / c.design_capacity_mah


# --- battery ---------------------------------------------------------------------------------


def check_battery(serial: str, caps: Sequence[CaptureRow], cfg: HealthConfig) -> list[Finding]:
    out: list[Finding] = []
    with_battery = [c for c in caps if c.design_capacity_mah is not None]
    if not with_battery:
        return out
    last = with_battery[-1]
    implausible = check_gauge(serial, last)
    if implausible is not None:
        out.append(implausible)
    soh = soh_percent(last)
    if soh is not None and soh < cfg.soh_warn_percent:
        sev = Severity.CRITICAL if soh < cfg.soh_critical_percent else Severity.WARNING
        out.append(Finding(
            "battery_soh", "camera", serial, sev,
            f"battery holds {soh:.0f}% of its design capacity",
            "Replace the battery before its next shift." if sev is Severity.CRITICAL
            else "Plan a battery replacement; watch its shift endurance.",
            {"soh_percent": _r(soh), "full_charge_mah": last.full_charge_capacity_mah,
             "design_mah": last.design_capacity_mah, "warn_below": cfg.soh_warn_percent,
             "critical_below": cfg.soh_critical_percent, "at": last.at.isoformat()},
            camera=serial))
    trend = soh_trend(with_battery)
    if (trend is not None and trend["per_30d"] < -cfg.soh_drop_per_30d
            and trend["drop"] >= TREND_MIN_DROP):
        out.append(Finding(
            "battery_soh_trend", "camera", serial, Severity.WARNING,
            f"battery health falling {-trend['per_30d']:.1f} points per 30 days "
            f"({trend['drop']:.1f} points over {trend['days']:.0f} days)",
            "Fast wear: check charging temperature and the charger; replace if it continues.",
            trend | {"threshold_per_30d": cfg.soh_drop_per_30d, "min_drop": TREND_MIN_DROP,
                     "min_docks": TREND_MIN_POINTS, "min_days": TREND_MIN_SPAN.days},
            camera=serial))
    if last.cycle_count is not None and last.cycle_count > cfg.max_cycles:
        out.append(Finding(
            "battery_cycles", "camera", serial, Severity.WARNING,
            f"battery has {last.cycle_count} charge cycles (limit {cfg.max_cycles})",
            "Plan a battery replacement: it is past its rated cycle life.",
            {"cycle_count": last.cycle_count, "max_cycles": cfg.max_cycles}, camera=serial))
    if last.temperature_c is not None and last.temperature_c >= cfg.hot_battery_c:
        out.append(_hot(serial, last.temperature_c, "at dock", cfg))
    if last.charging == "fault":
        out.append(Finding(
            "charging_stalled", "camera", serial, Severity.CRITICAL,
            "battery reports a charging fault",
            "Take the camera out of service and have the battery checked.",
            {"charging": last.charging, "soc_percent": last.soc_percent,
             "current_ma": last.current_ma}, camera=serial))
    elif (last.charging == "charging" and last.current_ma is not None and last.current_ma <= 0
          and (last.soc_percent or 0) < STALL_BELOW_PERCENT):
        out.append(Finding(
            "charging_stalled", "camera", serial, Severity.WARNING,
            f"says it is charging but draws {last.current_ma} mA at {last.soc_percent:.0f}%",
            "Reseat the camera; if it stays, try another dock port, then check the battery.",
            {"charging": last.charging, "current_ma": last.current_ma,
             "soc_percent": last.soc_percent}, camera=serial))
    return out


def check_gauge(serial: str, last: CaptureRow) -> Finding | None:
    """Readings no battery can produce: the other battery findings rest on them, so say so."""
    problems: list[str] = []
    lo, hi = PLAUSIBLE_MV
    if last.voltage_mv is not None and not lo <= last.voltage_mv <= hi:
        problems.append(f"{last.voltage_mv / 1000:.2f} V")
    design, full = last.design_capacity_mah, last.full_charge_capacity_mah
    if design is not None and full is not None and full > design * PLAUSIBLE_FULL_OVER_DESIGN:
        problems.append(f"full charge {full} mAh of a {design} mAh design")
    if not problems:
        return None
    return Finding(
        "battery_implausible", "camera", serial, Severity.WARNING,
        f"battery gauge reports impossible values: {'; '.join(problems)}",
        "Have the battery and its gauge checked; until then do not trust this camera's "
        "other battery findings (charge, health, endurance).",
        {"voltage_mv": last.voltage_mv, "plausible_mv": list(PLAUSIBLE_MV),
         "full_charge_mah": full, "design_mah": design,
         "max_full_over_design": PLAUSIBLE_FULL_OVER_DESIGN, "at": last.at.isoformat()},
        camera=serial)


def _hot(serial: str, temp: float, where: str, cfg: HealthConfig) -> Finding:
    critical = temp >= cfg.hot_battery_c + HOT_CRITICAL_MARGIN_C
    return Finding(
        "battery_hot", "camera", serial, Severity.CRITICAL if critical else Severity.WARNING,
        f"battery reached {temp:.0f} °C ({where})",
        "Take it out of service and inspect the battery for swelling; do not charge it."
        if critical else
        "Let it cool before it charges again and check where it was kept (a car, a sunny "
        "window, a blocked charger); if it gets this hot again, have the battery inspected.",
        {"temperature_c": temp, "where": where, "hot_at_c": cfg.hot_battery_c,
         "critical_at_c": cfg.hot_battery_c + HOT_CRITICAL_MARGIN_C}, camera=serial)


def soh_trend(caps: Sequence[CaptureRow]) -> dict[str, Any] | None:
    """Least-squares slope of state of health over time, per 30 days, and the drop seen
    (median of the first third of the docks minus that of the last third: a gauge's
    one-off re-learn moves it by the step alone). None: too few docks or too short a span."""
    pts = [(c.at, soh) for c in caps if (soh := soh_percent(c)) is not None]
    if len(pts) < TREND_MIN_POINTS or pts[-1][0] - pts[0][0] < TREND_MIN_SPAN:
        return None
    t0 = pts[0][0]
    xs = [(t - t0).total_seconds() / 86400 for t, _ in pts]
    ys = [y for _, y in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var <= 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    third = max(1, len(ys) // 3)
    drop = statistics.median(ys[:third]) - statistics.median(ys[-third:])
    return {"per_30d": _r(slope * 30, 2), "first_soh": _r(ys[0]), "last_soh": _r(ys[-1]),
            "drop": _r(drop, 2), "docks": len(pts), "days": _r(xs[-1])}


# --- shift endurance, temperature, charging -------------------------------------------------


def last_real_shift(shifts: Sequence[Shift]) -> Shift | None:
    usable = [s for s in shifts if len(s.samples) >= 2]
    return usable[-1] if usable else None


def check_shifts(serial: str, shifts: Sequence[Shift], soh: float | None,
                 cfg: HealthConfig) -> list[Finding]:
    out: list[Finding] = []
    shift = last_real_shift(shifts)
    if shift is None:
        return out
    rates, shares = shift.rates(), shift.time_shares()
    predicted = shift.predicted_runtime_h()
    evidence: dict[str, Any] = {
        "shift_start": shift.start.isoformat(), "shift_hours": _r(shift.hours, 2),
        "lasted_hours": _r(shift.lasted_hours, 2), "ran_out": shift.ran_out_at is not None,
        "configured_shift_hours": cfg.shift_hours,
        "discharge_pct_per_hour": {s: _r(v, 2) for s, v in rates.items()},
        "time_share": {s: _r(v, 2) for s, v in shares.items()},
        "predicted_runtime_h": _r(predicted, 2) if predicted is not None else None}
    advice = _endurance_advice(rates, shares, soh, cfg)
    if shift.ran_out_at is not None and shift.lasted_hours < cfg.shift_hours:
        out.append(Finding(
            "shift_endurance", "camera", serial, Severity.CRITICAL,
            f"battery ran out after {shift.lasted_hours:.1f} h of a {cfg.shift_hours:g} h shift",
            f"Before its next shift, {advice[0].lower()}{advice[1:]}", evidence, camera=serial))
    elif predicted is not None and predicted < cfg.shift_hours:
        out.append(Finding(
            "shift_endurance", "camera", serial, Severity.WARNING,
            f"will not last a shift: a full charge gives {predicted:.1f} h in typical use "
            f"(shift {cfg.shift_hours:g} h)", advice, evidence, camera=serial))
    temps = shift.temperature_range()
    if temps is not None and temps[1] >= cfg.hot_battery_c:
        out.append(_hot(serial, temps[1], "during the last shift", cfg))
    elif (rise := temperature_rise(shift, cfg)) is not None:
        out.append(Finding(
            "battery_temp_rise", "camera", serial, Severity.WARNING,
            f"battery warmed {rise['rise_c']:.0f} °C above its {rise['start_c']:.0f} °C start "
            "during the last shift",
            "Abnormal heating: check for a failing cell or a blocked vent; replace if it "
            "recurs.", rise, camera=serial))
    return out


def temperature_rise(shift: Shift, cfg: HealthConfig) -> dict[str, Any] | None:
    """How far the battery warmed above the shift's first reading, held by TEMP_RISE_HELD
    readings (so one glitch is not a rise), if that is abnormal heating; else None. Taken in
    time order from the start: a battery that cools on a night patrol and warms back in the
    car never rose above where it started."""
    temps = [(s.at, s.temperature_c) for s in shift.samples]
    if len(temps) < TEMP_RISE_MIN_READINGS:
        return None
    hours = (temps[-1][0] - temps[0][0]).total_seconds() / 3600
    if hours < TEMP_RISE_MIN_HOURS:
        return None
    start = temps[0][1]
    after = sorted((t for _, t in temps[1:]), reverse=True)
    held = after[TEMP_RISE_HELD - 1] if len(after) >= TEMP_RISE_HELD else None
    if held is None or held - start < cfg.temp_rise_c or after[0] < TEMP_RISE_MIN_PEAK_C:
        return None
    return {"start_c": start, "max_c": after[0], "rise_c": _r(held - start),
            "readings": len(temps), "hours": _r(hours, 2), "rise_threshold_c": cfg.temp_rise_c,
            "held_by_readings": TEMP_RISE_HELD, "min_peak_c": TEMP_RISE_MIN_PEAK_C}


def _endurance_advice(rates: dict[str, float], shares: dict[str, float], soh: float | None,
                      cfg: HealthConfig) -> str:
    if soh is not None and soh < cfg.soh_warn_percent:
        return f"Replace the battery: it holds only {soh:.0f}% of its design capacity."
    display, standby = rates.get("display"), rates.get("standby")
    if display is not None and shares.get("display", 0) >= 0.2 and (
            standby is None or display > 2 * standby):
        return (f"Shorten the display timeout: display-on drains {display:.1f} %/h "
                f"for {shares['display']:.0%} of the shift.")
    if shares.get("recording", 0) >= 0.5:
        return "Give this wearer a spare battery or camera: it records most of the shift."
    return "Check the camera's power settings, then test the battery."


def check_charging_log(serial: str, samples: Sequence[ShiftSampleRow],
                       events: Sequence[ShiftEventRow], cfg: HealthConfig) -> list[Finding]:
    """A docked stretch in the log where the charge did not rise."""
    for period in reversed(dock_periods(samples, events)):
        if period.hours < STALL_MIN_HOURS or len(period.samples) < 2:
            continue
        first, last = period.samples[0], period.samples[-1]
        if first.soc_percent >= STALL_BELOW_PERCENT:
            return []
        gain = last.soc_percent - first.soc_percent
        if gain < cfg.min_charge_gain_percent:
            return [Finding(
                "charging_stalled", "camera", serial, Severity.WARNING,
                f"charge rose {gain:+.0f} points in {period.hours:.1f} h on the dock "
                f"(from {first.soc_percent:.0f}%)",
                "Reseat the camera; if it stays, try another dock port, then check the battery.",
                {"docked_at": period.start.isoformat(), "hours": _r(period.hours, 2),
                 "soc_from": first.soc_percent, "soc_to": last.soc_percent,
                 "min_gain": cfg.min_charge_gain_percent, "min_hours": STALL_MIN_HOURS,
                 "below_percent": STALL_BELOW_PERCENT, "readings": len(period.samples)},
                camera=serial)]
        return []
    return []


# --- clock, overdue, storage ------------------------------------------------------------------


def check_clock(serial: str, caps: Sequence[CaptureRow], cfg: HealthConfig) -> list[Finding]:
    if not caps or abs(caps[-1].clock_offset_s) <= cfg.clock_drift_s:
        return []
    last = caps[-1]
    drifted = [c for c in caps[-3:] if abs(c.clock_offset_s) > cfg.clock_drift_s]
    repeated = len(drifted) >= 2
    # setting the clock at dock fixes the next shift, not the last one: its footage was
    # stamped by the wrong clock, and that is evidence with a wrong time on it
    off = last.clock_offset_s
    stamped = (f"Its last shift's recordings are stamped up to {_duration(abs(off))} "
               f"{'ahead' if off > 0 else 'behind'}: note it with them (the catalog keeps the "
               "offset measured at this dock). ")
    return [Finding(
        "clock_drift", "camera", serial, Severity.WARNING,
        f"camera clock was {off:+.0f} s off"
        + (" (set at dock)" if last.clock_set else " (NOT set)"),
        stamped + ("The clock keeps drifting: check the camera's clock battery / firmware."
                   if repeated else
                   "The clock was set at dock; if it drifts again, check its clock battery."
                   if last.clock_set else
                   "Set the camera's clock and find out why dockd could not: until then "
                   "every recording carries the error."),
        {"offset_s": _r(off, 3), "clock_set": last.clock_set,
         "threshold_s": cfg.clock_drift_s, "docks_off_of_last_3": len(drifted)}, camera=serial)]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def check_overdue(cam: CameraRow, now: datetime, cfg: HealthConfig) -> list[Finding]:
    days = (now - cam.last_seen).total_seconds() / 86400
    if days <= cfg.overdue_days:
        return []
    sev = Severity.CRITICAL if days > 2 * cfg.overdue_days else Severity.WARNING
    return [Finding(
        "overdue", "camera", cam.serial, sev,
        f"not docked for {days:.1f} days (limit {cfg.overdue_days:g})",
        "Find the camera and dock it today: its recordings are not in custody."
        if sev is Severity.CRITICAL else
        "Ask its wearer to dock it: its recordings are not in custody yet.",
        {"last_docked": cam.last_seen.isoformat(), "days": _r(days, 2),
         "overdue_days": cfg.overdue_days}, camera=cam.serial)]


#: history needed before a fill rate (and so "days left") is trusted
STORAGE_MIN_SPAN_DAYS = 1.0


def storage_outlook(caps: Sequence[CaptureRow], *,
                    expiring: Sequence[tuple[datetime, int]] = (),
                    retention_days: float = 0.0) -> dict[str, Any] | None:
    """Free space, the rate it fell over `caps` and the days left at that rate. With
    retention (`retention_days` of [retention] default_days, `expiring`: this host's stored
    copies retention deletes, (kept until, bytes)) the days left count what it frees
    (dockd.retention.forecast_free_space), and `forecast` says so."""
    pts = [c for c in caps if c.storage_free_bytes is not None and c.storage_total_bytes]
    if not pts:
        return None
    first, last = pts[0], pts[-1]
    assert first.storage_free_bytes is not None and last.storage_free_bytes is not None
    assert last.storage_total_bytes is not None
    days = (last.at - first.at).total_seconds() / 86400
    # a rate from minutes of history extrapolates one busy dock to a full disk: wait for a day
    enough = days >= STORAGE_MIN_SPAN_DAYS
    rate = (first.storage_free_bytes - last.storage_free_bytes) / days if enough else 0.0
    days_left = last.storage_free_bytes / rate if rate > 0 else None
    o = {"free_bytes": last.storage_free_bytes, "total_bytes": last.storage_total_bytes,
         "free_share": _r(last.storage_free_bytes / last.storage_total_bytes, 4),
         "bytes_per_day": int(rate), "days_left": _r(days_left, 1) if days_left else None,
         "since": first.at.isoformat(), "at": last.at.isoformat()}
    if retention_days > 0 or expiring:
        # walked from the last reading: the copies kept until before it count at once
        walk = forecast_free_space(free_bytes=last.storage_free_bytes, bytes_per_day=rate,
                                   now=last.at, expiring=expiring,
                                   steady_days=retention_days)
        left = walk["days_left"]
        o |= {"days_left": _r(left, 1) if left is not None else None,
              "days_left_without_retention": o["days_left"],
              "retention_days": retention_days,
              "freed_by_retention_bytes": sum(b for _, b in walk["freed_by_retention"]),
              "steady_bytes": walk["steady_bytes"] if rate > 0 else None}
        o["forecast"] = storage_forecast_text(o)
    return o


def storage_forecast_text(o: dict[str, Any]) -> str:
    """What a storage outlook says of the days left, in words: "12.3 days left at the
    current rate[, counting retention]", "steady at 42.0 GB with 14-day retention: not
    filling", "no rate yet"."""
    left, counted = o.get("days_left"), "retention_days" in o
    if left is not None:
        return (f"{left:.1f} days left at the current rate"
                + (", counting retention" if counted else ""))
    if not counted or o.get("bytes_per_day", 0) <= 0:
        return "no rate yet"
    if o.get("steady_bytes") is not None:
        return (f"steady at {_bytes_text(o['steady_bytes'])} with "
                f"{o['retention_days']:g}-day retention: not filling")
    return "not filling at the current rate, counting retention"


def _bytes_text(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def check_storage(caps: Sequence[CaptureRow], store: str, cfg: HealthConfig, *,
                  expiring: Sequence[tuple[datetime, int]] = (),
                  retention_days: float = 0.0) -> list[Finding]:
    o = storage_outlook(caps, expiring=expiring, retention_days=retention_days)
    if o is None:
        return []
    left = o["days_left"]
    if o["free_share"] < STORAGE_CRITICAL_FREE or (left is not None
                                                   and left < cfg.storage_critical_days):
        sev = Severity.CRITICAL
    elif left is not None and left < cfg.storage_warn_days:
        sev = Severity.WARNING
    else:
        return []
    when = storage_forecast_text(o)
    return [Finding(
        "storage_low", "host", store, sev,
        f"evidence store {o['free_share']:.1%} free: {when}",
        "Today: add storage, or export and archive older recordings; once the store is "
        "full new recordings stay on the cameras." if sev is Severity.CRITICAL else
        "Plan more storage, or export and archive older recordings, before ingest stops.",
        o | {"warn_days": cfg.storage_warn_days, "critical_days": cfg.storage_critical_days,
             "min_span_days": STORAGE_MIN_SPAN_DAYS})]


# --- transfers: camera or port? -------------------------------------------------------------


def check_transfers(records: Sequence[TransferRecord], cfg: HealthConfig) -> list[Finding]:
    """Who is to blame for failed transfers, judged over the fleet's whole history with
    failures explained away (dockd/health/transfers.py: the culprit that explains most
    first, its pairings then count against nobody else). Failures the host caused (store
    full, storage errors, dockd stopping) count against no camera and no port."""
    cells = transfer_cells(records)
    rate = cfg.transfer_fail_rate
    return transfer_findings(cells, attribute(cells, rate), rate)


def transfer_findings(cells: dict[tuple[str, str], CellStats], att: Attribution,
                      rate: float) -> list[Finding]:
    out: list[Finding] = []
    # what a bad pairing and a culprit need (dockd/health/transfers.py)
    needs = {"min_failures": MIN_PAIR_FAILURES, "fail_rate_threshold": rate,
             "min_partners": MIN_BAD_PARTNERS, "background_fail_rate": BACKGROUND_FAIL_RATE,
             "significance": SIGNIFICANCE, "min_working_attempts": MIN_WORKING_ATTEMPTS}
    for c in att.culprits:
        explains = sorted(p[1] if c.kind == "camera" else p[0] for p in c.pairs)
        if c.kind == "camera":
            mine = [s for (k, _), s in cells.items() if k == c.name]
            out.append(Finding(
                "transfer_camera", "camera", c.name, Severity.WARNING,
                f"transfers fail on {len(c.bad_with)} dock ports: the camera is at fault",
                "Have the camera serviced (connector, cable or storage) when it can be "
                "spared; the ports are fine.",
                {"ports": list(c.bad_with), "works_on": list(c.fine_with),
                 "failures_on": explains, **_sum_cells(mine), **needs}, camera=c.name))
        else:
            here = [s for (_, p), s in cells.items() if p == c.name]
            out.append(Finding(
                "transfer_port", "port", c.name, Severity.WARNING,
                f"transfers fail on this port with {len(c.bad_with)} cameras: the port is at "
                "fault",
                "Clean or replace this port's contacts/cable; until then dock cameras in "
                "other ports.",
                {"cameras": list(c.bad_with), "works_with": list(c.fine_with),
                 "failures_of": explains, **_sum_cells(here), **needs}))
    for u in att.undecided:
        cell = cells[u.camera, u.port]
        hint = ""
        if u.suspect == "port":
            hint = (f" {u.camera} transfers cleanly on {len(u.camera_fine_on)} other port(s): "
                    "the port is the suspect.")
        elif u.suspect == "camera":
            hint = (f" Port {u.port} works for {len(u.port_fine_with)} other camera(s): the "
                    "camera is the suspect.")
        out.append(Finding(
            "transfer_failures", "camera", f"{u.camera}@{u.port}", Severity.NOTICE,
            f"can't tell yet whether camera {u.camera} or port {u.port} is at fault "
            f"({cell.failed}/{cell.judged} transfers failed)",
            f"Nothing urgent: {u.next_docking()} to tell.{hint}",
            {"camera": u.camera, "port": u.port, "suspect": u.suspect,
             "next_docking": u.next_docking(), "camera_works_on": list(u.camera_fine_on),
             "port_works_with": list(u.port_fine_with), **_sum_cells([cell]), **needs},
            camera=u.camera))
    return out


def _sum_cells(cells: Sequence[CellStats]) -> dict[str, Any]:
    attempts = sum(c.attempts for c in cells)
    failed = sum(c.failed for c in cells)
    judged = sum(c.judged for c in cells)
    return {"attempts": attempts, "failed": failed,
            "fail_rate": _r(failed / judged, 3) if judged else 0.0,
            "host_failed": sum(c.host_failed for c in cells),
            "retries": sum(c.retries for c in cells),
            "error_kinds": sorted({k for c in cells for k in c.error_kinds})}


# --- the fleet ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetData:
    """What the findings (and dockctl's fleet views) are judged from, read once."""

    cameras: list[CameraRow]
    #: battery/clock/storage captures of the last BATTERY_HISTORY, per camera, oldest first
    captures: dict[str, list[CaptureRow]]
    samples: dict[str, list[ShiftSampleRow]]
    events: dict[str, list[ShiftEventRow]]
    transfers: list[TransferRecord]
    #: every camera's captures within HISTORY (the store's free-space readings)
    recent_captures: list[CaptureRow]
    #: what each camera's latest dock could not take (refused entries, a refused listing)
    refusals: dict[str, CameraRefusals] = field(default_factory=dict)
    #: battery readings of cameras still on a dock after ingest, of the last DOCKED_HISTORY
    docked_charge: list[DockedChargeRow] = field(default_factory=list)
    #: this host's stored copies retention will delete, (kept until, bytes), soonest first
    #: (the store is local: other hosts' copies free nothing here)
    expiring: list[tuple[datetime, int]] = field(default_factory=list)
    #: [retention] default_days: each day's ingest is deleted this many days later (0: never)
    retention_days: float = 0.0

    def storage(self) -> dict[str, Any] | None:
        """The store's outlook (`storage_outlook`), retention counted when there is any."""
        return storage_outlook(self.recent_captures, expiring=self.expiring,
                               retention_days=self.retention_days)


def read_fleet(catalog: Catalog, *, now: datetime,
               retention: RetentionConfig | None = None) -> FleetData:
    """Read what `judge` needs. `retention` ([retention]; default: none) makes the storage
    forecast count what retention will delete from this host's store."""
    since = now - HISTORY
    cameras = catalog.cameras()
    all_caps = catalog.health.captures(since=now - BATTERY_HISTORY)
    by_serial: dict[str, list[CaptureRow]] = {c.serial: [] for c in cameras}
    for cap in all_caps:
        by_serial.setdefault(cap.camera_serial, []).append(cap)
    return FleetData(
        cameras=cameras, captures=by_serial,
        samples={c.serial: catalog.health.shift_samples(c.serial, since=since) for c in cameras},
        events={c.serial: catalog.health.shift_events(c.serial, since=since) for c in cameras},
        transfers=catalog.health.transfer_records(since=since),
        recent_captures=[c for c in all_caps if c.at >= since],
        refusals=catalog.refusals(),
        docked_charge=catalog.health.docked_charge(since=now - DOCKED_HISTORY, until=now),
        expiring=expiring_copies(catalog, retention) if retention is not None else [],
        retention_days=float(retention.default_days) if retention is not None else 0.0)


def evaluate(catalog: Catalog, cfg: HealthConfig, *, now: datetime, store: str = "store",
             retention: RetentionConfig | None = None) -> list[Finding]:
    """Every finding in the fleet now, worst first (`retention`: see `read_fleet`)."""
    return judge(read_fleet(catalog, now=now, retention=retention), cfg, now=now, store=store)


def judge(data: FleetData, cfg: HealthConfig, *, now: datetime, store: str = "store"
          ) -> list[Finding]:
    out: list[Finding] = []
    for cam in data.cameras:
        out += camera_findings(cam, data.captures[cam.serial], data.samples[cam.serial],
                               data.events[cam.serial], cfg, now=now)
    out += check_transfers(data.transfers, cfg)
    out += check_storage(data.recent_captures, store, cfg, expiring=data.expiring,
                         retention_days=data.retention_days)
    for stay in current_stays(data.docked_charge, data.captures).values():
        out += check_docked_charging(stay, cfg, now=now)
    for refusals in data.refusals.values():
        out += check_refusals(refusals)
    return sort_findings(out)


def check_docked_charging(stay: DockStay, cfg: HealthConfig, *, now: datetime
                          ) -> list[Finding]:
    """A camera on the dock right now that does not charge (dockd/health/docked.py): said
    while it is still there, so it can be moved before it goes out flat."""
    verdict = judge_stay(stay, cfg, now=now)
    ev = verdict.stalled
    if ev is None:
        return []
    port = ev["port"]
    return [Finding(
        "dock_not_charging", "camera", stay.serial, Severity.CRITICAL,
        f"not charging on dock port {port}: {ev['soc_from']:.0f}% → {ev['soc_to']:.0f}% in "
        f"{ev['minutes']:.0f} min",
        f"Move it to another dock port now (reseat it first): on {port} it would go out on "
        f"its next shift with {ev['soc_to']:.0f}%. If it does not charge there either, its "
        f"battery or charging contacts are at fault; if it does, take port {port} out of use.",
        ev, camera=stay.serial)]


def check_refusals(r: CameraRefusals) -> list[Finding]:
    """Footage the last dock could not take stays on the camera: the field problem this
    project started from ("on some cameras the data could not be downloaded")."""
    found = []
    if r.listing is not None:
        found.append(Finding(
            "listing_refused", "camera", r.serial, Severity.CRITICAL,
            f"nothing on the camera could be listed at its last dock: {r.listing}",
            "Its footage stays on the camera and none of it is ingested: dock it on another "
            "port; if it is refused again, take it out of service and have its firmware "
            "checked (the vendor's tool may still read it).",
            {"docked_at": r.docked_at, "reason": r.listing}, camera=r.serial))
    if r.recordings:
        names = [rec.camera_name for rec in r.recordings]
        found.append(Finding(
            "recordings_refused", "camera", r.serial, Severity.WARNING,
            f"{len(names)} recording(s) refused at the last dock and left on the camera: "
            f"{r.recordings[0].failure_reason}",
            "Their names or metadata break the camera's protocol (hostile or broken firmware):"
            " they stay on the camera and are never deleted by dockd. Have the firmware "
            "checked; `dockctl recordings --camera` lists them with the reason.",
            {"recordings": names[:20], "count": len(names),
             "reasons": sorted({rec.failure_reason or "" for rec in r.recordings})[:5]},
            camera=r.serial))
    return found


def camera_findings(cam: CameraRow, caps: Sequence[CaptureRow],
                    samples: Sequence[ShiftSampleRow], events: Sequence[ShiftEventRow],
                    cfg: HealthConfig, *, now: datetime) -> list[Finding]:
    with_battery = [c for c in caps if c.design_capacity_mah]
    soh = soh_percent(with_battery[-1]) if with_battery else None
    found = check_battery(cam.serial, caps, cfg)
    found += check_shifts(cam.serial, split_shifts(samples, events), soh, cfg)
    if not any(f.code == "charging_stalled" for f in found):
        found += check_charging_log(cam.serial, samples, events, cfg)
    found += check_clock(cam.serial, caps, cfg)
    found += check_overdue(cam, now, cfg)
    # one finding per code and subject: the worst (hot at dock and in the shift, say)
    best: dict[str, Finding] = {}
    for f in found:
        if f.key not in best or f.severity > best[f.key].severity:
            best[f.key] = f
    return list(best.values())


def sort_findings(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity, f.subject, f.code))
