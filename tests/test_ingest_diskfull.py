"""A full store, on a real small filesystem (tmpfs with a size limit) under the real daemon.

ENOSPC mid-write must remove the partial, keep the recording on the camera, say why, let
the daemon carry on with other cameras, and ingest the recording once there is room.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_ingest import (
    EXIT_INCOMPLETE,
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


def _mount(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs; skipped with the reason where mounting is not permitted."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = _mount(["-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mnt)])
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs: {proc.stderr.strip() or proc.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _grow(mnt: Path, size: str) -> None:
    proc = _mount(["-o", f"remount,size={size}", str(mnt)])
    assert proc.returncode == 0, proc.stderr


def _cameras() -> list[dict[str, Any]]:
    # two 5 MiB recordings transferring at once: each passes the free-space pre-check
    # (8 MiB free) but both cannot fit, so one write meets the real ENOSPC
    big = [{"serial": f"NC-BIG-{i}", "slot": i, "link_mb_s": 10,
            "recording": [recording(f"BIG_{i}.MP4", 5 * MIB, seed=i, minute=i)]}
           for i in (1, 2)]
    # docked later: the daemon carries on and stores what fits
    small = {"serial": "NC-SMALL", "slot": 3, "dock_at_s": 1.5,
             "recording": [recording("SMALL.MP4", 256 << 10, seed=9, minute=9)]}
    return [*big, small]


def test_enospc_mid_write_keeps_the_recording_and_recovers(small_fs: Path,
                                                          tmp_path: Path) -> None:
    env = make_env(tmp_path, store=small_fs / "evidence", min_free_mib=0,
                   scenario_text=scenario_toml(_cameras()), ingest={"max_retries": 1})
    first = run_daemon(env, reset=True)

    full = [t for t in first.named("transfer") if t["outcome"] == "store_full"]
    assert full, "no transfer met the full store"
    assert any("No space left on device" in (t["error"] or "") for t in full), full
    assert any(t["bytes"] > 0 for t in full)  # a partial was being written when it filled
    assert leftovers(env) == []  # ... and it was removed

    on_camera = still_on_camera(env)
    kept = [s for s in ("NC-BIG-1", "NC-BIG-2") if on_camera[s]]
    assert len(kept) >= 1, "both 5 MiB recordings cannot fit in 8 MiB"
    rows = recordings_by_key(env)
    sessions = {s["serial"]: s for s in first.named("dock_session")}
    for serial in kept:
        row = rows[(serial, f"BIG_{serial[-1]}.MP4")]
        assert row.status == "failed"
        assert row.failure_reason is not None and "store" in row.failure_reason
        assert "full" in row.failure_reason or "No space" in row.failure_reason
        assert sessions[serial]["failed"] == 1
    # the daemon kept running: the camera docked later was ingested
    assert on_camera["NC-SMALL"] == set()
    assert rows[("NC-SMALL", "SMALL.MP4")].status == "deleted_from_camera"
    assert first.returncode == EXIT_INCOMPLETE
    assert_nothing_lost(env)

    _grow(small_fs, "64m")
    second = run_daemon(env)
    assert second.returncode == 0, second.stderr
    assert still_on_camera(env) == {"NC-BIG-1": set(), "NC-BIG-2": set(), "NC-SMALL": set()}
    assert leftovers(env) == []
    assert len(stored_files(env)) == 3
    assert_nothing_lost(env)


def test_free_space_precheck_refuses_before_writing(small_fs: Path, tmp_path: Path) -> None:
    """`storage.min_free_mib` larger than the filesystem: nothing is written, the recording
    stays, the reason names the store being full; with the reserve lowered it goes in."""
    cams = [{"serial": "NC-PRE", "slot": 1,
             "recording": [recording("PRE.MP4", MIB, seed=5)]}]
    env = make_env(tmp_path, store=small_fs / "evidence", min_free_mib=16,
                   scenario_text=scenario_toml(cams), ingest={"max_retries": 0})
    first = run_daemon(env, reset=True)
    assert first.returncode == EXIT_INCOMPLETE
    assert [e["error"] for e in first.named("store_full")] == [
        f"store full: less than 16 MiB would remain free after {MIB} bytes; "
        "stays on the camera"]
    assert first.named("transfer") == []  # refused before any attempt
    assert still_on_camera(env) == {"NC-PRE": {"PRE.MP4"}}
    assert stored_files(env) == [] and leftovers(env) == []
    row = recordings_by_key(env)[("NC-PRE", "PRE.MP4")]
    assert row.status == "failed" and row.failure_reason is not None
    assert row.failure_reason.startswith("after 0 attempt(s): store full")  # none was begun

    env.config.write_text(env.config.read_text().replace("min_free_mib = 16",
                                                         "min_free_mib = 1"))
    second = run_daemon(env)
    assert second.returncode == 0, second.stderr
    assert still_on_camera(env) == {"NC-PRE": set()}
    assert_nothing_lost(env)
