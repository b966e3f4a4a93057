"""One dock session: a docked camera's listing, each recording stored-and-verified or failed
(or refused) with a reason, in the order of commitment — intent → file durable → catalog row →
proven → delete on camera. The custody of each recording is `dockd.custody`'s.

Nothing here knows a vendor or USB: it drives a `CameraSession` and the custodian.
Whatever raises, wherever: the session row is closed and its `dock_session` line written,
with the audit head, which also goes to the store's anchor file (dockd/anchors.py).

Why ~480 lines: the session's reconciliation (listed, known, stored, deleted, refused,
failed, and the reason for each) is one account and is kept in one place.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from dockd.anchors import append_anchor
from dockd.catalog import Catalog
from dockd.catalog.lease import LeaseOwner, live_token, new_token
from dockd.catalog.live import report_progress
from dockd.catalog.rows import RecordingRow, SessionCounts
from dockd.catalog.types import EventKind, RecordingStatus
from dockd.config import Config
from dockd.crypto.keys import X25519Recipient
from dockd.custody import Custodian, Hooks, Interrupted, Outcome, Proof
from dockd.driver import CameraSession
from dockd.errors import (
    CatalogError,
    CatalogUnavailable,
    DeviceError,
    DeviceGone,
    DockdError,
    LeaseHeld,
    Unsupported,
)
from dockd.events import AnyRef
from dockd.health.capture import DiskUsageFn, capture_dock
from dockd.model import (
    BatterySnapshot,
    CameraIdentity,
    ListingEntry,
    RecordingInfo,
    RefusedRecording,
    ShiftLog,
)

log = structlog.get_logger(__name__)
S = RecordingStatus

ProgressFn = Callable[["Progress"], None]
#: how often an open attempt's byte count is written to the catalog
PROGRESS_EVERY_S = 1.0
#: how long a session waits for another session (a cloned serial) to finish a recording
LEASE_WAIT_S = 900.0
LEASE_POLL_S = 0.5

__all__ = ["DockSessionRunner", "IngestContext", "Interrupted", "Progress", "ProgressFn",
           "SessionReport", "run_dock_session"]


@dataclass
class Progress:
    """What the console and `dockctl status` show for a camera (mutable, one per session).

    `state` is what the session does now: identifying, listing, transferring, retrying,
    a local step's name (proving, checking resume, …), then the session's outcome."""

    slot: int
    #: the worker's name (`DeviceRef.worker`): what the watchdog's liveness tracks
    worker: str = ""
    serial: str = "?"
    recording: str = ""
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    rate_mb_s: float = 0.0
    battery_percent: float | None = None
    state: str = "identifying"
    #: the recording's place in the camera's listing: file `file_index` of `file_count`
    file_index: int = 0
    file_count: int = 0
    #: when bytes last arrived (time.monotonic): a transfer silent for a while is stalled
    moved_at: float = field(default_factory=time.monotonic)
    #: while retrying: when the next attempt starts (time.monotonic)
    retry_at: float | None = None
    #: why the last attempt failed (retrying), or what the session ended with
    reason: str = ""


@dataclass
class IngestContext:
    config: Config
    catalog: Catalog
    recipients: list[X25519Recipient]
    dock_name: str
    stop: Any = field(default_factory=threading.Event)
    on_progress: ProgressFn | None = None
    #: host storage reading for health capture; None = the real disk (tests inject days)
    disk_usage: DiskUsageFn | None = None


@dataclass
class SessionReport:
    """The reconciliation of one dock session."""

    serial: str
    slot: int
    listed: int = 0
    already_known: int = 0
    stored: int = 0
    deleted: int = 0
    refused: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    outcome: str = "complete"
    #: why nothing of the camera was listed (its listing could not be read)
    refusal: str | None = None
    #: some recording stays on the camera because the store is full; the supervisor docks
    #: the camera again in software once space returns
    waiting_for_space: bool = False

    @property
    def complete(self) -> bool:
        """Every listed recording is stored and verified (now or earlier)."""
        return not self.failures and self.outcome == "complete"

    def summary(self) -> str:
        """What a person reads in `--once`'s exit line."""
        if self.refusal is not None:
            return f"nothing listed: {self.refusal}"
        return f"{self.outcome}, {len(self.failures)} of {self.listed} listed not stored"


