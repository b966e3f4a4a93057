"""A simulated run never writes into a store or catalog that holds real evidence, and a real
run never into one that holds simulated recordings (issue 11)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from helpers_ingest import DOCKD, make_env, recording, run_daemon, scenario_toml

from dockd.errors import ConfigError


def _real_run(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`dockd run --once` without --simulate: the real watchers, no camera attached here."""
    return subprocess.run([str(DOCKD), "run", "--config", str(config), "--once"],
                          capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


def test_a_real_run_refuses_a_store_and_catalog_of_simulated_recordings(tmp_path: Path) -> None:
    env = make_env(tmp_path, scenario_text=scenario_toml([
        {"serial": "NC-SIM-1", "slot": 1, "recording": [recording("s.MP4", 1000, 1)]}]))
    assert run_daemon(env, reset=True).returncode == 0
    assert json.loads((env.store / ".dockd-store").read_text()) == {"mode": "simulated"}
    refused = _real_run(env.config, tmp_path)
    assert refused.returncode == ConfigError.exit_code, refused.stderr
    assert "the catalog holds simulated recordings: a real run refuses it" in refused.stderr
    # a fresh catalog does not help: the store itself says what it holds
    env.catalog_path.unlink()
    refused = _real_run(env.config, tmp_path)
    assert refused.returncode == ConfigError.exit_code
    assert "the store holds simulated recordings: a real run refuses it" in refused.stderr


def test_a_simulated_run_refuses_real_evidence(tmp_path: Path) -> None:
    env = make_env(tmp_path, scenario_text=scenario_toml([
        {"serial": "NC-SIM-2", "slot": 1, "recording": [recording("s.MP4", 1000, 1)]}]))
    first = _real_run(env.config, tmp_path)  # claims the store and catalog as real
    assert first.returncode == 0, first.stderr
    run = run_daemon(env, reset=True)
    assert run.returncode == ConfigError.exit_code
    assert "the catalog holds real recordings: a simulated run refuses it" in run.stderr
    assert not any(env.store.rglob("*.age"))
    shutil.rmtree(env.sim_state, ignore_errors=True)
