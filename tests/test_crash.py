"""SIGKILL the real `dockd run --once` at random moments during ingest, again and again.

Whatever moment the process dies at — mid-transfer, between publish and the catalog commit,
between the catalog and the camera's delete — a restart must pick up without losing or
doubling anything: every recording ends stored exactly once, decrypting to its source, the
audit chain intact, and no temp files left.
"""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path
from typing import Any

from helpers_ingest import (
    EXIT_INCOMPLETE,
    Env,
    assert_nothing_lost,
    camera_states,
    kill_after,
    leftovers,
    make_env,
    recording,
    recordings_by_key,
    run_daemon,
    scenario_toml,
    source_sha256,
    start_daemon,
    still_on_camera,
    stored_files,
    tolerant_events,
    wait_for_event,
)

from dockd.catalog.rows import AttemptRow
from dockd.store import sidecar_path

MIB = 1 << 20
KILLS = 20
SEED = int(os.environ.get("DOCKD_CRASH_SEED", "20261126"))


def _cameras() -> list[dict[str, Any]]:
    # 3 cameras x 4 recordings x 6 MiB at 4 MB/s: ~6 s of transfer per camera, so kills
    # after the ~1 s start-up land in every phase of the work for many runs
    return [{"serial": f"NC-CRASH-{c}", "slot": c, "link_mb_s": 4,
             "recording": [recording(f"2026_{c}_{r}.MP4", 6 * MIB + 777 * r, seed=10 * c + r,
                                     minute=10 * c + r) for r in range(4)]}
            for c in (1, 2, 3)]


def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    env = make_env(tmp_path, scenario_text=scenario_toml(_cameras()))
    sources = source_sha256(env)
    kills = runs = mid_transfer = 0
    stray: set[str] = set()
    while kills < KILLS:
        runs += 1
        assert runs <= 3 * KILLS, f"seed {SEED}: the daemon kept finishing before the kill"
        log_path = tmp_path / f"run{runs:02d}.log"
        before = {a.id for a in _attempts(env)}
        proc = start_daemon(env, log_path, reset=(runs == 1))
        # mostly after start-up (where the work is; timed from there so a loaded machine's
        # slow start does not waste the kill), sometimes during it
        if rng.random() < 0.15:
            killed = kill_after(proc, rng.uniform(0.0, 1.0))
        else:
            wait_for_event(proc, log_path, "dockd_started")
            killed = kill_after(proc, rng.uniform(0.0, 1.6))
        if killed:
            kills += 1
            # an attempt this run opened and never finished: the kill hit a transfer
            mid_transfer += any(a.finished_at is None and a.id not in before
                                for a in _attempts(env))
        else:
            assert proc.returncode in (0, 6), f"seed {SEED} run {runs}: exit {proc.returncode}"
        # between any two runs: nothing has left a camera without its durable copy
        assert_nothing_lost(env, decrypt=False)
        # a start-up that got as far as dockd_started removed the previous run's
        # unresumable leftovers (it keeps only partial + resume-state pairs)
        if _started(log_path):
            removed = {e["path"] for e in tolerant_events(log_path)
                       if e.get("event") == "partial_removed"}
            assert stray <= removed, f"seed {SEED} run {runs}: kept {stray - removed}"
            stray = set()
        stray |= _unresumable(env)

    assert mid_transfer >= 5, f"seed {SEED}: only {mid_transfer} kills landed mid-transfer"

    final = run_daemon(env)
    assert final.returncode == 0, f"seed {SEED}: {final.stderr}"
    events = final.events + [e for i in range(1, runs + 1)
                             for e in tolerant_events(tmp_path / f"run{i:02d}.log")]
    resumed = [e for e in events if e.get("event") == "transfer"
               and e.get("outcome") == "stored" and e.get("resumed_from", 0) > 0]
    assert resumed, f"seed {SEED}: no transfer resumed from a checkpoint after a kill"
    print(f"seed {SEED}: {runs} runs, {kills} kills, {mid_transfer} mid-transfer, "
          f"{len(resumed)} resumed, "
          f"{sum(e.get('event') == 'stored_file_adopted' for e in events)} adopted, "
          f"{sum(e.get('event') == 'partial_removed' for e in events)} partials removed, "
          f"{sum(e.get('event') == 'camera_delete_confirmed' for e in events)} deletes booked")

    # every recording: off the camera, stored exactly once, the catalog agrees
    assert still_on_camera(env) == {f"NC-CRASH-{c}": set() for c in (1, 2, 3)}
    by_key = recordings_by_key(env)
    assert set(by_key) == set(sources)
    files = stored_files(env)
    assert len(files) == len(sources), f"seed {SEED}: {len(files)} files for {len(sources)}"
    assert sorted(Path(r.store_path) for r in by_key.values() if r.store_path) == files
    assert all(r.status == "deleted_from_camera" for r in by_key.values())
    assert_nothing_lost(env, decrypt=True)  # with the `age` binary, against the source bytes

    with env.catalog() as catalog:
        assert catalog.verify_chain() == []
    assert leftovers(env) == [], f"seed {SEED}: temp files left"


