"""The Catalog API on real SQLite files and, when installed, a throwaway PostgreSQL cluster."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dockd.catalog import Catalog, EventKind, RecordingStatus, SessionCounts
from dockd.errors import CatalogError, RecordingStateError
from dockd.model import CameraIdentity, RecordingInfo

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


class Clock:
    """A host clock the test moves by hand (one second per reading)."""

    def __init__(self) -> None:
        self.now = T0
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += timedelta(seconds=1)
            return self.now


def identity(serial: str = "SN1", *, firmware: str = "1.0", skew_s: float = 0.0):
    return CameraIdentity(
        serial=serial,
        model="BC-1",
        firmware=firmware,
        vendor="NetCo",
        clock=T0 + timedelta(seconds=skew_s),
    )


def info(name: str = "VID_0001.MP4", size: int = 1000, content: bytes = b"x") -> RecordingInfo:
    return RecordingInfo(
        name=name,
        size=size,
        started=datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        duration_s=60.0,
        prerecord_s=30.0,
        sha256=hashlib.sha256(content).digest(),
    )


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# --- backends ------------------------------------------------------------------------


def _pg_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    """A PostgreSQL cluster in a temp dir, reached over its Unix socket only."""
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server not installed (apt package: postgresql)")
    pytest.importorskip("psycopg", reason="psycopg not installed (pip: psycopg[binary])")
    base = tempfile.mkdtemp(prefix="dockd-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(base, "data")

    def run(*argv):
        return subprocess.run(
            [*as_user, *argv],
            check=True,
            capture_output=True,
            timeout=120,
        )

    try:
        run(initdb, "-D", data, "-A", "trust", "-U", "dockd", "-E", "UTF8", "--no-sync")
        run(
            pg_ctl,
            "-D",
            data,
            "-l",
            os.path.join(base, "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-k {base} -c listen_addresses='' -c fsync=off",
            "start",
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')}")
    try:
        yield base
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


def _pg_database(socket_dir: str) -> str:
    """A fresh, empty schema per test (instant, unlike CREATE DATABASE) as the search path."""
    import psycopg  # noqa: PLC0415  (optional: only when the PostgreSQL tests run)

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(host=socket_dir, user="dockd", dbname="postgres", autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {name}")
    return f"postgresql+psycopg://dockd@/postgres?host={socket_dir}&options=-csearch_path%3D{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog' / 'dockd.db'}"
    return _pg_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cat(url, clock) -> Iterator[Catalog]:
    with Catalog.open(url, host="dock-host", clock=clock) as c:
        yield c


# --- the life of a recording ------------------------------------------------------------


def test_full_life_of_a_recording(cat):
    content = b"footage"
    cam = cat.upsert_camera(identity(skew_s=-90.0))
    assert cam.last_clock_offset_s == pytest.approx(-91.0)  # camera clock minus host clock
    sess = cat.start_session("SN1", dock="dock-a", slot=3)
    rec = cat.recording_for("SN1", info(content=content))
    assert rec.status is RecordingStatus.PENDING
    assert rec.camera_sha256 == sha(content)

    att = cat.begin_attempt(rec.id, session_id=sess.id)
    assert cat.recording(rec.id).status is RecordingStatus.TRANSFERRING
    att = cat.finish_attempt(att.id, bytes_transferred=1000)
    assert (att.outcome, att.bytes, att.error_kind) == ("ok", 1000, None)
    stored = cat.mark_stored(rec.id, "/srv/dockd/SN1/VID_0001.MP4.age", sha(content), "ab" * 32)
    assert (stored.status, stored.store_path) == (
        RecordingStatus.STORED,
        "/srv/dockd/SN1/VID_0001.MP4.age",
    )
    assert cat.mark_verified(rec.id, stored_sha256="ab" * 32).status is RecordingStatus.VERIFIED
    done = cat.mark_deleted_from_camera(rec.id)
    assert done.status is RecordingStatus.DELETED_FROM_CAMERA
    assert done.attempts == 1
    assert done.created_at < done.updated_at
    ended = cat.end_session(
        sess.id, outcome="complete", counts=SessionCounts(listed=1, stored=1, deleted=1)
    )
    assert (ended.outcome, ended.listed, ended.stored, ended.deleted) == ("complete", 1, 1, 1)
    assert ended.undocked_at is not None

    kinds = [e.kind for e in cat.events()]
    assert kinds == [
        "docked",
        "transfer_started",
        "transfer_finished",
        "stored",
        "verified",
        "deleted_from_camera",
        "undocked",
    ]
    assert all(e.camera_serial == "SN1" for e in cat.events())
    assert cat.verify_chain() == []
    snap = cat.status_snapshot()
    assert snap.recordings_by_status == {"deleted_from_camera": 1}
    assert snap.bytes_by_status == {"deleted_from_camera": 1000}
    assert (snap.cameras, snap.open_sessions, snap.audit_seq) == (1, 0, 7)


def test_recording_for_is_idempotent_across_re_docks(cat):
    cat.upsert_camera(identity())
    first = cat.start_session("SN1", dock="dock-a", slot=1)
    a = cat.recording_for("SN1", info())
    cat.end_session(first.id, outcome="undocked early")
    cat.start_session("SN1", dock="dock-a", slot=5)  # docked again, elsewhere
    b = cat.recording_for("SN1", info())
    assert a == b
    # a same-named file of another size or start is another recording
    c = cat.recording_for("SN1", info(size=999))
    assert c.id != a.id
    assert len(cat.recordings(camera="SN1")) == 2
    assert cat.recordings(camera="other") == []


def test_recording_for_from_racing_threads_creates_one_row(cat):
    cat.upsert_camera(identity())
    ids: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def work() -> None:
        try:
            start.wait(timeout=10)
            ids.append(cat.recording_for("SN1", info()).id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(set(ids)) == 1 and len(ids) == 6
    assert len(cat.recordings()) == 1


def test_concurrent_work_keeps_one_valid_chain(cat):
    for n in range(4):
        cat.upsert_camera(identity(f"SN{n}"))
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(n: int) -> None:
        try:
            start.wait(timeout=10)
            for i in range(8):
                content = f"{n}-{i}".encode()
                rec = cat.recording_for(f"SN{n}", info(f"V{i}.MP4", content=content))
                att = cat.begin_attempt(rec.id)
                cat.finish_attempt(att.id, bytes_transferred=1000)
                cat.mark_stored(rec.id, f"/s/{n}/{i}", sha(content), sha(content[::-1]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert cat.status_snapshot().recordings_by_status == {"stored": 32}
    assert [e.seq for e in cat.events()] == list(range(1, 97))
    assert cat.verify_chain() == []


# --- the write order is enforced ------------------------------------------------------


def test_delete_before_verify_is_refused(cat):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info())
    with pytest.raises(RecordingStateError, match="pending; cannot become deleted"):
        cat.mark_deleted_from_camera(rec.id)
    cat.mark_stored(rec.id, "/s/1", sha(b"x"), "cd" * 32)
    with pytest.raises(RecordingStateError, match="stored; cannot become deleted"):
        cat.mark_deleted_from_camera(rec.id)
    assert cat.recording(rec.id).status is RecordingStatus.STORED
    assert [e.kind for e in cat.events()] == ["stored"]  # refusals leave no trace


def test_verify_needs_stored_and_a_matching_hash(cat):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info())
    with pytest.raises(RecordingStateError):
        cat.mark_verified(rec.id)
    cat.mark_stored(rec.id, "/s/1", sha(b"x"), "cd" * 32)
    with pytest.raises(RecordingStateError, match="does not match"):
        cat.mark_verified(rec.id, stored_sha256="ef" * 32)
    assert cat.recording(rec.id).status is RecordingStatus.STORED


def test_stored_plaintext_must_match_the_cameras_hash(cat):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info(content=b"x"))
    with pytest.raises(RecordingStateError, match="differs from the camera"):
        cat.mark_stored(rec.id, "/s/1", sha(b"y"), "cd" * 32)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        cat.mark_stored(rec.id, "/s/1", sha(b"x").upper(), "cd" * 32)
    after = cat.recording(rec.id)
    assert (after.status, after.store_path) == (RecordingStatus.PENDING, None)


def test_a_store_path_is_used_once(cat):
    cat.upsert_camera(identity())
    a = cat.recording_for("SN1", info("A.MP4"))
    b = cat.recording_for("SN1", info("B.MP4"))
    cat.mark_stored(a.id, "/s/same", sha(b"x"), "cd" * 32)
    with pytest.raises(CatalogError, match="already catalogued"):
        cat.mark_stored(b.id, "/s/same", sha(b"x"), "cd" * 32)
    assert cat.recording(b.id).status is RecordingStatus.PENDING


def test_failed_attempt_then_retry(cat):
    cat.upsert_camera(identity())
    sess = cat.start_session("SN1")
    rec = cat.recording_for("SN1", info())
    att = cat.begin_attempt(rec.id, session_id=sess.id)
    att = cat.finish_attempt(
        att.id, bytes_transferred=512, error_kind="gone", error_message="camera unplugged"
    )
    assert (att.outcome, att.error_kind) == ("failed", "gone")
    failed = cat.recording(rec.id)
    assert failed.status is RecordingStatus.FAILED
    assert failed.failure_reason == "gone: camera unplugged"
    with pytest.raises(CatalogError, match="already finished"):
        cat.finish_attempt(att.id, bytes_transferred=0)

    again = cat.begin_attempt(rec.id, session_id=sess.id, offset_from=512)
    assert again.offset_from == 512
    cat.finish_attempt(again.id, bytes_transferred=488)
    assert cat.recording(rec.id).attempts == 2
    assert [a.outcome for a in cat.attempts(rec.id)] == ["failed", "ok"]
    assert [e.kind for e in cat.events()][-3:] == [
        "transfer_failed",
        "transfer_started",
        "transfer_finished",
    ]
    assert cat.events()[2].details_dict["error_kind"] == "gone"


def test_mark_failed_and_what_cannot_be_failed_or_retransferred(cat):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info())
    failed = cat.mark_failed(rec.id, "storage full")
    assert (failed.status, failed.failure_reason) == (RecordingStatus.FAILED, "storage full")
    cat.mark_stored(rec.id, "/s/1", sha(b"x"), "cd" * 32)
    assert cat.recording(rec.id).failure_reason is None
    with pytest.raises(RecordingStateError):
        cat.begin_attempt(rec.id)  # a stored recording is never pulled again
    cat.mark_verified(rec.id)
    with pytest.raises(RecordingStateError):
        cat.mark_failed(rec.id, "too late")
    with pytest.raises(CatalogError, match="no recording"):
        cat.mark_failed(424242, "x")


# --- cameras, sessions, events, times -------------------------------------------------


def test_camera_upsert_keeps_first_seen(cat, clock):
    first = cat.upsert_camera(identity(firmware="1.0"))
    second = cat.upsert_camera(identity(firmware="1.1"), clock_offset_s=2.5)
    assert second.first_seen == first.first_seen < second.last_seen
    assert (second.firmware, second.last_clock_offset_s) == ("1.1", 2.5)
    assert [c.serial for c in cat.cameras()] == ["SN1"]


def test_sessions_need_a_known_camera_and_end_once(cat):
    with pytest.raises(CatalogError, match="upsert it first"):
        cat.start_session("GHOST")
    cat.upsert_camera(identity())
    s1 = cat.start_session("SN1", dock="dock-a", slot=2)
    s2 = cat.start_session("SN1", dock="dock-a", slot=2)
    assert s1.port_id == s2.port_id == cat.ensure_port("dock-a", 2)
    assert cat.ensure_port("dock-a", 3) != s1.port_id
    assert cat.status_snapshot().open_sessions == 2
    cat.end_session(s1.id, outcome="ok")
    with pytest.raises(CatalogError, match="already ended"):
        cat.end_session(s1.id, outcome="ok")
    assert [s.id for s in cat.sessions(camera="SN1")] == [s1.id, s2.id]
    assert cat.events()[0].details_dict == {"dock": "dock-a", "session": s1.id, "slot": 2}


def test_record_event_for_other_kinds(cat):
    ev = cat.record_event(
        EventKind.CLOCK_SET, camera_serial="SN1", actor="dockctl", details={"offset_s": -91.0}
    )
    cat.record_event("exported", details={"to": "/media/usb", "count": 3})
    assert (ev.kind, ev.actor, ev.host) == ("clock_set", "dockctl", "dock-host")
    assert [e.kind for e in cat.events(since_seq=1)] == ["exported"]
    assert [e.seq for e in cat.events(limit=1)] == [1]
    assert cat.verify_chain() == []


def test_times_are_aware_utc_whatever_zone_goes_in(cat):
    cat.upsert_camera(identity())
    zoned = datetime(2026, 11, 25, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    rec = cat.recording_for("SN1", RecordingInfo("Z.MP4", 1, zoned, 1.0, 0.0, b"\0" * 32))
    assert rec.started == datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    assert rec.started.tzinfo is UTC
    # the same instant in another zone is the same recording
    assert (
        cat.recording_for(
            "SN1", RecordingInfo("Z.MP4", 1, zoned.astimezone(UTC), 1.0, 0.0, b"\0" * 32)
        ).id
        == rec.id
    )
    with pytest.raises(CatalogError, match="naive"):
        cat.recording_for(
            "SN1", RecordingInfo("N.MP4", 1, datetime(2026, 1, 1), 1.0, 0.0, b"\0" * 32)
        )
