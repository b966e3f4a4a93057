"""`Catalog`: the repository the ingest engine and dockctl use. One short transaction per call.

State-changing calls append their own audit event in the same transaction, so the catalog
and the audit trail can never disagree:

    start_session → docked            end_session → undocked
    begin_attempt → transfer_started  finish_attempt → transfer_finished | transfer_failed
    mark_stored → stored              mark_verified → verified
    mark_failed → failed              mark_deleted_from_camera → deleted_from_camera

Other kinds (exported, verified_later, clock_set, ...) go through `record_event`.
Safe to share between threads: each call takes its own connection from the pool.

Why one module of ~900 lines: every change of a recording — lease, attempt, intent, stored,
verified, damaged, deleted — with the audit event that carries its facts, in one place, so
the write order and the rules that guard it (docs/catalog.md) are read and reviewed
together. Health records (health_repo.py), live status (live.py), the chain (audit.py) and
the facts' encoding (custody.py) live apart.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from dockd.catalog import audit, lease, migrate
from dockd.catalog.custody import FACTS_KEY, Custody, facts_of
from dockd.catalog.db import DEFERRED_SYNC, make_engine, sqlite_path
from dockd.catalog.health_repo import HealthRecords
from dockd.catalog.lease import LeaseOwner
from dockd.catalog.rows import (
    RECORDING_FIELDS,
    AttemptRow,
    AuditRecord,
    CameraRefusals,
    CameraRow,
    ChainProblem,
    RecordingRow,
    SessionCounts,
    SessionRow,
    StatusSnapshot,
    recording_row,
    to_row,
)
from dockd.catalog.schema import (
    AuditEvent,
    AuditHead,
    Camera,
    Dock,
    DockSession,
    Port,
    Recording,
    Setting,
    TransferAttempt,
)
from dockd.catalog.types import AttemptOutcome, EventKind, RecordingStatus
from dockd.errors import (
    CatalogError,
    CatalogUnavailable,
    DockdError,
    LeaseHeld,
    LeaseLost,
    RecordingStateError,
)
from dockd.model import CameraIdentity, RecordingInfo, RefusedRecording

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_Row = TypeVar("_Row")
S = RecordingStatus
#: the recordings table's columns in RecordingRow's field order (`recording_row`)
_RECORDING_COLUMNS = tuple(Recording.__table__.c[name] for name in RECORDING_FIELDS)
#: the audit_events columns in AuditRecord's field order (`iter_custody` builds records
#: from plain rows: an ORM object per event cost more than reading it)
_EVENT_COLUMNS = tuple(AuditEvent.__table__.c[f.name] for f in fields(AuditRecord))
_EVENT_PAGE = 5000
#: values bound in one statement (`named_paths`)
_IN_BATCH = 500
#: statuses a transfer may (re)start from; stored/verified/deleted recordings are never re-pulled
_CAN_TRANSFER = {S.PENDING, S.TRANSFERRING, S.FAILED}
_CAN_FAIL = {S.PENDING, S.TRANSFERRING, S.STORED, S.FAILED}
#: how long a transaction waits for a PostgreSQL catalog that cannot be reached (a restart,
#: a failover) before it fails: well inside the watchdog's 30 s, so a waiting worker is not
#: taken for a stuck one
RECONNECT_S = 15.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _check_sha(name: str, value: str) -> str:
    if not _SHA256_HEX.fullmatch(value):
        raise ValueError(f"{name} must be 64 lowercase hex digits, got {value!r}")
    return value


class Catalog:
    """Open with `Catalog.open(url)`; close with `close()` or a `with` block. Health records
    (captures, shift logs, findings) are `catalog.health` (dockd/catalog/health_repo.py)."""

    def __init__(
        self, engine: Engine, *, actor: str, host: str, clock: Callable[[], datetime]
    ) -> None:
        self._engine = engine
        self._actor = actor
        self._host = host
        self._clock = clock
        self._write_sessions = sessionmaker(engine, expire_on_commit=False)
        self._deferred_sessions = sessionmaker(
            engine.execution_options(**{DEFERRED_SYNC: True}), expire_on_commit=False)
        self._read_sessions = sessionmaker(
            engine.execution_options(dockd_readonly=True), expire_on_commit=False
        )
        self.health = HealthRecords(self)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        create_dirs: bool = True,
        actor: str = "dockd",
        host: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        migrate_in_child: bool = False,
    ) -> Catalog:
        """Open (creating or upgrading as needed) the catalog at an SQLAlchemy URL.

        Raises CatalogVersionError for a catalog newer than this code (or not a dockd one)
        and CatalogError for one that cannot be read. `migrate_in_child` is for long-running
        processes: a needed migration then runs in a child, and Alembic stays out of memory.
        """
        try:
            engine = make_engine(url, create_dirs=create_dirs)
        except (SQLAlchemyError, ImportError) as exc:
            raise CatalogError(f"cannot open catalog {_safe(url)}: {exc}") from exc
        try:
            if migrate_in_child:
                migrate.upgrade_in_child(engine, url)
            else:
                migrate.upgrade(engine)
        except DockdError:
            engine.dispose()
            raise
        except SQLAlchemyError as exc:
            engine.dispose()
            raise CatalogError(f"cannot read catalog {_safe(url)}: {_reason(exc)}") from exc
        return cls(engine, actor=actor, host=host or socket.gethostname(), clock=clock)

    @property
    def engine(self) -> Engine:
        return self._engine

    def now(self) -> datetime:
        """The catalog's clock (injected in tests and fleet simulations; else UTC now)."""
        return self._clock()

    @property
    def host(self) -> str:
        """This host's name in audit events, docks and lease owners."""
        return self._host

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- transactions ------------------------------------------------------------

    @contextmanager
    def writing(self, *, reconnect: bool = True, durable: bool = True) -> Iterator[Session]:
        """One write transaction (BEGIN IMMEDIATE on SQLite): for the catalog's own modules
        (health records, live status); a failure is a CatalogError. `reconnect=False`: fail
        at once instead of waiting for a server catalog that does not answer (progress
        figures, which must never hold up a transfer).

        `durable=False`: a commit that need not survive a power cut on its own, because
        nothing outside the catalog acts on it before the next durable commit, which makes
        it durable with itself (docs/catalog.md, "Commits that ride with the next"). On
        SQLite it commits under `synchronous = NORMAL`; a server catalog commits as always."""
        maker = self._write_sessions if durable else self._deferred_sessions
        try:
            with self._transaction(maker, reconnect=reconnect) as session:
                yield session
        except SQLAlchemyError as exc:  # an IntegrityError stays visible as __cause__
            raise self._error("catalog write failed", exc) from exc

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """One read transaction, one snapshot (REPEATABLE READ on PostgreSQL)."""
        # one snapshot for the whole read (verify_chain compares head and rows)
        options = ({"isolation_level": "REPEATABLE READ"}
                   if self._engine.dialect.name == "postgresql" else None)
        try:
            with self._transaction(self._read_sessions, options) as session:
                yield session
        except SQLAlchemyError as exc:
            raise self._error("catalog read failed", exc) from exc

    def _error(self, what: str, exc: SQLAlchemyError) -> CatalogError:
        """CatalogUnavailable when a server catalog's connection failed or the server asked
        to try again (a restart, a cut connection, a deadlock or serialisation failure): the
        caller's work may be retried once it answers. Anything else is a CatalogError."""
        if (isinstance(exc, (OperationalError, InterfaceError))
                and self._engine.dialect.name != "sqlite"):
            return CatalogUnavailable(f"{what}: catalog unavailable: {_reason(exc)}")
        return CatalogError(f"{what}: {_reason(exc)}")

    @contextmanager
    def _transaction(self, maker: sessionmaker[Session], options: dict[str, Any] | None = None,
                     *, reconnect: bool = True) -> Iterator[Session]:
        """A session whose transaction has begun on a live connection; committed when the
        block ends, rolled back when it raises.

        Connecting is retried for up to RECONNECT_S on a server catalog (PostgreSQL being
        restarted answers "shutting down", "starting up", or not at all): nothing has been
        sent yet, so a retry cannot do anything twice. A failure once the transaction has
        begun is not retried here — a COMMIT cut off may or may not have happened — it is a
        CatalogError for the caller, like a crash at that point (docs/catalog.md, "Several
        hosts, one catalog")."""
        session = self._connected(maker, options, RECONNECT_S if reconnect else 0.0)
        with session:  # close() rolls back what was not committed
            yield session
            session.commit()

    def _connected(self, maker: sessionmaker[Session], options: dict[str, Any] | None,
                   wait_s: float) -> Session:
        deadline: float | None = None
        pause = 0.1
        while True:
            session = maker()
            try:
                # begins the transaction: BEGIN IMMEDIATE on SQLite (the "begin" hook), the
                # pool's pre-ping and reconnect on PostgreSQL
                session.connection(execution_options=options)
                return session
            except (OperationalError, InterfaceError):
                session.close()
                if self._engine.dialect.name == "sqlite":
                    raise  # a file: busy_timeout has waited already, nothing to reconnect
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + wait_s
                if now >= deadline:
                    raise
                time.sleep(min(pause, max(0.0, deadline - now)))
                pause = min(pause * 2, 2.0)

    def append_event(
        self,
        session: Session,
        kind: str,
        *,
        camera_serial: str | None = None,
        recording_id: int | None = None,
        details: Mapping[str, Any] | None = None,
        actor: str | None = None,
        rec: Recording | None = None,
    ) -> AuditRecord:
        """Append an event; with `rec` (flushed) it carries the row's custody facts as they
        are now, which is what binds the row to the chain (dockd/catalog/custody.py)."""
        if rec is not None:
            camera_serial, recording_id = rec.camera_serial, rec.id
            details = {**(details or {}), FACTS_KEY: facts_of(rec)}
        return audit.append(
            session,
            kind=kind,
            actor=actor or self._actor,
            host=self._host,
            clock=self._clock,
            camera_serial=camera_serial,
            recording_id=recording_id,
            details=details,
        )

    # --- docks and cameras ---------------------------------------------------------

    def ensure_port(self, dock: str, slot: int) -> int:
        """The id of (dock, slot), creating the dock (on this host) and port rows if new."""
        with self.writing() as s:
            return self._port_id(s, dock, slot)

    def _port_id(self, s: Session, dock: str, slot: int) -> int:
        dock_row = self._dock(s, dock)
        port = self._get_or_insert(
            s, select(Port).where(Port.dock_id == dock_row.id, Port.slot == slot),
            lambda: Port(dock_id=dock_row.id, slot=slot))
        return port.id

    def _dock(self, s: Session, name: str) -> Dock:
        """This host's dock called `name`. A dock is attached to one host: another host's
        dock of that name (two dock PCs with one hostname, or one simulated dock name) is
        another dock, kept here as `<name>@<host>`, so one host's sessions are never taken
        for the other's (`close_stale` at start closes only this host's)."""
        for candidate in (name, f"{name[:199 - len(self._host)]}@{self._host}"):
            row = self._get_or_insert(s, select(Dock).where(Dock.name == candidate),
                                      partial(Dock, name=candidate, host=self._host))
            if row.host == self._host:
                return row
        raise CatalogError(f"dock {name!r} and {name}@{self._host} belong to other hosts")

    @staticmethod
    def _get_or_insert(s: Session, query: Select[_Row], make: Callable[[], _Row]
                       ) -> _Row:
        """The row `query` finds, else a new one from `make()`. Two writers inserting the same
        key at once (two hosts, or two threads, on PostgreSQL: SQLite's write lock already
        serialises them) race on the unique key: the loser's savepoint rolls back and it
        reads the winner's row, and its transaction goes on."""
        row = s.execute(query).scalar_one_or_none()
        if row is not None:
            return row
        try:
            with s.begin_nested():
                row = make()
                s.add(row)
                s.flush()
            return row
        except IntegrityError:
            return s.execute(query).scalar_one()

    def upsert_camera(
        self, identity: CameraIdentity, *, clock_offset_s: float | None = None
    ) -> CameraRow:
        """Insert or refresh a camera. The clock offset defaults to camera clock minus now."""
        now = self._clock()
        if clock_offset_s is None:
            clock_offset_s = (identity.clock - now).total_seconds()
        with self.writing() as s:
            # one camera, one row, whichever host (or clone) docks it first
            cam = self._get_or_insert(
                s, select(Camera).where(Camera.serial == identity.serial),
                lambda: Camera(serial=identity.serial, first_seen=now, last_seen=now,
                               vendor=identity.vendor, model=identity.model,
                               firmware=identity.firmware))
            cam.vendor = identity.vendor
            cam.model = identity.model
            cam.firmware = identity.firmware
            cam.last_seen = now
            cam.last_clock_offset_s = clock_offset_s
            s.flush()
            return to_row(CameraRow, cam)

    def cameras(self) -> list[CameraRow]:
        with self.reading() as s:
            rows = s.execute(select(Camera).order_by(Camera.serial)).scalars()
            return [to_row(CameraRow, c) for c in rows]

    # --- dock sessions -------------------------------------------------------------

    def start_session(
        self, serial: str, *, dock: str | None = None, slot: int | None = None
    ) -> SessionRow:
        """A camera was docked (call `upsert_camera` first). Appends `docked`."""
        with self.writing() as s:
            if s.get(Camera, serial) is None:
                raise CatalogError(f"camera {serial} is not in the catalog: upsert it first")
            port_id = (
                self._port_id(s, dock, slot) if dock is not None and slot is not None else None
            )
            row = DockSession(
                camera_serial=serial,
                port_id=port_id,
                docked_at=self._clock(),
                listed=0,
                already_known=0,
                stored=0,
                deleted=0,
                failed=0,
            )
            s.add(row)
            s.flush()
            self.append_event(
                s,
                EventKind.DOCKED,
                camera_serial=serial,
                details={"session": row.id, "dock": dock, "slot": slot},
            )
            return to_row(SessionRow, row)

    def end_session(
        self, session_id: int, *, outcome: str, counts: SessionCounts | None = None,
        refusal: str | None = None,
    ) -> SessionRow:
        """The camera left (or the session ended). Appends `undocked` with the counts, and
        `refusal` when nothing of the camera could be listed (why)."""
        counts = counts or SessionCounts()
        with self.writing() as s:
            row = s.get(DockSession, session_id)
            if row is None:
                raise CatalogError(f"no dock session {session_id}")
            if row.undocked_at is not None:
                raise CatalogError(f"dock session {session_id} has already ended")
            row.undocked_at = self._clock()
            row.outcome = outcome
            row.listed, row.already_known = counts.listed, counts.already_known
            row.stored, row.deleted, row.failed = counts.stored, counts.deleted, counts.failed
            row.refusal = refusal
            self.append_event(
                s,
                EventKind.UNDOCKED,
                camera_serial=row.camera_serial,
                details={
                    "session": session_id,
                    "outcome": outcome,
                    "listed": counts.listed,
                    "already_known": counts.already_known,
                    "stored": counts.stored,
                    "deleted": counts.deleted,
                    "failed": counts.failed,
                    **({"refusal": refusal} if refusal else {}),
                },
            )
            s.flush()
            return to_row(SessionRow, row)

    def sessions(self, camera: str | None = None) -> list[SessionRow]:
        with self.reading() as s:
            q = select(DockSession).order_by(DockSession.id)
            if camera is not None:
                q = q.where(DockSession.camera_serial == camera)
            return [to_row(SessionRow, r) for r in s.execute(q).scalars()]

    # --- recordings ----------------------------------------------------------------

    def recording_for(self, serial: str, info: RecordingInfo) -> RecordingRow:
        """The catalog row of a recording the camera lists, created `pending` (with a
        `listed` event carrying its facts) if new.

        A recording is the same one when (serial, name, started, size, camera SHA-256) match,
        so a camera docked again never gets a recording stored twice, and a namesake with
        other bytes (a cloned serial, a reused name) is a recording of its own.
        """
        return self._get_or_add(serial, info.name, info.size, info.started, info.sha256_hex,
                                info.duration_s, info.prerecord_s, refusal=None)

    def refuse_recording(self, serial: str, entry: RefusedRecording) -> RecordingRow:
        """The row of a listing entry refused on its own: status `refused` with the reason
        (a `refused` event). It is never read nor deleted; it stays on the camera."""
        return self._get_or_add(serial, entry.label, entry.size, entry.started,
                                entry.sha256.hex() if entry.sha256 is not None else None,
                                entry.duration_s, entry.prerecord_s, refusal=entry.reason)

    def list_recordings(self, serial: str, infos: Sequence[RecordingInfo]
                        ) -> list[RecordingRow]:
        """`recording_for` of each entry of one listing, in order: the new ones are created
        (`pending`, a `listed` event each) together, in one transaction.

        Not durable on its own: a `listed` row is a promise to look, not custody (the camera
        keeps the recording). The first intent's commit, before anything is published or
        deleted, makes it durable; a power cut before that loses only rows the next dock
        lists again."""
        for info in infos:
            if info.sha256_hex is not None:
                _check_sha("camera_sha256", info.sha256_hex)
        keys = [(info.name, info.started, info.size, info.sha256_hex) for info in infos]
        with self.reading() as s:
            found = [self._find_in(s, serial, *key) for key in keys]
            rows: list[RecordingRow | None] = [
                None if row is None else to_row(RecordingRow, row) for row in found]
        if all(row is not None for row in rows):
            return [row for row in rows if row is not None]
        now = self._clock()
        try:
            with self.writing(durable=False) as s:
                for i, info in enumerate(infos):
                    if rows[i] is not None:
                        continue
                    # re-check under the write lock (SQLite), and the listing's own repeats
                    row = self._find_in(s, serial, *keys[i])
                    if row is None:
                        row = self._add_listed(s, serial, info.name, info.size, info.started,
                                               info.sha256_hex, info.duration_s,
                                               info.prerecord_s, now)
                    rows[i] = to_row(RecordingRow, row)
        except CatalogError as exc:
            # a unique key lost to another host (PostgreSQL): one at a time, as the winner has it
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            return [self.recording_for(serial, info) for info in infos]
        return [row for row in rows if row is not None]

    def _add_listed(self, s: Session, serial: str, name: str, size: int, started: datetime,
                    sha: str | None, duration_s: float, prerecord_s: float,
                    now: datetime) -> Recording:
        """A new `pending` row and its `listed` event (which carries its facts)."""
        row = Recording(
            camera_serial=serial, camera_name=name, size=size, started=started,
            duration_s=duration_s, prerecord_s=prerecord_s, camera_sha256=sha,
            status=S.PENDING.value, failure_reason=None, attempts=0, created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        # a camera that keeps no hash: custody starts with the one taken reading
        self.append_event(s, EventKind.LISTED, rec=row, details=None if sha else {
            "camera_hash": "none: custody starts with the SHA-256 taken while reading"})
        return row

    def _get_or_add(self, serial: str, name: str, size: int, started: datetime,
                    sha: str | None, duration_s: float, prerecord_s: float, *,
                    refusal: str | None) -> RecordingRow:
        if sha is not None:
            _check_sha("camera_sha256", sha)
        found = self._find_recording(serial, name, started, size, sha)
        if found is not None and (refusal is None or found.status is not S.REFUSED):
            return found
        now = self._clock()
        try:
            with self.writing() as s:
                # re-check under the write lock (SQLite) ...
                row = self._find_in(s, serial, name, started, size, sha)
                if row is not None:
                    if refusal is not None and row.status == S.REFUSED:
                        row.updated_at = now  # still on the camera, still refused
                        if row.failure_reason != refusal:
                            row.failure_reason = refusal  # the reason changed wording
                            self.append_event(s, EventKind.REFUSED, rec=row,
                                        details={"reason": refusal})
                    return to_row(RecordingRow, row)
                if refusal is None:
                    row = self._add_listed(s, serial, name, size, started, sha, duration_s,
                                           prerecord_s, now)
                    return to_row(RecordingRow, row)
                row = Recording(
                    camera_serial=serial, camera_name=name, size=size, started=started,
                    duration_s=duration_s, prerecord_s=prerecord_s, camera_sha256=sha,
                    status=S.REFUSED.value, failure_reason=refusal, attempts=0,
                    created_at=now, updated_at=now,
                )
                s.add(row)
                s.flush()
                self.append_event(s, EventKind.REFUSED, rec=row, details={"reason": refusal})
                return to_row(RecordingRow, row)
        except CatalogError as exc:
            # ... or lose the race on the unique key (PostgreSQL) and read the winner, which
            # stays: recordings are never deleted
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            winner = self._find_recording(serial, name, started, size, sha)
            if winner is None:
                raise CatalogError(
                    f"cannot add recording {name!r}: {_reason(exc.__cause__)}"
                ) from exc.__cause__
            return winner

    @staticmethod
    def _find_in(s: Session, serial: str, name: str, started: datetime, size: int,
                 sha: str | None) -> Recording | None:
        return s.execute(
            select(Recording).where(
                Recording.camera_serial == serial,
                Recording.camera_name == name,
                Recording.started == started,
                Recording.size == size,
                Recording.camera_sha256.is_(None) if sha is None
                else Recording.camera_sha256 == sha,
            )
        ).scalar_one_or_none()

    def _find_recording(self, serial: str, name: str, started: datetime, size: int,
                        sha: str | None) -> RecordingRow | None:
        with self.reading() as s:
            row = self._find_in(s, serial, name, started, size, sha)
            return None if row is None else to_row(RecordingRow, row)

    def recording(self, recording_id: int) -> RecordingRow:
        with self.reading() as s:
            return to_row(RecordingRow, self._get_recording(s, recording_id))

    def recordings(
        self,
        camera: str | None = None,
        *,
        status: RecordingStatus | None = None,
        name: str | None = None,
    ) -> list[RecordingRow]:
        with self.reading() as s:
            # the row's columns, not ORM entities: a camera's year is ~5,000 recordings, and
            # building an entity for each cost more than the query (docs/performance.md)
            q = select(*_RECORDING_COLUMNS).order_by(Recording.id)
            if camera is not None:
                q = q.where(Recording.camera_serial == camera)
            if name is not None:
                q = q.where(Recording.camera_name == name)
            if status is not None:
                q = q.where(Recording.status == status.value)
            return [recording_row(r) for r in s.execute(q)]

    @staticmethod
    def _get_recording(s: Session, recording_id: int, *, lock: bool = False) -> Recording:
        q = select(Recording).where(Recording.id == recording_id)
        row = s.execute(q.with_for_update() if lock else q).scalar_one_or_none()
        if row is None:
            raise CatalogError(f"no recording {recording_id}")
        return row

    def _move(
        self, row: Recording, allowed: set[RecordingStatus], to: RecordingStatus
    ) -> Recording:
        """Move a row already fetched with `_get_recording(…, lock=True)` to `to`."""
        if RecordingStatus(row.status) not in allowed:
            raise RecordingStateError(
                f"recording {row.id} ({row.camera_name}) is {row.status}; "
                f"cannot become {to.value}"
            )
        row.status = to.value
        row.updated_at = self._clock()
        return row

    # --- one owner per recording ------------------------------------------------------

    def take_lease(self, recording_id: int, owner: LeaseOwner) -> RecordingRow:
        """Become the one writer of a recording's files, or raise LeaseHeld naming the owner
        that still lives (dockd/catalog/lease.py says how that is judged). Not durable on its
        own (a power cut ends every owner on this host anyway): the intent's commit, before
        anything is published, makes it durable."""
        with self.writing(durable=False) as s:
            rec = self._get_recording(s, recording_id, lock=True)
            now = self._clock()
            if rec.lease_owner not in (None, owner.key) and lease.owner_alive(
                    rec.lease_owner, rec.lease_until, host=self._host, now=now):
                holder = lease.LeaseOwner.parse(rec.lease_owner or "")
                raise LeaseHeld(
                    f"recording {rec.id} ({rec.camera_name}) is being written by "
                    f"{holder.describe() if holder else rec.lease_owner}")
            rec.lease_owner, rec.lease_until = owner.key, now + lease.LEASE_TTL
            return to_row(RecordingRow, rec)

    def renew_lease(self, recording_id: int, owner: LeaseOwner) -> bool:
        """Extend a lease this owner holds; False when it is no longer this owner's."""
        with self.writing(durable=False) as s:
            rec = self._get_recording(s, recording_id, lock=True)
            if rec.lease_owner != owner.key:
                return False
            rec.lease_until = self._clock() + lease.LEASE_TTL
            return True

    def release_lease(self, recording_id: int, owner: LeaseOwner) -> None:
        with self.writing(durable=False) as s:
            rec = self._get_recording(s, recording_id, lock=True)
            if rec.lease_owner == owner.key:
                rec.lease_owner, rec.lease_until = None, None

    @staticmethod
    def _require_lease(rec: Recording, owner: LeaseOwner) -> None:
        if rec.lease_owner != owner.key:
            raise LeaseLost(
                f"recording {rec.id} ({rec.camera_name}): this session no longer holds its "
                f"lease (held by {rec.lease_owner or 'nobody'}); it writes nothing more")

    # --- transfer attempts -----------------------------------------------------------

    def begin_attempt(
        self, recording_id: int, *, owner: LeaseOwner, session_id: int | None = None,
        offset_from: int = 0,
    ) -> AttemptRow:
        """A transfer starts; the caller holds the recording's lease. Appends
        `transfer_started` (with the owner). Durable before it returns, and with it the
        listing's rows that rode on it: the partial and its resume file (the file key) are
        written next, and must never outlive the row they are named for — a power cut that
        took the row back would let a later recording be given that id, that path and that
        partial to resume (a hostile review's finding)."""
        with self.writing() as s:
            rec = self._get_recording(s, recording_id, lock=True)
            self._require_lease(rec, owner)
            self._move(rec, _CAN_TRANSFER, S.TRANSFERRING)
            rec.attempts += 1
            # the lease is ours, so an attempt of this recording still open is a dead
            # writer's (a host that died, a session the catalog cut short): ended here, or
            # `dockctl status` would show it in flight for good
            for stale in s.execute(select(TransferAttempt).where(
                    TransferAttempt.recording_id == recording_id,
                    TransferAttempt.finished_at.is_(None))).scalars():
                stale.finished_at, stale.outcome = self._clock(), AttemptOutcome.FAILED.value
                stale.error_kind = "interrupted"
                stale.error_message = "its writer is gone; a new attempt took over"
                s.flush()
                self.append_event(s, EventKind.TRANSFER_FAILED, rec=rec, details={
                    "attempt": stale.id, "bytes": stale.bytes, "error_kind": "interrupted",
                    "error": stale.error_message})
            att = TransferAttempt(
                recording_id=recording_id,
                session_id=session_id,
                started_at=self._clock(),
                offset_from=offset_from,
                bytes=0,
            )
            s.add(att)
            s.flush()
            self.append_event(
                s, EventKind.TRANSFER_STARTED, rec=rec,
                details={"attempt": att.id, "session": session_id, "offset_from": offset_from,
                         "owner": owner.key},
            )
            return to_row(AttemptRow, att)

    def finish_attempt(
        self,
        attempt_id: int,
        *,
        bytes_transferred: int,
        error_kind: str | None = None,
        error_message: str | None = None,
    ) -> AttemptRow:
        """A transfer ended: ok when `error_kind` is None, else failed (the recording too).

        Success does not change the recording: `mark_stored` does, once the file is durable.
        Not durable on its own: the next durable commit (`mark_verified`, `mark_failed`, the
        session's end) carries it.
        """
        with self.writing(durable=False) as s:
            att = self._finish_attempt_in(s, attempt_id, bytes_transferred, error_kind,
                                          error_message)
            return to_row(AttemptRow, att)

    def _finish_attempt_in(self, s: Session, attempt_id: int, bytes_transferred: int,
                           error_kind: str | None, error_message: str | None
                           ) -> TransferAttempt:
        att = s.get(TransferAttempt, attempt_id)
        if att is None:
            raise CatalogError(f"no transfer attempt {attempt_id}")
        if att.finished_at is not None:
            raise CatalogError(f"transfer attempt {attempt_id} has already finished")
        att.finished_at = self._clock()
        att.bytes = bytes_transferred
        ok = error_kind is None
        att.outcome = (AttemptOutcome.OK if ok else AttemptOutcome.FAILED).value
        att.error_kind, att.error_message = error_kind, error_message
        rec = self._get_recording(s, att.recording_id, lock=True)
        if not ok and RecordingStatus(rec.status) is S.TRANSFERRING:
            rec.status = S.FAILED.value
            rec.failure_reason = f"{error_kind}: {error_message}"
            rec.updated_at = att.finished_at
        details: dict[str, Any] = {"attempt": attempt_id, "bytes": bytes_transferred}
        if not ok:
            details.update(error_kind=error_kind, error=error_message)
        self.append_event(
            s,
            EventKind.TRANSFER_FINISHED if ok else EventKind.TRANSFER_FAILED,
            rec=rec,
            details=details,
        )
        s.flush()
        return att

    def attempts(self, recording_id: int) -> list[AttemptRow]:
        with self.reading() as s:
            q = select(TransferAttempt).where(TransferAttempt.recording_id == recording_id)
            return [
                to_row(AttemptRow, a) for a in s.execute(q.order_by(TransferAttempt.id)).scalars()
            ]

    # --- the write order: intent → stored → verified → deleted_from_camera ------------

    def record_intent(self, recording_id: int, owner: LeaseOwner, *, path: str,
                      stored_size: int, stored_sha256: str, plaintext_sha256: str,
                      attempt_id: int | None = None) -> AuditRecord:
        """Say, durably, which file is about to be published for a recording: its path,
        size and SHA-256. Only a file that matches an intent is ever adopted."""
        _check_sha("stored_sha256", stored_sha256)
        _check_sha("plaintext_sha256", plaintext_sha256)
        with self.writing() as s:
            rec = self._get_recording(s, recording_id, lock=True)
            self._require_lease(rec, owner)
            if rec.camera_sha256 is not None and plaintext_sha256 != rec.camera_sha256:
                raise RecordingStateError(
                    f"recording {recording_id} ({rec.camera_name}): plaintext SHA-256 "
                    f"{plaintext_sha256} differs from the camera's {rec.camera_sha256}")
            return self.append_event(
                s, EventKind.PUBLISH_INTENT, camera_serial=rec.camera_serial,
                recording_id=rec.id,
                details={"path": path, "stored_size": stored_size,
                         "stored_sha256": stored_sha256, "plaintext_sha256": plaintext_sha256,
                         "attempt": attempt_id, "owner": owner.key})

    def mark_stored(
        self, recording_id: int, owner: LeaseOwner, *, store_path: str, plaintext_sha256: str,
        stored_sha256: str, stored_size: int, adopted: bool = False,
        attempt: tuple[int, int] | None = None,
    ) -> RecordingRow:
        """The stored file is durable at `store_path`. Refused unless the caller holds the
        lease and the chain's last intent names exactly this file (path, size, hashes).

        Not durable on its own: nothing is deleted on `stored`, only on `verified`, whose
        commit is durable and carries this one. Lost to a power cut, the durable intent
        still names the durable file, which the next dock adopts (or the camera's copy is
        ingested again).

        `attempt`: (attempt id, bytes it moved) of the transfer that wrote the file, whose
        successful end (`finish_attempt`) is booked first in the same transaction."""
        _check_sha("plaintext_sha256", plaintext_sha256)
        _check_sha("stored_sha256", stored_sha256)
        try:
            with self.writing(durable=False) as s:
                if attempt is not None:
                    self._finish_attempt_in(s, attempt[0], attempt[1], None, None)
                rec = self._get_recording(s, recording_id, lock=True)
                self._require_lease(rec, owner)
                intent = self._custody_in(s, recording_id).intent
                wanted = (store_path, stored_size, stored_sha256, plaintext_sha256)
                if intent is None or (intent.path, intent.stored_size, intent.stored_sha256,
                                      intent.plaintext_sha256) != wanted:
                    raise RecordingStateError(
                        f"recording {recording_id} ({rec.camera_name}): no committed intent "
                        f"names {store_path} ({stored_size} bytes, SHA-256 {stored_sha256})")
                if rec.camera_sha256 is not None and plaintext_sha256 != rec.camera_sha256:
                    raise RecordingStateError(
                        f"recording {recording_id} ({rec.camera_name}): plaintext SHA-256 "
                        f"{plaintext_sha256} differs from the camera's {rec.camera_sha256}"
                    )
                self._move(rec, {S.PENDING, S.TRANSFERRING, S.FAILED}, S.STORED)
                rec.store_path = store_path
                rec.plaintext_sha256 = plaintext_sha256
                rec.stored_sha256 = stored_sha256
                rec.stored_size = stored_size
                rec.stored_on = self._host
                rec.local_deleted_at = None
                rec.failure_reason = None
                s.flush()
                self.append_event(s, EventKind.ADOPTED if adopted else EventKind.STORED, rec=rec,
                            details={"intent": intent.seq})
                return to_row(RecordingRow, rec)
        except CatalogError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise CatalogError(f"store path {store_path} is already catalogued") from exc
            raise

    def mark_verified(self, recording_id: int, owner: LeaseOwner, *,
                      proof: Mapping[str, Any]) -> RecordingRow:
        """The stored copy was proven (`proof` says how: the hash taken while writing with
        the inode unchanged, or a re-read)."""
        with self.writing() as s:
            rec = self._get_recording(s, recording_id, lock=True)
            self._require_lease(rec, owner)
            self._move(rec, {S.STORED}, S.VERIFIED)
            self.append_event(s, EventKind.VERIFIED, rec=rec, details={"proof": dict(proof)})
            s.flush()
            return to_row(RecordingRow, rec)

    def mark_failed(self, recording_id: int, reason: str) -> RecordingRow:
        """Give up on a recording for now (never for a verified or deleted one)."""
        with self.writing() as s:
            rec = self._move(self._get_recording(s, recording_id, lock=True), _CAN_FAIL, S.FAILED)
            rec.failure_reason = reason
            self.append_event(s, EventKind.FAILED, rec=rec, details={"reason": reason})
            s.flush()
            return to_row(RecordingRow, rec)

    def mark_copy_damaged(self, recording_id: int, owner: LeaseOwner, *, reason: str,
                          found: Mapping[str, Any]) -> RecordingRow:
        """The proof before a delete failed: the stored copy is missing or not the one the
        chain records. The row forgets the copy (the chain keeps its facts, `found` says what
        was there and where it was moved), so the recording is ingested again from the
        camera, which still holds it."""
        with self.writing() as s:
            rec = self._get_recording(s, recording_id, lock=True)
            self._require_lease(rec, owner)
            self._move(rec, {S.STORED, S.VERIFIED, S.DELETED_FROM_CAMERA}, S.FAILED)
            rec.failure_reason = reason
            rec.store_path = rec.stored_sha256 = rec.plaintext_sha256 = None
            rec.stored_size = None
            rec.stored_on = None
            s.flush()
            self.append_event(s, EventKind.COPY_DAMAGED, rec=rec,
                        details={"reason": reason, "found": dict(found)})
            return to_row(RecordingRow, rec)

    def mark_deleted_from_camera(self, recording_id: int, *,
                                 proof: Mapping[str, Any] | None = None) -> RecordingRow:
        """The camera's copy was deleted (after `proof` of the stored copy, in that session).
        Refused unless the recording is verified; booking it twice (two sessions of one
        serial racing, or a retried delete) is a no-op.

        Not durable on its own (the next durable commit carries it: the next recording's
        intent, the session's end): lost to a power cut, the row stays `verified` with its
        copy proven, and the next dock books the delete when the camera no longer lists it
        (the same as a crash between the delete and this commit)."""
        with self.writing(durable=False) as s:
            rec = self._get_recording(s, recording_id, lock=True)
            if rec.status == S.DELETED_FROM_CAMERA:
                return to_row(RecordingRow, rec)
            self._move(rec, {S.VERIFIED}, S.DELETED_FROM_CAMERA)
            self.append_event(s, EventKind.DELETED_FROM_CAMERA, rec=rec,
                        details={"name": rec.camera_name,
                                 **({"proof": dict(proof)} if proof is not None else {})})
            s.flush()
            return to_row(RecordingRow, rec)

    # --- evidence leaves the dock: vault, legal hold, retention --------------------------

    def set_hold(self, recording_id: int, on: bool, *, reason: str | None,
                 actor: str) -> RecordingRow:
        """Put a recording on legal hold (kept whatever its retention, mirrored onto its
        vault object) or release it. Audited with the person who did it."""
        with self.writing() as s:
            rec = self._get_recording(s, recording_id, lock=True)
            rec.legal_hold, rec.hold_reason = on, (reason if on else None)
            rec.updated_at = self._clock()
            s.flush()
            self.append_event(s, EventKind.HOLD_SET if on else EventKind.HOLD_RELEASED,
                              rec=rec, actor=actor, details={"reason": reason})
            return to_row(RecordingRow, rec)

    def set_category(self, recording_id: int, category: str | None, *,
                     actor: str) -> RecordingRow:
        """File a recording under a retention category (None: the default)."""
        with self.writing() as s:
            rec = self._get_recording(s, recording_id, lock=True)
            rec.category = category
            rec.updated_at = self._clock()
            s.flush()
            self.append_event(s, EventKind.CATEGORY_SET, rec=rec, actor=actor,
                              details={"category": category})
            return to_row(RecordingRow, rec)

    def mark_vaulted(self, recording_id: int, *, key: str, version: str, checksum: str,
                     lock_until: datetime, hold: bool, actor: str | None = None
                     ) -> RecordingRow:
        """The vault holds a verified copy: its object key, version, checksum, lock, hold."""
        with self.writing() as s:
            rec = self._get_recording(s, recording_id, lock=True)
            rec.vault_key, rec.vault_version, rec.vault_checksum = key, version, checksum
            rec.vault_lock_until, rec.vault_hold = lock_until, hold
            rec.vault_deleted_at = None
            rec.updated_at = self._clock()
            s.flush()
            self.append_event(s, EventKind.VAULTED, rec=rec, actor=actor)
            return to_row(RecordingRow, rec)

    def mark_vault_state(self, recording_id: int, *, hold: bool | None = None,
                         lock_until: datetime | None = None, deleted_at: datetime | None = None,
                         actor: str | None = None) -> RecordingRow:
        """What changed on the vault object: its legal hold mirrored, its lock extended, or
        the version deleted once its lock ended (a tombstone: the facts keep every hash)."""
        with self.writing() as s:
            rec = self._get_recording(s, recording_id, lock=True)
            kind = EventKind.VAULT_HOLD
            if hold is not None:
                rec.vault_hold = hold
            if lock_until is not None:
                rec.vault_lock_until, kind = lock_until, EventKind.VAULT_LOCK
            if deleted_at is not None:
                rec.vault_deleted_at, kind = deleted_at, EventKind.VAULT_DELETED
            rec.updated_at = self._clock()
            s.flush()
            self.append_event(s, kind, rec=rec, actor=actor)
            return to_row(RecordingRow, rec)

    def mark_local_deleted(self, recording_id: int, owner: LeaseOwner, *, reason: str,
                           at: datetime, category: str | None) -> RecordingRow:
        """Retention deletes the local copy: the tombstone, written (and committed) before
        the file is unlinked (the facts keep path and hashes, so `dockctl verify` can say
        what was deleted and when). Under the row's lock it re-checks what a person may
        have changed while the sweep re-hashed the file: a legal hold placed, or the
        category (and so the retention) changed, on any host, refuses the deletion."""
        with self.writing() as s:
            rec = self._get_recording(s, recording_id, lock=True)
            self._require_lease(rec, owner)
            if rec.legal_hold:
                raise RecordingStateError(f"recording {recording_id}: placed on legal hold "
                                          "during the sweep; kept")
            if (rec.category or None) != (category or None):
                raise RecordingStateError(f"recording {recording_id}: its category changed "
                                          "during the sweep; kept")
            rec.local_deleted_at = at
            rec.updated_at = self._clock()
            s.flush()
            self.append_event(s, EventKind.DELETED_BY_RETENTION, rec=rec,
                              details={"reason": reason})
            return to_row(RecordingRow, rec)

    def kept_recordings(self, *, host: str | None = None,
                        page: int = 500) -> Iterator[RecordingRow]:
        """Recordings with a copy somewhere (stored, and not yet deleted everywhere), in id
        order, a page at a time: no transaction stays open while the caller uploads or
        re-hashes (a long one would hold PostgreSQL's vacuum and SQLite's checkpoint back)."""
        after = 0
        while True:
            with self.reading() as s:
                q = (select(Recording)
                     .where(Recording.id > after, Recording.stored_sha256.is_not(None),
                            (Recording.local_deleted_at.is_(None))
                            | (Recording.vault_version.is_not(None)
                               & Recording.vault_deleted_at.is_(None)))
                     .order_by(Recording.id).limit(page))
                if host is not None:
                    q = q.where((Recording.stored_on == host) | Recording.stored_on.is_(None))
                rows = [to_row(RecordingRow, r) for r in s.execute(q).scalars()]
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1].id

    # --- what the chain says of a recording ---------------------------------------------

    def custody(self, recording_id: int) -> Custody:
        """The chain's facts and last intent for one recording, with every one of its
        events checked against its own hash and its link to the event before it."""
        with self.reading() as s:
            return self._custody_in(s, recording_id)

    @staticmethod
    def _custody_in(s: Session, recording_id: int) -> Custody:
        rows = list(s.execute(
            select(AuditEvent).where(AuditEvent.recording_id == recording_id)
            .order_by(AuditEvent.seq)).scalars())
        custody = Custody(recording_id)
        if not rows:
            return custody
        before = {seq: h for seq, h in s.execute(
            select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.seq.in_([ev.seq - 1 for ev in rows])))}
        before[0] = audit.GENESIS
        for ev in rows:
            record = to_row(AuditRecord, ev)
            if audit.hash_of(record) != ev.hash:
                custody.problems.append(f"event {ev.seq} ({ev.kind}) does not match its hash")
            elif before.get(ev.seq - 1) != ev.prev_hash:
                custody.problems.append(f"event {ev.seq} ({ev.kind}) does not link to the "
                                        "event before it")
            custody.add(record)
        return custody

    def iter_custody(self, *, page: int = 1000
                     ) -> Iterator[tuple[RecordingRow | None, Custody]]:
        """Every recording with what the chain says of it, in id order, streamed: a page of
        rows at a time (keyset on id, plain rows, no ORM object) merged with the events of
        that id range from the (recording_id, seq) index, each page its own short read, so
        neither memory nor an open snapshot grows with the catalog (a read held open for the
        whole of `dockctl verify` would keep SQLite from checkpointing the `verified_later`
        events it appends meanwhile). A recording the chain names but that has no row comes
        as (None, its custody). Events are not checked here: the chain walk (`verify_chain`)
        does that once for all."""
        after: int | None = None
        while True:
            with self.reading() as s:
                conn = s.connection()  # plain rows, without the ORM's result machinery
                q = select(*_RECORDING_COLUMNS).order_by(Recording.id).limit(page)
                if after is not None:
                    q = q.where(Recording.id > after)
                rows = [recording_row(r) for r in conn.execute(q)]
                last = len(rows) < page  # the last page takes every event after it too
                ev_q = (select(*_EVENT_COLUMNS).where(AuditEvent.recording_id.is_not(None))
                        .order_by(AuditEvent.recording_id, AuditEvent.seq))
                if after is not None:
                    ev_q = ev_q.where(AuditEvent.recording_id > after)
                if not last:
                    ev_q = ev_q.where(AuditEvent.recording_id <= rows[-1].id)
                events = (AuditRecord(*ev) for ev in
                          conn.execute(ev_q.execution_options(yield_per=_EVENT_PAGE)))
                yield from _merge_custody(rows, events)
            if last:
                return
            after = rows[-1].id

    def named_paths(self, paths: Sequence[str]) -> set[str]:
        """Which of `paths` some recording row names as its store_path, exactly (from the
        unique index on it): `dockctl verify` asks this of the files it finds in the store, a
        batch at a time, instead of holding every path the catalog names."""
        found: set[str] = set()
        with self.reading() as s:
            for i in range(0, len(paths), _IN_BATCH):
                found.update(p for p in s.execute(select(Recording.store_path).where(
                    Recording.store_path.in_(paths[i:i + _IN_BATCH]))).scalars() if p)
        return found

    def refusals(self) -> dict[str, CameraRefusals]:
        """Per camera, what its latest dock could not take: the listing entries refused at
        that dock (still on the camera), and the reason its whole listing was refused."""
        with self.reading() as s:
            latest = (select(DockSession.camera_serial,
                             func.max(DockSession.id).label("id"))
                      .group_by(DockSession.camera_serial).subquery())
            sessions = {serial: (docked, refusal) for serial, docked, refusal in s.execute(
                select(DockSession.camera_serial, DockSession.docked_at, DockSession.refusal)
                .join(latest, DockSession.id == latest.c.id))}
            refused: dict[str, list[RecordingRow]] = {}
            for row in s.execute(select(Recording).where(Recording.status == S.REFUSED.value)
                                 .order_by(Recording.id)).scalars():
                docked = sessions.get(row.camera_serial, (None, None))[0]
                if docked is None or row.updated_at >= docked:
                    refused.setdefault(row.camera_serial, []).append(to_row(RecordingRow, row))
        out: dict[str, CameraRefusals] = {}
        for serial in set(refused) | {k for k, (_, why) in sessions.items() if why}:
            docked, why = sessions.get(serial, (None, None))
            out[serial] = CameraRefusals(serial, docked, why, refused.get(serial, []))
        return out

    def setting(self, key: str) -> str | None:
        with self.reading() as s:
            row = s.get(Setting, key)
            return None if row is None else row.value

    def claim_setting(self, key: str, value: str) -> str:
        """Set `key` to `value` unless it is set already; return what it is now."""
        try:
            with self.writing() as s:
                row = s.get(Setting, key)
                if row is None:
                    s.add(Setting(key=key, value=value))
                    return value
                return row.value
        except CatalogError as exc:  # another process set it first (PostgreSQL)
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            return self.setting(key) or value

    def put_setting(self, key: str, value: str) -> None:
        """Set `key` to `value`, whatever it was (state a service reports, not a fact)."""
        for attempt in range(2):
            try:
                with self.writing() as s:
                    row = s.get(Setting, key)
                    if row is None:
                        s.add(Setting(key=key, value=value))
                    else:
                        row.value = value
                return
            except CatalogError as exc:  # another process inserted it first (PostgreSQL)
                if attempt or not isinstance(exc.__cause__, IntegrityError):
                    raise

    def head(self) -> tuple[int, str]:
        """The audit head: (seq, hash) of the last event."""
        with self.reading() as s:
            row = s.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
            return row.seq, row.hash

    def durable_head(self) -> tuple[int, str]:
        """The audit head, on disk: what a witness outside the catalog may write down (the
        anchor file, the journal). The last commit may be one that rides with the next
        durable one (`writing(durable=False)`, another session's): the SQLite WAL is synced
        after the head is read, so no witness names an event a power cut could take back."""
        head = self.head()
        path = sqlite_path(self._engine.url)
        if path is None:
            return head  # a server catalog: every commit is durable when it returns
        # SQLite keeps the WAL beside the file a symlinked catalog path resolves to
        real = Path(os.path.realpath(path))
        wal = real.with_name(real.name + "-wal")
        try:
            fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return head  # no WAL: the last checkpoint synced everything into the database
        except OSError as exc:
            raise CatalogError(f"cannot sync the catalog's WAL {wal}: {exc.strerror}") from exc
        try:
            os.fdatasync(fd)
        except OSError as exc:
            raise CatalogError(f"cannot sync the catalog's WAL {wal}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        return head

    # --- audit ---------------------------------------------------------------------

    def record_event(
        self,
        kind: EventKind | str,
        *,
        camera_serial: str | None = None,
        recording_id: int | None = None,
        details: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> AuditRecord:
        """Append an event of any kind (for those no other method appends)."""
        with self.writing() as s:
            return self.append_event(
                s,
                str(kind),
                camera_serial=camera_serial,
                recording_id=recording_id,
                details=details,
                actor=actor,
            )

    def record_events(self, kind: EventKind | str,
                      events: Iterable[tuple[str | None, int | None, Mapping[str, Any]]]
                      ) -> int:
        """Append many events of one kind, (camera_serial, recording_id, details) each, in
        one transaction (a re-hash of a big store vouches for thousands of recordings: one
        transaction each would cost more than the hashing; `audit.append_many`: one insert
        for all, not an ORM object and a flush each). Returns how many."""
        with self.writing() as s:
            return audit.append_many(s, kind=str(kind), actor=self._actor, host=self._host,
                                     clock=self._clock, events=events)

    def events(self, *, since_seq: int = 0, limit: int | None = None,
               camera: str | None = None, recording: int | None = None) -> list[AuditRecord]:
        """Events after `since_seq` in chain order, of one camera and/or recording if given
        (from their indexes: a camera's trail never reads the rest of the chain)."""
        with self.reading() as s:
            q = audit.select_events(camera=camera, recording=recording, since_seq=since_seq)
            if limit is not None:
                q = q.limit(limit)
            return [AuditRecord(**row._asdict()) for row in s.execute(q)]

    def checked_events_of(self, *, camera: str | None = None, recording: int | None = None
                          ) -> Iterator[tuple[AuditRecord, list[ChainProblem]]]:
        """One camera's and/or recording's events, each with what is wrong with it (its hash,
        its link), in chain order, without walking the whole chain (`verify_chain` does; see
        `audit.check_selected` for the difference); the head is checked apart
        (`tail_problems`)."""
        with self.reading() as s:
            for row, found in audit.check_selected(s, camera=camera, recording=recording):
                yield AuditRecord(**row._asdict()), found

    def tail_problems(self) -> list[ChainProblem]:
        """The head row against the chain's last event ([] when they agree)."""
        with self.reading() as s:
            return audit.tail_problems(s)

    def verify_chain(self, *, anchors: Iterable[tuple[int, str]] = ()) -> list[ChainProblem]:
        """Problems in the audit chain; [] when it verifies (see docs/catalog.md for limits).

        `anchors`: (seq, hash) pairs kept outside the catalog, e.g. from `status_snapshot()`.
        """
        with self.reading() as s:
            return audit.verify(s, anchors)

    def verify_chain_at(self, anchors: Iterable[tuple[int, str]]) -> list[ChainProblem]:
        """Only that each anchored event is still there with its hash (no chain walk)."""
        with self.reading() as s:
            return audit.check_anchors(s, anchors)

    def status_snapshot(self) -> StatusSnapshot:
        with self.reading() as s:
            by_status = s.execute(
                select(
                    Recording.status, func.count(), func.coalesce(func.sum(Recording.size), 0)
                ).group_by(Recording.status)
            ).all()
            cameras = s.execute(select(func.count()).select_from(Camera)).scalar_one()
            open_sessions = s.execute(
                select(func.count())
                .select_from(DockSession)
                .where(DockSession.undocked_at.is_(None))
            ).scalar_one()
            head = s.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
            last_at = s.execute(
                select(AuditEvent.at).where(AuditEvent.seq == head.seq)
            ).scalar_one_or_none()
            return StatusSnapshot(
                recordings_by_status={st: int(n) for st, n, _ in by_status},
                bytes_by_status={st: int(b) for st, _, b in by_status},
                cameras=int(cameras),
                open_sessions=int(open_sessions),
                audit_seq=head.seq,
                audit_head_hash=head.hash,
                last_event_at=last_at,
            )


def _merge_custody(rows: Sequence[RecordingRow], events: Iterator[AuditRecord]
                   ) -> Iterator[tuple[RecordingRow | None, Custody]]:
    """Rows (in id order) each with the custody its events (in recording_id, seq order)
    give; events of a recording without a row come as (None, custody) in id order."""
    pending = next(events, None)

    def custody_until(limit: int | None) -> Iterator[Custody]:
        """Custodies of event-only recordings below `limit` (all that are left: None)."""
        nonlocal pending
        while pending is not None and (limit is None or (pending.recording_id or 0) < limit):
            orphan = Custody(pending.recording_id or 0)
            while pending is not None and pending.recording_id == orphan.recording_id:
                orphan.add(pending)
                pending = next(events, None)
            yield orphan

    for row in rows:
        for orphan in custody_until(row.id):
            yield None, orphan
        custody = Custody(row.id)
        while pending is not None and pending.recording_id == row.id:
            custody.add(pending)
            pending = next(events, None)
        yield row, custody
    for orphan in custody_until(None):
        yield None, orphan


def _reason(exc: SQLAlchemyError) -> str:
    """The database's own words, without SQLAlchemy's SQL dump and background link."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig)
    return str(exc).split("\n", 1)[0]


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<unparsable URL>"
