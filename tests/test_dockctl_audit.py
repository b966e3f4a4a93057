"""`dockctl audit`: the custody trail and the chain status, on a catalog the daemon wrote."""

from __future__ import annotations

import json

from dockctl_env import World, pristine, world

from dockd.errors import CatalogError, VerifyFailed

__all__ = ["pristine", "world"]


def test_recording_trail_in_order_with_hashes(world: World) -> None:
    rec = world.recordings()["A_0001.MP4"]
    doc = world.json("audit", "--recording", str(rec.id))
    # a recording's events checked against their hashes and links, not the whole chain
    assert doc["chain"] == {"ok": True, "problems": [], "scope": "selected"}
    events = doc["events"]
    assert {e["recording_id"] for e in events} == {rec.id}
    kinds = [e["kind"] for e in events]
    assert kinds.index("stored") < kinds.index("verified") < kinds.index("deleted_from_camera")
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    with world.catalog() as cat:
        assert [(e.seq, e.hash) for e in cat.events() if e.recording_id == rec.id] == [
            (e["seq"], e["hash"]) for e in events]


def test_camera_filter(world: World) -> None:
    events = world.json("audit", "--camera", "NC-2")["events"]
    assert events and {e["camera_serial"] for e in events} == {"NC-2"}
    assert "C_0003.MP4" in json.dumps(events)
    table = world.dockctl("audit", "--camera", "NC-2")
    assert table.exit_code == 0
    assert "deleted_from_camera" in table.stdout and "audit chain: ok" in table.stdout
    assert "NC-1 " not in table.stdout


def test_tampered_row_is_reported_and_flagged(world: World) -> None:
    victim = world.events("deleted_from_camera")[0]
    world.sql("UPDATE audit_events SET actor = 'someone' WHERE seq = ?", victim.seq)
    result = world.dockctl("audit")
    assert result.exit_code == VerifyFailed.exit_code
    assert f"FAIL event {victim.seq} (deleted_from_camera) does not match its hash" in result.stdout
    flagged = [line for line in result.stdout.splitlines() if " BAD " in line]
    assert len(flagged) == 1 and flagged[0].split()[0] == str(victim.seq)
    assert result.stderr.startswith("dockctl: audit chain does not verify: ")

    removed = world.events("stored")[0].seq
    world.sql("DELETE FROM audit_events WHERE seq = ?", removed)
    problems = world.json("audit")["chain"]["problems"]
    assert {(p["seq"], p["problem"]) for p in problems} >= {
        (victim.seq, "changed"), (removed + 1, "missing"), (removed + 1, "broken_link")}


def test_unknown_recording(world: World) -> None:
    result = world.dockctl("audit", "--recording", "424242")
    assert result.exit_code == CatalogError.exit_code
    assert result.stderr == "dockctl: no recording 424242\n"


def test_camera_filter_checks_its_events_and_the_tail_without_walking_the_chain(
        world: World) -> None:
    victim = next(e for e in world.events("stored") if e.camera_serial == "NC-2")
    world.sql("UPDATE audit_events SET actor = 'someone' WHERE seq = ?", victim.seq)
    result = world.dockctl("audit", "--camera", "NC-2")
    assert result.exit_code == VerifyFailed.exit_code
    assert f"FAIL event {victim.seq} (stored) does not match its hash" in result.stdout
    assert "audit chain: 1 problems for the " in result.stdout
    with world.catalog() as cat:
        last = cat.head()[0]
    world.sql("DELETE FROM audit_events WHERE seq = ?", last)
    problems = world.json("audit", "--camera", "NC-1")["chain"]["problems"]
    assert [p["problem"] for p in problems] == ["tail"]
