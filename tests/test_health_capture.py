"""Capture on dock: clock offset measured and applied, shift logs stored once, the clock set
and audited above the threshold, hostile times refused; the health tables match the models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from dockd.catalog import Catalog, migrate
from dockd.catalog.schema import Base
from dockd.config import Config, HealthConfig, StorageConfig, parse_config
from dockd.errors import ConfigError, DeviceGone, DeviceRefused
from dockd.health.capture import DiskUsage, capture_dock
from dockd.model import (
    BatterySnapshot,
    CameraIdentity,
    ChargingState,
    ShiftEvent,
    ShiftEventKind,
    ShiftLog,
    ShiftSample,
)

HOST_NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
BATTERY = BatterySnapshot(soc_percent=35.0, voltage_mv=3700, current_ma=900, temperature_c=31.0,
                          cycle_count=240, design_capacity_mah=3000,
                          full_charge_capacity_mah=2700, charging=ChargingState.CHARGING)


def _log(camera_now: datetime) -> ShiftLog:
    """Three samples over the last two hours and a docked event, on the camera's clock."""
    samples = tuple(ShiftSample(at=camera_now - timedelta(hours=h), soc_percent=40.0 + 10 * h,
                                voltage_mv=3800, current_ma=-300, temperature_c=27.0)
                    for h in (2, 1, 0))
    events = (ShiftEvent(camera_now - timedelta(hours=2), ShiftEventKind.POWER_ON),
              ShiftEvent(camera_now, ShiftEventKind.DOCKED))
    return ShiftLog(samples, events)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog.open(f"sqlite:///{tmp_path / 'c.db'}", clock=lambda: HOST_NOW)


def _identity(offset_s: float) -> CameraIdentity:
    return CameraIdentity(serial="NC-7", model="BC-300", firmware="3.2.1", vendor="NetCo",
                          clock=HOST_NOW + timedelta(seconds=offset_s))


def _capture(catalog: Catalog, offset_s: float, *, set_clock: object = None,
             shift_log: ShiftLog | None = None, tmp: Path | None = None):
    ident = _identity(offset_s)
    catalog.upsert_camera(ident)
    sess = catalog.start_session("NC-7", dock="dock-a", slot=2)
    config = Config(storage=StorageConfig(path=tmp or Path("/nonexistent")))
    return capture_dock(catalog, serial="NC-7", session_id=sess.id, identity=ident,
                        battery=BATTERY, shift_log=shift_log or _log(ident.clock),
                        host_now=HOST_NOW, config=config, set_clock=set_clock,  # type: ignore[arg-type]
                        disk_usage=lambda _p: DiskUsage(1000, 400, 600))


def test_shift_log_lands_on_the_host_clock_and_the_snapshot_is_kept(catalog: Catalog) -> None:
    sets: list[datetime] = []
    result = _capture(catalog, -7200.0, set_clock=sets.append)  # camera two hours slow
    assert result.clock_offset_s == pytest.approx(-7200)
    samples = catalog.health.shift_samples("NC-7")
    assert [s.at for s in samples] == [HOST_NOW - timedelta(hours=h) for h in (2, 1, 0)]
    assert [e.kind for e in catalog.health.shift_events("NC-7")] == ["power_on", "docked"]
    cap = catalog.health.captures("NC-7")[0]
    assert (cap.soc_percent, cap.cycle_count, cap.full_charge_capacity_mah, cap.charging) == (
        35.0, 240, 2700, "charging")
    assert (cap.storage_total_bytes, cap.storage_free_bytes) == (1000, 600)
    assert cap.clock_set and result.clock_set and sets and abs(sets[0] - HOST_NOW) < timedelta(
        seconds=5)
    event = next(e for e in catalog.events() if e.kind == "clock_set")
    assert event.camera_serial == "NC-7" and event.details_dict["offset_s"] == -7200
    assert catalog.verify_chain() == []


def test_a_clock_within_the_threshold_is_left_alone(catalog: Catalog) -> None:
    sets: list[datetime] = []
    result = _capture(catalog, HealthConfig().clock_drift_s - 1, set_clock=sets.append)
    assert not result.clock_set and sets == []
    assert [e.kind for e in catalog.events()].count("clock_set") == 0


def test_a_refused_clock_set_is_recorded_not_raised(catalog: Catalog) -> None:
    def refuse(_when: datetime) -> None:
        raise DeviceRefused("camera refused SET_CLOCK")

    result = _capture(catalog, 3600, set_clock=refuse)
    assert not result.clock_set and "refused" in (result.clock_error or "")
    assert not catalog.health.captures("NC-7")[0].clock_set
    assert "clock_set" not in [e.kind for e in catalog.events()]


def test_a_camera_leaving_during_the_clock_set_is_not_hidden(catalog: Catalog) -> None:
    def gone(_when: datetime) -> None:
        raise DeviceGone("camera left the bus")

    with pytest.raises(DeviceGone):
        _capture(catalog, 3600, set_clock=gone)


def test_a_log_seen_again_at_the_next_dock_is_stored_once(catalog: Catalog) -> None:
    log = _log(HOST_NOW)
    first = _capture(catalog, 0.0, shift_log=log)
    again = _capture(catalog, 0.0, shift_log=log)
    assert (first.new_samples, first.new_events) == (3, 2)
    assert (again.new_samples, again.new_events) == (0, 0)
    assert len(catalog.health.shift_samples("NC-7")) == 3
    assert len(catalog.health.captures("NC-7")) == 2


def test_times_in_the_future_are_refused_and_counted(catalog: Catalog) -> None:
    future = ShiftLog(
        samples=(ShiftSample(HOST_NOW + timedelta(days=400), 50.0, 3800, -100, 25.0),
                 ShiftSample(HOST_NOW - timedelta(hours=1), 60.0, 3800, -100, 25.0)),
        events=(ShiftEvent(HOST_NOW + timedelta(hours=3), ShiftEventKind.POWER_OFF),))
    result = _capture(catalog, 0.0, shift_log=future)
    assert result.rejected == 2 and result.new_samples == 1 and result.new_events == 0


def test_the_health_tables_are_what_the_models_say(tmp_path: Path) -> None:
    with Catalog.open(f"sqlite:///{tmp_path / 'm.db'}") as cat, cat.engine.connect() as conn:
        assert {"dock_captures", "shift_samples", "shift_events", "health_findings"} <= set(
            inspect(conn).get_table_names())
        assert migrate.current_revision(conn) == migrate.head_revision()
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diffs == []


def test_health_thresholds_come_from_the_config_file(tmp_path: Path) -> None:
    cfg = parse_config("[health]\nshift_hours = 12\nclock_drift_s = 5\n", tmp_path / "d.toml")
    assert (cfg.health.shift_hours, cfg.health.clock_drift_s) == (12, 5)
    with pytest.raises(ConfigError, match=r"health\.shift_hours"):
        parse_config("[health]\nshift_hours = 0\n", tmp_path / "d.toml")
    with pytest.raises(ConfigError, match=r"health\.nap_hours"):
        parse_config("[health]\nnap_hours = 1\n", tmp_path / "d.toml")
