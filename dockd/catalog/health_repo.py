"""The catalog's health records: per-dock captures, shift logs, transfer history, findings.

`catalog.health`: composed into `Catalog` (its transactions and audit trail through public
methods), kept apart so the custody code in `repo.py` stays about custody. docs/health.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from dockd.catalog.repo import Catalog

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from dockd.catalog.rows import (
    CaptureRow,
    DockedChargeRow,
    FindingDraft,
    FindingRecord,
    ShiftEventRow,
    ShiftSampleRow,
    TransferRecord,
    to_row,
)
from dockd.catalog.schema import (
    Dock,
    DockCapture,
    DockedChargeReading,
    DockSession,
    HealthFinding,
    Port,
    Recording,
    ShiftEventRecord,
    ShiftSampleRecord,
    TransferAttempt,
)
from dockd.catalog.types import AttemptOutcome, EventKind
from dockd.errors import CatalogError
from dockd.model import BatterySnapshot, ShiftEvent, ShiftSample

_T = TypeVar("_T")


def _once_more_on_conflict(write: Callable[[], _T]) -> _T:
    """Run a write; once more when it lost a race on a unique key. On PostgreSQL two hosts
    (clones of one serial docked at two hosts, both hosts refreshing the fleet's findings)
    may insert the same shift-log entry or finding at once: the loser's transaction is rolled
    back whole, and its second try sees the winner's rows and skips or updates them. (On
    SQLite the write lock serialises writers, so the first try never loses.)"""
    try:
        return write()
    except CatalogError as exc:
        if not isinstance(exc.__cause__, IntegrityError):
            raise
    return write()


class HealthRecords:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    # --- capture ------------------------------------------------------------------------

    def record_capture(
        self,
        serial: str,
        *,
        session_id: int | None,
        at: datetime,
        clock_offset_s: float,
        clock_set: Mapping[str, Any] | None = None,
        battery: BatterySnapshot | None = None,
        storage: tuple[int, int] | None = None,
        samples: Sequence[tuple[datetime, ShiftSample]] = (),
        events: Sequence[tuple[datetime, ShiftEvent]] = (),
    ) -> tuple[CaptureRow, int, int]:
        """Store one dock's capture in one transaction; return it and how many shift samples
        and events were new (a camera that keeps its log across docks repeats old entries).

        `samples`/`events` pair each entry with its host time. `clock_set`, when the camera's
        clock was set, is the `clock_set` audit event's details, appended in the same
        transaction. `storage` is (total, free) bytes of the host store.
        """
        return _once_more_on_conflict(lambda: self._record_capture(
            serial, session_id=session_id, at=at, clock_offset_s=clock_offset_s,
            clock_set=clock_set, battery=battery, storage=storage, samples=samples,
            events=events))

    def _record_capture(
        self, serial: str, *, session_id: int | None, at: datetime, clock_offset_s: float,
        clock_set: Mapping[str, Any] | None, battery: BatterySnapshot | None,
        storage: tuple[int, int] | None, samples: Sequence[tuple[datetime, ShiftSample]],
        events: Sequence[tuple[datetime, ShiftEvent]],
    ) -> tuple[CaptureRow, int, int]:
        with self._catalog.writing() as s:
            cap = DockCapture(
                camera_serial=serial, session_id=session_id, at=at,
                clock_offset_s=clock_offset_s, clock_set=clock_set is not None,
                storage_total_bytes=storage[0] if storage else None,
                storage_free_bytes=storage[1] if storage else None,
            )
            if battery is not None:
                cap.soc_percent, cap.voltage_mv = battery.soc_percent, battery.voltage_mv
                cap.current_ma, cap.temperature_c = battery.current_ma, battery.temperature_c
                cap.cycle_count = battery.cycle_count
                cap.design_capacity_mah = battery.design_capacity_mah
                cap.full_charge_capacity_mah = battery.full_charge_capacity_mah
                cap.charging = battery.charging.value
            s.add(cap)
            # already stored = same camera time; only rows from the log's first entry on can
            # be that, so the camera's older history is not read at every dock
            known_samples: set[datetime] = set()
            if samples:
                known_samples = set(s.execute(select(ShiftSampleRecord.camera_at).where(
                    ShiftSampleRecord.camera_serial == serial,
                    ShiftSampleRecord.camera_at >= min(x.at for _, x in samples))).scalars())
            new_samples = 0
            for host_at, sample in samples:
                if sample.at in known_samples:
                    continue
                known_samples.add(sample.at)
                new_samples += 1
                s.add(ShiftSampleRecord(
                    camera_serial=serial, session_id=session_id, at=host_at, camera_at=sample.at,
                    soc_percent=sample.soc_percent, voltage_mv=sample.voltage_mv,
                    current_ma=sample.current_ma, temperature_c=sample.temperature_c))
            known_events: set[tuple[datetime, str]] = set()
            if events:
                known_events = {(at, kind) for at, kind in s.execute(
                    select(ShiftEventRecord.camera_at, ShiftEventRecord.kind).where(
                        ShiftEventRecord.camera_serial == serial,
                        ShiftEventRecord.camera_at >= min(x.at for _, x in events)))}
            new_events = 0
            for host_at, event in events:
                ident = (event.at, event.kind.value)
                if ident in known_events:
                    continue
                known_events.add(ident)
                new_events += 1
                s.add(ShiftEventRecord(camera_serial=serial, session_id=session_id, at=host_at,
                                       camera_at=event.at, kind=event.kind.value))
            s.flush()
            if clock_set is not None:
                self._catalog.append_event(s, EventKind.CLOCK_SET, camera_serial=serial,
                                           details=clock_set)
            return to_row(CaptureRow, cap), new_samples, new_events

    # --- reading ------------------------------------------------------------------------

    def captures(self, camera: str | None = None, *, since: datetime | None = None
                 ) -> list[CaptureRow]:
        """Dock captures, oldest first (of one camera, and from `since`, when given)."""
        with self._catalog.reading() as s:
            q = select(DockCapture).order_by(DockCapture.at, DockCapture.id)
            if camera is not None:
                q = q.where(DockCapture.camera_serial == camera)
            if since is not None:
                q = q.where(DockCapture.at >= since)
            return [to_row(CaptureRow, c) for c in s.execute(q).scalars()]

    def shift_samples(self, camera: str, *, since: datetime | None = None
                      ) -> list[ShiftSampleRow]:
        with self._catalog.reading() as s:
            q = select(ShiftSampleRecord).where(ShiftSampleRecord.camera_serial == camera)
            if since is not None:
                q = q.where(ShiftSampleRecord.at >= since)
            rows = s.execute(q.order_by(ShiftSampleRecord.at)).scalars()
            return [to_row(ShiftSampleRow, r) for r in rows]

    def shift_events(self, camera: str, *, since: datetime | None = None) -> list[ShiftEventRow]:
        with self._catalog.reading() as s:
            q = select(ShiftEventRecord).where(ShiftEventRecord.camera_serial == camera)
            if since is not None:
                q = q.where(ShiftEventRecord.at >= since)
            rows = s.execute(q.order_by(ShiftEventRecord.at, ShiftEventRecord.id)).scalars()
            return [to_row(ShiftEventRow, r) for r in rows]

    def transfer_records(self, *, since: datetime | None = None) -> list[TransferRecord]:
        """Finished transfer attempts with their camera and dock port, oldest first."""
        with self._catalog.reading() as s:
            # columns, not ORM entities: a fleet-year's 30 days are ~125,000 attempts, and
            # building (and identity-mapping) an entity for each cost more than the query
            q = (
                select(Recording.camera_serial, TransferAttempt.recording_id,
                       TransferAttempt.session_id, Dock.name, Port.slot,
                       TransferAttempt.started_at, TransferAttempt.finished_at,
                       TransferAttempt.bytes, TransferAttempt.outcome,
                       TransferAttempt.error_kind)
                .join(Recording, Recording.id == TransferAttempt.recording_id)
                .outerjoin(DockSession, DockSession.id == TransferAttempt.session_id)
                .outerjoin(Port, Port.id == DockSession.port_id)
                .outerjoin(Dock, Dock.id == Port.dock_id)
                .where(TransferAttempt.finished_at.is_not(None))
                .order_by(TransferAttempt.id)
            )
            if since is not None:
                q = q.where(TransferAttempt.started_at >= since)
            ok = AttemptOutcome.OK.value
            out = []
            for (serial, rec_id, session_id, dock, slot, started, finished, nbytes, outcome,
                 error_kind) in s.execute(q):
                assert finished is not None  # the WHERE above
                out.append(TransferRecord(
                    camera_serial=serial, recording_id=rec_id, session_id=session_id,
                    dock=dock, slot=slot, started_at=started.astimezone(UTC),
                    finished_at=finished.astimezone(UTC), bytes=nbytes, ok=outcome == ok,
                    error_kind=error_kind))
            return out

    # --- charging watched while docked (migration 0008_docked_charge) ------------------

    def record_docked_charge(self, serial: str, *, session_id: int | None, at: datetime,
                             battery: BatterySnapshot | None, docked: bool = True) -> None:
        """One battery reading of a camera still on the dock; `docked=False` (no battery):
        it left the dock at `at`."""
        with self._catalog.writing() as s:
            row = DockedChargeReading(camera_serial=serial, session_id=session_id, at=at,
                                      docked=docked)
            if battery is not None:
                row.soc_percent, row.voltage_mv = battery.soc_percent, battery.voltage_mv
                row.current_ma, row.temperature_c = battery.current_ma, battery.temperature_c
                row.charging = battery.charging.value
            s.add(row)

    def docked_charge(self, camera: str | None = None, *, since: datetime | None = None,
                      until: datetime | None = None) -> list[DockedChargeRow]:
        """Readings while docked (and leavings), oldest first, with the session's port."""
        with self._catalog.reading() as s:
            q = (select(DockedChargeReading, Dock.name, Port.slot)
                 .outerjoin(DockSession, DockSession.id == DockedChargeReading.session_id)
                 .outerjoin(Port, Port.id == DockSession.port_id)
                 .outerjoin(Dock, Dock.id == Port.dock_id)
                 .order_by(DockedChargeReading.at, DockedChargeReading.id))
            if camera is not None:
                q = q.where(DockedChargeReading.camera_serial == camera)
            if since is not None:
                q = q.where(DockedChargeReading.at >= since)
            if until is not None:
                q = q.where(DockedChargeReading.at <= until)
            return [DockedChargeRow(
                camera_serial=r.camera_serial, session_id=r.session_id, dock=dock, slot=slot,
                at=r.at.astimezone(UTC), docked=r.docked, soc_percent=r.soc_percent,
                voltage_mv=r.voltage_mv, current_ma=r.current_ma,
                temperature_c=r.temperature_c, charging=r.charging)
                for r, dock, slot in s.execute(q).all()]

    def prune_docked_charge(self, serial: str, *, before: datetime) -> int:
        """Forget a camera's readings on the dock older than `before` (they are read for the
        current stay only; a camera docked every night would pile up a row a minute)."""
        with self._catalog.writing() as s:
            gone = s.execute(delete(DockedChargeReading).where(
                DockedChargeReading.camera_serial == serial,
                DockedChargeReading.at < before))
            return int(getattr(gone, "rowcount", 0) or 0)

    def latest_at(self) -> datetime | None:
        """The newest time the catalog recorded a dock, a capture or a reading: "now" for
        a catalog a simulation filled on a calendar ahead of the wall clock."""
        with self._catalog.reading() as s:
            times = [s.execute(select(func.max(col))).scalar() for col in (
                DockSession.docked_at, DockSession.undocked_at, DockCapture.at,
                DockedChargeReading.at)]
        found = [t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)
                 for t in times if t is not None]
        return max(found) if found else None

    # --- findings -----------------------------------------------------------------------

    def findings(self, *, active_only: bool = True) -> list[FindingRecord]:
        with self._catalog.reading() as s:
            q = select(HealthFinding).order_by(HealthFinding.id)
            if active_only:
                q = q.where(HealthFinding.cleared_at.is_(None))
            return [to_row(FindingRecord, f) for f in s.execute(q).scalars()]

    def sync_findings(self, current: Sequence[FindingDraft]
                      ) -> tuple[list[FindingRecord], list[FindingRecord]]:
        """Make the stored findings what `current` says; return (raised, cleared).

        Raised: new, back after being cleared, or changed severity. Cleared: stored as active
        but no longer in `current`. Evidence of a still-active finding is refreshed silently.
        """
        return _once_more_on_conflict(lambda: self._sync_findings(current))

    def _sync_findings(self, current: Sequence[FindingDraft]
                       ) -> tuple[list[FindingRecord], list[FindingRecord]]:
        now = self._catalog.now()
        raised: list[FindingRecord] = []
        cleared: list[FindingRecord] = []
        with self._catalog.writing() as s:
            stored = {f.key: f for f in s.execute(select(HealthFinding)).scalars()}
            wanted = {d.key: d for d in current}
            for key, draft in wanted.items():
                row = stored.get(key)
                if row is None:
                    row = HealthFinding(key=key, raised_at=now)
                    s.add(row)
                    is_news = True
                else:
                    is_news = row.cleared_at is not None or row.severity != draft.severity
                    if row.cleared_at is not None:
                        row.raised_at = now
                row.code, row.subject, row.severity = draft.code, draft.subject, draft.severity
                row.summary, row.advice, row.evidence = draft.summary, draft.advice, draft.evidence
                row.updated_at, row.cleared_at = now, None
                s.flush()
                if is_news:
                    raised.append(to_row(FindingRecord, row))
            for key, row in stored.items():
                if key not in wanted and row.cleared_at is None:
                    row.cleared_at = now
                    s.flush()
                    cleared.append(to_row(FindingRecord, row))
        return raised, cleared

