"""A docked camera's battery over time: charged by the dock at a rate, and the fault of a dock
that stops charging it (`[camera.battery]` charge_percent_per_h, stops_charging_after_s,
resumes_charging_after_s; docs/simulator.md). Vendor-neutral: a driver's device model asks
it for the battery it should report `elapsed_s` after the camera was plugged in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dockd_sim.spec import BatterySpec

#: what a camera on a dock that does not charge it draws: standby, display off
IDLE_MA = 15
#: a simple linear cell model, as in dockd_sim.shift_profile
MV_PER_PERCENT = 9
#: a docked battery warms (or cools) towards the room's temperature, exponentially
ROOM_C = 22.0
WARM_TAU_S = 1200.0


@dataclass(frozen=True)
class DockedBattery:
    soc_percent: float
    voltage_mv: int
    current_ma: int
    charging: str
    temperature_c: float


def docked_battery(spec: BatterySpec, elapsed_s: float) -> DockedBattery:
    """The battery `elapsed_s` seconds after docking, warming (or cooling) from the
    scenario's temperature towards the room's (ROOM_C, time constant WARM_TAU_S) while the
    dock charges it at the scenario's rate. Without a charge rate, or with a
    battery whose `charging` is "fault", it reads as the scenario gives it, whenever asked
    (what every scenario without a rate expects)."""
    rate = spec.charge_percent_per_h
    if rate <= 0 or spec.charging == "fault":  # a battery in fault is not charged at all
        return DockedBattery(spec.soc_percent, spec.voltage_mv, spec.current_ma, spec.charging,
                             spec.temperature_c)
    elapsed = max(0.0, elapsed_s)
    temp = round(ROOM_C + (spec.temperature_c - ROOM_C) * math.exp(-elapsed / WARM_TAU_S), 1)
    stop, resume = spec.stops_charging_after_s, spec.resumes_charging_after_s
    stopped_s = 0.0
    if stop is not None and elapsed > stop:
        stopped_s = (min(elapsed, resume) if resume is not None else elapsed) - stop
    charging_now = stopped_s == 0.0 or (resume is not None and elapsed >= resume)
    per_hour_idle = 100 * IDLE_MA / max(1, spec.full_charge_capacity_mah)
    soc = spec.soc_percent + (rate * (elapsed - stopped_s) - per_hour_idle * stopped_s) / 3600
    soc = max(0.0, min(100.0, soc))
    mv = int(spec.voltage_mv + MV_PER_PERCENT * (soc - spec.soc_percent))
    if charging_now and soc >= 100.0:
        return DockedBattery(100.0, mv, 0, "full", temp)
    if charging_now:
        return DockedBattery(round(soc, 1), mv,
                             round(rate * spec.full_charge_capacity_mah / 100), "charging", temp)
    return DockedBattery(round(soc, 1), mv, -IDLE_MA, "discharging", temp)
