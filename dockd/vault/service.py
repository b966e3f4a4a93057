"""The vault service (`dockd vault run`, systemd unit `dockd-vault.service`): copies every
verified local file of this host to the S3 Object Lock vault, mirrors legal holds onto the
vault's objects, extends their locks when retention grows, and deletes a vault version once
its retention and lock have ended and the local copy is gone.

Why a service of its own, not a thread in the daemon: ingest from docked cameras comes
first. Uploads of gigabytes compete for CPU (hashing), disk and the network; boto3 costs tens
of MiB resident; a vault that hangs or fails must not touch the daemon's memory bound or its
watchdog. As its own unit it runs at a low CPU and I/O priority (Nice, IOSchedulingClass=idle),
restarts on its own, and the daemon never waits for it: the catalog is where they meet.

Each step is a custody event (`vaulted`, `vault_hold_mirrored`, `vault_lock_extended`,
`vault_deleted`). The service's state — ok, or the last error and how much waits — is kept in
the catalog (`vault_status:<host>`) for `dockctl status`. An unreachable vault is retried
with a growing pause; nothing is ever deleted because the vault failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from dockd.catalog import Catalog, RecordingRow, RecordingStatus
from dockd.config import Config
from dockd.errors import DockdError, LeaseHeld, StorageError
from dockd.flags import Flag
from dockd.retention import kept_until, kept_until_by_chain
from dockd.store import sanitise
from dockd.vault.client import VaultClient
from dockd.vault.errors import (
    VaultError,
    VaultIntegrityError,
    VaultObjectMissing,
    VaultRefused,
)
from dockd.vault.resume import RESUME_DIR_NAME
from dockd.vault.state import record_status, status_key

__all__ = ["Cycle", "VaultService", "status_key", "vault_key"]

log = structlog.get_logger(__name__)

#: how long an object whose recording is kept for good (a hold, "until released", no
#: retention) is locked: the legal hold keeps it beyond that
HELD_LOCK = timedelta(days=1)
#: a retention ending sooner than this is not given as the lock: the vault refuses a
#: retain-until date in its own past, and its clock may be minutes behind ours
LOCK_MARGIN = timedelta(minutes=15)
#: pause between cycles while all is well; the pause after a failure grows to MAX_BACKOFF_S
POLL_S = 30.0
MAX_BACKOFF_S = 600.0
_VAULTABLE = (RecordingStatus.VERIFIED, RecordingStatus.DELETED_FROM_CAMERA)


def vault_key(rec: RecordingRow) -> str:
    """Where a recording's ciphertext lives in the bucket (below the configured prefix)."""
    return (f"{sanitise(rec.camera_serial)}/{rec.started:%Y/%m/%d}/"
            f"{rec.id}-{sanitise(rec.camera_name, max_len=100)}.age")


@dataclass
class Cycle:
    """What one pass did, and what still waits."""

    uploaded: list[int] = field(default_factory=list)
    holds: list[int] = field(default_factory=list)
    locks: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    waiting: int = 0
    #: recording id → why its object could not be handled this pass (the others were)
    failed: dict[int, str] = field(default_factory=dict)
    #: the failure that ended the pass early (the vault unreachable, refused, ...)
    error: str | None = None


