"""`dockctl verify --sample PERCENT / --since DATE`: a big store checked in parts, each part
recorded in the chain; and the output of a store with many failures stays short."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dockctl_env import World, pristine, world

from dockd.cli import verify_cmd
from dockd.errors import VerifyFailed
from dockd.verify import Selection

__all__ = ["pristine", "world"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rec(rec_id: int, created_at: datetime = T0) -> Any:
    return SimpleNamespace(id=rec_id, created_at=created_at)


def _picked(sel: Selection, ids: range) -> set[int]:
    return {i for i in ids if sel.picks(_rec(i))}


def test_a_sample_is_about_its_percent_and_the_same_seed_picks_the_same_files() -> None:
    ids = range(1, 20_001)
    ten = _picked(Selection(percent=10, seed=7), ids)
    assert 1_700 < len(ten) < 2_300  # 2,000 expected; 7 standard deviations either side
    assert ten == _picked(Selection(percent=10, seed=7), ids)
    other = _picked(Selection(percent=10, seed=8), ids)
    assert 100 < len(ten & other) < 300  # another seed: an independent sample (~200 shared)
    assert _picked(Selection(percent=100, seed=7), ids) == set(ids)
    # a bigger sample with the same seed contains the smaller one: raising the percentage
    # on a schedule re-reads what was read, plus more
    assert ten <= _picked(Selection(percent=30, seed=7), ids)


def test_since_reads_only_recordings_catalogued_from_that_time() -> None:
    sel = Selection(since=T0)
    assert sel.picks(_rec(1, T0)) and sel.picks(_rec(2, T0 + timedelta(days=3)))
    assert not sel.picks(_rec(3, T0 - timedelta(seconds=1)))
    both = Selection(since=T0, percent=100, seed=1)
    assert not both.picks(_rec(3, T0 - timedelta(days=1))) and both.picks(_rec(3, T0))
    assert not Selection().partial and sel.partial and Selection(percent=5).partial


def _damage(path: str | None) -> None:
    assert path is not None
    with Path(path).open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))


def test_a_sample_reads_only_its_files_and_is_recorded_in_the_chain(world: World) -> None:
    recs = world.recordings()
    bad = recs["A_0001.MP4"]
    _damage(bad.store_path)
    others = {r.id for r in recs.values()} - {bad.id}
    # a seed whose 50 % sample leaves the damaged file out and reads the two others
    seed = next(s for s in range(10_000)
                if {r.id for r in recs.values() if Selection(percent=50, seed=s).picks(r)}
                == others)
    report = world.json("verify", "--sample", "50", "--seed", str(seed))
    assert report["ok"] and report["checked"] == 2 and report["skipped"] == 1
    assert report["selection"] == {"scope": "partial", "sample_percent": 50.0, "seed": seed,
                                   "since": None}
    runs = world.events("verify_run")
    assert [(e.details_dict["scope"], e.details_dict["sample_percent"], e.details_dict["seed"],
             e.details_dict["checked"], e.details_dict["ok"], e.details_dict["skipped"])
            for e in runs] == [("partial", 50.0, seed, 2, 2, 1)]
    assert {e.recording_id for e in world.events("verified_later")} == others

    # the whole store finds it, and its run is recorded with what it found
    result = world.dockctl("verify")
    assert result.exit_code == VerifyFailed.exit_code
    last = world.events("verify_run")[-1].details_dict
    assert (last["scope"], last["checked"], last["ok"], last["problems"]) == (
        "all", 3, 2, {"stored_hash": 1})


def test_since_checks_the_recent_part_of_the_store(world: World) -> None:
    recs = world.recordings()
    _damage(recs["A_0001.MP4"].store_path)
    later = max(r.created_at for r in recs.values()) + timedelta(seconds=1)
    result = world.dockctl("verify", "--since", f"{later:%Y-%m-%dT%H:%M:%S}")
    assert result.exit_code == 0, result.output
    assert "checked 0 stored recordings" in result.stdout and "3 not read this time" \
        in result.stdout
    earlier = min(r.created_at for r in recs.values())
    report = world.json("verify", "--since", f"{earlier:%Y-%m-%d}")
    assert report["checked"] == 3 and not report["ok"]
    assert report["findings_by_problem"] == {"stored_hash": 1}
    assert [e.details_dict["since"] for e in world.events("verify_run")] == [
        f"{later:%Y-%m-%dT%H:%M:%S}+00:00", f"{earlier:%Y-%m-%d}T00:00:00+00:00"]


def test_a_partial_check_does_not_search_the_store_for_unknown_files(world: World) -> None:
    (world.store / "stray.bin").write_bytes(b"nobody's")
    assert world.dockctl("verify", "--sample", "100").exit_code == 0
    report = world.json("verify")
    assert report["findings_by_problem"] == {"unknown_file": 1}


def test_many_failures_of_one_kind_print_a_few_lines_and_a_count(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_cmd, "SHOWN", 1)
    for rec in world.recordings().values():
        assert rec.store_path is not None
        Path(rec.store_path).unlink()
    result = world.dockctl("verify")
    assert result.exit_code == VerifyFailed.exit_code
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 2 and fails[1] == (
        "FAIL … and 2 more missing (--json lists the first 1000 findings)")
    assert result.stderr.startswith("dockctl: verify found 3 problems: missing 3")


def test_seed_needs_sample(world: World) -> None:
    result = world.dockctl("verify", "--seed", "3")
    assert result.exit_code == 2 and "needs --sample" in result.stderr
