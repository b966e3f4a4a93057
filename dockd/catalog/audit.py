"""The hash-chained audit trail: canonical encoding, append under a lock, verification.

hash(n) = SHA-256( canonical(seq, at, kind, actor, host, camera_serial, recording_id,
                             details, prev_hash) ),  prev_hash(1) = 64 zeros.
The single `audit_head` row names the last (seq, hash): appenders lock it (SELECT ... FOR UPDATE
on PostgreSQL; SQLite's BEGIN IMMEDIATE is already a database-wide write lock), so appends from
threads or hosts serialise, and verification can tell a cut-off tail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from dockd.catalog.rows import AuditRecord, ChainProblem, to_row
from dockd.catalog.schema import AuditEvent, AuditHead

GENESIS = "0" * 64
_DOMAIN = "dockd-audit-v1"


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("naive datetime in audit details")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"{type(value).__name__} is not allowed in audit details")


def canonical_details(details: Mapping[str, Any] | None) -> str:
    """Details as canonical JSON text (sorted keys, no spaces, ASCII only, no NaN)."""
    return json.dumps(
        dict(details or {}),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        default=_json_default,
    )


def format_at(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: `json.dumps(..., ensure_ascii=True, separators=(",", ":"))` without building an encoder
#: for each event (the same text; the chain walk hashes millions)
_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def event_hash(
    *,
    seq: int,
    at: datetime,
    kind: str,
    actor: str,
    host: str,
    camera_serial: str | None,
    recording_id: int | None,
    details: str,
    prev_hash: str,
) -> str:
    # A JSON array: each field has a fixed position and is quoted/escaped, so no two
    # different events share an encoding.
    encoded = _ENCODER.encode(
        [
            _DOMAIN,
            seq,
            format_at(at),
            kind,
            actor,
            host,
            camera_serial,
            recording_id,
            details,
            prev_hash,
        ],
    ).encode("ascii")
    return hashlib.sha256(encoded).hexdigest()


def hash_of(ev: AuditEvent | AuditRecord | Any) -> str:
    """The hash an event (row or record) must carry."""
    return event_hash(
        seq=ev.seq,
        at=ev.at,
        kind=ev.kind,
        actor=ev.actor,
        host=ev.host,
        camera_serial=ev.camera_serial,
        recording_id=ev.recording_id,
        details=ev.details,
        prev_hash=ev.prev_hash,
    )


def append(
    session: Session,
    *,
    kind: str,
    actor: str,
    host: str,
    clock: Callable[[], datetime],
    camera_serial: str | None = None,
    recording_id: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Append one event inside the caller's (write) transaction."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    text = canonical_details(details)
    # the clock is read under the lock, so `at` never goes backwards along the chain
    # (unless the host clock itself does)
    at = clock().astimezone(UTC)
    seq = head.seq + 1
    ev = AuditEvent(
        seq=seq,
        at=at,
        kind=kind,
        actor=actor,
        host=host,
        camera_serial=camera_serial,
        recording_id=recording_id,
        details=text,
        prev_hash=head.hash,
        hash="",
    )
    ev.hash = hash_of(ev)
    session.add(ev)
    head.seq = seq
    head.hash = ev.hash
    session.flush()
    return to_row(AuditRecord, ev)


def append_many(
    session: Session,
    *,
    kind: str,
    actor: str,
    host: str,
    clock: Callable[[], datetime],
    events: Iterable[tuple[str | None, int | None, Mapping[str, Any] | None]],
) -> int:
    """`append` of many events of one kind, (camera_serial, recording_id, details) each,
    inside the caller's (write) transaction: the head is locked and read once, every event
    is hashed exactly as `append` hashes it and linked to the one before, the events are
    inserted in one statement and the head written once (an ORM object and a flush per
    event cost ~1 ms each: `dockctl verify` vouches for every recording of a store).
    Returns how many."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    seq, prev = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for camera_serial, recording_id, details in events:
        seq += 1
        row: dict[str, Any] = {
            "seq": seq, "at": clock().astimezone(UTC), "kind": kind, "actor": actor,
            "host": host, "camera_serial": camera_serial, "recording_id": recording_id,
            "details": canonical_details(details), "prev_hash": prev}
        row["hash"] = prev = event_hash(**row)
        rows.append(row)
    if rows:
        session.execute(insert(AuditEvent), rows)
        head.seq, head.hash = seq, prev
        session.flush()
    return len(rows)


#: the chain's columns as plain rows: building an ORM object per event cost more than
#: hashing it (the walk of 5.2 M events took 163 s; docs/performance.md)
_COLUMNS = tuple(AuditEvent.__table__.columns)
_PAGE = 5000


def _events(session: Session) -> Iterator[Any]:
    # on the connection: plain rows, without the ORM's result machinery around each
    yield from session.connection().execute(
        select(*_COLUMNS).order_by(AuditEvent.seq).execution_options(yield_per=_PAGE))


def select_events(*, camera: str | None = None, recording: int | None = None,
                  since_seq: int = 0) -> Select[Any]:
    """Events after `since_seq` in chain order, of one camera and/or recording: answered
    from the (camera_serial, seq) / (recording_id, seq) indexes, not by reading the chain."""
    q = select(*_COLUMNS).where(AuditEvent.seq > since_seq).order_by(AuditEvent.seq)
    if camera is not None:
        q = q.where(AuditEvent.camera_serial == camera)
    if recording is not None:
        q = q.where(AuditEvent.recording_id == recording)
    return q