class VaultService:
    def __init__(self, config: Config, catalog: Catalog, client: VaultClient, *,
                 now: Callable[[], datetime] | None = None,
                 bypass_governance: bool = False) -> None:
        assert config.vault is not None
        self.config = config
        self.catalog = catalog
        self.client = client
        self.now = now or catalog.now
        #: only for a simulated catalog whose clock runs ahead of the server's (tests)
        self.bypass_governance = bypass_governance
        self.resume_dir = config.storage.path / RESUME_DIR_NAME

    # --- the loop ---------------------------------------------------------------------

    def run(self, stop: Flag, *, once: bool = False,
            beat: Callable[[], None] | None = None) -> Cycle:
        backoff = POLL_S
        while True:
            cycle = self.cycle(beat)
            if once or stop.is_set():
                return cycle
            backoff = min(backoff * 2, MAX_BACKOFF_S) if cycle.error else POLL_S
            deadline = time.monotonic() + backoff
            while time.monotonic() < deadline and not stop.is_set():
                time.sleep(0.2)
                if beat is not None:
                    beat()
            if stop.is_set():
                return cycle

    def cycle(self, beat: Callable[[], None] | None = None) -> Cycle:
        """One pass over this host's kept recordings."""
        cycle = Cycle()
        now = self.now()
        try:
            for rec in self.catalog.kept_recordings(host=self.catalog.host):
                if beat is not None:
                    beat()
                try:
                    self._one(rec, now, cycle, beat)
                except VaultObjectMissing as exc:
                    # this object, not the vault: a recorded version gone is an alarm for a
                    # person (dockctl verify --vault names it), never a reason to stop the
                    # other recordings' uploads
                    cycle.failed[rec.id] = f"{exc.kind}: {exc}"
                    log.error("vault_object_missing", recording_id=rec.id, key=rec.vault_key,
                              version=rec.vault_version, error=str(exc))
        except VaultError as exc:  # the vault as a whole: unreachable, refused, misconfigured
            cycle.error = f"{exc.kind}: {exc}"
            log.error("vault_unavailable", error_kind=exc.kind, error=str(exc),
                      advice="uploads wait and resume by themselves; nothing is deleted")
        self._publish(cycle, now)
        return cycle

    def _one(self, rec: RecordingRow, now: datetime, cycle: Cycle,
             beat: Callable[[], None] | None) -> None:
        until = kept_until(rec, self.config.retention)
        keep_for_good = until is None
        if rec.vault_version is None:
            if rec.status in _VAULTABLE and rec.local_deleted_at is None:
                cycle.waiting += 1
                if self._upload(rec, until, now, beat):
                    cycle.uploaded.append(rec.id)
                    cycle.waiting -= 1
            return
        if rec.vault_deleted_at is not None or rec.vault_key is None:
            return
        want_hold = keep_for_good
        if want_hold != rec.vault_hold:
            if not want_hold and not self._chain_agrees(rec, "release its legal hold"):
                return
            self.client.set_legal_hold(rec.vault_key, rec.vault_version, want_hold)
            rec = self.catalog.mark_vault_state(rec.id, hold=want_hold, actor="dockd-vault")
            log.info("vault_hold_mirrored", recording_id=rec.id, on=want_hold)
            cycle.holds.append(rec.id)
        key, version = rec.vault_key, rec.vault_version
        if key is None or version is None:
            return
        if (until is not None and until > now
                and (rec.vault_lock_until is None or rec.vault_lock_until < until)):
            # only a retention still running needs a longer lock: a date in the vault's past
            # is refused (InvalidRequest) and would stop every pass at this recording (a hold
            # released after the retention it suspended had ended)
            granted = self.client.extend_retention(key, version, until)
            self.catalog.mark_vault_state(rec.id, lock_until=granted, actor="dockd-vault")
            cycle.locks.append(rec.id)
        elif (not want_hold and until is not None and until <= now
              and rec.local_deleted_at is not None
              and (rec.vault_lock_until is None or rec.vault_lock_until <= now)
              and self._chain_agrees(rec, "delete its vault copy", now)
              and self._still_unheld(rec)):
            try:
                self.client.delete_version(key, version,
                                           bypass_governance=self.bypass_governance)
            except VaultRefused as exc:
                # the vault's lock outlasts what the catalog recorded (its clock behind ours,
                # a hold set on the object by hand, COMPLIANCE under --at): the version
                # stays, the next pass tries again, the other recordings go on
                cycle.failed[rec.id] = f"{exc.kind}: {exc}"
                log.warning("vault_delete_refused", recording_id=rec.id, key=rec.vault_key,
                            version=rec.vault_version, error=str(exc),
                            advice="kept in the vault; tried again at the next pass")
                return
            self.catalog.mark_vault_state(rec.id, deleted_at=now, actor="dockd-vault")
            log.info("vault_deleted", recording_id=rec.id, key=rec.vault_key,
                     version=rec.vault_version, kept_until=until.isoformat())
            cycle.deleted.append(rec.id)

    def _still_unheld(self, rec: RecordingRow) -> bool:
        """Read again right before a version is deleted: a hold or category set (on any
        host) since this pass read the row keeps the version. What remains is the time of
        one DELETE request (docs/vault.md, "What Object Lock does not guarantee")."""
        now_row = self.catalog.recording(rec.id)
        if now_row.legal_hold or now_row.category != rec.category:
            log.info("vault_delete_skipped", recording_id=rec.id,
                     reason="a legal hold or category was set during this pass")
            return False
        return True

    def _chain_agrees(self, rec: RecordingRow, doing: str,
                      expired_by: datetime | None = None) -> bool:
        """Before a step that lets evidence go: the row must be what the chain says (an
        edited category, hold or deletion date must not delete anything) and, for a
        deletion, its retention must have ended counted from the chain's first event."""
        custody = self.catalog.custody(rec.id)
        if custody.problems or custody.mismatch(rec):
            log.error("vault_step_refused", recording_id=rec.id, doing=doing,
                      error="the row disagrees with its custody chain (dockctl verify)")
            return False
        if expired_by is not None:
            until = kept_until_by_chain(rec, custody, self.config.retention)
            if until is None or until > expired_by:
                log.error("vault_step_refused", recording_id=rec.id, doing=doing,
                          error="its custody chain dates it later than its row")
                return False
        return True

    def _upload(self, rec: RecordingRow, until: datetime | None, now: datetime,
                beat: Callable[[], None] | None = None) -> bool:
        """Copy one verified local file to the vault, proven on arrival; False when it is
        not possible now (the reason is logged). A failure of the vault itself raises."""
        custody = self.catalog.custody(rec.id)
        if custody.problems or custody.mismatch(rec):
            log.error("vault_upload_refused", recording_id=rec.id,
                      error="the row disagrees with its custody chain (dockctl verify)")
            return False
        facts = custody.facts or {}
        path = Path(str(facts.get("store_path")))
        lock = until if until is not None and until > now + LOCK_MARGIN else now + HELD_LOCK
        metadata = {"serial": rec.camera_serial, "recording-id": str(rec.id),
                    "plaintext-sha256": str(facts.get("plaintext_sha256")),
                    "stored-sha256": str(facts.get("stored_sha256")),
                    "host": self.catalog.host}
        try:
            receipt = self.client.upload(
                path, vault_key(rec), stored_sha256=str(facts.get("stored_sha256")),
                retain_until=lock, legal_hold=until is None, metadata=metadata,
                resume_dir=self.resume_dir,
                progress=(lambda _done: beat()) if beat is not None else None)
        except VaultIntegrityError as exc:
            log.error("vault_upload_failed", recording_id=rec.id, path=str(path),
                      error_kind=exc.kind, error=str(exc),
                      advice="the local copy stays; dockctl verify checks it")
            return False
        except (LeaseHeld, StorageError, OSError) as exc:  # the local file: not now
            log.warning("vault_upload_deferred", recording_id=rec.id, error=str(exc))
            return False
        self.catalog.mark_vaulted(rec.id, key=receipt.key, version=receipt.version_id,
                                  checksum=receipt.checksum_sha256_b64, lock_until=lock,
                                  hold=until is None, actor="dockd-vault")
        log.info("vaulted", recording_id=rec.id, serial=rec.camera_serial,
                 recording=rec.camera_name, key=receipt.object_key,
                 version=receipt.version_id, size=receipt.size, locked_until=lock.isoformat())
        return True

    def _publish(self, cycle: Cycle, now: datetime) -> None:
        """The service's state where `dockctl status` reads it (dockd/vault/state.py), and
        one line per pass."""
        try:
            record_status(self.catalog, self.catalog.host, at=now, waiting=cycle.waiting,
                          error=cycle.error, uploaded=bool(cycle.uploaded))
        except DockdError as exc:
            log.warning("vault_status_not_recorded", error=str(exc))
        log.info("vault_cycle", uploaded=len(cycle.uploaded), holds=len(cycle.holds),
                 locks=len(cycle.locks), deleted=len(cycle.deleted), waiting=cycle.waiting,
                 error=cycle.error)
