"""Store layout, name sanitising and the atomic no-overwrite protocol, on real files."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockd import store
from dockd.errors import StorageError, StoreExists, StoreFull
from dockd.store import (
    QUARANTINE_DIR,
    clean_partials,
    create_partial,
    ensure_dir,
    final_name_of,
    list_partials,
    partial_path,
    partials_for,
    publish,
    quarantine,
    recording_dir,
    sanitise,
    sidecar_path,
    storage_error,
    take_over,
)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("VID_0001.MP4", "VID_0001.MP4"),
        ("../../etc/passwd", "_._.._etc_passwd"),
        (".hidden", "_hidden"),
        ("a b/c\\d\x00e", "a_b_c_d_e"),
        ("caméra", "cam_ra"),
        ("...", "_.."),
    ],
)
def test_sanitise_keeps_only_safe_characters(raw, safe):
    assert sanitise(raw) == safe


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_sanitise_refuses_meaningless_names(bad):
    with pytest.raises(StorageError, match="unusable"):
        sanitise(bad)


def test_long_names_are_capped_and_stay_distinct():
    a, b = sanitise("x" * 300 + "a"), sanitise("x" * 300 + "b")
    assert len(a) == len(b) == store.MAX_COMPONENT
    assert a != b


@given(st.text(min_size=1, max_size=400).filter(lambda t: t not in {".", ".."}))
def test_sanitised_name_is_always_one_safe_component(raw):
    safe = sanitise(raw)
    assert safe and "/" not in safe and "\x00" not in safe
    assert not safe.startswith(".")
    assert len(safe) <= store.MAX_COMPONENT
    assert safe not in {".", ".."}


def test_recording_dir_layout_uses_utc_start_date(tmp_path):
    # 23:30 at UTC-2 is already the next day in UTC
    started = datetime(2026, 3, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert recording_dir(tmp_path, "SN/01", started) == tmp_path / "SN_01" / "2026" / "04" / "01"
    naive = datetime(2026, 1, 2, 3, 4)
    assert recording_dir(tmp_path, "SN1", naive) == tmp_path / "SN1" / "2026" / "01" / "02"


def test_ensure_dir_creates_private_directories(tmp_path):
    target = recording_dir(tmp_path / "root", "SN1", datetime(2026, 11, 26, tzinfo=UTC))
    old = os.umask(0)
    try:
        ensure_dir(target)
    finally:
        os.umask(old)
    probe = target
    while probe != tmp_path:
        assert probe.stat().st_mode & 0o777 == 0o700, probe
        probe = probe.parent
    ensure_dir(target)  # idempotent


def test_ensure_dir_refuses_symlinked_or_file_components(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StorageError, match="not a directory"):
        ensure_dir(tmp_path / "link" / "x")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match=r"(?i)not a directory"):
        ensure_dir(tmp_path / "file" / "x")


def test_partial_is_exclusive_and_private(tmp_path):
    path = partial_path(tmp_path / "a.age", "ab12")
    assert path.name == ".a.age.ab12.partial"
    fd = create_partial(path)
    os.close(fd)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(StoreExists):
        create_partial(path)


def _write_partial(final: Path, data: bytes) -> Path:
    part = partial_path(final, "w1")
    fd = create_partial(part)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return part


@pytest.mark.parametrize("use_renameat2", [True, False])
def test_publish_never_overwrites(tmp_path, monkeypatch, use_renameat2):
    if not use_renameat2:
        monkeypatch.setattr(store, "_RENAMEAT2", None)  # exercise the link+unlink fallback
    elif store._RENAMEAT2 is None:
        pytest.skip("libc has no renameat2")
    final = tmp_path / "a.age"
    part = _write_partial(final, b"first")
    publish(part, final)
    assert final.read_bytes() == b"first" and not part.exists()
    assert final.stat().st_mode & 0o777 == 0o600
    part = _write_partial(final, b"second")
    with pytest.raises(StoreExists, match="never overwrites"):
        publish(part, final)
    assert final.read_bytes() == b"first"
    assert part.exists()  # the caller decides what happens to it


def test_publish_refuses_cross_directory(tmp_path):
    (tmp_path / "d").mkdir()
    part = _write_partial(tmp_path / "a.age", b"x")
    with pytest.raises(StorageError, match="same directory"):
        publish(part, tmp_path / "d" / "a.age")


def test_partials_are_named_per_writer_and_found_by_their_final_name(tmp_path):
    final = tmp_path / "VID.MP4.age"
    mine, theirs = partial_path(final, "aaaa"), partial_path(final, "bbbb")
    assert mine != theirs
    for part in (mine, theirs):
        part.write_bytes(b"")
    (tmp_path / ".VID.MP4.age.partial").write_bytes(b"")  # an old unowned name: not a writer's
    (tmp_path / ".other.age.cccc.partial").write_bytes(b"")
    assert partials_for(final) == sorted([mine, theirs])
    assert final_name_of(mine) == "VID.MP4.age"
    assert final_name_of(tmp_path / "VID.MP4.age") is None
    for bad in ("", "a/b", "..", "a.b"):
        with pytest.raises(StorageError):
            partial_path(final, bad)


def test_take_over_moves_the_partial_and_its_resume_state(tmp_path):
    final = tmp_path / "VID.MP4.age"
    dead, mine = partial_path(final, "dead"), partial_path(final, "mine")
    dead.write_bytes(b"data")
    sidecar_path(dead).write_text("{}")
    take_over(dead, mine)
    assert mine.read_bytes() == b"data" and sidecar_path(mine).read_text() == "{}"
    assert not dead.exists() and not sidecar_path(dead).exists()


def test_quarantine_moves_aside_and_never_replaces(tmp_path):
    when = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    day = tmp_path / "SN1" / "2026" / "11" / "25"
    day.mkdir(parents=True)
    first = day / "A.MP4.age"
    first.write_bytes(b"one")
    moved = quarantine(tmp_path, first, when)
    assert moved.parent == tmp_path / QUARANTINE_DIR and moved.read_bytes() == b"one"
    assert moved.name == "20261129T080000Z_SN1_2026_11_25_A.MP4.age"
    assert not first.exists()
    first.write_bytes(b"two")  # the same path, the same second: a second name, not a replace
    again = quarantine(tmp_path, first, when)
    assert again != moved and again.read_bytes() == b"two" and moved.read_bytes() == b"one"
    assert (tmp_path / QUARANTINE_DIR).stat().st_mode & 0o777 == 0o700


def test_stray_partials_are_listed_and_cleaned_except_kept(tmp_path):
    day = tmp_path / "SN1" / "2026" / "11" / "26"
    day.mkdir(parents=True)
    keep = _write_partial(day / "keep.age", b"k")  # .keep.age.w1.partial
    sidecar_path(keep).write_text("{}")
    stray = _write_partial(day / "stray.age", b"s")
    sidecar_path(stray).write_text("{}")
    orphan_tmp = day / ".other.age.w2.partial.resume.tmp"
    orphan_tmp.write_text("{}")
    evidence = day / "done.age"
    evidence.write_bytes(b"evidence")
    found = list_partials(tmp_path)
    assert set(found) == {keep, sidecar_path(keep), stray, sidecar_path(stray), orphan_tmp}
    removed = clean_partials(tmp_path, keep=[keep])
    assert set(removed) == {stray, sidecar_path(stray), orphan_tmp}
    assert keep.exists() and sidecar_path(keep).exists() and evidence.exists()
    assert list_partials(tmp_path) == sorted([keep, sidecar_path(keep)])
    assert list_partials(tmp_path / "missing") == []


def test_enospc_maps_to_store_full(tmp_path):
    full = storage_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path, "writing")
    assert isinstance(full, StoreFull) and not full.retryable
    other = storage_error(OSError(errno.EIO, "I/O error"), tmp_path, "writing")
    assert type(other) is StorageError
