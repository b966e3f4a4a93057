"""`dockctl verify` proves the store against the catalog, on a store the real daemon wrote."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from dockctl_env import World, pristine, source_bytes, world

from dockd.crypto.keys import generate_identity
from dockd.errors import CryptoError, VerifyFailed

__all__ = ["pristine", "world"]


def _flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


def test_clean_store_verifies_and_records_verified_later(world: World) -> None:
    result = world.dockctl("verify")
    assert result.exit_code == 0, result.output
    assert "checked 3 stored recordings (stored hash): 3 ok" in result.stdout
    assert "audit chain: ok" in result.stdout
    later = world.events("verified_later")
    assert sorted(e.recording_id for e in later) == sorted(
        r.id for r in world.recordings().values())
    assert all(e.actor.startswith("dockctl:") and e.details_dict["plaintext_checked"] is False
               for e in later)

    report = world.json("verify", "--identity", str(world.key))
    assert report["ok"] and report["decrypted"] and report["checked"] == 3
    assert [e.details_dict["plaintext_checked"] for e in world.events("verified_later")] == [
        False] * 3 + [True] * 3


def test_one_flipped_stored_byte_fails_and_names_the_file(world: World) -> None:
    rec = world.recordings()["A_0001.MP4"]
    assert rec.store_path is not None
    _flip_byte(Path(rec.store_path), 100_000)
    result = world.dockctl("verify")
    assert result.exit_code == VerifyFailed.exit_code
    assert f"FAIL recording {rec.id} (NC-1/A_0001.MP4) {rec.store_path}: stored file SHA-256" \
        in result.stdout
    # the FAIL line names the file; the last line is a short summary, not every failure again
    assert result.stderr == ("dockctl: verify found 1 problem: stored_hash 1 "
                             "(FAIL lines above)\n")
    # the two good recordings still get their event; the bad one does not
    assert sorted(e.recording_id for e in world.events("verified_later")) == sorted(
        r.id for n, r in world.recordings().items() if n != "A_0001.MP4")

    report = world.json("verify", "--identity", str(world.key))
    problems = {(f["recording_id"], f["problem"]) for f in report["findings"]}
    # decrypting also catches it: the flipped chunk's tag fails
    assert problems == {(rec.id, "stored_hash"), (rec.id, "decrypt")}


def test_altered_footage_reencrypted_with_its_row_updated_is_caught(world: World,
                                                                      tmp_path: Path) -> None:
    rec = world.recordings()["B_0002.MP4"]
    assert rec.store_path is not None
    forged = bytearray(source_bytes("B_0002.MP4"))
    forged[5] ^= 0xFF
    plain = tmp_path / "forged"
    plain.write_bytes(forged)
    # an insider re-encrypts altered footage with the real age tool and fixes the catalog
    Path(rec.store_path).unlink()
    subprocess.run(["age", "-r", world.recipient, "-o", rec.store_path, str(plain)], check=True)
    new_hash = hashlib.sha256(Path(rec.store_path).read_bytes()).hexdigest()
    world.sql("UPDATE recordings SET stored_sha256 = ? WHERE id = ?", new_hash, rec.id)

    # the chain still records the original stored hash: the file and the edited row both
    # disagree with it, with or without a key
    report = world.json("verify")
    assert sorted((f["recording_id"], f["problem"]) for f in report["findings"]) == [
        (rec.id, "row_differs"), (rec.id, "stored_hash")]
    result = world.dockctl("verify", "--identity", str(world.key))
    assert result.exit_code == VerifyFailed.exit_code
    assert f"{rec.store_path}: decrypted SHA-256 is {hashlib.sha256(forged).hexdigest()}" \
        in result.stdout
    report = world.json("verify", "--identity", str(world.key))
    assert sorted((f["recording_id"], f["problem"]) for f in report["findings"]) == [
        (rec.id, "plaintext_hash"), (rec.id, "row_differs"), (rec.id, "stored_hash")]


def test_missing_and_unknown_files_are_reported(world: World) -> None:
    rec = world.recordings()["C_0003.MP4"]
    assert rec.store_path is not None
    Path(rec.store_path).unlink()
    stray = world.store / "NC-2" / "planted.MP4.age"
    stray.write_bytes(b"not catalogued")
    partial = world.store / "NC-2" / ".in-flight.MP4.age.partial"  # a transfer in progress
    partial.write_bytes(b"x")
    report = world.json("verify")
    assert not report["ok"]
    assert sorted((f["problem"], f["path"]) for f in report["findings"]) == [
        ("missing", rec.store_path), ("unknown_file", str(stray))]


def test_tampered_audit_row_is_reported(world: World) -> None:
    stored = world.events("stored")[0]
    world.sql("UPDATE audit_events SET details = replace(details, 'NC-', 'XX-') WHERE seq = ?",
              stored.seq)
    result = world.dockctl("verify")
    assert result.exit_code == VerifyFailed.exit_code
    assert f"audit chain: event {stored.seq} (stored) does not match its hash: changed" \
        in result.stdout
    assert world.json("verify")["chain_problems"][0]["seq"] == stored.seq


def test_wrong_and_missing_identity(world: World, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text(generate_identity()[0] + "\n")
    report = world.json("verify", "--identity", str(other))
    assert {f["problem"] for f in report["findings"]} == {"wrong_identity"}
    assert len(report["findings"]) == 3
    assert world.events("verified_later") == []

    result = world.dockctl("verify", "--identity", str(tmp_path / "nope.txt"))
    assert result.exit_code == CryptoError.exit_code
    assert result.stderr.count("\n") == 1
    assert "nope.txt: cannot read identity file" in result.stderr


def test_truncated_file_is_caught_by_decrypting(world: World) -> None:
    rec = world.recordings()["A_0001.MP4"]
    assert rec.store_path is not None
    path = Path(rec.store_path)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size - 10)
    report = world.json("verify", "--identity", str(world.key))
    assert {f["problem"] for f in report["findings"]} == {"stored_hash", "decrypt"}
