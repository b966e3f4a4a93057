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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dockd.catalog import CameraRow, Catalog
from dockd.catalog.rows import (
    CameraRefusals,
    CaptureRow,
    FindingDraft,
    ShiftEventRow,
    ShiftSampleRow,
    TransferRecord,
)
from dockd.config import HealthConfig
from dockd.health.shifts import Shift, dock_periods, split_shifts
from dockd.health.transfers import CellStats, transfer_cells

#: how far back shift logs, transfers and storage samples are read
HISTORY = timedelta(days=30)
#: how far back battery snapshots are read (the state-of-health trend wants a long view)
BATTERY_HISTORY = timedelta(days=365)
#: state-of-health trend: needs this many docks over at least this span
TREND_MIN_POINTS = 3
TREND_MIN_SPAN = timedelta(days=2)
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
            "Replace the battery." if sev is Severity.CRITICAL
            else "Plan a battery replacement; watch its shift endurance.",
            {"soh_percent": _r(soh), "full_charge_mah": last.full_charge_capacity_mah,
             "design_mah": last.design_capacity_mah, "warn_below": cfg.soh_warn_percent,
             "critical_below": cfg.soh_critical_percent, "at": last.at.isoformat()},
            camera=serial))
    trend = soh_trend(with_battery)
    if trend is not None and trend["per_30d"] < -cfg.soh_drop_per_30d:
        out.append(Finding(
            "battery_soh_trend", "camera", serial, Severity.WARNING,
            f"battery health falling {-trend['per_30d']:.1f} points per 30 days",
            "Fast wear: check charging temperature and the charger; replace if it continues.",
            trend | {"threshold_per_30d": cfg.soh_drop_per_30d}, camera=serial))
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
    sev = Severity.CRITICAL if temp >= cfg.hot_battery_c + HOT_CRITICAL_MARGIN_C \
        else Severity.WARNING
    return Finding(
        "battery_hot", "camera", serial, sev, f"battery reached {temp:.0f} °C ({where})",
        "Take it out of service and inspect the battery for swelling; do not charge it.",
        {"temperature_c": temp, "where": where, "hot_at_c": cfg.hot_battery_c}, camera=serial)


def soh_trend(caps: Sequence[CaptureRow]) -> dict[str, Any] | None:
    """Least-squares slope of state of health over time, per 30 days (None: too few docks)."""
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
    return {"per_30d": _r(slope * 30, 2), "first_soh": _r(ys[0]), "last_soh": _r(ys[-1]),
            "docks": len(pts), "days": _r(xs[-1])}


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
            advice, evidence, camera=serial))
    elif predicted is not None and predicted < cfg.shift_hours:
        out.append(Finding(
            "shift_endurance", "camera", serial, Severity.WARNING,
            f"will not last a shift: a full charge gives {predicted:.1f} h in typical use "
            f"(shift {cfg.shift_hours:g} h)", advice, evidence, camera=serial))
    temps = shift.temperature_range()
    if temps is not None:
        lo, hi = temps
        if hi >= cfg.hot_battery_c:
            out.append(_hot(serial, hi, "during the last shift", cfg))
        elif hi - lo >= cfg.temp_rise_c:
            out.append(Finding(
                "battery_temp_rise", "camera", serial, Severity.WARNING,
                f"battery warmed by {hi - lo:.0f} °C during the last shift",
                "Abnormal heating: check for a failing cell or a blocked vent; replace if it "
                "recurs.", {"min_c": lo, "max_c": hi, "rise_threshold_c": cfg.temp_rise_c},
                camera=serial))
    return out


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
        return "Recording most of the shift: give this wearer a spare battery or camera."
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
                 "min_gain": cfg.min_charge_gain_percent}, camera=serial)]
        return []
    return []


# --- clock, overdue, storage ------------------------------------------------------------------


def check_clock(serial: str, caps: Sequence[CaptureRow], cfg: HealthConfig) -> list[Finding]:
    if not caps or abs(caps[-1].clock_offset_s) <= cfg.clock_drift_s:
        return []
    last = caps[-1]
    drifted = [c for c in caps[-3:] if abs(c.clock_offset_s) > cfg.clock_drift_s]
    repeated = len(drifted) >= 2
    return [Finding(
        "clock_drift", "camera", serial, Severity.WARNING if repeated or not last.clock_set
        else Severity.NOTICE,
        f"camera clock was {last.clock_offset_s:+.0f} s off"
        + (" (set at dock)" if last.clock_set else " (NOT set)"),
        "The clock keeps drifting: check the camera's clock battery / firmware." if repeated
        else ("Clock was corrected at dock; nothing to do unless it recurs." if last.clock_set
              else "Set the camera's clock; check why dockd could not."),
        {"offset_s": _r(last.clock_offset_s, 3), "clock_set": last.clock_set,
         "threshold_s": cfg.clock_drift_s, "docks_off_of_last_3": len(drifted)}, camera=serial)]


