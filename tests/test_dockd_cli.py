"""`dockd probe` and `dockd run` as a technician and an admin meet them: real processes,
the bundled demo scenario, one-line errors with exit code 2 and nothing started."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKD = Path(sys.executable).with_name("dockd")


def dockd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DOCKD), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60, check=False)


def demo_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios",
                    ignore=shutil.ignore_patterns("*.sim-state"))
    return tmp_path / "scenarios" / "demo.toml"


def test_probe_lists_every_docked_camera_without_ingesting(tmp_path: Path) -> None:
    scenario = demo_copy(tmp_path)
    done = dockd("probe", "--simulate", str(scenario), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    cameras = json.loads(done.stdout)["cameras"]
    assert [(c["slot"], c["driver"], c["identity"]["serial"]) for c in cameras] == [
        (1, "netco", "NC-100234"), (3, "netco", "NC-100571"), (6, "netco", "NC-099812")]
    first = cameras[0]
    assert first["battery"]["cycle_count"] == 412
    assert first["battery"]["full_charge_capacity_mah"] == 2310
    assert len(first["recordings"]) == 4
    assert all(len(r["sha256"]) == 64 for r in first["recordings"])
    # nothing was ingested or deleted: a second probe sees the same recordings
    again = json.loads(dockd("probe", "--simulate", str(scenario), "--json",
                             cwd=tmp_path).stdout)["cameras"]
    assert [len(c["recordings"]) for c in again] == [len(c["recordings"]) for c in cameras]


def test_bad_scenario_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[dock]\nname = "x"\nslots = 8\n[[camera]]\nserial = "A"\nslot = 99\n')
    done = dockd("probe", "--simulate", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"dockd: {bad}: camera[0].slot: must be an integer from 1 to dock.slots (8)"]
    assert done.stdout == ""


def test_bad_dropin_stops_run_before_anything_starts(tmp_path: Path) -> None:
    scenario = demo_copy(tmp_path)
    (tmp_path / "drivers.d").mkdir()
    (tmp_path / "drivers.d" / "10-x.toml").write_text('[[match]]\ndriver = "netco"\n')
    config = tmp_path / "dockd.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "evidence"}"\n'
                      f'[catalog]\nurl = "sqlite:///{tmp_path / "c.sqlite"}"\n'
                      '[encryption]\nrecipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8'
                      'zmrj2kg5sfn9aqmcac8p"]\n'
                      f'[drivers]\ndropin_dir = "{tmp_path / "drivers.d"}"\n')
    done = dockd("run", "--config", str(config), "--simulate", str(scenario), "--once",
                 cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"dockd: {tmp_path / 'drivers.d' / '10-x.toml'}: match[0].vendor_id: is required")
    assert not (tmp_path / "evidence").exists()  # nothing ingested


def test_run_without_recipients_refuses_to_start(tmp_path: Path) -> None:
    scenario = demo_copy(tmp_path)
    config = tmp_path / "dockd.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "evidence"}"\n'
                      f'[catalog]\nurl = "sqlite:///{tmp_path / "c.sqlite"}"\n')
    done = dockd("run", "--config", str(config), "--simulate", str(scenario), "--once",
                 cwd=tmp_path)
    assert done.returncode == 2
    assert "encryption.recipients" in done.stderr and "no recipients" in done.stderr
    assert not (tmp_path / "c.sqlite").exists()


HOSTILE_PROBE = """
[dock]
name = "dock-h"
slots = 2

[[camera]]
serial = "NC-H"
slot = 1

[[camera.recording]]
name = "[bold red]x[blink].MP4"
size = 1000
seed = 1
started = "2026-11-25T08:00:00Z"

[[camera.recording]]
name_hex = "63 6c 69 70 e2 80 ae 34 70 6d 2e 65 78 65"
size = 2000
seed = 2
started = "2026-11-25T08:01:00Z"

[[camera.recording]]
name = "20261125_080200_0003.MP4"
size = 3000
seed = 3
started = "2026-11-25T08:02:00Z"
"""


def test_probe_shows_refused_entries_beside_their_siblings(tmp_path: Path) -> None:
    scenario = tmp_path / "hostile.toml"
    scenario.write_text(HOSTILE_PROBE)
    done = dockd("probe", "--simulate", str(scenario), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (camera,) = json.loads(done.stdout)["cameras"]
    assert "error" not in camera
    assert [r["name"] for r in camera["recordings"]] == ["[bold red]x[blink].MP4",
                                                         "20261125_080200_0003.MP4"]
    (refused,) = camera["refused"]
    assert refused["label"] == "clip\\u202e4pm.exe"
    assert refused["reason"] == "name contains control/format character U+202E"
    assert (refused["size"], refused["started"]) == (2000, "2026-11-25T08:01:00+00:00")
    assert len(refused["sha256"]) == 64

    # names from devices are printed as text, never as markup or raw control characters
    shown = subprocess.run([str(DOCKD), "probe", "--simulate", str(scenario)],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60,
                           check=False, env={**os.environ, "COLUMNS": "250"})
    assert shown.returncode == 0, shown.stderr
    assert "[bold red]x[blink].MP4  1000 B" in shown.stdout
    assert ("clip\\u202e4pm.exe  2000 B  started 2026-11-25T08:01:00+00:00  sha256 "
            in shown.stdout)
    assert "refused: name contains control/format character U+202E" in shown.stdout
    assert "2 (0.0 MiB) + 1 refused" in shown.stdout and "ok, 1 refused" in shown.stdout
    assert "\u202e" not in shown.stdout and "\x1b" not in shown.stdout
