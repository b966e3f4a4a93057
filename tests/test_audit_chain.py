"""The hash-chained audit trail: it verifies, and each kind of tampering is found."""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from dockd.catalog import Catalog, EventKind
from dockd.catalog.audit import GENESIS, canonical_details, event_hash


@pytest.fixture
def cat(tmp_path):
    with Catalog.open(f"sqlite:///{tmp_path / 'cat.db'}", host="host-a") as c:
        for i, kind in enumerate(
            ["docked", "transfer_started", "transfer_finished", "stored", "verified", "undocked"],
            start=1,
        ):
            c.record_event(kind, camera_serial="SN1", recording_id=i, details={"i": i})
        yield c


def sql(cat: Catalog, statement: str, **params) -> None:
    with cat.engine.begin() as conn:
        conn.execute(text(statement), params)


def problems(cat: Catalog) -> set[tuple[int | None, str]]:
    return {(p.seq, p.problem) for p in cat.verify_chain()}


def test_untouched_chain_verifies(cat):
    assert cat.verify_chain() == []
    events = cat.events()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert cat.status_snapshot().audit_head_hash == events[-1].hash


def test_hash_encoding_is_pinned():
    # a known answer: changing the canonical encoding must be a deliberate, visible change
    h = event_hash(
        seq=1,
        at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        kind="docked",
        actor="dockd",
        host="h",
        camera_serial="SN1",
        recording_id=None,
        details='{"a":1}',
        prev_hash=GENESIS,
    )
    assert h == PINNED
    # which is SHA-256 over this JSON array (the format docs/catalog.md describes)
    encoded = (
        '["dockd-audit-v1",1,"2026-01-02T03:04:05.000006Z","docked","dockd","h","SN1",null,'
        '"{\\"a\\":1}","' + GENESIS + '"]'
    )
    assert hashlib.sha256(encoded.encode()).hexdigest() == PINNED


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("kind", "exported"),
        ("details", '{"i":99}'),
        ("actor", "mallory"),
        ("host", "elsewhere"),
        ("camera_serial", "SN2"),
        ("recording_id", 42),
        ("at", "2020-01-01 00:00:00.000000"),
    ],
)
def test_a_changed_field_is_detected(cat, column, value):
    sql(cat, f"UPDATE audit_events SET {column} = :v WHERE seq = 3", v=value)
    assert problems(cat) == {(3, "changed")}


def test_a_changed_row_with_a_recomputed_hash_breaks_the_next_link(cat):
    ev = cat.events()[2]
    forged = event_hash(
        seq=3,
        at=ev.at,
        kind="exported",
        actor=ev.actor,
        host=ev.host,
        camera_serial=ev.camera_serial,
        recording_id=ev.recording_id,
        details=ev.details,
        prev_hash=ev.prev_hash,
    )
    sql(cat, "UPDATE audit_events SET kind = 'exported', hash = :h WHERE seq = 3", h=forged)
    assert problems(cat) == {(4, "broken_link")}


def test_a_deleted_middle_row_is_detected(cat):
    sql(cat, "DELETE FROM audit_events WHERE seq = 3")
    assert problems(cat) == {(4, "missing"), (4, "broken_link")}


def test_a_deleted_last_row_is_detected_through_the_head(cat):
    sql(cat, "DELETE FROM audit_events WHERE seq = 6")
    assert problems(cat) == {(None, "tail")}



def insert_forgery(cat, *, seq, at, prev_hash):
    """A well-formed `exported` event at `seq`: its own hash is right, only the chain's
    context can tell it was not written by dockd."""
    h = event_hash(seq=seq, at=at, kind="exported", actor="dockd", host="host-a",
                   camera_serial=None, recording_id=None, details="{}", prev_hash=prev_hash)
    sql(
        cat,
        "INSERT INTO audit_events (seq, at, kind, actor, host, details, prev_hash, hash)"
        " VALUES (:seq, :at, 'exported', 'dockd', 'host-a', '{}', :p, :h)",
        seq=seq,
        at=at.replace(tzinfo=None).isoformat(" "),
        p=prev_hash,
        h=h,
    )

def test_a_row_added_after_the_head_is_detected(cat):
    last = cat.events()[-1]
    insert_forgery(cat, seq=7, at=last.at + timedelta(seconds=1), prev_hash=last.hash)
    assert problems(cat) == {(None, "tail")}


