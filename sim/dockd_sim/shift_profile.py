"""`[camera.shift]`: one shift of a camera, described by its segments, as a shift log.

A technician thinks in "2 h standby, 1 h display, half an hour recording"; the camera logs
samples and events. This expands the first into the second, ending at docking (offset 0):

    [dock_hours on a dock, charging from dock_start_soc to start_soc]  (optional)
    undocked, power_on → segments in order → (power_off when the charge hits 0) → docked
"""

from __future__ import annotations

from dataclasses import dataclass

from dockd_sim.spec import ShiftEventSpec, ShiftSampleSpec

SEGMENT_STATES = ("standby", "display", "recording")
#: a simple linear cell model: good enough for curves, not for chemistry
_MV_EMPTY, _MV_PER_PERCENT = 3300, 9
_MA_PER_PERCENT_H = 30  # a 3000 mAh battery: 1 %/h is 30 mA


@dataclass(frozen=True)
class ShiftProfile:
    start_soc: float
    #: (state, hours, % of full charge drained per hour)
    segments: tuple[tuple[str, float, float], ...]
    sample_every_min: float = 30.0
    temperature_c: float = 25.0
    temp_rise_c: float = 3.0
    dock_hours: float = 0.0
    dock_start_soc: float = 40.0
    ends_before_dock_min: float = 0.0


def _sample(at: float, soc: float, ma: float, temp: float) -> ShiftSampleSpec:
    soc = max(0.0, min(100.0, soc))
    return ShiftSampleSpec(offset_s=round(at, 3), soc_percent=round(soc, 2),
                           voltage_mv=int(_MV_EMPTY + _MV_PER_PERCENT * soc),
                           current_ma=round(ma), temperature_c=round(temp, 2))


def expand_shift(p: ShiftProfile) -> tuple[tuple[ShiftSampleSpec, ...],
                                          tuple[ShiftEventSpec, ...]]:
    step = p.sample_every_min * 60
    length = sum(h for _, h, _ in p.segments) * 3600
    start = -(length + p.ends_before_dock_min * 60)
    samples: list[ShiftSampleSpec] = []
    events: list[ShiftEventSpec] = []
    if p.dock_hours > 0:
        dock_start = start - p.dock_hours * 3600
        events.append(ShiftEventSpec(dock_start, "docked"))
        gain_per_s = (p.start_soc - p.dock_start_soc) / (p.dock_hours * 3600)
        t = dock_start
        while t < start:
            soc = p.dock_start_soc + gain_per_s * (t - dock_start)
            samples.append(_sample(t, soc, gain_per_s * 3600 * _MA_PER_PERCENT_H,
                                   p.temperature_c))
            t += step
        events.append(ShiftEventSpec(start, "undocked"))
    events.append(ShiftEventSpec(start, "power_on"))

    def temp_at(t: float) -> float:
        return p.temperature_c + (p.temp_rise_c * (t - start) / length if length else 0.0)

    soc, t, next_sample = p.start_soc, start, start
    empty = False
    for state, hours, drain in p.segments:
        seg_end = t + hours * 3600
        on, off = {"display": ("display_on", "display_off"),
                   "recording": ("record_start", "record_stop")}.get(state, (None, None))
        if on:
            events.append(ShiftEventSpec(t, on))
        while next_sample < seg_end:
            at_soc = soc - drain * (next_sample - t) / 3600
            if at_soc <= 0:
                break
            samples.append(_sample(next_sample, at_soc, -drain * _MA_PER_PERCENT_H,
                                   temp_at(next_sample)))
            next_sample += step
        end_soc = soc - drain * hours
        if end_soc <= 0:  # the battery gives out inside this segment
            t_empty = t + soc / drain * 3600 if drain > 0 else seg_end
            samples.append(_sample(t_empty, 0.0, -drain * _MA_PER_PERCENT_H, temp_at(t_empty)))
            if off:
                events.append(ShiftEventSpec(t_empty, off))
            events.append(ShiftEventSpec(t_empty, "power_off"))
            empty = True
            break
        if off:
            events.append(ShiftEventSpec(seg_end, off))
        soc, t = end_soc, seg_end
    if not empty:
        samples.append(_sample(t, soc, 0, temp_at(t)))
    events.append(ShiftEventSpec(0.0, "docked"))
    # the same rounding as the samples', so an event and a sample at one moment stay together
    return tuple(samples), tuple(ShiftEventSpec(round(e.offset_s, 3), e.kind) for e in events)
