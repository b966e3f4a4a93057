"""Custody that cannot be fooled, against the real `dockd run --once` process.

Each test is one way the landed code once deleted a camera's only good copy or kept a ghost:
clone cameras docked together with one pulled mid-transfer, a deferred delete after the
stored file was damaged, a restored catalog meeting a new same-named recording, and a camera
gone while its battery or shift log was read. The promise checked each time: every recording
is on its camera, or stored once and decrypting (with `age`) to its exact source bytes.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dockd_sim.content import GeneratedContent
from helpers_ingest import (
    DOCKD,
    Env,
    age_decrypt_sha256,
    assert_nothing_lost,
    camera_states,
    leftovers,
    make_env,
    recording,
    recordings_by_key,
    run_daemon,
    scenario_toml,
    source_sha256,
    still_on_camera,
    stored_files,
)

from dockd.catalog.live import live_status
from dockd.store import QUARANTINE_DIR, SIDECAR_SUFFIX

MIB = 1 << 20


def _dockctl(env: Env, *args: str) -> tuple[int, str, str]:
    proc = subprocess.run([str(DOCKD.with_name("dockctl")), args[0], "--config",
                           str(env.config), *args[1:]], capture_output=True, text=True,
                          timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _events(env: Env, kind: str) -> list[dict[str, Any]]:
    with env.catalog() as catalog:
        return [{**e.details_dict, "recording_id": e.recording_id}
                for e in catalog.events() if e.kind == kind]


def _no_key_beside_evidence(env: Env) -> None:
    """A resume state holds a file key: it may exist only beside its own partial."""
    found = set(leftovers(env))
    for path in found:
        if path.name.endswith(SIDECAR_SUFFIX):
            partial = path.with_name(path.name[: -len(".resume")])
            assert partial in found, f"{path}: a file key without its partial"


def _per_slot(env: Env) -> dict[int, set[str]]:
    return {s.spec.slot: {r.name.decode() for r in s.recordings()} for s in camera_states(env)}


# --- 1. clone cameras docked together, one pulled mid-transfer --------------------------

CLONE, NAME, SIZE = "NC-CLONE", "20261125_120000_0001.MP4", 6 * MIB


def _clones(undock: dict[int, float]) -> str:
    cams = []
    for slot in (1, 2):
        cam: dict[str, Any] = {"serial": CLONE, "slot": slot, "link_mb_s": 10,
                               "dock_at_s": 0.0 if slot == 1 else 0.05,
                               "recording": [recording(NAME, SIZE, seed=42)]}
        if slot in undock:
            cam["undock_at_s"] = undock[slot]
        cams.append(cam)
    return scenario_toml(cams)


@pytest.mark.parametrize("pulled,at_s", [(2, 0.25), (2, 0.6), (1, 0.35), (1, 0.7), (2, 1.2)])
def test_clone_cameras_docked_together_one_pulled_mid_transfer(tmp_path: Path, pulled: int,
                                                               at_s: float) -> None:
    """Two cameras with one serial list the same recording (same identity, same bytes) and
    dock together; one is pulled out at `at_s`, whichever of the two was writing. One
    session owns the recording at a time; the other waits and never touches its partial;
    nothing truncated is ever published; no file key outlives its partial."""
    env = make_env(tmp_path, scenario_text=_clones({pulled: at_s}))
    run = run_daemon(env, reset=True)
    assert run.returncode in (0, 6), run.stderr
    assert "Traceback" not in run.stderr
    assert_nothing_lost(env, decrypt=True)  # anything off a camera decrypts to its source
    _no_key_beside_evidence(env)
    on = _per_slot(env)
    stayed = 3 - pulled
    assert on[stayed] == set(), "the camera left in the dock was not emptied"
    for path in stored_files(env):
        assert age_decrypt_sha256(env, path) == GeneratedContent(SIZE, 42).sha256().hex()
    # the pulled camera comes back to a calm dock: its copy is proven and deleted
    env.scenario.write_text(_clones({}))
    again = run_daemon(env)
    assert again.returncode == 0, again.stderr
    assert _per_slot(env) == {1: set(), 2: set()}
    assert len(stored_files(env)) == 1
    assert_nothing_lost(env, decrypt=True)
    _no_key_beside_evidence(env)
    code, out, err = _dockctl(env, "verify", "--identity", str(env.key_file))
    assert code == 0, out + err


def test_a_second_session_waits_for_the_owner_and_never_writes_beside_it(
        tmp_path: Path) -> None:
    """Both clones stay docked: exactly one transfer writes the recording, the other session
    says it waited for the owner, and both camera copies are deleted after proof."""
    env = make_env(tmp_path, scenario_text=_clones({}))
    run = run_daemon(env, reset=True)
    assert run.returncode == 0, run.stderr
    stored = [e for e in run.named("transfer") if e["outcome"] == "stored"]
    assert len(stored) == 1
    assert run.named("recording_held_by_another_session")
    assert _per_slot(env) == {1: set(), 2: set()}
    deletes = _events(env, "deleted_from_camera")
    assert len(deletes) == 2 and all(d["proof"]["how"] in ("written", "rehashed")
                                     for d in deletes)
    assert [d for d in deletes if d.get("repeated")], "the second delete was not proven"


# --- 2. a deferred delete proves the stored copy first ----------------------------------


def _damage(path: Path, how: str) -> None:
    if how == "removed":
        path.unlink()
    elif how == "truncated":
        with path.open("r+b") as f:
            f.truncate(path.stat().st_size // 2)
    else:
        data = bytearray(path.read_bytes())
        data[len(data) * 2 // 3] ^= 0x04
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["removed", "truncated", "bitflip"])
def test_deferred_delete_proves_the_stored_copy_and_ingests_a_damaged_one_again(
        tmp_path: Path, how: str) -> None:
    cams = [{"serial": "NC-DEFER", "slot": 1, "recording": [
        recording(f"D{i}.MP4", 200_000 + i, seed=i, minute=i) for i in range(3)]}]
    env = make_env(tmp_path, scenario_text=scenario_toml(cams),
                   ingest={"delete_after_ingest": False})
    assert run_daemon(env, reset=True).returncode == 0
    assert still_on_camera(env) == {"NC-DEFER": {"D0.MP4", "D1.MP4", "D2.MP4"}}
    victim = Path(recordings_by_key(env)[("NC-DEFER", "D1.MP4")].store_path or "")
    _damage(victim, how)
    damaged = victim.read_bytes() if victim.exists() else None
    env.config.write_text(env.config.read_text().replace("delete_after_ingest = false",
                                                         "delete_after_ingest = true"))
    run = run_daemon(env)
    assert run.returncode == 0, run.stderr
    assert still_on_camera(env) == {"NC-DEFER": set()}
    # the damaged copy was found before the camera's delete, and D1 came again from the camera
    [found] = _events(env, "stored_copy_damaged")
    rows = recordings_by_key(env)
    assert found["recording_id"] == rows[("NC-DEFER", "D1.MP4")].id
    again = [e for e in run.named("transfer") if e["outcome"] == "stored"]
    assert [e["recording"] for e in again] == ["D1.MP4"]
    assert victim.exists() and victim.read_bytes() != damaged  # a fresh copy at its path
    assert_nothing_lost(env, decrypt=True)  # ... that decrypts to the source bytes
    # what was there is kept aside, byte for byte, for a person to look at
    quarantined = sorted((env.store / QUARANTINE_DIR).glob("*")) if damaged else []
    assert [q.read_bytes() for q in quarantined] == ([damaged] if damaged else [])
    # every delete was preceded by its proof, and says how
    proofs = {d["recording_id"]: d["proof"]["how"] for d in _events(env, "deleted_from_camera")}
    assert proofs == {rows[("NC-DEFER", f"D{i}.MP4")].id: ("written" if i == 1 else "rehashed")
                      for i in range(3)}
    code, out, err = _dockctl(env, "verify", "--identity", str(env.key_file))
    assert code == 0, out + err


# --- 3. a replaced catalog never adopts what it did not intend --------------------------


def _one(seed: int) -> str:
    return scenario_toml([{"serial": "NC-RESTORE", "slot": 1, "recording": [
        recording("20261125_150000_0001.MP4", 300_000, seed=seed, minute=5)]}])


def test_a_replaced_catalog_quarantines_the_old_file_and_ingests_the_new_recording(
        tmp_path: Path) -> None:
    """The catalog is replaced (a restore, a new disk), the store kept; the camera now holds a
    new recording with the same name, day and size. The file at its path is no intent of the
    new catalog: it is moved aside (never adopted, never overwritten), the new recording is
    stored and only then deleted, and the witness says the chain went back."""
    env = make_env(tmp_path, scenario_text=_one(seed=1))
    assert run_daemon(env, reset=True).returncode == 0
    old_path = Path(recordings_by_key(env)[("NC-RESTORE", "20261125_150000_0001.MP4")]
                    .store_path or "")
    old_bytes = old_path.read_bytes()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{env.catalog_path}{suffix}").unlink(missing_ok=True)
    env.scenario.write_text(_one(seed=2))  # the camera's part changed: its flash restarts

    run = run_daemon(env)
    assert run.returncode == 0, run.stderr
    assert not run.named("stored_file_adopted")
    assert run.named("audit_chain_disagrees_with_witness")
    assert still_on_camera(env) == {"NC-RESTORE": set()}
    assert_nothing_lost(env, decrypt=True)  # the new recording, from its new file
    [moved] = run.named("stored_file_quarantined")
    assert Path(moved["path"]) == old_path
    aside = Path(moved["moved_to"])
    assert aside.parent == env.store / QUARANTINE_DIR and aside.read_bytes() == old_bytes
    assert age_decrypt_sha256(env, aside) == GeneratedContent(300_000, 1).sha256().hex()
    [event] = _events(env, "quarantined")
    assert event["sha256"] and event["size"] == len(old_bytes)
    code, out, _ = _dockctl(env, "status")
    assert code == 0 and aside.name in out
    # the old anchors no longer match the chain: verify says the catalog went back
    code, out, err = _dockctl(env, "verify")
    assert code == 7 and "anchor" in out + err


def test_a_file_the_catalog_intended_is_adopted_after_a_crash(tmp_path: Path) -> None:
    """The other side of the rule: the process dies between the publish and `stored`; the
    file matches the committed intent, so the next start adopts it, verified."""
    env = make_env(tmp_path, scenario_text=_one(seed=3), ingest={"delete_after_ingest": False})
    assert run_daemon(env, reset=True).returncode == 0
    rec = recordings_by_key(env)[("NC-RESTORE", "20261125_150000_0001.MP4")]
    with sqlite3.connect(env.catalog_path) as db:  # roll the catalog back to the intent
        last_intent = db.execute("SELECT max(seq) FROM audit_events WHERE kind = "
                                 "'publish_intent'").fetchone()[0]
        db.execute("DELETE FROM audit_events WHERE seq > ?", (last_intent,))
        head = db.execute("SELECT hash FROM audit_events WHERE seq = ?",
                          (last_intent,)).fetchone()[0]
        db.execute("UPDATE audit_head SET seq = ?, hash = ?", (last_intent, head))
        db.execute("UPDATE recordings SET status = 'transferring', store_path = NULL, "
                   "plaintext_sha256 = NULL, stored_sha256 = NULL, stored_size = NULL")
    (env.store / ".audit-anchors").unlink()  # this test is about the intent, not the witness
    env.config.write_text(env.config.read_text().replace("delete_after_ingest = false",
                                                         "delete_after_ingest = true"))
    run = run_daemon(env)
    assert run.returncode == 0, run.stderr
    assert run.named("stored_file_adopted") and not run.named("stored_file_quarantined")
    assert recordings_by_key(env)[("NC-RESTORE", rec.camera_name)].store_path == rec.store_path
    assert_nothing_lost(env, decrypt=True)


# --- 8. a camera gone while it is identified leaves no ghost ----------------------------


@pytest.mark.parametrize("command", ["battery", "shift_log"])
def test_a_camera_gone_during_its_battery_or_shift_log_read_leaves_no_ghost(
        tmp_path: Path, command: str) -> None:
    cams = [{"serial": "NC-GHOST", "slot": 1, "redock_after_s": 0.3,
             "recording": [recording("G.MP4", 50_000, seed=5)],
             "fault": [{"kind": "unplug", "command": command}]}]
    env = make_env(tmp_path, scenario_text=scenario_toml(cams))
    run = run_daemon(env, reset=True)
    assert run.returncode == 0, run.stderr
    sessions = run.named("dock_session")
    assert [s["outcome"] for s in sessions] == ["camera_gone", "complete"]
    assert all("audit_seq" in s and "audit_head" in s for s in sessions)
    with env.catalog() as catalog:
        assert live_status(catalog).docked == []  # no session left open
        assert all(s.undocked_at is not None for s in catalog.sessions())
    assert still_on_camera(env) == {"NC-GHOST": set()}
    assert_nothing_lost(env)


# --- the journal and the store witness the audit head ------------------------------------


def test_every_dock_session_line_and_the_anchor_file_carry_the_audit_head(
        tmp_path: Path) -> None:
    env = make_env(tmp_path, scenario_text=_one(seed=9))
    run = run_daemon(env, reset=True)
    assert run.returncode == 0
    [session] = run.named("dock_session")
    lines = (env.store / ".audit-anchors").read_text().splitlines()
    anchored = {(int(seq), digest) for seq, digest, _ in (line.split() for line in lines)}
    assert (session["audit_seq"], session["audit_head"]) in anchored
    with env.catalog() as catalog:
        assert (catalog.head()) in anchored  # the stop wrote the final head too
    assert (env.store / ".audit-anchors").stat().st_mode & 0o777 == 0o600
    assert json.dumps(session)  # plain JSON for the journal
    assert source_sha256(env)  # (the scenario is well-formed)
