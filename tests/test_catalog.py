"""The Catalog API on real SQLite files and, when installed, a throwaway PostgreSQL cluster."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy.exc
from pg_server import pg_fixture
from sqlalchemy import text

from dockd.catalog import Catalog, EventKind, RecordingStatus, SessionCounts, lease
from dockd.catalog.lease import LeaseOwner, live_token, new_token
from dockd.errors import CatalogError, LeaseHeld, LeaseLost, RecordingStateError
from dockd.model import CameraIdentity, RecordingInfo, RefusedRecording

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


#: one throwaway PostgreSQL cluster for the module (tests/pg_server.py); each test gets a
#: fresh schema in it
pg_server = pg_fixture("module")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog' / 'dockd.db'}"
    return request.getfixturevalue("pg_server").database_url()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cat(url, clock) -> Iterator[Catalog]:
    with Catalog.open(url, host="dock-host", clock=clock) as c:
        yield c


# --- the life of a recording ------------------------------------------------------------


@pytest.fixture
def owner(cat) -> Iterator[LeaseOwner]:
    """A lease owner in this process, alive for the test (as a dock session is)."""
    me = LeaseOwner.here(cat.host, new_token())
    with live_token(me.token):
        yield me


def store(cat, rec_id: int, owner: LeaseOwner, path: str, plain: str, stored: str,
          size: int = 2000):
    """What a transfer does once its file is written: lease, intent, stored."""
    cat.take_lease(rec_id, owner)
    cat.record_intent(rec_id, owner, path=path, stored_size=size, stored_sha256=stored,
                      plaintext_sha256=plain)
    return cat.mark_stored(rec_id, owner, store_path=path, plaintext_sha256=plain,
                           stored_sha256=stored, stored_size=size)


PROOF = {"how": "written", "size": 2000, "stored_sha256": "ab" * 32}


def test_full_life_of_a_recording(cat, owner):
    content = b"footage"
    cam = cat.upsert_camera(identity(skew_s=-90.0))
    assert cam.last_clock_offset_s == pytest.approx(-91.0)  # camera clock minus host clock
    sess = cat.start_session("SN1", dock="dock-a", slot=3)
    rec = cat.recording_for("SN1", info(content=content))
    assert rec.status is RecordingStatus.PENDING
    assert rec.camera_sha256 == sha(content)

    cat.take_lease(rec.id, owner)
    att = cat.begin_attempt(rec.id, owner=owner, session_id=sess.id)
    assert cat.recording(rec.id).status is RecordingStatus.TRANSFERRING
    path = "/srv/dockd/SN1/VID_0001.MP4.age"
    cat.record_intent(rec.id, owner, path=path, stored_size=2000, stored_sha256="ab" * 32,
                      plaintext_sha256=sha(content), attempt_id=att.id)
    att = cat.finish_attempt(att.id, bytes_transferred=1000)
    assert (att.outcome, att.bytes, att.error_kind) == ("ok", 1000, None)
    stored = cat.mark_stored(rec.id, owner, store_path=path, plaintext_sha256=sha(content),
                             stored_sha256="ab" * 32, stored_size=2000)
    assert (stored.status, stored.store_path, stored.stored_size) == (
        RecordingStatus.STORED, path, 2000)
    assert cat.mark_verified(rec.id, owner, proof=PROOF).status is RecordingStatus.VERIFIED
    cat.release_lease(rec.id, owner)
    done = cat.mark_deleted_from_camera(rec.id, proof=PROOF)
    assert done.status is RecordingStatus.DELETED_FROM_CAMERA
    assert done.attempts == 1
    assert done.created_at < done.updated_at
    assert done.lease_owner is None
    ended = cat.end_session(
        sess.id, outcome="complete", counts=SessionCounts(listed=1, stored=1, deleted=1)
    )
    assert (ended.outcome, ended.listed, ended.stored, ended.deleted) == ("complete", 1, 1, 1)
    assert ended.undocked_at is not None

    kinds = [e.kind for e in cat.events()]
    assert kinds == [
        "docked",
        "listed",
        "transfer_started",
        "publish_intent",
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
    assert (snap.cameras, snap.open_sessions, snap.audit_seq) == (1, 0, 9)
    # the chain alone reproduces the row
    custody = cat.custody(rec.id)
    assert custody.problems == [] and custody.mismatch(cat.recording(rec.id)) == []
    assert custody.facts is not None and custody.facts["status"] == "deleted_from_camera"
    assert custody.intent is not None and custody.intent.path == path


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


def test_concurrent_work_keeps_one_valid_chain(cat, owner):
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
                cat.take_lease(rec.id, owner)
                att = cat.begin_attempt(rec.id, owner=owner)
                cat.finish_attempt(att.id, bytes_transferred=1000)
                store(cat, rec.id, owner, f"/s/{n}/{i}", sha(content), sha(content[::-1]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert cat.status_snapshot().recordings_by_status == {"stored": 32}
    # listed, transfer_started, transfer_finished, publish_intent, stored: 5 per recording
    assert [e.seq for e in cat.events()] == list(range(1, 161))
    assert cat.verify_chain() == []


# --- the write order is enforced ------------------------------------------------------


def test_delete_before_verify_is_refused(cat, owner):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info())
    with pytest.raises(RecordingStateError, match="pending; cannot become deleted"):
        cat.mark_deleted_from_camera(rec.id)
    store(cat, rec.id, owner, "/s/1", sha(b"x"), "cd" * 32)
    with pytest.raises(RecordingStateError, match="stored; cannot become deleted"):
        cat.mark_deleted_from_camera(rec.id)
    assert cat.recording(rec.id).status is RecordingStatus.STORED
    # refusals leave no trace
    assert [e.kind for e in cat.events()] == ["listed", "publish_intent", "stored"]


def test_verify_needs_stored_and_the_lease(cat, owner):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info())
    cat.take_lease(rec.id, owner)
    with pytest.raises(RecordingStateError):
        cat.mark_verified(rec.id, owner, proof=PROOF)
    store(cat, rec.id, owner, "/s/1", sha(b"x"), "cd" * 32)
    cat.release_lease(rec.id, owner)
    with pytest.raises(LeaseLost, match="no longer holds its lease"):
        cat.mark_verified(rec.id, owner, proof=PROOF)
    assert cat.recording(rec.id).status is RecordingStatus.STORED


def test_stored_plaintext_must_match_the_cameras_hash(cat, owner):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info(content=b"x"))
    cat.take_lease(rec.id, owner)
    with pytest.raises(RecordingStateError, match="differs from the camera"):
        cat.record_intent(rec.id, owner, path="/s/1", stored_size=9, stored_sha256="cd" * 32,
                          plaintext_sha256=sha(b"y"))
    with pytest.raises(ValueError, match="64 lowercase hex"):
        cat.record_intent(rec.id, owner, path="/s/1", stored_size=9, stored_sha256="cd" * 32,
                          plaintext_sha256=sha(b"x").upper())
    after = cat.recording(rec.id)
    assert (after.status, after.store_path) == (RecordingStatus.PENDING, None)


def test_stored_needs_an_intent_naming_exactly_that_file(cat, owner):
    """Write-ahead: a file is recorded as stored only after an intent named its path, size
    and hashes; anything else (no intent, another size or hash) is refused."""
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info(content=b"x"))
    cat.take_lease(rec.id, owner)
    kw = {"store_path": "/s/1", "plaintext_sha256": sha(b"x"), "stored_sha256": "cd" * 32,
          "stored_size": 9}
    with pytest.raises(RecordingStateError, match="no committed intent"):
        cat.mark_stored(rec.id, owner, **kw)
    cat.record_intent(rec.id, owner, path="/s/1", stored_size=9, stored_sha256="cd" * 32,
                      plaintext_sha256=sha(b"x"))
    for other in ({"stored_size": 10}, {"stored_sha256": "ce" * 32}, {"store_path": "/s/2"}):
        with pytest.raises(RecordingStateError, match="no committed intent"):
            cat.mark_stored(rec.id, owner, **{**kw, **other})
    assert cat.mark_stored(rec.id, owner, **kw).status is RecordingStatus.STORED


def test_a_store_path_is_used_once(cat, owner):
    cat.upsert_camera(identity())
    a = cat.recording_for("SN1", info("A.MP4"))
    b = cat.recording_for("SN1", info("B.MP4"))
    store(cat, a.id, owner, "/s/same", sha(b"x"), "cd" * 32)
    with pytest.raises(CatalogError, match="already catalogued"):
        store(cat, b.id, owner, "/s/same", sha(b"x"), "cd" * 32)
    assert cat.recording(b.id).status is RecordingStatus.PENDING


def test_failed_attempt_then_retry(cat, owner):
    cat.upsert_camera(identity())
    sess = cat.start_session("SN1")
    rec = cat.recording_for("SN1", info())
    cat.take_lease(rec.id, owner)
    att = cat.begin_attempt(rec.id, owner=owner, session_id=sess.id)
    att = cat.finish_attempt(
        att.id, bytes_transferred=512, error_kind="gone", error_message="camera unplugged"
    )
    assert (att.outcome, att.error_kind) == ("failed", "gone")
    failed = cat.recording(rec.id)
    assert failed.status is RecordingStatus.FAILED
    assert failed.failure_reason == "gone: camera unplugged"
    with pytest.raises(CatalogError, match="already finished"):
        cat.finish_attempt(att.id, bytes_transferred=0)

    again = cat.begin_attempt(rec.id, owner=owner, session_id=sess.id, offset_from=512)
    assert again.offset_from == 512
    cat.finish_attempt(again.id, bytes_transferred=488)
    assert cat.recording(rec.id).attempts == 2
    assert [a.outcome for a in cat.attempts(rec.id)] == ["failed", "ok"]
    assert [e.kind for e in cat.events()][-3:] == [
        "transfer_failed",
        "transfer_started",
        "transfer_finished",
    ]
    assert cat.events()[3].details_dict["error_kind"] == "gone"


def test_mark_failed_and_what_cannot_be_failed_or_retransferred(cat, owner):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info())
    failed = cat.mark_failed(rec.id, "storage full")
    assert (failed.status, failed.failure_reason) == (RecordingStatus.FAILED, "storage full")
    store(cat, rec.id, owner, "/s/1", sha(b"x"), "cd" * 32)
    assert cat.recording(rec.id).failure_reason is None
    with pytest.raises(RecordingStateError):
        cat.begin_attempt(rec.id, owner=owner)  # a stored recording is never pulled again
    cat.mark_verified(rec.id, owner, proof=PROOF)
    with pytest.raises(RecordingStateError):
        cat.mark_failed(rec.id, "too late")
    with pytest.raises(CatalogError, match="no recording"):
        cat.mark_failed(424242, "x")


# --- one owner per recording ------------------------------------------------------------


def test_a_live_lease_refuses_a_second_session_and_a_dead_one_does_not(cat, owner):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info())
    cat.take_lease(rec.id, owner)
    second = LeaseOwner.here(cat.host, new_token())
    with live_token(second.token), pytest.raises(LeaseHeld, match="being written by"):
        cat.take_lease(rec.id, second)
    with pytest.raises(LeaseLost):
        cat.begin_attempt(rec.id, owner=second)
    assert cat.take_lease(rec.id, owner).lease_owner == owner.key  # again: still ours
    # the first session ends without releasing (a crash of its worker): its token is gone
    dead = LeaseOwner.here(cat.host, new_token())
    cat.release_lease(rec.id, owner)
    cat.take_lease(rec.id, dead)  # `dead` was never registered: it does not live
    with live_token(second.token):
        assert cat.take_lease(rec.id, second).lease_owner == second.key
    assert cat.renew_lease(rec.id, dead) is False  # the old owner learns it lost it


def test_lease_owners_are_judged_by_host_boot_and_process(cat, clock):
    now = clock()
    me = LeaseOwner.here("host-a", "tok1")
    with live_token("tok1"):
        assert lease.owner_alive(me.key, None, host="host-a", now=now)
    assert not lease.owner_alive(me.key, None, host="host-a", now=now)  # session ended
    other_boot = LeaseOwner("host-a", "another-boot", me.pid, me.start, "tok1")
    assert not lease.owner_alive(other_boot.key, None, host="host-a", now=now)
    reused_pid = LeaseOwner("host-a", me.boot, me.pid, "1", "tok1")  # started at another time
    with live_token("tok1"):
        assert not lease.owner_alive(reused_pid.key, None, host="host-a", now=now)
    parent = LeaseOwner("host-a", me.boot, os.getppid(), lease.process_start(os.getppid())
                        or "?", "x")
    assert lease.owner_alive(parent.key, None, host="host-a", now=now)  # another live process
    # another host: only its renewals count
    remote = LeaseOwner("host-b", "b", 1, "1", "x").key
    assert lease.owner_alive(remote, now + timedelta(seconds=5), host="host-a", now=now)
    assert not lease.owner_alive(remote, now - timedelta(seconds=5), host="host-a", now=now)


# --- the chain binds the evidence -----------------------------------------------------


def test_a_row_edit_is_named_by_its_custody_chain(cat, owner, url):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info())
    store(cat, rec.id, owner, "/s/1", sha(b"x"), "cd" * 32)
    cat.mark_verified(rec.id, owner, proof=PROOF)
    with cat.engine.begin() as conn:
        conn.execute(text("UPDATE recordings SET camera_name = 'other.MP4', "
                          "stored_sha256 = :h, status = 'pending' WHERE id = :id"),
                     {"h": "ee" * 32, "id": rec.id})
    edited = cat.recording(rec.id)
    mismatch = cat.custody(rec.id).mismatch(edited)
    assert [m.split(":")[0] for m in mismatch] == ["camera_name", "stored_sha256", "status"]
    assert cat.verify_chain() == []  # the chain itself is whole: it is the row that lies
    rows = list(cat.iter_custody())
    assert [(r.id if r else None, c.recording_id) for r, c in rows] == [(rec.id, rec.id)]


def test_a_changed_event_is_named_in_the_recordings_custody(cat, owner):
    cat.upsert_camera(identity())
    rec = cat.recording_for("SN1", info())
    store(cat, rec.id, owner, "/s/1", sha(b"x"), "cd" * 32)
    with cat.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET details = replace(details, 'cdcd', 'cdce') "
                          "WHERE kind = 'stored'"))
    assert any("does not match its hash" in p for p in cat.custody(rec.id).problems)


def test_events_of_a_deleted_row_are_reported_as_orphans(cat, owner):
    cat.upsert_camera(identity())
    a = cat.recording_for("SN1", info("A.MP4"))
    b = cat.recording_for("SN1", info("B.MP4"))
    with cat.engine.begin() as conn:
        conn.execute(text("DELETE FROM recordings WHERE id = :id"), {"id": a.id})
    got = [(r.id if r else None, c.recording_id, c.facts is not None)
           for r, c in cat.iter_custody()]
    assert got == [(None, a.id, True), (b.id, b.id, True)]


def test_a_camera_that_keeps_no_hash_starts_custody_with_the_one_taken_reading(cat, owner):
    """A mass-storage camera without a vendor hash: the recording's identity is (serial,
    name, start, size), it is listed once, and the plaintext hash taken while reading is
    what custody vouches for from then on."""
    cat.upsert_camera(identity())
    unhashed = RecordingInfo("DCIM/100/A.MP4", 1000, T0, 0.0, 0.0, None)
    rec = cat.recording_for("SN1", unhashed)
    assert rec.camera_sha256 is None
    assert cat.recording_for("SN1", unhashed).id == rec.id  # NULL is still one identity
    [listed] = cat.events()
    assert "custody starts with the SHA-256 taken while reading" in listed.details
    stored = store(cat, rec.id, owner, "/s/a", sha(b"anything read"), "cd" * 32)
    assert stored.plaintext_sha256 == sha(b"anything read") and stored.camera_sha256 is None
    # the partial unique index holds, not only the code
    with cat.engine.begin() as conn, pytest.raises(sqlalchemy.exc.IntegrityError):
        conn.execute(text(
            "INSERT INTO recordings (camera_serial, camera_name, size, started, duration_s,"
            " prerecord_s, status, attempts, created_at, updated_at) SELECT camera_serial,"
            " camera_name, size, started, 0, 0, 'pending', 0, created_at, updated_at FROM"
            " recordings WHERE id = :id"), {"id": rec.id})


def test_settings_are_claimed_once(cat):
    assert cat.setting("mode") is None
    assert cat.claim_setting("mode", "simulated") == "simulated"
    assert cat.claim_setting("mode", "real") == "simulated"
    assert cat.setting("mode") == "simulated"


def test_a_namesake_with_other_bytes_is_a_recording_of_its_own(cat):
    cat.upsert_camera(identity())
    a = cat.recording_for("SN1", info(content=b"x"))
    b = cat.recording_for("SN1", info(content=b"y"))  # same name, start, size; other hash
    assert a.id != b.id
    assert cat.recording_for("SN1", info(content=b"y")).id == b.id


def test_a_refused_entry_is_a_row_with_its_reason_and_never_transferred(cat, owner):
    cat.upsert_camera(identity())
    entry = RefusedRecording(label="A\\u202eB.MP4", reason="name contains U+202E", size=5,
                             started=T0, sha256=hashlib.sha256(b"x").digest())
    rec = cat.refuse_recording("SN1", entry)
    assert (rec.status, rec.failure_reason) == (RecordingStatus.REFUSED, entry.reason)
    assert cat.refuse_recording("SN1", entry).id == rec.id
    assert [e.kind for e in cat.events()] == ["refused"]
    cat.take_lease(rec.id, owner)
    with pytest.raises(RecordingStateError):
        cat.begin_attempt(rec.id, owner=owner)


def test_anchors_catch_a_cut_tail_with_the_head_moved_back(cat):
    for n in range(5):
        cat.record_event("exported", details={"n": n})
    seq, head = cat.head()
    with cat.engine.begin() as conn:  # cut the last two events, move the head back
        conn.execute(text("DELETE FROM audit_events WHERE seq > 3"))
        prev = conn.execute(text("SELECT hash FROM audit_events WHERE seq = 3")).scalar_one()
        conn.execute(text("UPDATE audit_head SET seq = 3, hash = :h"), {"h": prev})
    assert cat.verify_chain() == []  # consistent on its own: only a witness can tell
    problems = cat.verify_chain(anchors=[(seq, head)])
    assert [p.problem for p in problems] == ["anchor"]
    assert "no longer in the chain" in problems[0].message
    assert [p.problem for p in cat.verify_chain_at([(seq, head)])] == ["anchor"]
    assert cat.verify_chain_at([(3, prev)]) == []
    # two witnesses of one seq that disagree: the chain cannot match both
    assert cat.verify_chain(anchors=[(3, prev), (3, "0" * 64)])


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
