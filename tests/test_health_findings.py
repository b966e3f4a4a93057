"""Findings raised and cleared: stored, and one structured log event each (for alerting)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from dockd.catalog import Catalog
from dockd.catalog.rows import TransferRecord
from dockd.config import Config, StorageConfig
from dockd.health.capture import DiskUsage, capture_dock
from dockd.health.findings import Severity, check_transfers
from dockd.health.service import refresh_findings
from dockd.model import BatterySnapshot, CameraIdentity, ChargingState

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
COOL = BatterySnapshot(soc_percent=90, voltage_mv=4100, current_ma=300, temperature_c=27,
                       cycle_count=50, design_capacity_mah=3000, full_charge_capacity_mah=2900,
                       charging=ChargingState.CHARGING)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> tuple[Catalog, Clock, Config]:
    clock = Clock()
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.db'}", clock=clock)
    return catalog, clock, Config(storage=StorageConfig(path=tmp_path))


def _dock(catalog: Catalog, clock: Clock, config: Config, battery: BatterySnapshot) -> None:
    ident = CameraIdentity("NC-1", "BC-300", "3.2.1", "NetCo", clock.now)
    catalog.upsert_camera(ident)
    sess = catalog.start_session("NC-1", dock="dock-a", slot=1)
    capture_dock(catalog, serial="NC-1", session_id=sess.id, identity=ident, battery=battery,
                 shift_log=None, host_now=clock.now, config=config,
                 disk_usage=lambda _p: DiskUsage(10**12, 10**11, 9 * 10**11))
    catalog.end_session(sess.id, outcome="complete")


def _events(logs: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(e["event"], e["finding"]) for e in logs if str(e["event"]).startswith("health_")]


def test_a_finding_is_logged_once_when_raised_and_once_when_cleared(world) -> None:
    catalog, clock, config = world
    _dock(catalog, clock, config, replace(COOL, temperature_c=58))
    with capture_logs() as logs:
        findings, raised, cleared = refresh_findings(catalog, config, now=clock.now)
        refresh_findings(catalog, config, now=clock.now)  # nothing new: nothing logged
    assert [(f.code, f.severity) for f in findings] == [("battery_hot", Severity.CRITICAL)]
    assert _events(logs) == [("health_finding_raised", "battery_hot")]
    hot = next(e for e in logs if e["event"] == "health_finding_raised")
    assert hot["subject"] == "NC-1" and hot["severity"] == "critical"
    assert hot["evidence"]["temperature_c"] == 58 and hot["log_level"] == "warning"  # type: ignore[index]
    assert "swelling" in str(hot["advice"])

    clock.now += timedelta(hours=12)
    _dock(catalog, clock, config, COOL)
    with capture_logs() as logs:
        findings, raised, cleared = refresh_findings(catalog, config, now=clock.now)
    assert findings == [] and raised == []
    assert [c.code for c in cleared] == ["battery_hot"]
    assert _events(logs) == [("health_finding_cleared", "battery_hot")]
    (stored,) = catalog.health.findings(active_only=False)
    assert stored.cleared_at == clock.now and stored.raised_at == T0


@pytest.mark.parametrize(
    ("battery", "summary"),
    [
        (replace(COOL, voltage_mv=65_535), "65.53 V"),  # u16 all ones: a gauge gone wrong
        (replace(COOL, voltage_mv=900), "0.90 V"),
        (replace(COOL, full_charge_capacity_mah=9000), "full charge 9000 mAh of a 3000 mAh"),
    ],
)
def test_a_gauge_reading_no_battery_can_give_is_a_finding(world, battery, summary) -> None:
    catalog, clock, config = world
    _dock(catalog, clock, config, battery)
    findings, _, _ = refresh_findings(catalog, config, now=clock.now)
    (found,) = [f for f in findings if f.code == "battery_implausible"]
    assert found.severity is Severity.WARNING and found.subject == "NC-1"
    assert summary in found.summary and "gauge" in found.advice
    assert found.evidence["voltage_mv"] == battery.voltage_mv
    clock.now += timedelta(hours=12)
    _dock(catalog, clock, config, COOL)  # a sane reading at the next dock clears it
    assert [c.code for c in refresh_findings(catalog, config, now=clock.now)[2]] == [
        "battery_implausible"]


def test_overdue_is_raised_with_time_and_cleared_by_docking(world) -> None:
    catalog, clock, config = world
    _dock(catalog, clock, config, COOL)
    assert refresh_findings(catalog, config, now=clock.now)[0] == []
    clock.now += timedelta(days=config.health.overdue_days + 0.5)
    findings, raised, _ = refresh_findings(catalog, config, now=clock.now)
    assert [(f.code, f.severity) for f in findings] == [("overdue", Severity.WARNING)]
    clock.now += timedelta(days=config.health.overdue_days)
    findings, raised, _ = refresh_findings(catalog, config, now=clock.now)
    assert [(r.code, r.severity) for r in raised] == [("overdue", "critical")]  # got worse
    _dock(catalog, clock, config, COOL)
    assert refresh_findings(catalog, config, now=clock.now)[2][0].code == "overdue"


def _att(cam: str, slot: int, ok: bool, rec: int) -> TransferRecord:
    return TransferRecord(cam, rec, rec, "dock-a", slot, T0, T0 + timedelta(seconds=1),
                          1000 if ok else 0, ok, None if ok else "device")


def test_attribution_rules_on_plain_records() -> None:
    cfg = Config().health
    port_bad = [_att(c, 4, False, i) for i, c in enumerate(["A", "A", "B", "B"])]
    port_bad += [_att("A", 1, True, 10), _att("B", 2, True, 11)]
    assert {(f.code, f.subject) for f in check_transfers(port_bad, cfg)} == {
        ("transfer_port", "dock-a/4")}
    cam_bad = [_att("C", s, False, i) for i, s in enumerate([1, 1, 2, 2])]
    cam_bad += [_att("D", 1, True, 20), _att("D", 2, True, 21)]
    assert {(f.code, f.subject) for f in check_transfers(cam_bad, cfg)} == {
        ("transfer_camera", "C")}
    lone = [_att("E", 5, False, 1), _att("E", 5, False, 2)]
    assert {(f.code, f.severity) for f in check_transfers(lone, cfg)} == {
        ("transfer_failures", Severity.NOTICE)}
    one_failure = [_att("F", 6, False, 1), _att("F", 6, True, 2)]
    assert check_transfers(one_failure, cfg) == []  # a single failure is not a pattern
