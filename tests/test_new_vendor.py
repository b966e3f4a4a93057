"""A new vendor needs one new folder and no core change: copy the template, rename it,
install it, and the core discovers its driver and its match data (issue 11)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIP = [sys.executable, "-m", "pip"]


def _copy_template_as(vendor: str, dest: Path) -> Path:
    folder = dest / vendor
    shutil.copytree(REPO / "drivers" / "template", folder,
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
    (folder / "dockd_example").rename(folder / f"dockd_{vendor}")
    for path in [folder / "pyproject.toml", *folder.rglob("*.py"), *folder.rglob("*.toml")]:
        text = path.read_text()
        text = (text.replace("dockd_example", f"dockd_{vendor}")
                .replace("dockd-example", f"dockd-{vendor}")
                .replace('"example"', f'"{vendor}"').replace("example =", f"{vendor} =")
                .replace("product_id = 0x0001", "product_id = 0x0A0A")
                .replace("disabled = true", "disabled = false"))
        path.write_text(text)
    return folder


def test_a_copied_template_is_discovered_and_matched_with_no_core_change(tmp_path: Path) -> None:
    folder = _copy_template_as("acme", tmp_path)
    target = tmp_path / "site"
    done = subprocess.run([*PIP, "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(folder)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    drivers = subprocess.run(
        [sys.executable, "-c", "from dockd.registry import DriverRegistry;"
         "print(' '.join(sorted(DriverRegistry.discover().drivers)))"],
        capture_output=True, text=True, env=env, timeout=60, check=True).stdout.split()
    assert "acme" in drivers and "netco" in drivers and "folder" in drivers
    rules = subprocess.run([str(Path(sys.executable).with_name("dockctl")), "udev-rules"],
                           capture_output=True, text=True, env=env, timeout=60, check=True)
    assert 'ATTR{idProduct}=="0a0a"' in rules.stdout and "# acme" in rules.stdout
    # its test skeleton passes as copied
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(folder / "tests")], capture_output=True, text=True, env=env,
                           timeout=120, check=False, cwd=folder)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_every_shipped_scenario_still_plays_beside_a_second_simulating_driver(
        tmp_path: Path) -> None:
    """Once two installed drivers can simulate, a camera must say whose device model plays
    it: the shipped scenarios name netco (at [dock] level), so they keep working."""
    site = tmp_path / "site"
    (site / "acme_sim").mkdir(parents=True)
    (site / "acme_sim" / "__init__.py").write_text(
        "def simulate(spec, state):\n    raise RuntimeError('acme plays no camera here')\n")
    dist = site / "acme_sim-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-sim\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dockd.simulators]\nacme = acme_sim:simulate\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    dockd = str(Path(sys.executable).with_name("dockd"))
    scenarios = sorted((REPO / "scenarios").glob("*.toml")) + sorted(
        (REPO / "scenarios" / "hostile").glob("*.toml"))
    played = 0
    for scenario in scenarios:
        if scenario.name.startswith("fleet-"):
            continue  # multi-day fleets are played by the fleet player, not --simulate
        done = subprocess.run([dockd, "probe", "--simulate", str(scenario), "--sim-state",
                               str(tmp_path / "state" / scenario.stem), "--json"],
                              capture_output=True, text=True, env=env, timeout=120, check=False)
        assert done.returncode == 0, (scenario.name, done.stderr[-500:])
        played += 1
    assert played >= 15
    unnamed = tmp_path / "unnamed.toml"
    unnamed.write_text('[[camera]]\nserial = "X"\nslot = 1\n')
    done = subprocess.run([dockd, "probe", "--simulate", str(unnamed), "--json"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 2
    assert "must name one of the simulating drivers: acme, netco" in done.stderr