def test_two_swapped_rows_are_detected(cat):
    # exchange everything but the position (seq) between events 2 and 3
    cols = "at, kind, actor, host, camera_serial, recording_id, details, prev_hash, hash"
    with cat.engine.begin() as conn:
        a = conn.execute(text(f"SELECT {cols} FROM audit_events WHERE seq = 2")).one()
        b = conn.execute(text(f"SELECT {cols} FROM audit_events WHERE seq = 3")).one()
        conn.execute(text("UPDATE audit_events SET hash = 'x' WHERE seq = 2"))  # unique hash
        for seq, row in ((3, a), (2, b)):
            conn.execute(
                text(
                    "UPDATE audit_events SET at=:at, kind=:kind, actor=:actor, host=:host,"
                    " camera_serial=:camera_serial, recording_id=:recording_id, details=:details,"
                    " prev_hash=:prev_hash, hash=:hash WHERE seq = :seq"
                ),
                {**row._asdict(), "seq": seq},
            )
    found = problems(cat)
    assert {(2, "changed"), (3, "changed")} <= found
    assert (2, "broken_link") in found


def test_a_row_inserted_in_the_middle_is_detected(cat):
    # make room at seq 4 by renumbering the rest, then put a well-formed forgery there
    ev3 = cat.events()[2]
    sql(cat, "UPDATE audit_events SET seq = seq + 100 WHERE seq >= 4")
    sql(cat, "UPDATE audit_events SET seq = seq - 99 WHERE seq >= 100")
    insert_forgery(cat, seq=4, at=ev3.at + timedelta(microseconds=1), prev_hash=ev3.hash)
    found = problems(cat)
    assert (5, "broken_link") in found
    assert {(s, "changed") for s in (5, 6, 7)} <= found  # seq is part of each hash


def test_a_consistent_tail_rewrite_needs_an_outside_anchor(cat):
    snap = cat.status_snapshot()
    anchor = (snap.audit_seq, snap.audit_head_hash)
    prev = cat.events()[-2]
    sql(cat, "DELETE FROM audit_events WHERE seq = 6")
    sql(cat, "UPDATE audit_head SET seq = 5, hash = :h", h=prev.hash)
    # the chain alone cannot tell: every remaining link is intact (documented limit) ...
    assert cat.verify_chain() == []
    # ... an anchor kept outside the catalog can
    assert problems_with(cat, [anchor]) == {(6, "anchor")}
    assert problems_with(cat, [(5, prev.hash)]) == set()


def problems_with(cat, anchors):
    return {(p.seq, p.problem) for p in cat.verify_chain(anchors=anchors)}


def test_concurrent_appends_from_threads_and_two_catalogs_keep_one_chain(tmp_path):
    url = f"sqlite:///{tmp_path / 'cat.db'}"
    with Catalog.open(url, host="a") as one, Catalog.open(url, host="b") as two:
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def work(cat: Catalog, n: int) -> None:
            try:
                start.wait(timeout=10)
                for i in range(25):
                    cat.record_event(EventKind.TRANSFER_FINISHED, details={"t": n, "i": i})
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(one if n % 2 else two, n)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        events = one.events()
        assert [e.seq for e in events] == list(range(1, 201))
        assert {e.host for e in events} == {"a", "b"}
        assert one.verify_chain() == []
        assert two.status_snapshot().audit_seq == 200


def test_details_are_canonical_and_strict():
    assert canonical_details({"b": 1, "a": [1, 2]}) == canonical_details({"a": [1, 2], "b": 1})
    assert canonical_details({"k": "é"}) == '{"k":"\\u00e9"}'
    assert canonical_details({"t": datetime(2026, 1, 1, tzinfo=UTC)}) == (
        '{"t":"2026-01-01T00:00:00+00:00"}'
    )
    with pytest.raises(ValueError, match="JSON"):
        canonical_details({"x": math.nan})
    with pytest.raises(TypeError):
        canonical_details({"t": datetime(2026, 1, 1)})  # naive
    with pytest.raises(TypeError):
        canonical_details({"o": object()})


def test_event_times_are_aware_utc_and_come_from_the_clock(tmp_path):
    fixed = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    with Catalog.open(f"sqlite:///{tmp_path / 'c.db'}", clock=lambda: fixed) as c:
        ev = c.record_event("clock_set", camera_serial="SN1", details={"offset_s": -3.5})
        (back,) = c.events()
        assert back == ev
        assert back.at == fixed
        assert back.details_dict == {"offset_s": -3.5}
        assert c.verify_chain() == []


PINNED = "d5d82e52ecd0ea818c8ceefa6db73299371bf67c3ad2546784f793b7393586a4"
