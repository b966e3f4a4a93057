"""Commits that ride with the next durable one (issue 15; docs/catalog.md, "Commits that
ride with the next"): `Catalog.writing(durable=False)` commits under `synchronous = NORMAL`
on SQLite, every other write transaction and every pooled connection stays `FULL`, a
listing's new rows come in one transaction, and the witnessed head is on disk."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from dockd.catalog import Catalog, EventKind, RecordingStatus
from dockd.catalog.lease import LeaseOwner, new_token
from dockd.model import CameraIdentity, RecordingInfo


def _catalog(tmp_path: Path) -> Catalog:
    return Catalog.open(f"sqlite:///{tmp_path / 'cat.db'}")


def _level(session: Session) -> int:
    return int(session.connection().exec_driver_sql("PRAGMA synchronous").scalar() or 0)


def test_a_deferred_commit_is_normal_and_every_other_stays_full(tmp_path: Path) -> None:
    with _catalog(tmp_path) as cat:
        with cat.writing(durable=False) as s:
            assert _level(s) == 1  # NORMAL
        with cat.writing() as s:
            assert _level(s) == 2  # FULL
        with cat.writing(durable=False) as s:
            assert _level(s) == 1
        # back in the pool, the connection is FULL again, whoever takes it
        with cat.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def _info(i: int) -> RecordingInfo:
    return RecordingInfo(name=f"V{i:03d}.MP4", size=1000 + i,
                         started=datetime(2026, 11, 25, 9, i, tzinfo=UTC), duration_s=60.0,
                         prerecord_s=0.0, sha256=hashlib.sha256(b"%d" % i).digest())


def test_a_listing_is_catalogued_once_in_order(tmp_path: Path) -> None:
    with _catalog(tmp_path) as cat:
        cat.upsert_camera(CameraIdentity(serial="SN1", model="BC-1", firmware="1",
                                         vendor="NetCo", clock=datetime.now(UTC)))
        known = cat.recording_for("SN1", _info(1))
        infos = [_info(0), _info(1), _info(2), _info(0)]  # a repeat in the listing itself
        rows = cat.list_recordings("SN1", infos)
        assert [r.camera_name for r in rows] == ["V000.MP4", "V001.MP4", "V002.MP4", "V000.MP4"]
        assert rows[1].id == known.id and rows[0].id == rows[3].id
        assert all(r.status is RecordingStatus.PENDING for r in rows)
        again = cat.list_recordings("SN1", infos)
        assert [r.id for r in again] == [r.id for r in rows]
        assert [r.id for r in again] == [cat.recording_for("SN1", i).id for i in infos]
        listed = [e for e in cat.events() if e.kind == EventKind.LISTED]
        assert len(listed) == 3  # one per recording, never twice
        assert cat.verify_chain() == []
        # the head a witness writes down is the catalog's head
        assert cat.durable_head() == cat.head()


def test_the_witnessed_head_syncs_the_wal_of_a_symlinked_catalog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite keeps the WAL beside the file a symlink points to: durable_head must sync that
    one (with the link's own name it found no WAL, synced nothing, and a witness could name
    a deferred event a power cut takes back — a false tamper alarm; hostile review)."""
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "store.db"
    link = tmp_path / "cat.db"
    Catalog.open(f"sqlite:///{target}").close()
    link.symlink_to(target)
    synced: list[str] = []
    real_fdatasync = os.fdatasync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fdatasync(fd)

    with Catalog.open(f"sqlite:///{link}") as cat:
        with cat.writing(durable=False) as s:  # a commit that rides with the next
            cat.append_event(s, EventKind.LISTED, details={"why": "deferred"})
        monkeypatch.setattr(os, "fdatasync", spy)
        assert cat.durable_head() == cat.head()
    assert synced == [str(target) + "-wal"]


def test_begin_attempt_is_durable_before_any_partial_exists(tmp_path: Path) -> None:
    """The partial and its resume file (the file key) come right after `transfer_started`:
    that commit, and the listing's rows it carries, must be on disk on its own (hostile
    review: a row a power cut took back let a later recording inherit its id and path)."""
    with _catalog(tmp_path) as cat:
        levels: list[int] = []

        @event.listens_for(cat.engine, "commit")
        def _seen(conn: Any) -> None:
            levels.append(int(conn.exec_driver_sql("PRAGMA synchronous").scalar() or 0))

        cat.upsert_camera(CameraIdentity(serial="SN1", model="BC-1", firmware="1",
                                         vendor="NetCo", clock=datetime.now(UTC)))
        rec = cat.list_recordings("SN1", [_info(7)])[0]
        owner = LeaseOwner.here(cat.host, new_token())
        cat.take_lease(rec.id, owner)
        levels.clear()
        cat.begin_attempt(rec.id, owner=owner)
        assert levels == [2]  # FULL