class DockSessionRunner:
    """Runs one camera's dock session. Device errors end the session, never the daemon."""

    def __init__(self, ctx: IngestContext, ref: AnyRef, session: CameraSession,
                 driver_name: str) -> None:
        self.ctx = ctx
        self.ref = ref
        self.session = session
        self.driver_name = driver_name
        self.progress = Progress(slot=ref.slot, worker=ref.worker)
        self.owner = LeaseOwner.here(ctx.catalog.host, new_token())
        self._attempt: tuple[int, int] = (0, 0)
        self._progress_saved = 0.0
        self.log = log.bind(slot=ref.slot, port=ref.port_path, driver=driver_name)
        self.custodian = Custodian(
            ctx.config, ctx.catalog, ctx.recipients, session, self.owner, ctx.stop,
            Hooks(started=self._attempt_started, on_bytes=self._on_bytes, beat=self._beat,
                  retrying=self._retrying),
            self.log)

    @property
    def store_full(self) -> bool:
        return self.custodian.store_full

    # --- the session ---------------------------------------------------------------------

    def run(self) -> SessionReport:
        with live_token(self.owner.token):  # the lease owner lives as long as this session
            return self._run()

    def _run(self) -> SessionReport:
        catalog = self.ctx.catalog
        identity = self.session.identity()
        host_now = catalog.now()  # as close to the camera's clock reading as we can get
        self.log = self.log.bind(serial=identity.serial)
        self.custodian.log = self.log
        self.progress.serial = identity.serial
        report = SessionReport(serial=identity.serial, slot=self.ref.slot)
        catalog.upsert_camera(identity)
        dock_session = catalog.start_session(identity.serial, dock=self.ctx.dock_name,
                                             slot=self.ref.slot)
        listing: list[ListingEntry] = []
        try:
            battery = self._log_docked(identity)
            self._capture_health(identity, battery, dock_session.id, host_now)
            listing = self._list(report)
            self._ingest_all(listing, dock_session.id, report)
            if not self.ctx.stop.is_set():
                self._confirm_deletions(report.serial, listing)
        except DeviceGone as exc:
            report.outcome = "camera_gone"
            self._account_rest(listing, report, f"camera left the dock: {exc}")
        except Interrupted:
            report.outcome = "interrupted"
            self._account_rest(listing, report, "dockd stopped; resumes at the next start")
        except DeviceError as exc:
            report.outcome = "device_error"
            self._account_rest(listing, report, f"{exc.kind}: {exc}")
            self.log.warning("dock_session_device_error", error_kind=exc.kind, error=str(exc))
        except BaseException:
            report.outcome = "internal_error"  # never booked "complete"; the supervisor says why
            raise
        finally:
            self._close(report, dock_session.id)
        return report

    def _close(self, report: SessionReport, session_id: int) -> None:
        """End the session row, witness the audit head, write the `dock_session` line —
        each step on its own, so a failing catalog still leaves the line in the journal."""
        catalog = self.ctx.catalog
        if self.ctx.stop.is_set() and report.outcome == "complete" and report.failures:
            report.outcome = "interrupted"
        if report.outcome == "complete" and report.failures:
            report.outcome = "incomplete"
        report.waiting_for_space = self.store_full
        fields: dict[str, Any] = {}
        try:
            catalog.end_session(session_id, outcome=report.outcome, refusal=report.refusal,
                                counts=SessionCounts(
                                    listed=report.listed, already_known=report.already_known,
                                    stored=report.stored, deleted=report.deleted,
                                    failed=len(report.failures)))
        except DockdError as exc:
            fields["session_not_closed"] = f"{type(exc).__name__}: {exc}"
        try:
            seq, head = catalog.durable_head()  # the witness names only what is on disk
            fields |= {"audit_seq": seq, "audit_head": head}
            append_anchor(self.ctx.config.storage.path, seq, head)
        except DockdError as exc:
            fields["anchor_not_written"] = f"{type(exc).__name__}: {exc}"
        self.progress.state, self.progress.retry_at = report.outcome, None
        self.progress.reason = report.refusal or "; ".join(
            f"{name}: {why}" for name, why in report.failures.items())
        with contextlib.suppress(Exception):  # a broken console must not hide the line
            self._notify()
        self.log.info(
            "dock_session", outcome=report.outcome, waiting_for_space=report.waiting_for_space,
            listed=report.listed, already_known=report.already_known, stored=report.stored,
            deleted=report.deleted, refused=report.refused, failed=len(report.failures),
            failures=[f"{name}: {why}" for name, why in report.failures.items()],
            **({"refusal": report.refusal} if report.refusal else {}), **fields,
        )

    def _list(self, report: SessionReport) -> list[ListingEntry]:
        """The camera's listing; one it cannot give is the camera's refusal, with its reason
        in the catalog (the session, an audit event), not an empty success."""
        self.progress.state = "listing"
        self._notify()
        try:
            listing = self.session.recordings()
        except DeviceGone:
            raise
        except DeviceError as exc:
            report.outcome = "listing_refused"
            report.refusal = f"{exc.kind}: {exc}"
            self.log.error("listing_refused", error_kind=exc.kind, error=str(exc))
            with contextlib.suppress(CatalogError):
                self.ctx.catalog.record_event(EventKind.LISTING_REFUSED,
                                              camera_serial=report.serial,
                                              details={"reason": report.refusal,
                                                       "slot": self.ref.slot})
            return []
        report.listed = len(listing)
        return listing

    def _ingest_all(self, listing: list[ListingEntry], session_id: int,
                    report: SessionReport) -> None:
        waiting: list[RecordingInfo] = []
        self.progress.file_count = len(listing)
        # the listing's new rows in one transaction, not one each (their `listed` events
        # ride with the first intent's durable commit: Catalog.list_recordings)
        infos = [entry for entry in listing if isinstance(entry, RecordingInfo)]
        rows = (dict(zip(map(id, infos), self.ctx.catalog.list_recordings(report.serial, infos),
                         strict=True)) if infos and not self.ctx.stop.is_set() else {})
        for index, entry in enumerate(listing, 1):
            self.progress.file_index = index
            if self.ctx.stop.is_set():
                report.failures.setdefault(_name(entry), "not attempted: dockd was stopping")
                continue
            if isinstance(entry, RefusedRecording):
                self._refuse(entry, report)
            elif not self._handle(entry, session_id, report, rows.get(id(entry))):
                waiting.append(entry)
        self._wait_for_owners(waiting, session_id, report)

    def _wait_for_owners(self, waiting: list[RecordingInfo], session_id: int,
                         report: SessionReport) -> None:
        """Recordings another live session writes (a cloned serial docked at the same time):
        wait for it to finish, then take them up as already known (or transfer what it could
        not). Never touch its files meanwhile."""
        deadline = time.monotonic() + LEASE_WAIT_S
        while waiting and not self.ctx.stop.is_set() and time.monotonic() < deadline:
            self._beat("waiting for another session")
            time.sleep(LEASE_POLL_S)
            waiting = [info for info in waiting if not self._handle(info, session_id, report)]
        for info in waiting:
            report.failures[info.name] = (
                "another dock session (a camera with the same serial) was still writing it; "
                "stays on the camera, taken up at the next dock")

    def _refuse(self, entry: RefusedRecording, report: SessionReport) -> None:
        rec = self.ctx.catalog.refuse_recording(report.serial, entry)
        report.refused += 1
        report.failures[entry.label] = f"refused: {entry.reason}; stays on the camera"
        self.log.warning("recording_refused", recording=entry.label, recording_id=rec.id,
                         error_kind="refused", error=entry.reason)

    def _account_rest(self, listing: list[ListingEntry], report: SessionReport,
                      reason: str) -> None:
        """After the camera went away, every recording not yet accounted for gets the reason."""
        for entry in listing:
            if isinstance(entry, RefusedRecording) or entry.name in report.failures:
                continue
            try:
                rec = self.ctx.catalog.recording_for(report.serial, entry)
            except CatalogError:
                report.failures.setdefault(entry.name, reason)
                continue
            if rec.status not in (S.VERIFIED, S.DELETED_FROM_CAMERA):
                report.failures.setdefault(entry.name, reason)

    def _confirm_deletions(self, serial: str, listing: list[ListingEntry]) -> None:
        """A crash between the camera's delete and its catalog entry leaves a recording
        `verified` that the camera no longer lists: book the delete now that the camera's
        whole listing shows it gone."""
        if not self.ctx.config.ingest.delete_after_ingest or any(
                isinstance(i, RefusedRecording) for i in listing):
            return  # a refused entry may be one of them under a name it no longer passes
        listed = {(i.name, i.started, i.size, i.sha256_hex) for i in listing
                  if isinstance(i, RecordingInfo)}
        for rec in self.ctx.catalog.recordings(camera=serial, status=S.VERIFIED):
            if (rec.camera_name, rec.started, rec.size, rec.camera_sha256) not in listed:
                self.ctx.catalog.mark_deleted_from_camera(rec.id)
                self.log.info("camera_delete_confirmed", recording=rec.camera_name,
                              recording_id=rec.id)

    def _log_docked(self, identity: CameraIdentity) -> BatterySnapshot | None:
        fields: dict[str, object] = {"model": identity.model, "firmware": identity.firmware,
                                     "camera_clock": identity.clock.isoformat()}
        battery: BatterySnapshot | None = None
        try:
            battery = self.session.battery()
        except DeviceGone:
            raise
        except Unsupported:
            fields["battery"] = "not reported by this kind of camera"
        except DeviceError as exc:
            fields["battery_error"] = f"{exc.kind}: {exc}"
        else:
            self.progress.battery_percent = battery.soc_percent
            fields |= {"battery_percent": battery.soc_percent, "battery_mv": battery.voltage_mv,
                       "battery_temp_c": battery.temperature_c}
        self.log.info("camera_docked", **fields)
        return battery

    def _capture_health(self, identity: CameraIdentity, battery: BatterySnapshot | None,
                        session_id: int, host_now: datetime) -> None:
        """Battery snapshot, shift log and clock offset into the catalog (docs/health.md).
        Health never stands in the way of ingest: only a camera leaving ends the session."""
        shift_log: ShiftLog | None = None
        try:
            shift_log = self.session.shift_log()
        except DeviceGone:
            raise
        except Unsupported:
            pass  # a camera without a shift log (a mass-storage volume): nothing to say
        except DeviceError as exc:
            self.log.warning("shift_log_unreadable", error_kind=exc.kind, error=str(exc))
        try:  # capture_dock logs the one `health_capture` line
            capture_dock(
                self.ctx.catalog, serial=identity.serial, session_id=session_id,
                identity=identity, battery=battery, shift_log=shift_log, host_now=host_now,
                config=self.ctx.config, set_clock=self.session.set_clock,
                **({"disk_usage": self.ctx.disk_usage} if self.ctx.disk_usage else {}))
        except CatalogError as exc:
            self.log.error("health_capture_failed", error=str(exc))

    # --- one recording ------------------------------------------------------------------

    def _handle(self, info: RecordingInfo, session_id: int, report: SessionReport,
                listed: RecordingRow | None = None) -> bool:
        """Settle one listed recording; False when another live session holds it (try
        again later), True when it is accounted for (stored, known, or failed with a reason).
        `listed`: its row as the listing found or made it; read again unless `pending` (the
        checks below act on other statuses only, and the lease reads it fresh anyway)."""
        catalog = self.ctx.catalog
        rec = (listed if listed is not None and listed.status is S.PENDING
               else catalog.recording_for(report.serial, info))
        if rec.status is S.REFUSED:  # a name once refused that now passes: still refused
            report.failures[info.name] = rec.failure_reason or "refused"
            return True
        deleting = self.ctx.config.ingest.delete_after_ingest
        if not deleting and rec.status in (S.VERIFIED, S.DELETED_FROM_CAMERA):
            report.already_known += 1
            return True
        try:
            with self.custodian.lease(rec.id) as rec:
                known = rec.status in (S.VERIFIED, S.DELETED_FROM_CAMERA, S.STORED)
                out = self.custodian.settle(info, rec, session_id)
                if out.rec.status not in (S.VERIFIED, S.DELETED_FROM_CAMERA):
                    report.failures[info.name] = (out.failure or out.rec.failure_reason
                                                  or "not stored")
                    return True
                if deleting:
                    out, failure = self._prove_and_delete(info, out, session_id, report)
                    if failure is not None:
                        report.failures[info.name] = failure
                        return True
                if known and not out.stored:
                    report.already_known += 1
                else:
                    report.stored += 1
                return True
        except LeaseHeld as exc:
            self.log.info("recording_held_by_another_session", recording=info.name,
                          recording_id=rec.id, holder=str(exc))
            return False

    def _prove_and_delete(self, info: RecordingInfo, out: Outcome, session_id: int,
                          report: SessionReport) -> tuple[Outcome, str | None]:
        """Delete on the camera only after proving, in this session, that the stored copy is
        the one the chain records. A failed proof keeps the camera's copy and ingests the
        recording again (once) before the delete is tried."""
        proof = self.custodian.prove_copy(out.rec, out.fresh)
        if isinstance(proof, str):
            return out, proof
        if not proof.ok:
            rec = self.custodian.record_damage(out.rec, proof)
            out = self.custodian.transfer(info, rec, session_id)
            if out.rec.status is not S.VERIFIED:
                return out, out.failure or out.rec.failure_reason or "not stored"
            proof = self.custodian.prove_copy(out.rec, out.fresh)
            if isinstance(proof, str) or not proof.ok:
                return out, proof if isinstance(proof, str) else proof.reason
        if self._delete_on_camera(info):
            self._book_delete(out, proof, info)
            report.deleted += 1
        return out, None

    def _book_delete(self, out: Outcome, proof: Proof, info: RecordingInfo) -> None:
        catalog = self.ctx.catalog
        if out.rec.status is S.DELETED_FROM_CAMERA:
            # the catalog said deleted but the camera still listed it: deleted again, proven
            catalog.record_event(EventKind.DELETED_FROM_CAMERA,
                                 camera_serial=out.rec.camera_serial, recording_id=out.rec.id,
                                 details={"name": info.name, "repeated": True,
                                          "proof": proof.details()})
            self.log.info("camera_delete_repeated", recording=info.name,
                          recording_id=out.rec.id, proof=proof.how)
        else:
            catalog.mark_deleted_from_camera(out.rec.id, proof=proof.details())

    def _delete_on_camera(self, info: RecordingInfo) -> bool:
        """Delete on the camera (only ever called right after a proof); a refusal is logged
        and the recording is deleted at the next dock instead. A camera leaving ends the
        session."""
        try:
            self.session.delete_recording(info.name)
        except DeviceGone:
            raise
        except DeviceError as exc:
            self.log.warning("camera_delete_failed", recording=info.name, error_kind=exc.kind,
                             error=str(exc))
            return False
        return True

    # --- progress and liveness ------------------------------------------------------------

    def _attempt_started(self, name: str, size: int, offset: int, attempt_id: int) -> None:
        self._attempt = (attempt_id, offset)
        self.progress.recording, self.progress.total = name, size
        self.progress.done, self.progress.state = offset, "transferring"
        self.progress.started = self.progress.moved_at = time.monotonic()
        self.progress.rate_mb_s, self.progress.retry_at, self.progress.reason = 0.0, None, ""
        self._notify()

    def _retrying(self, reason: str, delay_s: float) -> None:
        self.progress.state, self.progress.reason = "retrying", reason
        self.progress.retry_at = time.monotonic() + delay_s
        self.progress.rate_mb_s = 0.0
        self._notify()

    def _on_bytes(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done != self.progress.done:
            self.progress.moved_at = now
        self.progress.done, self.progress.total = done, total
        elapsed = now - self.progress.started
        attempt_id, offset = self._attempt
        if elapsed > 0:
            self.progress.rate_mb_s = (done - offset) / elapsed / 1e6
        if now - self._progress_saved >= PROGRESS_EVERY_S and attempt_id:
            # for `dockctl status` in another shell; progress is not custody, no audit event
            self._progress_saved = now
            try:
                report_progress(self.ctx.catalog, attempt_id, done - offset)
            except CatalogUnavailable as exc:
                # a catalog server restarting must not cut a transfer for a progress figure;
                # custody (intent, stored, verified) still needs it, and fails there
                self.log.warning("progress_not_recorded", error=str(exc))
        self._notify()

    def _beat(self, what: str) -> None:
        """A long local step (hashing, a resume check, waiting) is alive: tell the watchdog."""
        self.progress.state = what
        self._notify()

    def _notify(self) -> None:
        if self.ctx.on_progress is not None:
            self.ctx.on_progress(self.progress)


def _name(entry: ListingEntry) -> str:
    return entry.label if isinstance(entry, RefusedRecording) else entry.name


def run_dock_session(ctx: IngestContext, ref: AnyRef, session: CameraSession,
                     driver_name: str) -> SessionReport:
    try:
        return DockSessionRunner(ctx, ref, session, driver_name).run()
    finally:
        with contextlib.suppress(DockdError):
            session.close()
