"""The chain binds the evidence, seen through `dockctl verify` and `dockctl export`.

Every attack here is one an insider with write access to the store and the catalog could
make; each is made on a store the real `dockd run --once --simulate` wrote. The catalog row is
only a cache of the custody chain: verify and export judge rows and files by the chain, and
the chain by the heads witnessed outside the catalog (the store's anchor file, `--anchor`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from dockctl_env import World, pristine, source_bytes, world

from dockd.anchors import ANCHOR_FILE
from dockd.catalog.custody import FACT_FIELDS
from dockd.crypto.keys import generate_identity
from dockd.errors import VerifyFailed
from dockd.store import QUARANTINE_DIR, quarantine

__all__ = ["pristine", "world"]

FAIL = VerifyFailed.exit_code
USAGE = 2


def test_verify_failed_is_exit_7() -> None:
    assert FAIL == 7  # the documented contract every test below relies on


# --- helpers ---------------------------------------------------------------------------


def _rows(world: World, statement: str, *params: object) -> list[tuple[Any, ...]]:
    """Read the catalog behind dockctl's back (World.sql only writes)."""
    with sqlite3.connect(world.catalog_path) as db:
        return list(db.execute(statement, params))


def _export(world: World, out: Path, *ids: int) -> Result:
    return world.dockctl("export", *map(str, ids), "--identity", str(world.key),
                         "--out", str(out))


def _refused(result: Result, out: Path) -> None:
    """Export exited 7 before writing anything (the out dir is not even created)."""
    assert result.exit_code == FAIL, result.output
    assert "export refused, nothing written" in result.output
    assert not out.exists()


def _findings(report: dict[str, Any]) -> list[tuple[int | None, str]]:
    return sorted(((f["recording_id"], f["problem"]) for f in report["findings"]),
                  key=repr)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stored(world: World, name: str) -> tuple[int, Path]:
    rec = world.recordings()[name]
    assert rec.store_path is not None
    return rec.id, Path(rec.store_path)


# --- 1. a stored file re-encrypted to an extra recipient --------------------------------


def test_reencrypted_to_an_extra_recipient_is_refused_and_reported(world: World,
                                                                    tmp_path: Path) -> None:
    a_id, a_path = _stored(world, "A_0001.MP4")
    c_id, c_path = _stored(world, "C_0003.MP4")
    original = _sha256(a_path)
    attacker_secret, attacker = generate_identity()
    attacker_key = tmp_path / "attacker.txt"
    attacker_key.write_text(attacker_secret + "\n")

    # same footage, same officer's recipient, plus one more: the row is left alone
    plain = tmp_path / "plain"
    subprocess.run(["age", "-d", "-i", str(world.key), "-o", str(plain), str(a_path)],
                   check=True)
    a_path.unlink()
    subprocess.run(["age", "-r", world.recipient, "-r", attacker, "-o", str(a_path),
                    str(plain)], check=True)
    leaked = subprocess.run(["age", "-d", "-i", str(attacker_key), str(a_path)],
                            check=True, capture_output=True).stdout
    assert leaked == source_bytes("A_0001.MP4")  # the attack is real: a second key opens it
    assert _sha256(a_path) != original

    out = tmp_path / "out"
    result = _export(world, out, a_id)
    _refused(result, out)
    assert f"recording {a_id} (NC-1/A_0001.MP4): stored file {a_path}" in result.output
    assert world.events("exported") == []

    result = world.dockctl("verify")
    assert result.exit_code == FAIL, result.output
    assert f"{a_path}: stored file SHA-256 is {_sha256(a_path)}, the custody chain records " \
           f"{original}" in result.output
    assert _findings(world.json("verify")) == [(a_id, "stored_hash")]
    # the officer's key still decrypts it to the camera's bytes: only the stored hash tells
    report = world.json("verify", "--identity", str(world.key))
    assert _findings(report) == [(a_id, "stored_hash")]
    assert a_id not in report["ok_recordings"]

    # an untouched recording still exports; the manifest names the stored file's real hash
    good = tmp_path / "good"
    result = _export(world, good, c_id)
    assert result.exit_code == 0, result.output
    manifest = json.loads((good / "manifest.json").read_text())
    (entry,) = manifest["recordings"]
    assert entry["id"] == c_id
    assert entry["stored_file_sha256"] == _sha256(c_path) == entry["stored_sha256"]


