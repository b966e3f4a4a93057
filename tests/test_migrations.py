"""The catalog schema comes from the packaged migrations, on real SQLite files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from dockd.catalog import Catalog, migrate
from dockd.catalog.db import make_engine
from dockd.catalog.schema import Base
from dockd.errors import CatalogError, CatalogVersionError

TABLES = {
    "alembic_version",
    "docks",
    "ports",
    "cameras",
    "dock_sessions",
    "recordings",
    "transfer_attempts",
    "audit_events",
    "audit_head",
    "settings",
    "dock_captures",
    "shift_samples",
    "shift_events",
    "health_findings",
    "docked_charge_readings",
}


def url_of(path) -> str:
    return f"sqlite:///{path}"


def test_fresh_catalog_is_created_at_head_and_matches_the_models(tmp_path):
    db = tmp_path / "cat.db"
    with Catalog.open(url_of(db)) as cat, cat.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == TABLES
        head = migrate.head_revision()
        assert migrate.current_revision(conn) == head == migrate.HEAD
        # the migrations build exactly what the models describe: no drift
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
        assert diffs == []


def test_open_twice_is_a_no_op(tmp_path):
    db = tmp_path / "cat.db"
    with Catalog.open(url_of(db)) as cat:
        cat.record_event("exported", details={"n": 1})
    with Catalog.open(url_of(db)) as cat:
        assert [e.kind for e in cat.events()] == ["exported"]
        assert cat.verify_chain() == []


@pytest.mark.parametrize("in_child", [False, True], ids=["in-process", "in-child"])
def test_upgrade_from_an_old_revision_keeps_data(tmp_path, in_child):
    db = tmp_path / "cat.db"
    engine = make_engine(url_of(db), create_dirs=True)
    migrate.upgrade(engine, "0001_core")
    now = datetime(2026, 11, 1, 8, 0, tzinfo=UTC).replace(tzinfo=None).isoformat(" ")
    with engine.begin() as conn:
        assert "audit_events" not in inspect(conn).get_table_names()
        conn.execute(
            text(
                "INSERT INTO cameras (serial, vendor, model, firmware, first_seen, last_seen)"
                " VALUES ('OLD1', 'V', 'M', '1', :t, :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO recordings (camera_serial, camera_name, size, started, duration_s,"
                " prerecord_s, camera_sha256, status, attempts, created_at, updated_at)"
                " VALUES ('OLD1', 'a.mp4', 5, :t, 1.0, 0.0, :h, 'pending', 0, :t, :t)"
            ),
            {"t": now, "h": "ab" * 32},
        )
    engine.dispose()

    with Catalog.open(url_of(db), migrate_in_child=in_child) as cat:
        (rec,) = cat.recordings()
        assert (rec.camera_serial, rec.camera_name, rec.size) == ("OLD1", "a.mp4", 5)
        assert rec.started == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
        # 0004 vouched for the row it found: one baseline event carrying its facts
        (baseline,) = cat.events()
        assert baseline.kind == "custody_baseline" and baseline.recording_id == rec.id
        custody = cat.custody(rec.id)
        assert custody.problems == [] and custody.mismatch(rec) == []
        assert custody.facts is not None
        assert custody.facts["started"] == "2026-11-01T08:00:00.000000Z"
        cat.record_event("verified_later", recording_id=rec.id)
        assert cat.verify_chain() == []
        with cat.engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()


@pytest.mark.parametrize("in_child", [False, True], ids=["in-process", "in-child"])
def test_catalog_newer_than_the_code_is_refused_and_left_alone(tmp_path, in_child):
    db = tmp_path / "cat.db"
    Catalog.open(url_of(db)).close()
    engine = make_engine(url_of(db), create_dirs=False)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()

    with pytest.raises(CatalogVersionError, match=r"0099_future.*newer"):
        Catalog.open(url_of(db), migrate_in_child=in_child)
    engine = make_engine(url_of(db), create_dirs=False)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == "0099_future"
    engine.dispose()


@pytest.mark.parametrize("in_child", [False, True], ids=["in-process", "in-child"])
def test_a_database_that_is_not_a_catalog_is_refused(tmp_path, in_child):
    db = tmp_path / "other.db"
    engine = make_engine(url_of(db), create_dirs=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE photos (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(CatalogVersionError, match="not a dockd catalog"):
        Catalog.open(url_of(db), migrate_in_child=in_child)


def test_a_daemon_style_open_migrates_in_a_child_and_never_loads_alembic(tmp_path):
    # a fresh interpreter, as the daemon is: pytest itself has imported Alembic long ago
    db = tmp_path / "cat.db"
    probe = (
        "import json, sys\n"
        "from dockd.catalog import Catalog, migrate\n"
        f"cat = Catalog.open({url_of(db)!r}, migrate_in_child=True)\n"
        "print(json.dumps({'alembic': sorted(m for m in sys.modules if m.startswith('alembic')),"
        " 'at_head': migrate.at_head(cat.engine)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=120)
    assert json.loads(done.stdout) == {"alembic": [], "at_head": True}
    with Catalog.open(url_of(db)) as cat, cat.engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
        assert cat.verify_chain() == []


def test_a_child_migration_failure_comes_back_as_its_one_line(tmp_path):
    # the child is told a URL whose directory is gone: its typed error is the parent's
    engine = make_engine(url_of(tmp_path / "cat.db"), create_dirs=True)  # empty: not at head
    with pytest.raises(CatalogError) as caught:
        migrate.upgrade_in_child(engine, url_of(tmp_path / "gone" / "cat.db"))
    engine.dispose()
    assert str(caught.value) == f"catalog directory {tmp_path / 'gone'} does not exist"


def test_an_unreadable_file_is_a_typed_error(tmp_path):
    db = tmp_path / "cat.db"
    db.write_bytes(b"this is not an SQLite database at all\n" * 200)
    with pytest.raises(CatalogError, match="cannot read catalog") as info:
        Catalog.open(url_of(db))
    assert not isinstance(info.value, CatalogVersionError)
    assert info.value.exit_code == 8


def test_memory_and_missing_directory_are_refused(tmp_path):
    with pytest.raises(CatalogError, match="durable"):
        Catalog.open("sqlite://")
    with pytest.raises(CatalogError, match="does not exist"):
        Catalog.open(url_of(tmp_path / "nope" / "cat.db"), create_dirs=False)


def test_a_directory_that_cannot_be_made_is_one_typed_line(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(CatalogError) as caught:
        Catalog.open(url_of(tmp_path / "file" / "sub" / "cat.db"))
    assert str(caught.value) == (
        f"cannot create catalog directory {tmp_path / 'file' / 'sub'}: Not a directory")


def test_file_and_directory_are_private(tmp_path):
    db = tmp_path / "var" / "dockd" / "cat.db"
    with Catalog.open(url_of(db)) as cat:
        cat.record_event("exported")  # keeps the -wal file around while open
        with cat.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
            assert stat.S_IMODE(os.stat(db.parent).st_mode) == 0o700
            wal = db.with_name("cat.db-wal")
            assert wal.exists()
            assert stat.S_IMODE(os.stat(wal).st_mode) == 0o600


def test_durability_pragmas_are_in_force_on_every_pooled_connection(tmp_path):
    with Catalog.open(url_of(tmp_path / "cat.db")) as cat:
        results: list[tuple] = []
        together = threading.Barrier(4)

        def probe(barrier: threading.Barrier | None = None) -> None:
            with cat.engine.connect() as conn:
                if barrier is not None:
                    barrier.wait(timeout=10)  # four connections open at once
                results.append(
                    tuple(
                        conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                        for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
                    )
                )

        threads = [threading.Thread(target=probe, args=(together,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        probe()
        # synchronous 2 = FULL
        assert results == [("wal", 2, 1, 30000)] * 5


def test_upgrading_a_catalog_whose_recordings_are_referenced_keeps_every_reference(tmp_path):
    """SQLite recreates a table to alter it; with foreign keys enforced that failed for any
    catalog that had transfer attempts (every real one)."""
    db = tmp_path / "cat.db"
    engine = make_engine(url_of(db), create_dirs=True)
    migrate.upgrade(engine, "0003_health")
    now = datetime(2026, 11, 1, 8, 0, tzinfo=UTC).replace(tzinfo=None).isoformat(" ")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO cameras (serial, vendor, model, firmware, first_seen,"
                          " last_seen) VALUES ('OLD1', 'V', 'M', '1', :t, :t)"), {"t": now})
        conn.execute(text("INSERT INTO recordings (camera_serial, camera_name, size, started,"
                          " duration_s, prerecord_s, camera_sha256, status, attempts,"
                          " created_at, updated_at) VALUES ('OLD1', 'a.mp4', 5, :t, 1.0, 0.0,"
                          " :h, 'failed', 1, :t, :t)"), {"t": now, "h": "ab" * 32})
        conn.execute(text("INSERT INTO transfer_attempts (recording_id, started_at,"
                          " offset_from, bytes) VALUES (1, :t, 0, 0)"), {"t": now})
    engine.dispose()
    with Catalog.open(url_of(db)) as cat:
        assert [a.recording_id for a in cat.attempts(1)] == [1]
        with cat.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
