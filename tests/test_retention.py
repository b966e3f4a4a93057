"""Retention on a real SQLite catalog with real files: when a recording goes, what keeps it,
and the sweep that deletes expired local copies (dockd/retention.py, docs/retention.md).

The clock is the catalog's, moved by hand; every deletion must be a tombstone the chain and
`verify` can name, and nothing may go that a hold, a category, a missing vault copy or a
failed proof keeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from retention_env import DAY, HOST, Store, make_store
from structlog.testing import capture_logs

from dockd.catalog import EventKind
from dockd.catalog.lease import LeaseOwner, live_token, new_token
from dockd.config import UNTIL_RELEASED
from dockd.flags import Flag
from dockd.retention import (
    kept_until,
    plan,
    storage_forecast,
    sweep_local,
    why_kept,
)
from dockd.verify import verify_store

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = make_store(tmp_path, start=T0, days=14,
                   categories=(("evidence", UNTIL_RELEASED), ("traffic", 3.0)))
    yield s
    s.catalog.close()


def _sweep(store: Store, at: datetime, **kw: object):
    return sweep_local(store.catalog, store.config, at, **kw)


# --- when a recording goes, and why ------------------------------------------------------


def test_kept_until_counts_from_the_later_of_start_and_arrival(store: Store) -> None:
    rec = store.add("A.MP4")  # started 2 h before it was listed
    assert kept_until(rec, store.config.retention) == T0 + 14 * DAY
    assert why_kept(rec, store.config.retention) == "category default: kept 14 days"
    # a camera whose clock says 1970 cannot expire its footage the moment it arrives
    old = store.add("OLD.MP4", started=datetime(1970, 1, 1, tzinfo=UTC))
    assert kept_until(old, store.config.retention) == T0 + 14 * DAY
    # a camera clock ahead of the dock's keeps the recording longer, never shorter
    ahead = store.add("AHEAD.MP4", started=T0 + 2 * DAY)
    assert kept_until(ahead, store.config.retention) == T0 + 16 * DAY


def test_what_keeps_a_recording_for_good(store: Store) -> None:
    policy = store.config.retention
    rec = store.add("A.MP4")
    held = store.catalog.set_hold(rec.id, True, reason="case 2026-117", actor="dockctl:ann")
    assert kept_until(held, policy) is None
    assert why_kept(held, policy) == "legal hold: case 2026-117"
    released = store.catalog.set_hold(rec.id, False, reason=None, actor="dockctl:ann")
    assert kept_until(released, policy) == T0 + 14 * DAY

    ev = store.catalog.set_category(rec.id, "evidence", actor="dockctl:ann")
    assert kept_until(ev, policy) is None
    assert why_kept(ev, policy) == "category evidence: kept until released"
    short = store.catalog.set_category(rec.id, "traffic", actor="dockctl:ann")
    assert kept_until(short, policy) == T0 + 3 * DAY

    forever = store.with_retention(default_days=0.0).retention
    plain = store.add("B.MP4")
    assert kept_until(plain, forever) is None
    assert why_kept(plain, forever) == "category default: kept for good (no retention set)"


def test_plan_lists_every_kept_copy_with_when_it_goes(store: Store) -> None:
    store.add("A.MP4")
    held = store.add("B.MP4")
    store.catalog.set_hold(held.id, True, reason="court order", actor="dockctl:ann")
    rows = {d.rec.camera_name: (d.until, d.why) for d in plan(store.catalog, store.config)}
    assert rows == {"A.MP4": (T0 + 14 * DAY, "category default: kept 14 days"),
                    "B.MP4": (None, "legal hold: court order")}


# --- the sweep ------------------------------------------------------------------------------


def test_sweep_deletes_what_expired_and_keeps_what_is_held(store: Store) -> None:
    for name in ("A.MP4", "B.MP4", "C.MP4", "D.MP4"):
        store.add(name)
    store.catalog.set_hold(store.ids["B.MP4"], True, reason="case 7", actor="dockctl:ann")
    store.catalog.set_category(store.ids["C.MP4"], "evidence", actor="dockctl:ann")
    store.catalog.set_category(store.ids["D.MP4"], "traffic", actor="dockctl:ann")
    paths = {n: store.path(n) for n in store.ids}

    assert _sweep(store, T0 + 2 * DAY).deleted == []  # nothing expired yet
    report = _sweep(store, T0 + 4 * DAY)  # traffic: 3 days
    assert report.deleted == [store.ids["D.MP4"]]
    assert not paths["D.MP4"].exists()

    day15 = T0 + 15 * DAY
    report = _sweep(store, day15)
    assert report.deleted == [store.ids["A.MP4"]] and report.kept == {}
    assert not paths["A.MP4"].exists()
    assert paths["B.MP4"].exists() and paths["C.MP4"].exists()  # held; until released

    # the tombstone: the chain keeps every hash and says when and why
    a = store.rec("A.MP4")
    assert a.local_deleted_at == day15 and a.stored_sha256 is not None
    tomb = [e for e in store.events(EventKind.DELETED_BY_RETENTION)
            if e.recording_id == a.id]
    assert len(tomb) == 1
    assert tomb[0].details_dict["reason"] == (
        f"kept 14 days (category default) until {T0 + 14 * DAY:%Y-%m-%d %H:%M}Z")
    facts = store.catalog.custody(a.id).facts or {}
    assert facts["stored_sha256"] == a.stored_sha256 and facts["local_deleted_at"]
    # a second sweep finds nothing left to do
    assert _sweep(store, day15 + DAY).deleted == []

    report = verify_store(store.catalog, store.root)
    assert report.ok, report.failures()
    assert sorted(report.retired) == sorted(
        f"recording {store.ids[n]} (NC-1/{n}): deleted by retention on {d:%Y-%m-%d}"
        for n, d in (("A.MP4", day15), ("D.MP4", T0 + 4 * DAY)))


def test_zero_days_keeps_everything(store: Store) -> None:
    store.with_retention(default_days=0.0)
    store.add("A.MP4")
    assert _sweep(store, T0 + 3650 * DAY).deleted == []
    assert store.path("A.MP4").exists()


def test_a_camera_clock_in_1970_does_not_expire_on_arrival(store: Store) -> None:
    store.add("OLD.MP4", started=datetime(1970, 1, 1, tzinfo=UTC))
    assert _sweep(store, T0 + DAY).deleted == []
    assert store.path("OLD.MP4").exists()
    assert _sweep(store, T0 + 15 * DAY).deleted == [store.ids["OLD.MP4"]]


def test_with_a_vault_the_local_copy_waits_for_the_vaulted_copy(tmp_path: Path) -> None:
    store = make_store(tmp_path, start=T0, days=14, vault=object())  # any [vault] section
    rec = store.add("A.MP4")
    report = _sweep(store, T0 + 15 * DAY)
    assert report.deleted == [] and report.kept == {rec.id: "waits for the vault's verified copy"}
    assert store.path("A.MP4").exists()
    store.catalog.mark_vaulted(rec.id, key="NC-1/a", version="v1", checksum="c",
                               lock_until=T0 + 14 * DAY, hold=False, actor="dockd-vault")
    assert _sweep(store, T0 + 15 * DAY).deleted == [rec.id]
    # a vault version already deleted is no copy either: a recording vaulted then deleted
    # from the vault (and restored locally, say) waits again
    other = store.add("B.MP4")
    store.catalog.mark_vaulted(other.id, key="NC-1/b", version="v2", checksum="c",
                               lock_until=T0 + 14 * DAY, hold=False, actor="dockd-vault")
    store.catalog.mark_vault_state(other.id, deleted_at=T0 + DAY, actor="dockd-vault")
    assert _sweep(store, T0 + 15 * DAY).kept == {other.id: "waits for the vault's verified copy"}
    store.catalog.close()


def test_a_damaged_copy_is_not_deleted_but_reported(store: Store) -> None:
    store.add("A.MP4")
    path = store.path("A.MP4")
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with capture_logs() as logs:
        report = _sweep(store, T0 + 15 * DAY)
    rid = store.ids["A.MP4"]
    assert report.deleted == []
    assert report.kept[rid].startswith("the local copy is not the one recorded: stored file ")
    assert path.exists() and store.rec("A.MP4").local_deleted_at is None
    assert [e["recording_id"] for e in logs if e["event"] == "retention_copy_unproven"] == [rid]
    assert store.events(EventKind.DELETED_BY_RETENTION) == []
    # verify names the damage; retention did not hide it
    assert [f.problem for f in verify_store(store.catalog, store.root).findings] == [
        "stored_hash"]


def test_a_missing_copy_is_reported_not_tombstoned(store: Store) -> None:
    """A file gone without retention deleting it (a person, an attacker, a disk) is not
    "deleted by retention": the chain would then vouch for a deletion nobody made."""
    rec = store.add("A.MP4")
    store.path("A.MP4").unlink()
    report = _sweep(store, T0 + 15 * DAY)
    assert report.deleted == []
    assert report.kept[rec.id].startswith("the local copy is not the one recorded")
    assert store.events(EventKind.DELETED_BY_RETENTION) == []
    assert store.rec("A.MP4").local_deleted_at is None


def test_an_unmounted_store_is_not_swept(store: Store) -> None:
    """An evidence disk that is not mounted shows an empty directory without the store
    marker: every file would look missing. The sweep refuses it in one line."""
    store.add("A.MP4")
    (store.root / ".dockd-store").unlink()
    with capture_logs() as logs:
        report = _sweep(store, T0 + 15 * DAY)
    assert report.deleted == [] and report.kept == {}
    assert [e["event"] for e in logs] == ["retention_sweep_refused"]
    assert store.path("A.MP4").exists()
    assert store.events(EventKind.DELETED_BY_RETENTION) == []


def test_a_hold_placed_while_the_copy_is_rehashed_keeps_it(store: Store) -> None:
    """Found by a hostile review: the hold was checked once, before the re-hash; a hold
    placed meanwhile (from any host) was ignored and the only copy deleted. The tombstone
    is now written under the row's lock, re-checking the hold, before the unlink."""
    rec = store.add("A.MP4")
    placed = []

    def hold_now() -> None:
        if not placed:
            store.catalog.set_hold(rec.id, True, reason="court order", actor="dockctl:judge")
            placed.append(True)

    report = _sweep(store, T0 + 15 * DAY, beat=hold_now)
    assert placed and report.deleted == []
    assert "legal hold" in report.kept[rec.id]
    assert store.path("A.MP4").exists()
    assert store.events(EventKind.DELETED_BY_RETENTION) == []


