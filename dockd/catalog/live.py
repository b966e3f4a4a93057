"""What the daemon is doing right now, kept in the catalog so `dockctl status` can read it
from another shell (or another host on a shared PostgreSQL catalog).

Progress is not custody: updating an attempt's byte count writes no audit event.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from dockd.catalog.repo import Catalog
from dockd.catalog.schema import (
    AuditEvent,
    Camera,
    Dock,
    DockSession,
    Port,
    Recording,
    TransferAttempt,
)
from dockd.catalog.types import EventKind


@dataclass(frozen=True)
class DockedCamera:
    session_id: int
    serial: str
    model: str
    dock: str | None
    slot: int | None
    docked_at: datetime
    #: the dock host it is docked at (several hosts on one catalog: the whole fleet shows)
    host: str | None = None


@dataclass(frozen=True)
class InFlight:
    attempt_id: int
    serial: str
    recording: str
    size: int
    offset_from: int
    bytes: int
    started_at: datetime


@dataclass(frozen=True)
class RecentError:
    at: datetime
    serial: str
    recording: str
    kind: str
    message: str


@dataclass(frozen=True)
class Notice:
    """A custody event a person should see: a file moved aside, a camera whose listing or
    identity was refused, the chain disagreeing with its witness."""

    at: datetime
    kind: str
    serial: str | None
    #: one line for a person
    message: str


@dataclass(frozen=True)
class LiveStatus:
    docked: list[DockedCamera] = field(default_factory=list)
    in_flight: list[InFlight] = field(default_factory=list)
    recent_errors: list[RecentError] = field(default_factory=list)
    recordings_by_status: dict[str, int] = field(default_factory=dict)
    #: the latest custody notices, newest first
    notices: list[Notice] = field(default_factory=list)


#: custody events `dockctl status` shows, and how each reads
NOTICE_KINDS = (EventKind.QUARANTINED, EventKind.LISTING_REFUSED, EventKind.CAMERA_REFUSED,
                EventKind.WITNESS_DISAGREES, EventKind.COPY_DAMAGED)


def notice_text(kind: str, details: dict[str, Any]) -> str:
    if kind == EventKind.QUARANTINED:
        return (f"{details.get('from')} moved aside to {details.get('to')}: "
                f"{details.get('reason')}")
    if kind == EventKind.LISTING_REFUSED:
        return f"nothing listed: {details.get('reason')}"
    if kind == EventKind.CAMERA_REFUSED:
        return (f"slot {details.get('slot')} ({details.get('port')}): camera refused: "
                f"{details.get('reason')}")
    if kind == EventKind.WITNESS_DISAGREES:
        return (f"the audit chain (head {details.get('head_seq')}) no longer holds the head "
                f"witnessed at {details.get('anchor_seq')}: restored from a backup, or cut? "
                "dockctl verify names what differs")
    if kind == EventKind.COPY_DAMAGED:
        return f"stored copy damaged, ingested again: {details.get('reason')}"
    return json.dumps(details)


def report_progress(catalog: Catalog, attempt_id: int, transferred: int) -> None:
    """Record how many bytes an open attempt has moved so far (without waiting for a
    catalog server that does not answer: CatalogUnavailable at once)."""
    with catalog.writing(reconnect=False, durable=False) as s:  # progress is not custody
        s.execute(update(TransferAttempt)
                  .where(TransferAttempt.id == attempt_id, TransferAttempt.finished_at.is_(None))
                  .values(bytes=transferred))


def live_status(catalog: Catalog, *, errors: int = 10, notes: int = 20) -> LiveStatus:
    with catalog.reading() as s:
        docked = [
            DockedCamera(sess.id, sess.camera_serial, model, dock, slot, sess.docked_at, host)
            for sess, model, dock, slot, host in s.execute(
                select(DockSession, Camera.model, Dock.name, Port.slot, Dock.host).join(Camera)
                .outerjoin(Port, DockSession.port_id == Port.id)
                .outerjoin(Dock, Port.dock_id == Dock.id)
                .where(DockSession.undocked_at.is_(None)).order_by(DockSession.id))
        ]
        in_flight = [
            InFlight(att.id, rec.camera_serial, rec.camera_name, rec.size, att.offset_from,
                     att.bytes, att.started_at)
            for att, rec in s.execute(
                select(TransferAttempt, Recording).join(Recording)
                .where(TransferAttempt.finished_at.is_(None)).order_by(TransferAttempt.id))
        ]
        recent = [
            RecentError(att.finished_at or att.started_at, rec.camera_serial, rec.camera_name,
                        att.error_kind or "?", att.error_message or "")
            for att, rec in s.execute(
                select(TransferAttempt, Recording).join(Recording)
                .where(TransferAttempt.error_kind.is_not(None))
                .order_by(TransferAttempt.id.desc()).limit(errors))
        ]
        counts = {status: n for status, n in s.execute(
            select(Recording.status, func.count()).group_by(Recording.status))}
        notices = []
        # the newest of each kind from the kind index, then merged: `kind IN (...) ORDER BY
        # seq DESC` made SQLite walk the whole chain backwards when there are few or none
        # (4.4 s on a fleet-year catalog's 7.2 M events)
        newest = sorted((ev for kind in NOTICE_KINDS for ev in s.execute(
            select(AuditEvent).where(AuditEvent.kind == str(kind))
            .order_by(AuditEvent.seq.desc()).limit(notes)).scalars()),
            key=lambda ev: ev.seq, reverse=True)[:notes]
        for ev in newest:
            try:
                details = json.loads(ev.details)
            except ValueError:
                details = {}
            notices.append(Notice(ev.at, ev.kind, ev.camera_serial,
                                  notice_text(ev.kind, details if isinstance(details, dict)
                                              else {})))
    return LiveStatus(docked, in_flight, recent, counts, notices)


def close_stale(catalog: Catalog) -> tuple[int, int]:
    """At start: sessions and attempts a previous run of this host left open (it was killed)
    are closed with a reason, so status never shows ghosts and history stays honest.

    Only this host's: on a catalog several hosts share, another host's open sessions are
    live work (a session is this host's when its dock is, or — one without a dock port —
    when its `docked` event was written here)."""
    host = catalog.host
    with catalog.reading() as s:
        found = s.execute(
            select(DockSession.id, DockSession.camera_serial, Dock.host)
            .outerjoin(Port, DockSession.port_id == Port.id)
            .outerjoin(Dock, Port.dock_id == Dock.id)
            .where(DockSession.undocked_at.is_(None))).all()
        portless = {sid: serial for sid, serial, dock_host in found if dock_host is None}
        docked_by: dict[int, str] = {}
        if portless:
            for ev_host, details in s.execute(
                    select(AuditEvent.host, AuditEvent.details)
                    .where(AuditEvent.kind == str(EventKind.DOCKED),
                           AuditEvent.camera_serial.in_(set(portless.values())))):
                with contextlib.suppress(ValueError, AttributeError, TypeError):
                    docked_by[int(json.loads(details).get("session"))] = ev_host
        sessions = [sid for sid, _, dock_host in found
                    if (dock_host if dock_host is not None else docked_by.get(sid)) == host]
        # every open attempt of this host's docks, not only those of open sessions: a
        # session the catalog cut short (a PostgreSQL restart) may have closed while its
        # attempt's own end was lost; nothing of this host runs before this
        attempts = [(row.id, row.bytes) for row in s.execute(
            select(TransferAttempt.id, TransferAttempt.bytes)
            .outerjoin(DockSession, TransferAttempt.session_id == DockSession.id)
            .outerjoin(Port, DockSession.port_id == Port.id)
            .outerjoin(Dock, Port.dock_id == Dock.id)
            .where(TransferAttempt.finished_at.is_(None),
                   (Dock.host == host) | TransferAttempt.session_id.in_(sessions)))]
    for attempt_id, moved in attempts:
        catalog.finish_attempt(attempt_id, bytes_transferred=moved, error_kind="interrupted",
                               error_message="dockd stopped during the transfer; it resumes "
                                             "from its last checkpoint")
    for session_id in sessions:
        catalog.end_session(session_id, outcome="daemon_restarted")
    return len(sessions), len(attempts)
