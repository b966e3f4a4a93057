"""One dock session: a docked camera's recordings, each stored-and-verified or failed with a
reason, in the order of commitment — file durable → catalog row → verified → delete on camera.

Nothing here knows a vendor or USB: it drives a `CameraSession` and the pipeline.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog

from dockd.catalog import Catalog
from dockd.catalog.live import report_progress
from dockd.catalog.rows import RecordingRow, SessionCounts
from dockd.catalog.types import RecordingStatus
from dockd.config import Config
from dockd.crypto.keys import X25519Recipient
from dockd.crypto.stream import sealed_size
from dockd.driver import CameraSession, RecordingStream
from dockd.errors import (
    CatalogError,
    DeviceError,
    DeviceGone,
    DockdError,
    StorageError,
    StoreExists,
    StoreFull,
)
from dockd.events import UsbDeviceRef
from dockd.health.capture import DiskUsageFn, capture_dock
from dockd.model import BatterySnapshot, CameraIdentity, RecordingInfo, ShiftLog
from dockd.pipeline import discard_partial, ingest_stream, load_resume
from dockd.store import (
    nearest_existing,
    partial_path,
    recording_dir,
    sanitise,
    sha256_file,
    sidecar_path,
)

log = structlog.get_logger(__name__)

ProgressFn = Callable[["Progress"], None]
#: how often an open attempt's byte count is written to the catalog
PROGRESS_EVERY_S = 1.0


class Interrupted(DeviceError):
    """The daemon is stopping: the transfer is checkpointed and resumes next time."""

    kind = "interrupted"


@dataclass
class Progress:
    """What the console and `dockctl status` show for a camera (mutable, one per session)."""

    slot: int
    serial: str = "?"
    recording: str = ""
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    rate_mb_s: float = 0.0
    battery_percent: float | None = None
    state: str = "identifying"


@dataclass
class IngestContext:
    config: Config
    catalog: Catalog
    recipients: list[X25519Recipient]
    dock_name: str
    stop: threading.Event = field(default_factory=threading.Event)
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
    failures: dict[str, str] = field(default_factory=dict)
    outcome: str = "complete"
    #: some recording stays on the camera because the store is full; the supervisor docks
    #: the camera again in software once space returns
    waiting_for_space: bool = False

    @property
    def complete(self) -> bool:
        """Every listed recording is stored and verified (now or earlier)."""
        return not self.failures and self.outcome == "complete"


class _StopAwareStream:
    """Passes reads through, but raises Interrupted once the daemon is asked to stop, so the
    pipeline checkpoints what arrived and the next attempt resumes from there."""

    def __init__(self, inner: RecordingStream, stop: threading.Event) -> None:
        self._inner = inner
        self._stop = stop

    @property
    def offset(self) -> int:
        return self._inner.offset

    @property
    def size(self) -> int:
        return self._inner.size

    def readinto(self, buffer: memoryview) -> int:
        if self._stop.is_set():
            raise Interrupted("dockd is stopping; the transfer will resume from its checkpoint")
        return self._inner.readinto(buffer)

    def close(self) -> None:
        self._inner.close()


def final_path_for(root: Path, catalog_rows: list[RecordingRow], rec: RecordingRow) -> Path:
    """The stored file's path, a function of the catalog alone (so a restart after a crash
    finds the same path): `<serial>/<YYYY>/<MM>/<DD>/<name>.age`. A camera name that needed
    sanitising, or that another recording of the camera shares, gets `~r<id>` — a character
    sanitised names never contain, so the two kinds can never collide."""
    directory = recording_dir(root, rec.camera_serial, rec.started)
    safe = sanitise(rec.camera_name)
    shared = any(r.camera_name == rec.camera_name and r.id < rec.id for r in catalog_rows)
    if safe == rec.camera_name and not shared:
        return directory / f"{safe}.age"
    return directory / f"{sanitise(rec.camera_name, max_len=100)}~r{rec.id}.age"


class DockSessionRunner:
    """Runs one camera's dock session. Device errors end the session, never the daemon."""

    def __init__(self, ctx: IngestContext, ref: UsbDeviceRef, session: CameraSession,
                 driver_name: str) -> None:
        self.ctx = ctx
        self.ref = ref
        self.session = session
        self.driver_name = driver_name
        self.progress = Progress(slot=ref.slot)
        #: set when a recording could not be stored for lack of space (retried when it returns)
        self.store_full = False
        self._attempt: tuple[int, int] = (0, 0)
        self._progress_saved = 0.0
        self.log = log.bind(slot=ref.slot, port=ref.port_path, driver=driver_name)

    # --- the session ---------------------------------------------------------------------

    def run(self) -> SessionReport:
        catalog = self.ctx.catalog
        identity = self.session.identity()
        host_now = catalog.now()  # as close to the camera's clock reading as we can get
        self.log = self.log.bind(serial=identity.serial)
        self.progress.serial = identity.serial
        report = SessionReport(serial=identity.serial, slot=self.ref.slot)
        catalog.upsert_camera(identity)
        dock_session = catalog.start_session(identity.serial, dock=self.ctx.dock_name,
                                             slot=self.ref.slot)
        battery = self._log_docked(identity)
        self._capture_health(identity, battery, dock_session.id, host_now)
        listing: list[RecordingInfo] = []
        try:
            listing = self.session.recordings()
            report.listed = len(listing)
            for info in listing:
                if self.ctx.stop.is_set():
                    report.failures.setdefault(info.name, "not attempted: dockd was stopping")
                    continue
                self._handle(info, dock_session.id, report)
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
        except Exception:
            report.outcome = "internal_error"  # never booked "complete"; the supervisor says why
            raise
        finally:
            if self.ctx.stop.is_set() and report.outcome == "complete" and report.failures:
                report.outcome = "interrupted"
            if report.outcome == "complete" and report.failures:
                report.outcome = "incomplete"
            catalog.end_session(dock_session.id, outcome=report.outcome, counts=SessionCounts(
                listed=report.listed, already_known=report.already_known, stored=report.stored,
                deleted=report.deleted, failed=len(report.failures)))
            report.waiting_for_space = self.store_full
            self.progress.state = report.outcome
            self._notify()
            self.log.info(
                "dock_session", outcome=report.outcome, waiting_for_space=self.store_full,
                listed=report.listed,
                already_known=report.already_known, stored=report.stored,
                deleted=report.deleted, failed=len(report.failures),
                failures=[f"{name}: {why}" for name, why in report.failures.items()],
            )
        return report

    def _account_rest(self, listing: list[RecordingInfo], report: SessionReport,
                      reason: str) -> None:
        """After the camera went away, every recording not yet accounted for gets the reason."""
        for info in listing:
            rec = self.ctx.catalog.recording_for(report.serial, info)
            if rec.status not in (RecordingStatus.VERIFIED, RecordingStatus.DELETED_FROM_CAMERA):
                report.failures.setdefault(info.name, reason)

    def _confirm_deletions(self, serial: str, listing: list[RecordingInfo]) -> None:
        """A crash between the camera's delete and its catalog entry leaves a recording
        `verified` that the camera no longer lists: book the delete now that the camera's
        whole listing shows it gone."""
        if not self.ctx.config.ingest.delete_after_ingest:
            return
        listed = {(i.name, i.started, i.size) for i in listing}
        for rec in self.ctx.catalog.recordings(camera=serial, status=RecordingStatus.VERIFIED):
            if (rec.camera_name, rec.started, rec.size) not in listed:
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

    def _handle(self, info: RecordingInfo, session_id: int, report: SessionReport) -> None:
        catalog = self.ctx.catalog
        rec = catalog.recording_for(report.serial, info)
        if rec.camera_sha256 != info.sha256.hex():
            # same serial, name, start and size, other bytes (a cloned camera, a reused
            # name): not the catalogued recording, so never skip or delete it as known
            reason = (f"the catalog holds a different recording with this serial, name, start "
                      f"and size (SHA-256 {rec.camera_sha256}, camera says "
                      f"{info.sha256.hex()}); kept on the camera")
            self.log.error("recording_identity_conflict", recording=info.name,
                           recording_id=rec.id, error=reason)
            report.failures[info.name] = reason
            return
        if rec.status in (RecordingStatus.VERIFIED, RecordingStatus.DELETED_FROM_CAMERA):
            report.already_known += 1
        elif rec.status == RecordingStatus.STORED:
            # a crash came between `stored` and `verified`: check the file, then go on
            rec = self._verify_stored(rec)
            if rec.status != RecordingStatus.VERIFIED:
                report.failures[info.name] = rec.failure_reason or "stored copy not verified"
                return
            report.already_known += 1
        else:
            rec = self._transfer(info, rec, session_id)
            if rec.status != RecordingStatus.VERIFIED:
                report.failures[info.name] = rec.failure_reason or "not stored"
                return
            report.stored += 1
        if not self.ctx.config.ingest.delete_after_ingest:
            return
        if rec.status == RecordingStatus.VERIFIED:
            if self._delete_on_camera(info):
                self.ctx.catalog.mark_deleted_from_camera(rec.id)
                report.deleted += 1
        elif rec.status == RecordingStatus.DELETED_FROM_CAMERA and self._delete_on_camera(info):
            # the catalog says deleted but the camera still listed it: deleted again
            self.log.info("camera_delete_repeated", recording=info.name, recording_id=rec.id)

    def _hash_stored(self, rec: RecordingRow, path: Path) -> str | RecordingRow:
        """The stored file's SHA-256, or, when it cannot be read, the row marked failed."""
        try:
            return sha256_file(path)
        except OSError as exc:
            reason = f"stored file {path} unreadable: {exc.strerror}; kept on the camera"
            self.log.error("stored_file_missing", recording=rec.camera_name, path=str(path),
                           error=reason)
            return self.ctx.catalog.mark_failed(rec.id, reason)

    def _verify_stored(self, rec: RecordingRow) -> RecordingRow:
        assert rec.store_path is not None
        path = Path(rec.store_path)
        actual = self._hash_stored(rec, path)
        if not isinstance(actual, str):
            return actual
        if actual != rec.stored_sha256:
            return self._stored_file_differs(rec, path, actual)
        return self.ctx.catalog.mark_verified(rec.id, stored_sha256=actual)

    def _stored_file_differs(self, rec: RecordingRow, path: Path, actual: str) -> RecordingRow:
        """The file at the recording's path is not the copy the catalog recorded: never
        trust it, never overwrite it; the camera keeps its copy until someone looks."""
        reason = (f"stored file {path} does not match its catalogued SHA-256 "
                  f"({rec.stored_sha256}, file has {actual}); kept on the camera")
        self.log.error("stored_file_mismatch", recording=rec.camera_name, path=str(path),
                       error=reason)
        return self.ctx.catalog.mark_failed(rec.id, reason)

    def _delete_on_camera(self, info: RecordingInfo) -> bool:
        """Delete on the camera (only ever called for a verified copy); a refusal is logged
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

    def _transfer(self, info: RecordingInfo, rec: RecordingRow, session_id: int) -> RecordingRow:
        """Attempts with resume until stored and verified, or failed with the last reason."""
        cfg = self.ctx.config
        catalog = self.ctx.catalog
        root = cfg.storage.path
        # only the camera's rows of the same name matter to the path, not its whole history
        namesakes = catalog.recordings(camera=rec.camera_serial, name=rec.camera_name)
        final = final_path_for(root, namesakes, rec)
        partial = partial_path(final)
        if final.exists():
            # published, then the process died before the catalog heard of it: adopt it
            return self._adopt(rec, final)
        last_reason = "not attempted"
        attempts = 0  # begun, for the reason a technician reads
        for attempt in range(cfg.ingest.max_retries + 1):
            if attempt:
                time.sleep(cfg.ingest.retry_delay_s)
            if self.ctx.stop.is_set():
                raise Interrupted("dockd is stopping")
            if not self._enough_space(root, info.size):
                # not a retry loop: the recording waits on the camera until space returns
                last_reason = (f"store full: less than {cfg.storage.min_free_mib} MiB would "
                               f"remain free after {info.size} bytes; stays on the camera")
                self.log.error("store_full", recording=info.name, error=last_reason)
                self.store_full = True
                break
            resume = load_resume(partial, expected_size=info.size, expected_sha256=info.sha256,
                                 recipients=self.ctx.recipients,
                                 batch_bytes=cfg.ingest.chunk_kib * 1024)
            offset = resume.plaintext_offset if resume else 0
            att = catalog.begin_attempt(rec.id, session_id=session_id, offset_from=offset)
            attempts += 1
            self._attempt = (att.id, offset)
            self.progress.recording, self.progress.total = info.name, info.size
            self.progress.done, self.progress.state = offset, "transferring"
            self.progress.started = time.monotonic()
            try:
                stream = _StopAwareStream(self.session.open_recording(info.name, offset),
                                          self.ctx.stop)
                try:
                    result = ingest_stream(
                        stream, expected_size=info.size, expected_sha256=info.sha256,
                        recipients=self.ctx.recipients, partial_path=partial, final_path=final,
                        resume_state=resume, on_progress=self._on_bytes,
                        batch_bytes=cfg.ingest.chunk_kib * 1024,
                        checkpoint_every=cfg.ingest.checkpoint_mib << 20,
                    )
                finally:
                    stream.close()
            except (DeviceError, StorageError) as exc:
                kind = exc.kind if isinstance(exc, DeviceError) else (
                    "store_full" if isinstance(exc, StoreFull) else "storage")
                done = max(0, self.progress.done - offset)
                catalog.finish_attempt(att.id, bytes_transferred=done, error_kind=kind,
                                       error_message=str(exc))
                last_reason = f"{kind}: {exc}"
                self._log_transfer(info, offset, done, kind, str(exc))
                if isinstance(exc, DeviceGone | Interrupted):
                    raise
                if isinstance(exc, StoreExists):
                    break  # a path we did not expect is taken: never overwrite, say why
                if isinstance(exc, StoreFull):
                    # ENOSPC is permanent for this attempt (restic's rule): no retry loop;
                    # the recording stays on the camera and is tried again when space returns
                    last_reason = f"store full: {exc}; stays on the camera"
                    self.store_full = True
                    break
                continue
            catalog.finish_attempt(att.id, bytes_transferred=result.bytes - offset)
            rec = catalog.mark_stored(rec.id, str(final), result.plaintext_sha256.hex(),
                                      result.stored_sha256.hex())
            # verified = the SHA-256 of every byte received equals the camera's (checked by the
            # pipeline before publishing) and the file is durable; `dockctl verify` re-reads
            rec = catalog.mark_verified(rec.id)
            self._log_transfer(info, offset, result.bytes - offset, "stored", None,
                               seconds=result.seconds, sha256=result.plaintext_sha256.hex())
            return rec
        if partial.exists() and not sidecar_path(partial).exists():
            discard_partial(partial)
        return catalog.mark_failed(rec.id, f"after {attempts} attempt(s): {last_reason}")

    def _adopt(self, rec: RecordingRow, final: Path) -> RecordingRow:
        """The pipeline publishes only after the SHA-256 matched the camera's, so a file at the
        recording's own deterministic path is a verified copy whose catalog commit was lost."""
        stored_sha = self._hash_stored(rec, final)
        if not isinstance(stored_sha, str):
            return stored_sha
        if rec.stored_sha256 is not None and stored_sha != rec.stored_sha256:
            return self._stored_file_differs(rec, final, stored_sha)
        rec = self.ctx.catalog.mark_stored(rec.id, str(final), rec.camera_sha256, stored_sha)
        self.log.warning("stored_file_adopted", recording=rec.camera_name, path=str(final))
        return self.ctx.catalog.mark_verified(rec.id)

    def _enough_space(self, root: Path, size: int) -> bool:
        try:  # the store's directories are made by the first write: ask their disk
            free = shutil.disk_usage(nearest_existing(root)).free
        except OSError:
            return True  # let the write itself report what is wrong
        # the encrypted copy: the sealed payload and (well within 4 KiB) the header
        needed = sealed_size(size) + 4096 + (self.ctx.config.storage.min_free_mib << 20)
        return free >= needed

    def _on_bytes(self, done: int, total: int) -> None:
        self.progress.done, self.progress.total = done, total
        now = time.monotonic()
        elapsed = now - self.progress.started
        attempt_id, offset = self._attempt
        if elapsed > 0:
            self.progress.rate_mb_s = (done - offset) / elapsed / 1e6
        if now - self._progress_saved >= PROGRESS_EVERY_S and attempt_id:
            # for `dockctl status` in another shell; progress is not custody, no audit event
            self._progress_saved = now
            report_progress(self.ctx.catalog, attempt_id, done - offset)
        self._notify()

    def _notify(self) -> None:
        if self.ctx.on_progress is not None:
            self.ctx.on_progress(self.progress)

    def _log_transfer(self, info: RecordingInfo, offset: int, nbytes: int, outcome: str,
                      error: str | None, *, seconds: float | None = None,
                      sha256: str | None = None) -> None:
        """The canonical line per finished transfer attempt."""
        secs = seconds if seconds is not None else time.monotonic() - self.progress.started
        event = self.log.info if outcome == "stored" else self.log.warning
        event("transfer", recording=info.name, bytes=nbytes, size=info.size, resumed_from=offset,
              seconds=round(secs, 3), mb_s=round(nbytes / secs / 1e6, 1) if secs > 0 else None,
              sha256=sha256, outcome=outcome, error=error)


def run_dock_session(ctx: IngestContext, ref: UsbDeviceRef, session: CameraSession,
                     driver_name: str) -> SessionReport:
    try:
        return DockSessionRunner(ctx, ref, session, driver_name).run()
    finally:
        with contextlib.suppress(DockdError):
            session.close()
