"""`dockctl export` hands over the camera's exact bytes, with a manifest and custody trail."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

from dockctl_env import World, pristine, source_bytes, world

from dockd.crypto.keys import generate_identity
from dockd.errors import CatalogError, CryptoError, StorageError, VerifyFailed

__all__ = ["pristine", "world"]


def test_export_writes_the_source_bytes_a_manifest_and_an_audit_event(world: World,
                                                                     tmp_path: Path) -> None:
    recs = world.recordings()
    a, c = recs["A_0001.MP4"], recs["C_0003.MP4"]
    out = tmp_path / "handover"
    result = world.dockctl("export", str(a.id), str(c.id), "--identity", str(world.key),
                           "--out", str(out))
    assert result.exit_code == 0, result.output
    files = {p.name: p for p in out.iterdir()}
    assert set(files) == {f"{a.id}_NC-1_A_0001.MP4", f"{c.id}_NC-2_C_0003.MP4", "manifest.json"}
    assert files[f"{a.id}_NC-1_A_0001.MP4"].read_bytes() == source_bytes("A_0001.MP4")
    assert files[f"{c.id}_NC-2_C_0003.MP4"].read_bytes() == source_bytes("C_0003.MP4")
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files.values())

    manifest = json.loads(files["manifest.json"].read_text())
    assert manifest["audit_chain"] == {"ok": True, "problems": []}
    entry = manifest["recordings"][0]
    assert entry["id"] == a.id and entry["file"] == f"{a.id}_NC-1_A_0001.MP4"
    assert entry["camera_sha256"] == entry["exported_sha256"] == hashlib.sha256(
        source_bytes("A_0001.MP4")).hexdigest()
    assert entry["stored_sha256"] == a.stored_sha256
    kinds = [e["kind"] for e in entry["custody"]]
    assert kinds[-1] == "exported"
    assert {"stored", "verified", "deleted_from_camera"} <= set(kinds)
    with world.catalog() as cat:  # the trail in the manifest is the catalog's, hashes and all
        chained = {e.seq: e.hash for e in cat.events()}
    assert all(chained[e["seq"]] == e["hash"] for e in entry["custody"])

    exported = world.events("exported")
    assert sorted(e.recording_id for e in exported) == sorted([a.id, c.id])
    assert world.dockctl("audit").exit_code == 0  # the chain still holds with the new events


def test_export_never_overwrites(world: World, tmp_path: Path) -> None:
    rec = world.recordings()["B_0002.MP4"]
    out = tmp_path / "out"
    out.mkdir()
    victim = out / f"{rec.id}_NC-1_B_0002.MP4"
    victim.write_bytes(b"someone else's file")
    result = world.dockctl("export", str(rec.id), "--identity", str(world.key), "--out", str(out))
    assert result.exit_code == StorageError.exit_code
    assert "already exists: export never overwrites a file" in result.stderr
    assert victim.read_bytes() == b"someone else's file"
    assert sorted(p.name for p in out.iterdir()) == [victim.name]
    assert world.events("exported") == []


def test_export_refuses_a_row_whose_hashes_were_edited(world: World, tmp_path: Path) -> None:
    rec = world.recordings()["B_0002.MP4"]
    world.sql("UPDATE recordings SET camera_sha256 = ?, plaintext_sha256 = ? WHERE id = ?",
              "0" * 64, "0" * 64, rec.id)
    out = tmp_path / "out"
    result = world.dockctl("export", str(rec.id), "--identity", str(world.key), "--out", str(out))
    assert result.exit_code == VerifyFailed.exit_code
    assert f"recording {rec.id} (NC-1/B_0002.MP4): camera_sha256: the row says" in result.stderr
    assert "nothing written" in result.stderr
    assert not out.exists()  # checked before a byte was written


def test_clear_errors_for_unknown_id_wrong_and_missing_identity(world: World,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "out"
    rec = world.recordings()["A_0001.MP4"]

    unknown = world.dockctl("export", "999", "--identity", str(world.key), "--out", str(out))
    assert unknown.exit_code == CatalogError.exit_code
    assert unknown.stderr == "dockctl: no recording 999\n"

    missing = world.dockctl("export", str(rec.id), "--identity", str(tmp_path / "gone"),
                            "--out", str(out))
    assert missing.exit_code == CryptoError.exit_code
    assert missing.stderr.startswith(f"dockctl: {tmp_path / 'gone'}: cannot read identity file")

    other = tmp_path / "other.txt"
    other.write_text(generate_identity()[0] + "\n")
    wrong = world.dockctl("export", str(rec.id), "--identity", str(other), "--out", str(out))
    assert wrong.exit_code == CryptoError.exit_code
    assert wrong.stderr == (f"dockctl: recording {rec.id} (A_0001.MP4): {other} cannot decrypt "
                            f"{rec.store_path} (wrong identity?)\n")
    assert list(out.iterdir()) == []
    assert world.events("exported") == []