# --- 2. a broken audit chain ------------------------------------------------------------


def test_export_refuses_when_one_events_details_were_edited(world: World,
                                                            tmp_path: Path) -> None:
    a_id, _ = _stored(world, "A_0001.MP4")
    c_id, _ = _stored(world, "C_0003.MP4")
    (stored,) = (e for e in world.events("stored") if e.recording_id == a_id)
    world.sql("UPDATE audit_events SET details = replace(details, 'NC-', 'XX-') WHERE seq = ?",
              stored.seq)
    # the whole chain is checked, not only the events of the recording exported
    for ids in ((c_id,), (a_id,)):
        out = tmp_path / f"out{ids[0]}"
        result = _export(world, out, *ids)
        _refused(result, out)
        assert f"audit chain: event {stored.seq} (stored) does not match its hash: changed" \
            in result.output
    assert world.events("exported") == []


def test_export_refuses_when_a_middle_event_was_deleted(world: World, tmp_path: Path) -> None:
    c_id, _ = _stored(world, "C_0003.MP4")
    with world.catalog() as cat:
        events = cat.events()
    middle = events[len(events) // 2]
    assert events[0].seq < middle.seq < events[-1].seq
    world.sql("DELETE FROM audit_events WHERE seq = ?", middle.seq)
    out = tmp_path / "out"
    result = _export(world, out, c_id)
    _refused(result, out)
    assert f"audit chain: events {middle.seq}..{middle.seq} are missing before event " \
           f"{middle.seq + 1}" in result.output
    assert world.events("exported") == []


# --- 3. every fact column of a row, edited alone ----------------------------------------


def _edited_value(world: World, column: str, rec_id: int) -> object:
    """A different value for `column` of recording `rec_id`, of the column's own type."""
    (current,) = _rows(world, f"SELECT {column} FROM recordings WHERE id = ?", rec_id)[0]
    other = world.recordings()["A_0001.MP4"]
    # (store_path is unique: the other recording's path cannot be taken, a new one can)
    edits: dict[str, object] = {
        "camera_serial": "NC-2",  # the other camera (the foreign key is not enforced here)
        "camera_name": "Z_9999.MP4",
        "started": "2026-11-25 11:02:12.000000",
        "size": 65_537,
        "duration_s": 11.0,
        "prerecord_s": 5.0,
        "camera_sha256": "0" * 64,
        "plaintext_sha256": "0" * 64,
        "stored_sha256": other.stored_sha256,
        "stored_size": 65_737,
        "store_path": str(Path(str(current)).with_name("Z_9999.MP4.age")),
        "status": "verified",
        "stored_on": "another-dock",
        "category": "traffic",
        "legal_hold": 1,
        "vault_key": "NC-1/2026/11/25/2-B_0002.MP4.age",
        "vault_version": "v-edited",
        "vault_checksum": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "vault_hold": 1,
        "vault_lock_until": "2030-01-01 00:00:00.000000",
        "local_deleted_at": "2026-11-26 00:00:00.000000",
        "vault_deleted_at": "2026-11-26 00:00:00.000000",
    }
    assert edits[column] != current, (column, current)
    return edits[column]


#: every column the chain vouches for, written out: a column added to FACT_FIELDS (or
#: dropped from it) must be added here too
_COLUMNS = ("camera_serial", "camera_name", "started", "size", "duration_s", "prerecord_s",
            "camera_sha256", "plaintext_sha256", "stored_sha256", "stored_size", "store_path",
            "status", "stored_on", "category", "legal_hold", "vault_key", "vault_version",
            "vault_checksum", "vault_hold", "vault_lock_until", "local_deleted_at",
            "vault_deleted_at")


def test_every_fact_column_is_covered() -> None:
    assert set(FACT_FIELDS) == set(_COLUMNS)


@pytest.mark.parametrize("column", _COLUMNS)
def test_a_row_edit_in_any_fact_column_fails_verify_and_export(world: World, tmp_path: Path,
                                                               column: str) -> None:
    b_id, _ = _stored(world, "B_0002.MP4")
    world.sql(f"UPDATE recordings SET {column} = ? WHERE id = ?",
              _edited_value(world, column, b_id), b_id)

    result = world.dockctl("verify")
    assert result.exit_code == FAIL, result.output
    report = world.json("verify")
    (finding,) = report["findings"]  # the file is judged by the chain: it still checks out
    assert (finding["recording_id"], finding["problem"]) == (b_id, "row_differs")
    assert f": {column}: the row says " in finding["message"]
    assert b_id not in report["ok_recordings"]
    assert report["chain_ok"]

    result = world.dockctl("verify", "--identity", str(world.key))
    assert result.exit_code == FAIL, result.output
    assert f": {column}: the row says " in result.output
    assert _findings(world.json("verify", "--identity", str(world.key))) == [
        (b_id, "row_differs")]
    assert b_id not in {e.recording_id for e in world.events("verified_later")}

    out = tmp_path / "out"
    result = _export(world, out, b_id)
    _refused(result, out)
    assert f"recording {b_id} (" in result.output
    assert f": {column}: the row says " in result.output
    assert world.events("exported") == []


def test_a_row_made_to_look_never_stored_is_refused_as_tampered(world: World,
                                                                tmp_path: Path) -> None:
    """Hiding a recording by making its row say it was never stored: the chain says it was,
    so export must refuse it as a row that disagrees with its chain (7), not believe the
    row and report an ordinary "nothing stored" (StorageError, 4)."""
    b_id, b_path = _stored(world, "B_0002.MP4")
    world.sql("UPDATE recordings SET status = 'failed', store_path = NULL, "
              "stored_sha256 = NULL, stored_size = NULL WHERE id = ?", b_id)

    report = world.json("verify")
    assert _findings(report) == [(b_id, "row_differs")] * 4
    assert world.dockctl("verify").exit_code == FAIL

    out = tmp_path / "out"
    result = _export(world, out, b_id)
    _refused(result, out)
    assert f"recording {b_id} (NC-1/B_0002.MP4): store_path: the row says None, the chain " \
           f"says {str(b_path)!r}" in result.output


def test_a_recording_whose_own_event_fails_its_hash_is_not_verified(world: World) -> None:
    """An insider renames a recording in its row and in the facts of its last custody event
    but cannot recompute the hash: the chain walk names the changed event, and that
    recording must not be reported ok nor get a `verified_later` event vouching for it."""
    b_id, _ = _stored(world, "B_0002.MP4")
    (last,) = (e for e in world.events("deleted_from_camera") if e.recording_id == b_id)
    world.sql("UPDATE audit_events SET details = replace(details, ?, ?) WHERE seq = ?",
              '"camera_name":"B_0002.MP4"', '"camera_name":"Z_9999.MP4"', last.seq)
    world.sql("UPDATE recordings SET camera_name = 'Z_9999.MP4' WHERE id = ?", b_id)

    result = world.dockctl("verify")
    assert result.exit_code == FAIL, result.output
    assert f"audit chain: event {last.seq} (deleted_from_camera) does not match its hash" \
        in result.output
    report = world.json("verify")
    assert b_id not in report["ok_recordings"]
    assert b_id not in {e.recording_id for e in world.events("verified_later")}


# --- 4. a file and its row swapped for another recording's -----------------------------


def test_another_recordings_file_and_hash_do_not_pass(world: World, tmp_path: Path) -> None:
    a = world.recordings()["A_0001.MP4"]
    b_id, b_path = _stored(world, "B_0002.MP4")
    assert a.store_path is not None
    shutil.copyfile(a.store_path, b_path)
    world.sql("UPDATE recordings SET stored_sha256 = ?, stored_size = ? WHERE id = ?",
              a.stored_sha256, a.stored_size, b_id)
    assert _sha256(b_path) == a.stored_sha256  # the row now agrees with the file

    result = world.dockctl("verify")
    assert result.exit_code == FAIL, result.output
    report = world.json("verify")
    assert _findings(report) == [(b_id, "row_differs"), (b_id, "row_differs"),
                                 (b_id, "stored_hash")]
    # the file is judged by the chain's hash, not by the row that was made to match it
    (stored_hash,) = (f for f in report["findings"] if f["problem"] == "stored_hash")
    assert stored_hash["path"] == str(b_path)
    assert stored_hash["message"].endswith(f"the custody chain records {_chain_hash(world, b_id)}")

    out = tmp_path / "out"
    result = _export(world, out, b_id)
    _refused(result, out)
    assert f"recording {b_id} (NC-1/B_0002.MP4): stored_sha256: the row says" in result.output
    assert f"recording {b_id} (NC-1/B_0002.MP4): stored_size: the row says" in result.output


def _chain_hash(world: World, rec_id: int) -> str:
    (stored,) = (e for e in world.events("stored") if e.recording_id == rec_id)
    value = stored.details_dict["recording"]["stored_sha256"]
    assert isinstance(value, str)
    return value


# --- 5. the tail cut and the head moved back --------------------------------------------


def _cut_tail(world: World) -> tuple[tuple[int, str], int]:
    """Delete the trailing events that name no recording (so every row still agrees with
    its chain) and move the head back to the new last event. Returns the head before the
    cut (as a person would have written it down) and how many events were cut."""
    with world.catalog() as cat:
        head = cat.head()
        events = cat.events()
    assert head == (events[-1].seq, events[-1].hash)
    # the daemon witnessed the same head at its end (as in its last dock_session log line)
    last_anchor = (world.store / ANCHOR_FILE).read_text().splitlines()[-1].split()
    assert (int(last_anchor[0]), last_anchor[1]) == head
    cut = 0
    while events[-1 - cut].recording_id is None:
        cut += 1
    assert cut >= 1, "the ingest should end with an undocked event"
    keep = events[-1 - cut]
    world.sql("DELETE FROM audit_events WHERE seq > ?", keep.seq)
    world.sql("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", keep.seq, keep.hash)
    return head, cut


def _names_anchor(text: str, seq: int) -> bool:
    """The message a witnessed head gives once its event is cut (or, after later appends
    took its sequence number again, replaced)."""
    return (f"audit chain: anchored event {seq} is no longer in the chain" in text
            or f"audit chain: event {seq} is not the one anchored outside the catalog" in text)


def test_tail_cut_is_caught_by_the_store_anchor_file(world: World, tmp_path: Path) -> None:
    (head_seq, _), _cut = _cut_tail(world)
    c_id, _ = _stored(world, "C_0003.MP4")

    out = tmp_path / "out"
    result = _export(world, out, c_id)
    _refused(result, out)
    assert f"audit chain: anchored event {head_seq} is no longer in the chain" in result.output

    report = world.json("verify")
    assert not report["ok"] and not report["chain_ok"]
    assert {p["problem"] for p in report["chain_problems"]} == {"anchor"}
    assert (head_seq, "anchor") in {(p["seq"], p["problem"]) for p in report["chain_problems"]}
    assert report["findings"] == []  # every row still agrees with what is left of the chain

    result = world.dockctl("verify")
    assert result.exit_code == FAIL, result.output
    assert _names_anchor(result.output, head_seq), result.output


@pytest.mark.parametrize("witness", ["deleted", "truncated"])
def test_tail_cut_with_the_anchor_file_gone_needs_a_written_down_head(world: World,
                                                                      witness: str) -> None:
    (head_seq, head_hash), cut = _cut_tail(world)
    anchors = world.store / ANCHOR_FILE
    kept: list[str] = []
    if witness == "deleted":
        anchors.unlink()
    else:  # keep only the lines the cut chain still holds: the file looks consistent
        lines = anchors.read_text().splitlines(keepends=True)
        kept = [line for line in lines if int(line.split()[0]) <= head_seq - cut]
        assert len(kept) < len(lines)
        anchors.write_text("".join(kept))

    # The catalog alone cannot tell: a cut tail with the head moved back, and no witness
    # left on the dock's disk, is a consistent (shorter) chain. This is the documented limit.
    result = world.dockctl("verify")
    assert result.exit_code == 0, result.output
    assert "audit chain: ok" in result.stdout

    # the head a person wrote down (paper, the journal's dock_session line) still catches it
    result = world.dockctl("verify", "--anchor", f"{head_seq}:{head_hash}")
    assert result.exit_code == FAIL, result.output
    assert _names_anchor(result.output, head_seq), result.output
    report = world.json("verify", "--anchor", f"{head_seq}:{head_hash}")
    assert [(p["seq"], p["problem"]) for p in report["chain_problems"]] == [(head_seq, "anchor")]
    assert report["anchors_checked"] == len(kept) + 1


@pytest.mark.parametrize("value", ["25", "x:" + "a" * 64, "25:" + "a" * 63, "25:xyz", ""])
def test_a_malformed_anchor_is_a_usage_error(world: World, value: str) -> None:
    result = world.dockctl("verify", "--anchor", value)
    assert result.exit_code == USAGE, result.output
    assert "--anchor" in result.output
    assert "an anchor is SEQ:HASH (a number, 64 hex digits)" in result.output
    assert world.events("verified_later") == []  # refused before anything was checked


# --- 6. key material and the quarantine -------------------------------------------------


def test_a_resume_state_without_its_partial_is_key_material(world: World) -> None:
    _, b_path = _stored(world, "B_0002.MP4")
    partial = b_path.with_name(f".{b_path.name}.abc123.partial")
    resume = partial.with_name(partial.name + ".resume")
    resume.write_bytes(b"file key and offset")
    partial.write_bytes(b"x")
    # with its partial, a transfer is in progress: nothing to report
    assert world.dockctl("verify").exit_code == 0

    partial.unlink()
    result = world.dockctl("verify")
    assert result.exit_code == FAIL, result.output
    assert f"{resume}: resume state (it holds a file key) without its partial" \
        in result.output
    report = world.json("verify")
    assert [(f["problem"], f["path"]) for f in report["findings"]] == [
        ("key_material", str(resume))]


def test_quarantined_files_are_listed_not_failures(world: World) -> None:
    stray = world.store / "NC-2" / "found.MP4.age"
    stray.write_bytes(b"found at a recording's path, matching no intent")
    report = world.json("verify")
    assert [(f["problem"], f["path"]) for f in report["findings"]] == [
        ("unknown_file", str(stray))]

    moved = quarantine(world.store, stray, datetime.now(UTC))
    assert moved.parent == world.store / QUARANTINE_DIR
    result = world.dockctl("verify")
    assert result.exit_code == 0, result.output
    assert "quarantine: 1 files moved aside" in result.stdout
    report = world.json("verify")
    assert report["ok"]
    assert report["findings"] == []
    assert report["quarantined"] == [str(moved)]


# --- 7. an untampered store -------------------------------------------------------------


def test_an_untampered_store_verifies_against_its_anchors(world: World) -> None:
    witnessed = (world.store / ANCHOR_FILE).read_text().splitlines()
    assert witnessed
    for extra in ((), ("--identity", str(world.key))):
        result = world.dockctl("verify", *extra)
        assert result.exit_code == 0, result.output
        report = world.json("verify", *extra)
        assert report["ok"] and report["chain_ok"]
        assert report["anchors_checked"] == len(witnessed) >= 1
        assert report["findings"] == [] and report["quarantined"] == []
        assert report["checked"] == len(report["ok_recordings"]) == 3
