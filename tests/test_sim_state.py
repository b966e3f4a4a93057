"""A simulated camera's flash: survives reloads, resets on demand, caches content hashes."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dockd_sim import content as content_mod
from dockd_sim.content import FileContent, GeneratedContent
from dockd_sim.spec import (
    CameraSpec,
    DockSpec,
    FaultKind,
    FaultSpec,
    RecordingSpec,
    Scenario,
)
from dockd_sim.state import CameraState, default_state_dir, load_states, state_file_name

from dockd.errors import ConfigError

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def rec(name: bytes, size: int = 1000, seed: int = 1) -> RecordingSpec:
    return RecordingSpec(name=name, started=T0, size=size, seed=seed)


def camera(**kw) -> CameraSpec:
    base = CameraSpec(
        serial="NC-1", slot=1, clock_offset_s=-95,
        recordings=(rec(b"a.mp4", seed=1), rec(b"b.mp4", seed=2), rec(b"c.mp4", seed=3)),
        faults=(FaultSpec(FaultKind.STALL, times=2), FaultSpec(FaultKind.SLOW, times=None)),
    )
    return replace(base, **kw)


def names(state: CameraState) -> list[bytes]:
    return [r.spec.name for r in state.recordings()]


def test_fresh_state_is_the_scenario(tmp_path):
    state = CameraState.load(camera(), tmp_path)
    assert names(state) == [b"a.mp4", b"b.mp4", b"c.mp4"]
    assert state.battery == state.spec.battery
    assert isinstance(state.recordings()[0].content, GeneratedContent)
    assert state.path.is_file()


def test_delete_persists_across_reload(tmp_path):
    state = CameraState.load(camera(), tmp_path)
    assert state.delete(b"b.mp4") is True
    assert state.delete(b"b.mp4") is False
    assert state.delete(b"never") is False
    again = CameraState.load(camera(), tmp_path)
    assert names(again) == [b"a.mp4", b"c.mp4"]


def test_reset_starts_from_the_scenario(tmp_path):
    state = CameraState.load(camera(), tmp_path)
    state.delete(b"a.mp4")
    assert state.take_fault(0) is True
    fresh = CameraState.load(camera(), tmp_path, reset=True)
    assert names(fresh) == [b"a.mp4", b"b.mp4", b"c.mp4"]
    assert fresh.faults_left(0) == 2
    # and the reset is itself persisted
    assert names(CameraState.load(camera(), tmp_path)) == [b"a.mp4", b"b.mp4", b"c.mp4"]


def test_changed_scenario_starts_again(tmp_path):
    CameraState.load(camera(), tmp_path).delete(b"a.mp4")
    changed = camera(recordings=(rec(b"a.mp4"), rec(b"z.mp4")))
    assert names(CameraState.load(changed, tmp_path)) == [b"a.mp4", b"z.mp4"]


def test_changed_timeline_keeps_the_flash(tmp_path):
    CameraState.load(camera(), tmp_path).delete(b"a.mp4")
    moved = camera(dock_at_s=7.0, undock_at_s=9.0, link_mb_s=40, redock_after_s=1.0)
    assert names(CameraState.load(moved, tmp_path)) == [b"b.mp4", b"c.mp4"]


def test_duplicate_names_delete_one_at_a_time(tmp_path):
    spec = camera(recordings=(rec(b"x", seed=1), rec(b"x", seed=2)))
    state = CameraState.load(spec, tmp_path)
    assert state.delete(b"x")
    assert [r.spec.seed for r in state.recordings()] == [2]


def test_clock_offset_is_kept_and_settable(tmp_path):
    state = CameraState.load(camera(), tmp_path)
    now = datetime.now(UTC)
    assert state.clock().tzinfo is not None
    assert abs((state.clock() - now) - timedelta(seconds=-95)) < timedelta(seconds=2)
    state.set_clock(now + timedelta(hours=1))
    again = CameraState.load(camera(), tmp_path)
    assert abs(again.clock() - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(seconds=2)
    with pytest.raises(ValueError, match="timezone-aware"):
        state.set_clock(datetime(2026, 1, 1))  # naive on purpose


def test_faults_fire_their_times_and_persist(tmp_path):
    state = CameraState.load(camera(), tmp_path)
    assert state.take_fault(0) is True
    again = CameraState.load(camera(), tmp_path)  # restart of dockd in between
    assert again.take_fault(0) is True
    assert again.take_fault(0) is False
    assert CameraState.load(camera(), tmp_path).take_fault(0) is False
    assert all(again.take_fault(1) for _ in range(5))  # times=None: always


def test_duplicate_serials_on_two_slots_do_not_clash(tmp_path):
    one = CameraState.load(camera(slot=1), tmp_path)
    two = CameraState.load(camera(slot=2), tmp_path)
    assert one.path != two.path
    one.delete(b"a.mp4")
    assert names(CameraState.load(camera(slot=2), tmp_path)) == [b"a.mp4", b"b.mp4", b"c.mp4"]


def test_hostile_serial_stays_inside_the_state_dir(tmp_path):
    spec = camera(serial="../../etc/passwd\x00")
    state = CameraState.load(spec, tmp_path)
    assert state.path.parent == tmp_path
    assert "/" not in state_file_name(spec)


def test_damaged_state_is_a_config_error_not_a_crash(tmp_path):
    state = CameraState.load(camera(), tmp_path)
    state.path.write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        CameraState.load(camera(), tmp_path)
    doc = {"version": 1}
    state.path.write_text(json.dumps(doc))
    CameraState.load(camera(), tmp_path)  # fingerprint differs: starts again, no crash
    fresh = CameraState.load(camera(), tmp_path, reset=True)
    doc = json.loads(fresh.path.read_text())
    doc["present"] = [0, 7]
    fresh.path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as info:
        CameraState.load(camera(), tmp_path)
    assert info.value.where == "present"


def test_saves_leave_no_temp_files(tmp_path):
    state = CameraState.load(camera(), tmp_path)
    threads = [threading.Thread(target=state.take_fault, args=(1,)) for _ in range(8)]
    for name in (b"a.mp4", b"b.mp4"):
        threads.append(threading.Thread(target=state.delete, args=(name,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == [state.path.name]
    assert names(CameraState.load(camera(), tmp_path)) == [b"c.mp4"]


def test_sha256_is_true_and_cached(tmp_path, monkeypatch):
    spec = camera(recordings=(rec(b"g", size=3 << 20, seed=9),))
    state = CameraState.load(spec, tmp_path)
    recording = state.recordings()[0]
    buf = bytearray(3 << 20)
    assert recording.content.read_into(0, memoryview(buf)) == 3 << 20
    assert recording.sha256 == hashlib.sha256(buf).digest()

    calls = []
    real = content_mod._hash_content
    monkeypatch.setattr(content_mod, "_hash_content", lambda c: calls.append(c) or real(c))
    again = CameraState.load(spec, tmp_path).recordings()[0]
    assert again.sha256 == hashlib.sha256(buf).digest()
    assert calls == []  # a new run reads the cache, not the bytes
    # other content (other seed) is hashed, not confused with the cached one
    other = CameraState.load(camera(recordings=(rec(b"g", size=3 << 20, seed=10),)), tmp_path)
    assert other.recordings()[0].sha256 != recording.sha256
    assert len(calls) == 1


def test_file_hash_cache_follows_the_file(tmp_path):
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"one")
    spec = camera(recordings=(RecordingSpec(name=b"f", started=T0, source=clip),))
    state_dir = tmp_path / "state"
    first = CameraState.load(spec, state_dir).recordings()[0]
    assert isinstance(first.content, FileContent)
    assert first.sha256 == hashlib.sha256(b"one").digest()
    clip.write_bytes(b"other!")  # new size and mtime: the cached hash must not be used
    again = CameraState.load(spec, state_dir).recordings()[0]
    assert again.sha256 == hashlib.sha256(b"other!").digest()


def test_damaged_hash_cache_is_rebuilt(tmp_path):
    spec = camera(recordings=(rec(b"g", size=100, seed=4),))
    state = CameraState.load(spec, tmp_path)
    (tmp_path / "content-hashes.json").write_text("garbage")
    expected = hashlib.sha256(bytes(_read_all(state.recordings()[0].content))).digest()
    assert state.recordings()[0].sha256 == expected


def _read_all(content) -> bytearray:
    buf = bytearray(content.size)
    content.read_into(0, memoryview(buf))
    return buf


def test_load_states_uses_default_dir_beside_scenario(tmp_path):
    scenario = Scenario(path=tmp_path / "demo.toml", dock=DockSpec(),
                        cameras=(camera(slot=1), camera(slot=2, serial="NC-2")))
    states = load_states(scenario)
    assert default_state_dir(scenario.path) == tmp_path / "demo.toml.sim-state"
    assert [s.spec.slot for s in states] == [1, 2]
    assert all(s.path.parent == tmp_path / "demo.toml.sim-state" for s in states)
    states[0].delete(b"a.mp4")
    assert names(load_states(scenario)[0]) == [b"b.mp4", b"c.mp4"]
    assert len(load_states(scenario, reset=True)[0].recordings()) == 3
    custom = load_states(scenario, tmp_path / "x")
    assert custom[0].path.parent == Path(tmp_path / "x")