def check_overdue(cam: CameraRow, now: datetime, cfg: HealthConfig) -> list[Finding]:
    days = (now - cam.last_seen).total_seconds() / 86400
    if days <= cfg.overdue_days:
        return []
    sev = Severity.CRITICAL if days > 2 * cfg.overdue_days else Severity.WARNING
    return [Finding(
        "overdue", "camera", cam.serial, sev,
        f"not docked for {days:.1f} days (limit {cfg.overdue_days:g})",
        "Find the camera and dock it: its recordings are not in custody yet.",
        {"last_docked": cam.last_seen.isoformat(), "days": _r(days, 2),
         "overdue_days": cfg.overdue_days}, camera=cam.serial)]


#: history needed before a fill rate (and so "days left") is trusted
STORAGE_MIN_SPAN_DAYS = 1.0


def storage_outlook(caps: Sequence[CaptureRow]) -> dict[str, Any] | None:
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
    return {"free_bytes": last.storage_free_bytes, "total_bytes": last.storage_total_bytes,
            "free_share": _r(last.storage_free_bytes / last.storage_total_bytes, 4),
            "bytes_per_day": int(rate), "days_left": _r(days_left, 1) if days_left else None,
            "since": first.at.isoformat(), "at": last.at.isoformat()}


def check_storage(caps: Sequence[CaptureRow], store: str, cfg: HealthConfig) -> list[Finding]:
    o = storage_outlook(caps)
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
    when = f"{left:.1f} days left at the current rate" if left is not None else "no rate yet"
    return [Finding(
        "storage_low", "host", store, sev,
        f"evidence store {o['free_share']:.1%} free: {when}",
        "Add storage or export and archive older recordings before ingest stops.",
        o | {"warn_days": cfg.storage_warn_days, "critical_days": cfg.storage_critical_days})]


# --- transfers: camera or port? -------------------------------------------------------------


def check_transfers(records: Sequence[TransferRecord], cfg: HealthConfig) -> list[Finding]:
    """Failures that follow a camera across ports → camera; that stay on a port across
    cameras → port; one camera on one port only → cannot tell yet."""
    cells = transfer_cells(records)

    def bad(c: CellStats) -> bool:
        return c.failed >= 2 and c.fail_rate >= cfg.transfer_fail_rate

    bad_cells = {k: c for k, c in cells.items() if bad(c)}
    ports_of: dict[str, set[str]] = {}
    cams_of: dict[str, set[str]] = {}
    for (cam, port) in bad_cells:
        ports_of.setdefault(cam, set()).add(port)
        cams_of.setdefault(port, set()).add(cam)
    out: list[Finding] = []
    explained: set[tuple[str, str]] = set()
    for cam, ports in sorted(ports_of.items()):
        if len(ports) >= 2:
            mine = [c for (k, _), c in cells.items() if k == cam]
            out.append(Finding(
                "transfer_camera", "camera", cam, Severity.WARNING,
                f"transfers fail on {len(ports)} dock ports: the camera is at fault",
                "Send the camera for service (connector, cable or storage); the ports are fine.",
                {"ports": sorted(ports), **_sum_cells(mine)}, camera=cam))
            explained |= {(cam, p) for p in ports}
    for port, cams in sorted(cams_of.items()):
        if len(cams) >= 2:
            here = [c for (_, p), c in cells.items() if p == port]
            out.append(Finding(
                "transfer_port", "port", port, Severity.WARNING,
                f"transfers fail on this port with {len(cams)} cameras: the port is at fault",
                "Take the dock port out of use and clean or replace its contacts/cable.",
                {"cameras": sorted(cams), **_sum_cells(here)}))
            explained |= {(c, port) for c in cams}
    for (cam, port), c in sorted(bad_cells.items()):
        if (cam, port) not in explained:
            out.append(Finding(
                "transfer_failures", "camera", f"{cam}@{port}", Severity.NOTICE,
                f"transfers fail for this camera on port {port} ({c.failed}/{c.attempts})",
                "Dock it in another port (and another camera in this one) to tell which is "
                "at fault.", {"camera": cam, "port": port, **_sum_cells([c])}, camera=cam))
    return out


def _sum_cells(cells: Sequence[CellStats]) -> dict[str, Any]:
    attempts = sum(c.attempts for c in cells)
    failed = sum(c.failed for c in cells)
    return {"attempts": attempts, "failed": failed,
            "fail_rate": _r(failed / attempts, 3) if attempts else 0.0,
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


def read_fleet(catalog: Catalog, *, now: datetime) -> FleetData:
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
        refusals=catalog.refusals())


def evaluate(catalog: Catalog, cfg: HealthConfig, *, now: datetime, store: str = "store"
             ) -> list[Finding]:
    """Every finding in the fleet now, worst first."""
    return judge(read_fleet(catalog, now=now), cfg, now=now, store=store)


def judge(data: FleetData, cfg: HealthConfig, *, now: datetime, store: str = "store"
          ) -> list[Finding]:
    out: list[Finding] = []
    for cam in data.cameras:
        out += camera_findings(cam, data.captures[cam.serial], data.samples[cam.serial],
                               data.events[cam.serial], cfg, now=now)
    out += check_transfers(data.transfers, cfg)
    out += check_storage(data.recent_captures, store, cfg)
    for refusals in data.refusals.values():
        out += check_refusals(refusals)
    return sort_findings(out)


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
