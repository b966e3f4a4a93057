"""Fleet scenarios over simulated days, through the real stack (simulator, pyusb, NetCo
driver, ingest engine, capture, findings): every seeded problem is found with its evidence
and advice, nothing else is, and a healthy fleet raises nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import click
import pytest
from click.testing import CliRunner
from health_fleet import Fleet, filling_disk, play

from dockd.cli.dockctl_cmd import main as dockctl
from dockd.cli.health_cmd import cameras, health, ports
from dockd.health.findings import Severity

EXPECTED_TROUBLE = {
    ("battery_soh", "NC-201"),
    ("battery_soh_trend", "NC-202"),
    ("battery_cycles", "NC-203"),
    ("shift_endurance", "NC-204"),
    ("shift_endurance", "NC-205"),
    ("battery_hot", "NC-206"),
    ("battery_temp_rise", "NC-207"),
    ("charging_stalled", "NC-208"),
    ("transfer_camera", "NC-209"),
    ("transfer_port", "dock-a/4"),
    ("clock_drift", "NC-212"),
    ("overdue", "NC-213"),
    ("storage_low", "<store>"),
}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    fleet = play(tmp_path_factory.mktemp("healthy"), "fleet-healthy.toml")
    yield fleet
    fleet.catalog.close()


@pytest.fixture(scope="module")
def trouble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    fleet = play(tmp_path_factory.mktemp("trouble"), "fleet-trouble.toml", disk=filling_disk)
    yield fleet
    fleet.catalog.close()


def _cli(fleet: Fleet, command: click.Command, *args: str) -> str:
    at = fleet.clock().strftime("%Y-%m-%dT%H:%M:%S")
    opts = ["--config", str(fleet.config_path), "--at", at]
    # the group takes the subcommand first
    argv = [args[0], *opts, *args[1:]] if isinstance(command, click.Group) else [*opts, *args]
    result = CliRunner().invoke(command, argv)
    assert result.exit_code == 0, result.output
    return result.output


# --- a healthy fleet --------------------------------------------------------------------


def test_a_healthy_fleet_raises_no_finding_on_any_day(healthy: Fleet) -> None:
    assert [d.day for d in healthy.days] == [0, 1, 2, 3, 4]
    for day in healthy.days:
        assert day.errors == []
        assert [s.outcome for s in day.sessions] == ["complete"] * 3
        assert day.findings == [], [f.as_json() for f in day.findings]
    assert healthy.catalog.health.findings(active_only=False) == []


def test_every_dock_of_the_healthy_fleet_was_captured(healthy: Fleet) -> None:
    caps = healthy.catalog.health.captures()
    assert len(caps) == 15
    assert all(c.session_id is not None and c.design_capacity_mah == 3000 for c in caps)
    assert all(abs(c.clock_offset_s) < 5 and not c.clock_set for c in caps)
    # each dock brought a new shift (dock stretch + ten-hour shift), stored once
    samples = healthy.catalog.health.shift_samples("NC-101")
    assert len(samples) == len({s.at for s in samples}) > 5 * 20
    caps = healthy.catalog.health.captures("NC-101")
    assert [c.at.date() for c in caps] == [
        (healthy.days and caps[0].at + timedelta(days=d)).date() for d in range(5)]


def test_the_healthy_fleet_reads_as_healthy_in_dockctl(healthy: Fleet) -> None:
    assert json.loads(_cli(healthy, health, "--json"))["findings"] == []
    assert "is healthy" in _cli(healthy, dockctl, "health")  # registered in the dockctl group
    assert "is healthy" in _cli(healthy, health)
    cams = json.loads(_cli(healthy, cameras, "--json"))
    assert {c["serial"] for c in cams} == {"NC-101", "NC-102", "NC-103"}
    assert all(c["worst"] == "ok" and c["predicted_runtime_h"] > 10 for c in cams)
    port_rows = json.loads(_cli(healthy, ports, "--json"))
    assert {p["port"] for p in port_rows} == {"dock-a/1", "dock-a/2", "dock-a/3"}
    assert all(p["failed"] == 0 and p["worst"] == "ok" for p in port_rows)


# --- a fleet in trouble -------------------------------------------------------------------


def _found(fleet: Fleet) -> dict[tuple[str, str], dict[str, object]]:
    findings = json.loads(_cli(fleet, health, "--json"))["findings"]
    store = str(fleet.config.storage.path)
    return {(f["code"], "<store>" if f["subject"] == store else f["subject"]): f
            for f in findings}


def test_every_seeded_problem_is_found_and_nothing_else(trouble: Fleet) -> None:
    assert all(day.errors == [] for day in trouble.days)
    found = _found(trouble)
    assert set(found) == EXPECTED_TROUBLE
    assert all(f["advice"] and f["evidence"] for f in found.values())


def test_findings_come_worst_first(trouble: Fleet) -> None:
    findings = json.loads(_cli(trouble, health, "--json"))["findings"]
    ranks = [int(Severity[f["severity"].upper()]) for f in findings]
    assert ranks == sorted(ranks, reverse=True)
    assert {f["subject"] for f in findings if f["severity"] == "critical"} == {"NC-201", "NC-204"}


def test_battery_findings_carry_their_evidence(trouble: Fleet) -> None:
    found = _found(trouble)
    soh = found["battery_soh", "NC-201"]
    assert soh["severity"] == "critical" and soh["evidence"]["soh_percent"] == 65.0
    trend = found["battery_soh_trend", "NC-202"]["evidence"]
    assert trend["first_soh"] == 97.0 and trend["last_soh"] < 86 and trend["per_30d"] < -30
    assert found["battery_cycles", "NC-203"]["evidence"]["cycle_count"] == 812
    assert found["battery_hot", "NC-206"]["evidence"]["temperature_c"] == 52
    rise = found["battery_temp_rise", "NC-207"]["evidence"]
    assert rise["max_c"] - rise["start_c"] == pytest.approx(18, abs=0.5)
    stall = found["charging_stalled", "NC-208"]["evidence"]
    assert (stall["soc_from"], stall["soc_to"]) == (40.0, pytest.approx(41, abs=0.5))


def test_shift_endurance_ran_out_versus_predicted(trouble: Fleet) -> None:
    found = _found(trouble)
    ran_out = found["shift_endurance", "NC-204"]
    assert ran_out["severity"] == "critical"
    ev = ran_out["evidence"]
    assert ev["ran_out"] is True and 6.5 < ev["lasted_hours"] < 7.5
    assert ev["discharge_pct_per_hour"]["display"] == pytest.approx(25, abs=0.5)
    assert ev["discharge_pct_per_hour"]["standby"] == pytest.approx(5, abs=0.5)
    assert "display timeout" in ran_out["advice"]
    short = found["shift_endurance", "NC-205"]
    assert short["severity"] == "warning" and short["evidence"]["ran_out"] is False
    assert short["evidence"]["predicted_runtime_h"] == pytest.approx(8.0, abs=0.3)
    assert "will not last a shift" in short["summary"]


def test_transfer_failures_are_attributed_to_camera_or_port(trouble: Fleet) -> None:
    found = _found(trouble)
    port = found["transfer_port", "dock-a/4"]
    assert port["evidence"]["cameras"] == ["NC-210", "NC-211"]
    assert port["evidence"]["failed"] >= 4
    cam = found["transfer_camera", "NC-209"]
    assert cam["evidence"]["ports"] == ["dock-a/13", "dock-a/2", "dock-a/3"]
    # the witnesses of the bad port are not blamed, nor are the ports the bad camera used
    port_rows = {p["port"]: p for p in json.loads(_cli(trouble, ports, "--json"))}
    assert port_rows["dock-a/4"]["worst"] == "warning"
    assert port_rows["dock-a/2"]["failures_follow"] == ["NC-209"]
    assert port_rows["dock-a/2"]["worst"] == "ok"
    cams = {c["serial"]: c for c in json.loads(_cli(trouble, cameras, "--json"))}
    assert cams["NC-210"]["worst"] == cams["NC-211"]["worst"] == "ok"
    assert cams["NC-209"]["failed"] == cams["NC-209"]["attempts"] == 12


def test_clock_drift_is_measured_set_and_audited(trouble: Fleet) -> None:
    caps = trouble.catalog.health.captures("NC-212")
    assert [round(c.clock_offset_s) for c in caps] == [400, 400, 400]
    assert all(c.clock_set for c in caps)
    sets = [e for e in trouble.catalog.events() if e.kind == "clock_set"]
    assert [e.camera_serial for e in sets] == ["NC-212"] * 3
    assert all(e.details_dict["offset_s"] == pytest.approx(400, abs=1) for e in sets)
    assert trouble.catalog.verify_chain() == []
    drift = _found(trouble)["clock_drift", "NC-212"]
    assert drift["evidence"]["docks_off_of_last_3"] == 3


def test_overdue_and_storage(trouble: Fleet) -> None:
    found = _found(trouble)
    assert found["overdue", "NC-213"]["evidence"]["days"] == pytest.approx(5, abs=0.1)
    storage = found["storage_low", "<store>"]
    assert storage["evidence"]["days_left"] == pytest.approx(3.0, abs=0.1)
    assert storage["evidence"]["bytes_per_day"] == pytest.approx(50e9, rel=0.01)


def test_health_text_names_subject_finding_and_advice(trouble: Fleet) -> None:
    text = _cli(trouble, health, "--camera", "NC-204")
    assert "CRITICAL" in text and "NC-204" in text and "display timeout" in text
    assert "NC-201" not in text


def test_shift_logs_are_stored_on_the_host_clock(trouble: Fleet) -> None:
    # NC-212's camera runs 400 s fast; its shift log lands on host time: the docked event
    # it logged at docking is within seconds of the session's docked_at, not 400 s later
    session = trouble.catalog.sessions(camera="NC-212")[-1]
    docked = [e for e in trouble.catalog.health.shift_events("NC-212") if e.kind == "docked"]
    assert abs((docked[-1].at - session.docked_at).total_seconds()) < 5


def test_early_unattributed_failures_clear_once_attribution_is_possible(trouble: Fleet) -> None:
    # day 0: NC-210 fails in port 4 and NC-209 in port 2, each the only witness: "cannot tell
    # yet". Day 1 brings the second witness of each, and the notices give way to attributions.
    stored = {f.key: f for f in trouble.catalog.health.findings(active_only=False)}
    cleared = {k: f for k, f in stored.items() if f.cleared_at is not None}
    assert set(cleared) == {"transfer_failures:NC-210@dock-a/4",
                            "transfer_failures:NC-209@dock-a/2"}
    first_day = trouble.catalog.health.captures()[0].at
    for f in cleared.values():
        assert f.severity == "notice" and f.cleared_at is not None
        assert timedelta(days=0.9) < f.cleared_at - first_day < timedelta(days=1.1)
    active = {(f.code, f.subject) for f in stored.values() if f.cleared_at is None}
    store = str(trouble.config.storage.path)
    assert {(c, "<store>" if s == store else s) for c, s in active} == EXPECTED_TROUBLE