def test_a_category_no_longer_configured_keeps_its_recordings(store: Store) -> None:
    """A recording filed "until released" whose category was renamed in the config (or
    is unknown to this host's config) must not fall back to the default days."""
    store.with_retention(categories=(("evidence", UNTIL_RELEASED),))
    rec = store.add("A.MP4")
    store.catalog.set_category(rec.id, "evidence", actor="dockctl:officer")
    store.with_retention(categories=(("court-evidence", UNTIL_RELEASED),))
    assert kept_until(store.rec("A.MP4"), store.config.retention) is None
    assert "not configured" in why_kept(store.rec("A.MP4"), store.config.retention)
    assert _sweep(store, T0 + 400 * DAY).deleted == []
    assert store.path("A.MP4").exists()


def test_a_vault_lock_shorter_than_the_retention_keeps_the_local_copy(tmp_path: Path) -> None:
    store = make_store(tmp_path, start=T0, days=14, vault=object())
    rec = store.add("A.MP4")
    store.catalog.mark_vaulted(rec.id, key="NC-1/a", version="v1", checksum="c",
                               lock_until=T0 + 3 * DAY, hold=False, actor="dockd-vault")
    report = _sweep(store, T0 + 15 * DAY)
    assert report.deleted == []
    assert report.kept == {rec.id: "waits for the vault copy's lock to cover its retention"}
    store.catalog.close()


