"""Every fault kind of the scenario format, through the real `dockd run --once` process.

One camera per fault kind, all docked at once. The promises checked for each: nothing leaves
the camera without a verified durable copy that `age` decrypts to exactly the source bytes;
every listed recording ends stored-and-verified or failed with a reason; docking again stores
nothing twice; an unplugged transfer resumes where its checkpoint left it; the exit code says
whether everything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dockd_sim.content import GeneratedContent
from helpers_ingest import (
    EXIT_INCOMPLETE,
    Env,
    Run,
    age_decrypt_sha256,
    assert_nothing_lost,
    leftovers,
    make_env,
    recording,
    recordings_by_key,
    run_daemon,
    scenario_toml,
    still_on_camera,
    stored_files,
)

MIB = 1 << 20
KINDS = ["unplug", "stall", "corrupt", "bad_frame", "hash_mismatch", "read_error", "slow"]
#: the error kind the catalog books for a failed attempt caused by each fault
#: (NetCo frames carry a CRC, so flipped bits are usually caught there, before the hash)
ATTEMPT_ERROR = {"unplug": {"gone"}, "stall": {"timeout"}, "corrupt": {"integrity", "protocol"},
                 "bad_frame": {"protocol"}, "hash_mismatch": {"integrity"},
                 "read_error": {"refused"}}


def serial_of(kind: str) -> str:
    return f"NC-F{KINDS.index(kind) + 1:02d}-{kind}"


def hit_name(kind: str) -> str:
    return f"20261125_08{KINDS.index(kind):02d}00_HIT.MP4"


def clean_name(kind: str) -> str:
    return f"20261125_08{KINDS.index(kind):02d}30_OK.MP4"


def fault_camera(kind: str) -> dict[str, Any]:
    i = KINDS.index(kind)
    fault: dict[str, Any] = {"kind": kind, "recording": hit_name(kind), "at_byte": 5 * MIB // 2}
    if kind == "hash_mismatch":
        fault["times"] = "always"
    elif kind == "slow":
        fault |= {"times": "always", "delay_s": 0.002}
    else:
        fault["times"] = 2 if kind in ("stall", "read_error") else 1
    cam: dict[str, Any] = {
        "serial": serial_of(kind), "slot": i + 1, "link_mb_s": 40,
        "recording": [
            recording(hit_name(kind), 3 * MIB, seed=100 + i, minute=2 * i),
            recording(clean_name(kind), MIB + 12345, seed=200 + i, minute=2 * i + 1),
        ],
        "fault": [fault],
    }
    if kind == "unplug":
        cam["redock_after_s"] = 0.5
    return cam


@dataclass
class Matrix:
    env: Env
    first: Run
    again: Run
    restored: Run
    files_after_first: dict[Path, int]
    files_after_again: dict[Path, int]
    files_after_restored: dict[Path, int]


def _files(env: Env) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in stored_files(env)}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    """First dock (faults fire), dock again (what is left), then every recording put back
    on the cameras (`--sim-reset`, as if restored from a backup): the third dock must find
    each one known."""
    root = tmp_path_factory.mktemp("faults")
    env = make_env(root, scenario_text=scenario_toml([fault_camera(k) for k in KINDS]),
                   ingest={"transfer_timeout_s": 1.0})
    first = run_daemon(env, reset=True)
    after_first = _files(env)
    again = run_daemon(env)
    after_again = _files(env)
    restored = run_daemon(env, reset=True)
    return Matrix(env, first, again, restored, after_first, after_again, _files(env))


def _sessions(run: Run, kind: str) -> list[dict[str, Any]]:
    return [e for e in run.named("dock_session") if e.get("serial") == serial_of(kind)]


def _transfers(run: Run, kind: str) -> list[dict[str, Any]]:
    return [e for e in run.named("transfer") if e.get("serial") == serial_of(kind)]


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_leaves_the_camera_without_a_copy_that_decrypts(matrix: Matrix,
                                                                kind: str) -> None:
    keys = [(serial_of(kind), hit_name(kind)), (serial_of(kind), clean_name(kind))]
    assert_nothing_lost(matrix.env, expect=keys, decrypt=True)


@pytest.mark.parametrize("kind", KINDS)
def test_every_listed_recording_is_stored_or_failed_with_a_reason(matrix: Matrix,
                                                                  kind: str) -> None:
    rows = recordings_by_key(matrix.env)
    sessions = _sessions(matrix.first, kind)
    assert sessions, f"no dock_session line for {kind}"
    last = sessions[-1]
    assert last["listed"] == last["already_known"] + last["stored"] + last["failed"]
    failures = " | ".join(str(f) for s in sessions for f in s["failures"])
    for name in (hit_name(kind), clean_name(kind)):
        row = rows[(serial_of(kind), name)]
        if row.status in ("verified", "deleted_from_camera"):
            continue
        assert row.status == "failed", (name, row.status)
        assert row.failure_reason, f"{name} failed without a reason"
        assert name in failures, f"{name} failed but the dock_session line does not say so"


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "hash_mismatch"])
def test_a_fault_that_clears_ends_stored_and_deleted(matrix: Matrix, kind: str) -> None:
    rows = recordings_by_key(matrix.env)
    on_camera = still_on_camera(matrix.env)[serial_of(kind)]
    assert on_camera == set()
    for name in (hit_name(kind), clean_name(kind)):
        assert rows[(serial_of(kind), name)].status == "deleted_from_camera"
    if kind in ATTEMPT_ERROR:
        with matrix.env.catalog() as catalog:
            attempts = catalog.attempts(rows[(serial_of(kind), hit_name(kind))].id)
        kinds = [a.error_kind for a in attempts]
        assert ATTEMPT_ERROR[kind] & set(kinds), kinds  # the fault did fire and was booked
        assert attempts[-1].outcome == "ok"


def test_hash_mismatch_ends_failed_and_stays_on_the_camera(matrix: Matrix) -> None:
    key = (serial_of("hash_mismatch"), hit_name("hash_mismatch"))
    row = recordings_by_key(matrix.env)[key]
    assert row.status == "failed"
    assert row.failure_reason is not None and "SHA-256 mismatch" in row.failure_reason
    assert row.store_path is None
    assert key[1] in still_on_camera(matrix.env)[key[0]]
    names = [p.name for p in stored_files(matrix.env)]
    assert f"{key[1]}.age" not in names
    # every attempt was a full read that the hash refused; none was kept for resuming
    mine = [t for t in _transfers(matrix.first, "hash_mismatch") if t["recording"] == key[1]]
    assert mine and all(t["outcome"] == "integrity" for t in mine)
    with matrix.env.catalog() as catalog:
        offsets = [a.offset_from for a in catalog.attempts(row.id)]
    assert len(offsets) >= len(mine) and set(offsets) == {0}


def test_unplugged_transfer_resumes_from_its_checkpoint(matrix: Matrix) -> None:
    row = recordings_by_key(matrix.env)[(serial_of("unplug"), hit_name("unplug"))]
    with matrix.env.catalog() as catalog:
        attempts = catalog.attempts(row.id)
    assert attempts[0].error_kind == "gone"
    assert attempts[-1].outcome == "ok"
    assert attempts[-1].offset_from > 0
    # the fault fired at 2.5 MiB: whole chunks before it were kept, nothing after it
    assert attempts[-1].offset_from <= 5 * MIB // 2
    stored = [t for t in _transfers(matrix.first, "unplug")
              if t["recording"] == hit_name("unplug") and t["outcome"] == "stored"]
    assert len(stored) == 1 and stored[0]["resumed_from"] == attempts[-1].offset_from
    assert stored[0]["bytes"] == 3 * MIB - stored[0]["resumed_from"]


def test_no_partials_left_behind(matrix: Matrix) -> None:
    assert leftovers(matrix.env) == []


def test_docking_again_stores_nothing_twice(matrix: Matrix) -> None:
    assert matrix.files_after_again == matrix.files_after_first
    assert matrix.files_after_restored == matrix.files_after_first
    for run in (matrix.again, matrix.restored):
        assert [t for t in run.named("transfer") if t["outcome"] == "stored"] == []
        for s in run.named("dock_session"):
            assert s["stored"] == 0
    # with every recording back on the cameras, each is found known (the one the camera
    # itself holds damaged is still refused, and still kept)
    restored = {s["serial"]: s for s in matrix.restored.named("dock_session")}
    for kind in KINDS:
        s = restored[serial_of(kind)]
        assert s["listed"] == 2
        assert s["already_known"] == (1 if kind == "hash_mismatch" else 2)
    # one stored file per stored recording, and the catalog agrees
    rows = [r for r in recordings_by_key(matrix.env).values() if r.store_path is not None]
    assert sorted(Path(r.store_path) for r in rows if r.store_path) == stored_files(matrix.env)
    assert len(rows) == 2 * len(KINDS) - 1


def test_exit_code_says_whether_everything_is_stored(matrix: Matrix) -> None:
    assert matrix.first.returncode == EXIT_INCOMPLETE
    assert "not every recording is stored" in matrix.first.stderr
    assert matrix.again.returncode == EXIT_INCOMPLETE  # the damaged recording is still there


def test_exit_code_is_zero_when_faults_clear_in_the_same_run(tmp_path: Path) -> None:
    """An unplug that re-docks, a stall and a read error: all stored by the end, so 0 —
    even though the first dock session of the unplugged camera ended early."""
    cams = [fault_camera(k) for k in ("unplug", "stall", "read_error")]
    env = make_env(tmp_path, scenario_text=scenario_toml(cams),
                   ingest={"transfer_timeout_s": 1.0})
    run = run_daemon(env, reset=True)
    assert run.returncode == 0, run.stderr
    assert still_on_camera(env) == {c["serial"]: set() for c in cams}
    assert_nothing_lost(env, decrypt=False)


def test_same_identity_different_bytes_is_a_recording_of_its_own(tmp_path: Path) -> None:
    """A cloned camera (same serial) holding a recording with the same name, start and size
    as one already stored but other bytes: it is not the stored recording, so it is never
    deleted as 'already known'; it is stored as a recording of its own (the camera's hash
    is part of a recording's identity), then deleted like any other."""
    name = "20261125_100000_0007.MP4"
    cams = [
        {"serial": "NC-CLONE", "slot": 1, "recording": [recording(name, 65536, seed=1)]},
        {"serial": "NC-CLONE", "slot": 2, "dock_at_s": 0.5,
         "recording": [recording(name, 65536, seed=2)]},
    ]
    env = make_env(tmp_path, scenario_text=scenario_toml(cams))
    run = run_daemon(env, reset=True)
    assert run.returncode == 0, run.stderr
    assert still_on_camera(env) == {"NC-CLONE": set()}
    with env.catalog() as catalog:
        rows = catalog.recordings()
    assert len(rows) == 2 and {r.camera_name for r in rows} == {name}
    assert len({r.camera_sha256 for r in rows}) == 2
    paths = sorted(Path(r.store_path or "").name for r in rows)
    assert paths == [f"{name}.age", f"{name}~r2.age"]
    wanted = {GeneratedContent(65536, seed).sha256().hex() for seed in (1, 2)}
    assert {age_decrypt_sha256(env, Path(r.store_path or "")) for r in rows} == wanted
