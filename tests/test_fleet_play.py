"""A bundled fleet scenario plays from the command line: `dockd run --simulate
scenarios/fleet-trouble.toml --once` plays its days on a simulated calendar ending today, then
`dockctl health` and `dockctl report` read what it left (what scripts/demo ends with).

Issue 13: `dockd run --simulate` refused multi-day fleets, so nobody could see the health
report without writing Python."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers_ingest import DOCKD, EXIT_INCOMPLETE, Env, make_env

REPO = Path(__file__).resolve().parents[1]
DOCKCTL = DOCKD.with_name("dockctl")


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[Env, subprocess.CompletedProcess[str]]:
    env = make_env(tmp_path_factory.mktemp("fleet"), ingest={"max_retries": 1})
    done = subprocess.run(
        [str(DOCKD), "run", "--config", str(env.config), "--simulate",
         str(REPO / "scenarios" / "fleet-trouble.toml"), "--sim-state", str(env.sim_state),
         "--once"], capture_output=True, text=True, timeout=300, check=False, cwd=env.root)
    return env, done


def test_the_trouble_fleet_plays_day_by_day_ending_today(played) -> None:
    _, done = played
    # its failing cameras and port leave recordings on the cameras: --once says so (exit 6)
    assert done.returncode == EXIT_INCOMPLETE, done.stdout[-3000:] + done.stderr
    summary = [line for line in done.stdout.splitlines() if not line.startswith("{")]
    today = datetime.now(UTC).date()
    first = today - timedelta(days=5)
    assert summary[0].endswith(f"5 simulated days, {first} to {today} (today)"), summary
    assert [line.split()[:3] for line in summary[1:6]] == [
        ["day", str(d), str(first + timedelta(days=d))] for d in (0, 1, 2, 3, 5)]
    assert summary[6].startswith("health: 12 findings (2 critical, 10 warning)")
    # one error line naming each recording not stored, with its day, camera and slot
    [error] = done.stderr.splitlines()
    assert error.startswith("dockd: not every recording is stored and verified: day 0 ")
    assert "NC-209" in error and "NC-210" in error and "NC-211" in error


def test_dockctl_health_and_report_read_the_played_fleet(played, tmp_path: Path) -> None:
    env, _ = played
    done = subprocess.run([str(DOCKCTL), "health", "--config", str(env.config), "--json"],
                          capture_output=True, text=True, timeout=120, check=True)
    view = json.loads(done.stdout)
    found = {(f["code"], f["subject"]) for f in view["findings"]}
    assert {("battery_soh", "NC-201"), ("shift_endurance", "NC-204"),
            ("battery_hot", "NC-206"), ("transfer_camera", "NC-209"),
            ("transfer_port", "dock-a/4"), ("overdue", "NC-213")} <= found, found
    # the last simulated day is today: the view is as of now, not of a clock days ahead
    at = datetime.fromisoformat(view["at"])
    assert abs(at - datetime.now(UTC)) < timedelta(minutes=10)
    out = tmp_path / "report.html"
    done = subprocess.run([str(DOCKCTL), "report", "--config", str(env.config), "--out",
                           str(out)], capture_output=True, text=True, timeout=120, check=True)
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") or html.lstrip().lower().startswith("<!doctype")
    for subject in ("NC-201", "NC-209", "dock-a/4"):
        assert subject in html


def test_scripts_demo_ends_with_the_trouble_fleet_health_and_report() -> None:
    demo = (REPO / "scripts" / "demo").read_text()
    played = demo.index("--simulate scenarios/fleet-trouble.toml")
    # (the demo itself takes minutes: the test above plays the same fleet through the same
    # commands)
    assert played < demo.index("bin/dockctl health") < demo.index("dockctl report --config")
    assert "dockctl" not in demo[demo.index("dockctl report --config") + 20:]
