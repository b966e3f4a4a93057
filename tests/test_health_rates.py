"""The fleet generator behind scripts/health_rates.py (docs/health.md, "How often it is
right"): seeded, varied, healthy by construction or with faults seeded on named subjects;
a few of its fleets played through the real stack here (the script plays a hundred). And
the charge watch on the simulated calendar: what the live view shows, the finding while the
camera is docked, the report's dock charge curve."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from dockd_sim.fleet import FleetClock, run_fleet
from dockd_sim.fleetgen import FAULTS, generate, play
from dockd_sim.scenario import load_scenario
from rich.console import Console

from dockd.catalog import Catalog
from dockd.config import Config, HealthConfig, IngestConfig, StorageConfig
from dockd.console import LiveConsole
from dockd.crypto.keys import generate_identity, parse_recipient
from dockd.health.overview import fleet_view
from dockd.health.report import render_report
from dockd.ingest import Progress

FAST = HealthConfig(charge_poll_s=300)


def test_the_same_seed_gives_the_same_fleet() -> None:
    assert generate(7).toml == generate(7).toml
    assert generate(7).toml != generate(8).toml
    assert generate(10_001, faults=2).seeded == generate(10_001, faults=2).seeded


def test_fleets_vary_the_way_a_technician_meets_them(tmp_path: Path) -> None:
    fleets = [generate(s) for s in range(1, 51)]
    for f in fleets[:5]:  # every generated scenario loads
        (tmp_path / "f.toml").write_text(f.toml)
        load_scenario(tmp_path / "f.toml")
    shifts = Counter(k for f in fleets for k in f.shape["shifts"])
    assert set(shifts) == {"day", "long", "night", "cold", "summer"}
    assert len({m for f in fleets for m in f.shape["models"]}) == 4
    assert sum(f.shape["relearns"] for f in fleets) > 50
    assert sum(f.shape["days_off"] for f in fleets) > 50
    assert {f.days for f in fleets} == {6, 7, 8}
    # cameras rotate across ports: most cameras dock in more than one
    scenario = load_scenario(tmp_path / "f.toml")
    slots: dict[str, set[int]] = {}
    for c in scenario.cameras:
        slots.setdefault(c.serial, set()).add(c.slot)
    assert sum(len(s) > 1 for s in slots.values()) >= len(slots) // 2


def test_fifty_faulty_fleets_seed_every_kind_of_fault_on_distinct_subjects() -> None:
    fleets = [generate(10_001 + i, faults=1 + i % 3) for i in range(50)]
    assert {s.fault for f in fleets for s in f.seeded} == set(FAULTS)
    for f in fleets:
        assert len({s.subject for s in f.seeded}) == len(f.seeded)


@pytest.mark.parametrize(("seed", "faults"), [(2, 0), (10_002, 2)])
def test_a_generated_fleet_through_the_real_stack(tmp_path: Path, seed: int, faults: int
                                                  ) -> None:
    outcome = play(generate(seed, faults=faults), tmp_path / "fleet", health=FAST)
    assert outcome.errors == []
    assert outcome.alarms() == []
    assert all(outcome.found(s) for s in outcome.fleet.seeded), outcome.raised


# --- the charge watch on the simulated calendar --------------------------------------------


SCENARIO = """
[dock]
driver = "netco"
name = "dock-x"
slots = 4
""" + "".join(f"""
[[camera]]
serial = "{serial}"
slot = {slot}
[camera.battery]
soc_percent = 35
charge_percent_per_h = 40
{extra}
[[camera.recording]]
name = "{serial}.MP4"
size = 20000
started = "2026-12-01T07:00:00Z"
""" for serial, slot, extra in (("NC-FLAT", 3, "stops_charging_after_s = 120"),
                                ("NC-GOOD", 1, "")))


def test_the_charge_watch_on_the_simulated_calendar(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO)
    store = tmp_path / "evidence"
    store.mkdir()
    _secret, recipient = generate_identity()
    config = Config(storage=StorageConfig(path=store, min_free_mib=0),
                    ingest=IngestConfig(retry_delay_s=0, transfer_timeout_s=0.5),
                    health=HealthConfig(charge_poll_s=120))
    clock = FleetClock()
    seen: list[Progress] = []
    with Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}", clock=clock) as catalog:
        [day] = run_fleet(load_scenario(tmp_path / "s.toml"), catalog, clock, config,
                          [parse_recipient(recipient)], tmp_path / "state", watch_min=40,
                          on_progress=seen.append)
        # while docked: the finding names the port; the healthy camera is not named
        docked = {(f.code, f.subject): f for f in day.docked_findings}
        assert set(docked) == {("dock_not_charging", "NC-FLAT")}
        flat = docked["dock_not_charging", "NC-FLAT"]
        assert flat.evidence["port"] == "dock-x/3" and flat.evidence["gain"] < 0
        assert day.findings == []  # cleared once it left
        # the live view shows the charge on the dock
        live = LiveConsole(Console(width=160, record=True, file=open("/dev/null", "w")))  # noqa: SIM115
        for p in seen:
            live.on_progress(p)
        live._console.print(live.table())
        text = live._console.export_text()
        assert "on dock: not charging" in text and "on dock: charging" in text
        # the report draws the stay's charge curve, as of while it was docked
        at = max(r.at for r in catalog.health.docked_charge("NC-FLAT") if r.docked)
        html = render_report(fleet_view(catalog, config, now=at))
        assert "on dock dock-x/3" in html and "still docked" in html
        assert "not charging on dock port dock-x/3" in html