def test_dry_run_deletes_nothing(store: Store) -> None:
    store.add("A.MP4")
    report = _sweep(store, T0 + 15 * DAY, dry_run=True)
    assert report.deleted == [store.ids["A.MP4"]]
    assert store.path("A.MP4").exists() and store.events(EventKind.DELETED_BY_RETENTION) == []


def test_stop_ends_the_sweep_between_files(store: Store) -> None:
    store.add("A.MP4")
    store.add("B.MP4")
    stop = Flag()
    stop.set()
    assert _sweep(store, T0 + 15 * DAY, stop=stop).deleted == []
    beats: list[int] = []

    class StopAfterFirst(Flag):
        def is_set(self) -> bool:  # the first file re-hashes, then a stop arrives
            return bool(beats)

    report = _sweep(store, T0 + 15 * DAY, stop=StopAfterFirst(),
                    beat=lambda: beats.append(1))
    assert report.deleted == [store.ids["A.MP4"]] and beats
    assert store.path("B.MP4").exists()


def test_a_recording_in_use_is_left_alone(store: Store) -> None:
    rec = store.add("A.MP4")
    owner = LeaseOwner.here(HOST, new_token())
    with live_token(owner.token):
        store.catalog.take_lease(rec.id, owner)  # a dock session proving it right now
        report = _sweep(store, T0 + 15 * DAY)
    assert report.kept[rec.id].startswith("in use: ")
    assert store.path("A.MP4").exists()


