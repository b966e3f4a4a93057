"""Shift analysis on logs made by `[camera.shift]` profiles: the rates per state, the
runtime a full charge buys, running out, and charging on the dock come back as designed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dockd_sim.scenario import load_scenario
from dockd_sim.shift_profile import ShiftProfile, expand_shift
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.catalog.rows import ShiftEventRow, ShiftSampleRow
from dockd.errors import ConfigError
from dockd.health.shifts import dock_periods, split_shifts

DOCKED = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)


def _rows(profile: ShiftProfile) -> tuple[list[ShiftSampleRow], list[ShiftEventRow]]:
    samples, events = expand_shift(profile)
    at = [DOCKED + timedelta(seconds=s.offset_s) for s in samples]
    return ([ShiftSampleRow("C", t, s.soc_percent, s.voltage_mv, s.current_ma, s.temperature_c)
             for t, s in zip(at, samples, strict=True)],
            [ShiftEventRow("C", DOCKED + timedelta(seconds=e.offset_s), e.kind) for e in events])


def test_rates_and_time_shares_per_state_are_recovered() -> None:
    profile = ShiftProfile(start_soc=100, segments=(("standby", 2.0, 4.0), ("display", 1.0, 10.0),
                                                    ("recording", 1.0, 16.0)) * 2)
    (shift,) = split_shifts(*_rows(profile))
    assert shift.hours == pytest.approx(8.0)
    rates = shift.rates()
    assert rates == pytest.approx({"standby": 4.0, "display": 10.0, "recording": 16.0}, abs=0.01)
    assert shift.time_shares() == pytest.approx(
        {"standby": 0.5, "display": 0.25, "recording": 0.25})
    # 0.5*4 + 0.25*10 + 0.25*16 = 8.5 %/h → 100/8.5 h
    assert shift.predicted_runtime_h() == pytest.approx(100 / 8.5, rel=0.01)
    assert shift.ran_out_at is None and shift.lasted_hours == pytest.approx(8.0)
    assert [b.state for b in shift.bands][:3] == ["standby", "display", "recording"]


def test_running_out_is_found_at_the_moment_the_charge_hits_zero() -> None:
    profile = ShiftProfile(start_soc=50, segments=(("recording", 5.0, 20.0),))
    (shift,) = split_shifts(*_rows(profile))
    assert shift.ran_out_at is not None
    assert shift.lasted_hours == pytest.approx(2.5, abs=0.01)  # 50 % at 20 %/h
    assert shift.bands[-1].state == "off"


def test_the_dock_stretch_before_the_shift_is_a_dock_period() -> None:
    profile = ShiftProfile(start_soc=90, segments=(("standby", 1.0, 5.0),), dock_hours=3,
                           dock_start_soc=30)
    samples, events = _rows(profile)
    (period,) = dock_periods(samples, events)
    assert period.hours == pytest.approx(3.0)
    assert period.samples[0].soc_percent == 30 and period.samples[-1].soc_percent > 80
    (shift,) = split_shifts(samples, events)  # the dock stretch is not a shift
    assert shift.start == period.end


def test_an_empty_log_has_no_shift() -> None:
    assert split_shifts([], []) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["standby", "display", "recording"]),
                          st.floats(0.25, 3.0), st.floats(0.5, 30.0)), min_size=1, max_size=6),
       st.floats(5.0, 100.0))
def test_any_profile_gives_a_consistent_shift(segments: list[tuple[str, float, float]],
                                              start: float) -> None:
    (shift,) = split_shifts(*_rows(ShiftProfile(start_soc=start, segments=tuple(segments))))
    assert all(0 <= s.soc_percent <= 100 for s in shift.samples)
    assert shift.lasted_hours <= shift.hours + 1e-6
    assert sum(shift.time_shares().values()) == pytest.approx(1.0)
    top = max(d for _, _, d in segments)
    for state, rate in shift.rates().items():
        # a drain, never above the steepest in the profile (samples at a state change mix
        # neighbours, so a state's own rates do not bound it; 10 % + 0.5 %/h for the
        # log's 0.1 % charge steps over short stretches)
        assert 0 < rate <= top * 1.1 + 0.5, (state, rate, segments)
    predicted = shift.predicted_runtime_h()
    assert predicted is None or predicted > 0


@pytest.mark.parametrize(("body", "key"), [
    ("start_soc = 100", "camera[0].shift.segments"),
    ('segments = [["napping", 1.0, 2.0]]', "camera[0].shift.segments[0]"),
    ('segments = [["standby", 0, 2.0]]', "camera[0].shift.segments[0]"),
    ('segments = [["standby", 1.0]]', "camera[0].shift.segments[0]"),
    ('segments = [["standby", 1.0, 2.0]]\nrepeat = 0', "camera[0].shift.repeat"),
    ('segments = [["standby", 1.0, 2.0]]\nlunch = 1', "camera[0].shift.lunch"),
])
def test_bad_shift_profiles_name_the_key(tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[camera]]\nserial = "NC-1"\nslot = 1\n[camera.shift]\n' + body + "\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert key in str(err.value)


def test_a_shift_profile_becomes_the_cameras_shift_log(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[camera]]\nserial = "NC-1"\nslot = 1\nday = 3\n[camera.shift]\n'
                    'segments = [["recording", 1.0, 10.0]]\nsample_every_min = 15\n')
    (cam,) = load_scenario(path).cameras
    assert cam.day == 3
    assert [e.kind for e in cam.shift_events] == ["power_on", "record_start", "record_stop",
                                                  "docked"]
    assert len(cam.shift_samples) == 5 and cam.shift_samples[-1].soc_percent == 90