def _attempts(env: Env) -> list[AttemptRow]:
    if not env.catalog_path.exists():
        return []
    with env.catalog() as catalog:
        return [a for r in catalog.recordings() for a in catalog.attempts(r.id)]


def _unresumable(env: Env) -> set[str]:
    """Leftovers that are not a partial with its resume state."""
    found = set(leftovers(env))
    pairs = {p for p in found if p.name.endswith(".partial") and sidecar_path(p) in found}
    return {str(p) for p in found - pairs - {sidecar_path(p) for p in pairs}}


def _started(log_path: Path) -> bool:
    return any(e.get("event") == "dockd_started" for e in tolerant_events(log_path))


def test_a_delete_the_catalog_missed_is_booked_at_the_next_dock(tmp_path: Path) -> None:
    """The moment between the camera's delete and its catalog entry, made deterministic:
    stored and verified, then gone from the camera behind the catalog's back. The next dock
    sees the camera's whole listing without it and books the delete; nothing is stored
    again."""
    cams = [{"serial": "NC-GONE", "slot": 1,
             "recording": [recording(f"G{i}.MP4", 70000 + i, seed=i, minute=i)
                           for i in range(3)]}]
    env = make_env(tmp_path, scenario_text=scenario_toml(cams),
                   ingest={"delete_after_ingest": False})
    first = run_daemon(env, reset=True)
    assert first.returncode == 0, first.stderr
    assert {r.status for r in recordings_by_key(env).values()} == {"verified"}
    state = camera_states(env)[0]
    assert state.delete(b"G0.MP4") and state.delete(b"G1.MP4")  # the "crash" window
    env.config.write_text(env.config.read_text().replace("delete_after_ingest = false",
                                                         "delete_after_ingest = true"))
    second = run_daemon(env)
    assert second.returncode == 0, second.stderr
    assert sorted(e["recording"] for e in second.named("camera_delete_confirmed")) == [
        "G0.MP4", "G1.MP4"]
    assert {k[1]: r.status for k, r in recordings_by_key(env).items()} == {
        "G0.MP4": "deleted_from_camera", "G1.MP4": "deleted_from_camera",
        "G2.MP4": "deleted_from_camera"}
    assert still_on_camera(env) == {"NC-GONE": set()}
    assert len(stored_files(env)) == 3
    with env.catalog() as catalog:
        assert catalog.verify_chain() == []


def test_a_row_moved_back_to_stored_behind_the_chain_deletes_nothing(tmp_path: Path) -> None:
    """Rows edited behind dockd's back (status set back to `stored`, as a crash between
    `stored` and `verified` would have left them) while a file is damaged: the chain says
    otherwise, so before any delete the daemon finds the rows disagree with their custody
    chain and keeps every camera copy, never overwriting or adopting the damaged file — on
    this dock and the next. (A file damaged between docks, with honest rows, is
    test_custody_e2e.py's: it is ingested again.)"""
    cams = [{"serial": "NC-ROT", "slot": 1,
             "recording": [recording(f"R{i}.MP4", 90000 + i, seed=i, minute=i)
                           for i in range(2)]}]
    env = make_env(tmp_path, scenario_text=scenario_toml(cams),
                   ingest={"delete_after_ingest": False})
    assert run_daemon(env, reset=True).returncode == 0
    rows = recordings_by_key(env)
    damaged = Path(rows[("NC-ROT", "R0.MP4")].store_path or "")
    with sqlite3.connect(env.catalog_path) as db:
        db.execute("UPDATE recordings SET status = 'stored'")
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    env.config.write_text(env.config.read_text().replace("delete_after_ingest = false",
                                                         "delete_after_ingest = true"))
    for _ in range(2):  # the restart, and the dock after it
        run = run_daemon(env)
        assert run.returncode == EXIT_INCOMPLETE, run.stderr
        assert still_on_camera(env) == {"NC-ROT": {"R0.MP4", "R1.MP4"}}
        session = run.named("dock_session")[-1]
        assert session["failed"] == 2 and session["deleted"] == 0
        assert all("disagrees with its custody chain" in f and "status" in f
                   for f in session["failures"])
        assert damaged.read_bytes() == bytes(data)  # neither replaced nor removed
        assert {r.status for r in recordings_by_key(env).values()} == {"stored"}