def test_another_hosts_copies_are_not_this_hosts_to_delete(tmp_path: Path) -> None:
    a = make_store(tmp_path / "a", start=T0)
    rec = a.add("A.MP4")
    a.catalog.close()
    b = make_store(tmp_path / "a", start=T0, host="dock-b")  # same catalog, another host
    assert sweep_local(b.catalog, b.config, T0 + 15 * DAY).deleted == []
    assert b.catalog.recording(rec.id).local_deleted_at is None
    b.catalog.close()


# --- the storage forecast with retention ----------------------------------------------------


def test_storage_forecast_counts_what_retention_frees(store: Store) -> None:
    for n in range(4):
        store.add(f"R{n}.MP4", size=1000 + n)
    held = store.add("H.MP4", size=5000)
    store.catalog.set_hold(held.id, True, reason="case", actor="dockctl:ann")
    now = T0 + DAY
    # ingest 3000 bytes/day into 40 000 free bytes: 13.3 days without retention; with it the
    # 4006 bytes due on day 14 and, from then on, each day's ingest 14 days later come back
    out = storage_forecast(store.catalog, store.config, now=now, free_bytes=40_000,
                           bytes_per_day=3000)
    assert out["freed_by_retention"] == [((T0 + 14 * DAY).date().isoformat(), 4006)]
    assert out["steady_bytes"] == 14 * 3000
    assert out["days_left"] is None  # never fills: what arrives is freed before it would
    tight = storage_forecast(store.catalog, store.config, now=now, free_bytes=20_000,
                             bytes_per_day=3000)
    assert tight["days_left"] == pytest.approx(20_000 / 3000, abs=0.05)
    # without retention it is the plain rate
    store.with_retention(default_days=0.0)
    plain = storage_forecast(store.catalog, store.config, now=now, free_bytes=40_000,
                             bytes_per_day=3000)
    assert plain["days_left"] == pytest.approx(40_000 / 3000, abs=0.05)
    assert plain["freed_by_retention"] == [] and plain["steady_bytes"] is None


def test_storage_forecast_only_counts_this_hosts_copies(tmp_path: Path) -> None:
    a = make_store(tmp_path, start=T0)
    a.add("A.MP4", size=1000)
    b_view = storage_forecast(a.catalog, a.config, now=T0, free_bytes=10, bytes_per_day=0,
                              host="dock-b")
    assert b_view["freed_by_retention"] == []
    a.catalog.close()


def test_a_sweep_logs_one_line(store: Store) -> None:
    store.add("A.MP4")
    with capture_logs() as logs:
        _sweep(store, T0 + 15 * DAY)
    lines = [e for e in logs if e["event"] == "retention_sweep"]
    assert len(lines) == 1 and lines[0]["deleted"] == 1
    assert [e["recording_id"] for e in logs if e["event"] == "deleted_by_retention"] == [
        store.ids["A.MP4"]]


def test_now_in_the_catalog_clock_is_used_for_kept_until(store: Store) -> None:
    """created_at is the catalog's clock at listing (not the camera's): moving the catalog
    clock moves when a recording was first seen."""
    store.clock.now = T0 + 5 * DAY
    rec = store.add("LATE.MP4", started=T0)
    assert kept_until(rec, store.config.retention) == T0 + 19 * DAY
    assert _sweep(store, T0 + 15 * DAY).deleted == []
    assert timedelta(0) < (T0 + 19 * DAY) - (T0 + 15 * DAY)
