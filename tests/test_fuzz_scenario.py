"""Fuzzing the scenario loader (dockd_sim.scenario): mutations of every shipped scenario
give a Scenario or one ConfigError naming the file — never another exception, a hang or a
big allocation (e.g. a shift expanded into millions of samples)."""

from __future__ import annotations

from pathlib import Path

from dockd_sim.scenario import Scenario, load_scenario
from fuzz_support import FUZZ, TOML_TOKENS, mutated, only_raises
from hypothesis import given
from hypothesis import strategies as st

from dockd.errors import ConfigError

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SEEDS = [p.read_bytes() for p in sorted([*SCENARIOS.glob("*.toml"),
                                          *SCENARIOS.glob("hostile/*.toml")])]
TOKENS = [*TOML_TOKENS, b"[camera.hostile]", b"[[camera.recording]]", b"[[camera.fault]]",
          b"[camera.shift]", b"[[dock.port_fault]]", b"name_hex", b'"41 00 ff"', b"size",
          b"repeat = 100", b"sample_every_min = 1", b"segments", b"claimed_size",
          b"extra_bytes = 1048577", b"times = \"always\"", b"slot = 0", b"source"]


def _load(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "scenario.toml"
    path.write_bytes(data)
    clips = tmp_path / "clips"
    if not clips.exists():
        clips.symlink_to(SCENARIOS / "clips")  # `source = "clips/..."` resolves as shipped
    scenario = load_scenario(path)
    assert isinstance(scenario, Scenario)


@FUZZ
@given(data=mutated(SEEDS, TOKENS))
def test_mutated_scenarios(tmp_path: Path, data: bytes) -> None:
    exc = only_raises(lambda: _load(tmp_path, data), ConfigError, "load_scenario")
    if exc is not None:
        assert str(tmp_path / "scenario.toml") in str(exc)


@FUZZ
@given(data=st.binary(max_size=1024))
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    only_raises(lambda: _load(tmp_path, data), ConfigError, "load_scenario")


def test_the_seeds_are_valid(tmp_path: Path) -> None:
    assert len(SEEDS) >= 10
    for seed in SEEDS:
        _load(tmp_path, seed)


def test_a_shift_too_long_to_expand_is_refused(tmp_path: Path) -> None:
    text = ('[[camera]]\nserial = "A"\nslot = 1\n[camera.shift]\nrepeat = 100\n'
            'sample_every_min = 1\nsegments = ' + repr([["standby", 72.0, 0.0]] * 20) + "\n")
    exc = only_raises(lambda: _load(tmp_path, text.replace("'", '"').encode()), ConfigError,
                      "huge shift")
    assert exc is not None and "camera[0].shift" in str(exc)