def check_selected(session: Session, *, camera: str | None = None,
                   recording: int | None = None) -> Iterator[tuple[Any, list[ChainProblem]]]:
    """Each event of one camera and/or recording in chain order with what is wrong with it,
    a page at a time, without walking the whole chain: each against its own hash and its
    link to the event before it (the two checks the walk makes); `dockctl audit --camera`
    shows and checks a camera's trail in one read, then `tail_problems` checks the head.

    What only the walk (`verify`) sees: a change to another camera's events, and a gap in
    the sequence between two events of this one. Either way a consistent rewrite of the
    tail is caught only by a head witnessed outside the catalog (`check_anchors`)."""
    rows = session.execute(select_events(camera=camera, recording=recording)
                           .execution_options(yield_per=_PAGE))
    for page in rows.partitions():
        wanted = [r.seq - 1 for r in page if r.seq > 1]
        before = {0: GENESIS}
        for i in range(0, len(wanted), 500):  # bound the parameters of one statement
            before.update((r.seq, r.hash) for r in session.execute(
                select(AuditEvent.seq, AuditEvent.hash)
                .where(AuditEvent.seq.in_(wanted[i:i + 500]))))
        for ev in page:
            found = []
            if hash_of(ev) != ev.hash:
                found.append(ChainProblem(
                    ev.seq, "changed", f"event {ev.seq} ({ev.kind}) does not match its hash: "
                    "changed"))
            if before.get(ev.seq - 1) != ev.prev_hash:
                found.append(ChainProblem(
                    ev.seq, "broken_link", f"event {ev.seq} does not link to the event before "
                    "it (removed, inserted or reordered events)"))
            yield ev, found


def tail_problems(session: Session) -> list[ChainProblem]:
    """The head row names the chain's last event, whole ([] when they agree)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None:
        return [ChainProblem(None, "tail", "the audit head row is missing")]
    last = session.execute(select(AuditEvent.seq, AuditEvent.hash)
                           .order_by(AuditEvent.seq.desc()).limit(1)).one_or_none()
    last_seq, last_hash = (last.seq, last.hash) if last is not None else (0, GENESIS)
    if (head.seq, head.hash) != (last_seq, last_hash):
        return [ChainProblem(None, "tail", f"the audit head names event {head.seq} but the "
                             f"last event is {last_seq}: events were cut off the end, or "
                             "added after it without the head")]
    return []


def verify(session: Session, anchors: Iterable[tuple[int, str]] = ()) -> list[ChainProblem]:
    """Every problem found along the chain; an empty list means it verifies.

    `anchors` are (seq, hash) pairs recorded outside the database earlier (a log line, a
    printed report): each must still be in the chain. They catch what the chain alone cannot,
    a consistent rewrite of the tail together with the head row.
    """
    problems: list[ChainProblem] = []
    wanted: dict[int, set[str]] = {}
    for seq, digest in anchors:
        wanted.setdefault(seq, set()).add(digest)
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None:
        return [ChainProblem(None, "tail", "the audit head row is missing")]
    expected_seq, expected_prev = 1, GENESIS
    for ev in _events(session):
        if ev.seq != expected_seq:
            problems.append(
                ChainProblem(
                    ev.seq,
                    "missing",
                    f"events {expected_seq}..{ev.seq - 1} are missing before event {ev.seq}",
                )
            )
        if hash_of(ev) != ev.hash:
            problems.append(
                ChainProblem(
                    ev.seq,
                    "changed",
                    f"event {ev.seq} ({ev.kind}) does not match its hash: changed",
                )
            )
        if ev.prev_hash != expected_prev:
            problems.append(
                ChainProblem(
                    ev.seq,
                    "broken_link",
                    f"event {ev.seq} does not link to the event before it "
                    "(removed, inserted or reordered events)",
                )
            )
        if ev.seq in wanted and wanted.pop(ev.seq) != {ev.hash}:
            problems.append(
                ChainProblem(
                    ev.seq,
                    "anchor",
                    f"event {ev.seq} is not the one anchored outside the catalog "
                    "(its hash differs from the witnessed head)",
                )
            )
        expected_seq, expected_prev = ev.seq + 1, ev.hash
    last_seq = expected_seq - 1
    if head.seq != last_seq or head.hash != expected_prev:
        problems.append(
            ChainProblem(
                None,
                "tail",
                f"the audit head names event {head.seq} but the last event is {last_seq}: "
                "events were cut off the end, or added after it without the head",
            )
        )
    for seq in sorted(wanted):
        problems.append(
            ChainProblem(
                seq,
                "anchor",
                f"anchored event {seq} is no longer in the chain (it ends at {last_seq}): "
                "its tail was cut, or the catalog was restored from an older backup",
            )
        )
    return problems


def check_anchors(session: Session, anchors: Iterable[tuple[int, str]]) -> list[ChainProblem]:
    """A cheap check, without walking the chain: each anchored event is still there, whole,
    with the anchored hash."""
    problems: list[ChainProblem] = []
    for seq, digest in anchors:
        ev = session.get(AuditEvent, seq)
        if ev is None:
            problems.append(ChainProblem(seq, "anchor", f"anchored event {seq} is no longer "
                                         "in the chain: its tail was cut, or the catalog was "
                                         "restored from an older backup"))
        elif ev.hash != digest or hash_of(ev) != ev.hash:
            problems.append(ChainProblem(seq, "anchor", f"event {seq} is not the one anchored "
                                         "outside the catalog"))
    return problems
