"""Custody of one recording: one owner, intent before publish, the inode that was written,
proof before every delete.

The rules (docs/storage.md, "Custody"), in the order a recording meets them:

1. **One owner.** Everything below happens while the dock session holds the recording's
   lease in the catalog (`Catalog.take_lease`); a second session (a cloned serial docked at
   the same time) is refused and waits. Partials are named per owner
   (`.<final>.<token>.partial`); a new owner takes over a dead owner's partial by renaming it
   to its own name before it resumes from it.
2. **Intent, then publish.** A complete, fsynced, hash-checked partial is named in a
   `publish_intent` event (path, stored size, stored SHA-256) before the rename. Publishing
   renames the inode the writer's fd holds, checked against what the partial's name points
   to; the resume state (the file key) is removed first.
3. **Adopt only what an intent names.** A file found at a recording's path is adopted when it
   matches the chain's intent (size and a re-read SHA-256); anything else there is moved into
   `<store>/.quarantine/` (an audit event, a log line), never adopted or overwritten.
4. **Prove, then delete.** Right before a delete on the camera the stored copy is proven
   against the chain's facts: right after ingest by the hash taken while writing if the inode,
   size and mtime are unchanged; otherwise by re-reading it. A row that disagrees with its
   chain proves nothing. A failed proof keeps the camera's copy, quarantines what was there,
   records the damage and ingests the recording again from the camera.

Why one module of ~500 lines: these four rules meet in each recording's way through the
custodian, and the order of their steps is the point; reading them apart would hide it.
The steps themselves live elsewhere (pipeline, resume, store, catalog).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from dockd.catalog import Catalog
from dockd.catalog.lease import LEASE_TTL, RENEW_EVERY_S, LeaseOwner
from dockd.catalog.rows import RecordingRow
from dockd.catalog.types import EventKind, RecordingStatus
from dockd.config import Config
from dockd.crypto.keys import X25519Recipient
from dockd.crypto.stream import sealed_size
from dockd.driver import CameraSession, RecordingStream
from dockd.errors import (
    CatalogUnavailable,
    DeviceError,
    DeviceGone,
    DockdError,
    LeaseLost,
    StorageError,
    StoreExists,
    StoreFull,
)
from dockd.model import RecordingInfo
from dockd.pipeline import (
    FileStamp,
    ResumeState,
    Written,
    discard_partial,
    ingest_stream,
    load_resume,
)
from dockd.store import (
    final_name_of,
    final_path,
    nearest_existing,
    partial_path,
    partials_for,
    quarantine,
    sha256_file,
    sidecar_path,
    take_over,
)

log = structlog.get_logger(__name__)
S = RecordingStatus


class Interrupted(DeviceError):
    """The daemon is stopping: the transfer is checkpointed and resumes next time."""

    kind = "interrupted"


def final_path_for(root: Path, catalog_rows: list[RecordingRow], rec: RecordingRow) -> Path:
    """The stored file's path (`store.final_path`), a function of the catalog alone, so a
    restart after a crash finds the same path: a namesake catalogued earlier makes the name
    shared."""
    shared = any(r.camera_name == rec.camera_name and r.id < rec.id for r in catalog_rows)
    return final_path(root, rec.camera_serial, rec.started, rec.camera_name, rec.id,
                      shared=shared)


def partial_in_custody(root: Path, catalog: Catalog, partial: Path) -> RecordingRow | None:
    """The recording a leftover partial was written for, when that recording is already in
    custody (verified, or deleted from the camera on that proof) on this host or another:
    the partial can never be needed again, and its resume sidecar is key material. None
    when no such recording is found (the partial may still resume)."""
    name = final_name_of(partial)
    try:
        serial = partial.relative_to(root).parts[0]
    except (ValueError, IndexError):
        return None
    if name is None:
        return None
    final = partial.with_name(name)
    rows = catalog.recordings(camera=serial)
    for rec in rows:
        if rec.status not in (S.VERIFIED, S.DELETED_FROM_CAMERA):
            continue
        namesakes = [r for r in rows if r.camera_name == rec.camera_name]
        if final_path_for(root, namesakes, rec) == final:
            return rec
    return None


# --- proof ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """Whether a stored copy is the one the chain records, and how that was established."""

    ok: bool
    #: written (the writer's own hash, inode unchanged) | rehashed | missing | not_a_file
    #: | size | unreadable
    how: str
    reason: str = ""
    size: int | None = None
    sha256: str | None = None

    def details(self) -> dict[str, Any]:
        return {"how": self.how, "size": self.size, "stored_sha256": self.sha256}


def prove(path: Path, *, size: int | None, sha256: str | None, fresh: FileStamp | None = None,
          beat: Callable[[], None] | None = None) -> Proof:
    """Is the file at `path` the stored copy of `size` bytes with SHA-256 `sha256`?
    `fresh`: the writer's stamp of the file it published a moment ago; its hash counts only
    while the inode, size and mtime are unchanged. Otherwise the file is re-read."""
    if sha256 is None:
        return Proof(False, "unreadable", f"the chain records no stored SHA-256 for {path}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Proof(False, "missing", f"stored file {path} is missing")
    except OSError as exc:
        return Proof(False, "unreadable", f"stored file {path}: {exc.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return Proof(False, "not_a_file", f"{path} is not a regular file (a symlink?)")
    if size is not None and st.st_size != size:
        return Proof(False, "size", f"stored file {path} holds {st.st_size} bytes, the chain "
                     f"records {size}", st.st_size)
    if fresh is not None and FileStamp.of(st) == fresh:
        return Proof(True, "written", size=st.st_size, sha256=sha256)
    try:
        actual = sha256_file(path, beat=beat)
    except OSError as exc:
        return Proof(False, "unreadable", f"stored file {path}: {exc.strerror}", st.st_size)
    if actual != sha256:
        return Proof(False, "rehashed", f"stored file {path} has SHA-256 {actual}, the chain "
                     f"records {sha256}", st.st_size, actual)
    return Proof(True, "rehashed", size=st.st_size, sha256=actual)


def describe_file(path: Path, beat: Callable[[], None] | None = None) -> dict[str, Any]:
    """Size and SHA-256 of a file about to be moved aside (for its audit event)."""
    try:
        st = os.lstat(path)
    except OSError:
        return {"size": None, "sha256": None}
    if not stat.S_ISREG(st.st_mode):
        return {"size": None, "sha256": None, "kind": "not a regular file"}
    try:
        return {"size": st.st_size, "sha256": sha256_file(path, beat=beat)}
    except OSError:
        return {"size": st.st_size, "sha256": None}


# --- the custodian of one dock session's recordings -----------------------------------


@dataclass
class Hooks:
    """How the custodian reports to its dock session (progress, liveness)."""

    #: a transfer attempt starts: (recording name, size, resumed offset, attempt id)
    started: Callable[[str, int, int, int], None]
    #: bytes arrived: (done, total)
    on_bytes: Callable[[int, int], None]
    #: a long local step (hash, resume check, wait) is alive: (what it is doing)
    beat: Callable[[str], None]
    #: an attempt failed and the next starts after a pause: (why it failed, pause in s)
    retrying: Callable[[str, float], None] | None = None


@dataclass
class Outcome:
    """What became of one recording in this session."""

    rec: RecordingRow
    #: stored by this session (not known before)
    stored: bool = False
    #: the stamp of the file this session published (a fresh proof may use it)
    fresh: FileStamp | None = None
    failure: str | None = None


class Custodian:
    """Custody of the recordings of one dock session, under its lease owner."""

    def __init__(self, config: Config, catalog: Catalog, recipients: list[X25519Recipient],
                 camera: CameraSession, owner: LeaseOwner, stop: Any, hooks: Hooks,
                 bound_log: Any) -> None:
        self.config = config
        self.catalog = catalog
        self.recipients = recipients
        self.camera = camera
        self.owner = owner
        self.stop = stop
        self.hooks = hooks
        self.log = bound_log
        #: set when a recording could not be stored for lack of space
        self.store_full = False
        self._renewed = time.monotonic()
        #: when the lease was last taken or renewed for sure (it binds other hosts until
        #: LEASE_TTL after that)
        self._renewed_ok = self._renewed
        self._renewing: int | None = None
        #: plaintext bytes of the current attempt so far (from its resumed offset on)
        self._done = 0

    @property
    def root(self) -> Path:
        return self.config.storage.path

    @contextlib.contextmanager
    def lease(self, recording_id: int) -> Iterator[RecordingRow]:
        """Hold a recording's lease for the block (LeaseHeld when another session lives)."""
        rec = self.catalog.take_lease(recording_id, self.owner)
        self._renewing, self._renewed = recording_id, time.monotonic()
        self._renewed_ok = self._renewed
        try:
            yield rec
        finally:
            self._renewing = None
            self.catalog.release_lease(recording_id, self.owner)

    def keep_lease(self) -> None:
        """Renew the lease held now, at most every RENEW_EVERY_S; LeaseLost if it is gone."""
        if self._renewing is None or time.monotonic() - self._renewed < RENEW_EVERY_S:
            return
        self._renewed = time.monotonic()
        try:
            held = self.catalog.renew_lease(self._renewing, self.owner)
        except CatalogUnavailable as exc:
            # the catalog server is restarting: the lease still binds every other host for
            # LEASE_TTL after its last renewal, so the transfer goes on for half of that and
            # renews at the next turn; past it, it stops (and resumes from its checkpoint)
            if time.monotonic() - self._renewed_ok < LEASE_TTL.total_seconds() / 2:
                self.log.warning("lease_not_renewed", recording_id=self._renewing,
                                 error=str(exc))
                return
            raise
        if not held:
            raise LeaseLost(f"recording {self._renewing}: the lease passed to another session")
        self._renewed_ok = self._renewed

    def _beat(self, what: str) -> Callable[[], None]:
        def beat() -> None:
            self.hooks.beat(what)
        return beat

    # --- the recording's way in ---------------------------------------------------------

    def settle(self, info: RecordingInfo, rec: RecordingRow, session_id: int) -> Outcome:
        """Bring a listed recording (lease held) to `verified`: transfer it, adopt its
        committed file, or prove a copy stored before a crash. Already verified or deleted
        recordings come back as they are."""
        if rec.status in (S.VERIFIED, S.STORED, S.DELETED_FROM_CAMERA):
            self._set_aside_stray_copy(rec)
        if rec.status in (S.VERIFIED, S.DELETED_FROM_CAMERA):
            return Outcome(rec)
        if rec.status is S.STORED:
            # a crash came between `stored` and `verified`: prove the file, then go on
            return self._prove_stored(info, rec, session_id)
        return self.transfer(info, rec, session_id)

    def _set_aside_stray_copy(self, rec: RecordingRow) -> None:
        """A recording stored on another host can still have a file at this host's path:
        this host published it, then lost the catalog (a PostgreSQL restart) before the
        row said so, while the other host stored and recorded its own copy. It is not the
        copy of record: set aside for a person (`.quarantine/`, `dockctl status`), never
        deleted. The lease is held, so no writer of this host is at that path."""
        if rec.stored_on in (None, self.catalog.host):
            return
        namesakes = self.catalog.recordings(camera=rec.camera_serial, name=rec.camera_name)
        final = final_path_for(self.root, namesakes, rec)
        if os.path.lexists(final):
            self._quarantine(rec, final, f"a copy this host wrote; the recording is stored "
                             f"on host {rec.stored_on}")

    def _prove_stored(self, info: RecordingInfo, rec: RecordingRow, session_id: int) -> Outcome:
        custody = self.catalog.custody(rec.id)
        facts = custody.facts or {}
        problems = custody.problems or custody.mismatch(rec)
        if problems:
            return Outcome(rec, failure=self._custody_broken(rec, problems))
        stored_on = facts.get("stored_on")
        if stored_on not in (None, self.catalog.host):
            # that host's store holds the file (it stopped before proving it): only that host
            # can prove it; judged here, the path would name a file of this host's store
            return Outcome(rec, failure=f"stored on host {stored_on}, not yet proven there; "
                                        "kept on the camera until it is")
        proof = prove(Path(str(facts.get("store_path"))), size=facts.get("stored_size"),
                      sha256=facts.get("stored_sha256"), beat=self._beat("proving"))
        if proof.ok:
            return Outcome(self.catalog.mark_verified(rec.id, self.owner,
                                                      proof=proof.details()))
        rec = self.record_damage(rec, proof)
        return self.transfer(info, rec, session_id)

    def transfer(self, info: RecordingInfo, rec: RecordingRow, session_id: int) -> Outcome:
        """Attempts with resume until stored and verified, or failed with the last reason."""
        cfg = self.config
        # only the camera's rows of the same name matter to the path, not its whole history
        namesakes = self.catalog.recordings(camera=rec.camera_serial, name=rec.camera_name)
        final = final_path_for(self.root, namesakes, rec)
        if os.path.lexists(final):
            adopted = self._adopt_or_quarantine(rec, final)
            if adopted is not None:
                return Outcome(adopted)
        mine = partial_path(final, self.owner.token)
        last_reason = "not attempted"
        attempts = 0  # begun, for the reason a technician reads
        for attempt in range(cfg.ingest.max_retries + 1):
            if attempt:
                if self.hooks.retrying is not None:  # the live view says why, and when
                    self.hooks.retrying(last_reason, cfg.ingest.retry_delay_s)
                time.sleep(cfg.ingest.retry_delay_s)
            if self.stop.is_set():
                raise Interrupted("dockd is stopping")
            if not self._enough_space(info.size):
                # not a retry loop: the recording waits on the camera until space returns
                last_reason = (f"store full: less than {cfg.storage.min_free_mib} MiB would "
                               f"remain free after {info.size} bytes; stays on the camera")
                self.log.error("store_full", recording=info.name, error=last_reason)
                self.store_full = True
                break
            resume = self._resume(final, mine, info)
            offset = resume.plaintext_offset if resume else 0
            att = self.catalog.begin_attempt(rec.id, owner=self.owner, session_id=session_id,
                                             offset_from=offset)
            attempts += 1
            self.hooks.started(info.name, info.size, offset, att.id)
            started = time.monotonic()
            self._done = offset
            try:
                written = self._write(info, mine, final, offset, resume)
                stamp = self._commit_file(rec, att.id, final, written)
            except (DeviceError, StorageError) as exc:
                kind = exc.kind if isinstance(exc, DeviceError) else (
                    "store_full" if isinstance(exc, StoreFull) else "storage")
                done = max(0, self._done - offset)
                self.catalog.finish_attempt(att.id, bytes_transferred=done, error_kind=kind,
                                            error_message=str(exc))
                last_reason = f"{kind}: {exc}"
                self._log_transfer(info, offset, done, kind, str(exc), started)
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
            plain, stored = written.plaintext_sha256.hex(), written.stored_sha256.hex()
            moved = written.bytes - offset
            try:  # the attempt's end and `stored`, one transaction
                rec = self.catalog.mark_stored(rec.id, self.owner, store_path=str(final),
                                               plaintext_sha256=plain, stored_sha256=stored,
                                               stored_size=written.stored_bytes,
                                               attempt=(att.id, moved))
            except DockdError:
                with contextlib.suppress(DockdError):  # the attempt's end, at least
                    self.catalog.finish_attempt(att.id, bytes_transferred=moved)
                raise
            self._log_transfer(info, offset, written.bytes - offset, "stored", None, started,
                               seconds=written.seconds, sha256=plain)
            proof = prove(final, size=written.stored_bytes, sha256=stored, fresh=stamp,
                          beat=self._beat("proving"))
            if proof.ok:
                rec = self.catalog.mark_verified(rec.id, self.owner, proof=proof.details())
                return Outcome(rec, stored=True, fresh=stamp)
            # changed between publish and proof: someone else's hand is in the store
            rec = self.record_damage(rec, proof)
            last_reason = proof.reason
        if mine.exists() and not sidecar_path(mine).exists():
            discard_partial(mine)
        return Outcome(self.catalog.mark_failed(
            rec.id, f"after {attempts} attempt(s): {last_reason}"), failure=last_reason)

    def _write(self, info: RecordingInfo, mine: Path, final: Path, offset: int,
               resume: ResumeState | None) -> Written:
        cfg = self.config
        stream = _StopAwareStream(self.camera.open_recording(info.name, offset), self.stop)
        try:
            return ingest_stream(
                stream, expected_size=info.size, expected_sha256=info.sha256,
                recipients=self.recipients, partial_path=mine, final_path=final,
                resume_state=resume, on_progress=self._on_bytes,
                batch_bytes=cfg.ingest.chunk_kib * 1024,
                checkpoint_every=cfg.ingest.checkpoint_mib << 20,
                on_checkpoint=self._renew_now,
            )
        finally:
            stream.close()

    def _commit_file(self, rec: RecordingRow, attempt_id: int, final: Path,
                     written: Written) -> FileStamp:
        """The write-ahead intent, then the written inode published under its final name."""
        try:
            self.catalog.record_intent(
                rec.id, self.owner, path=str(final), stored_size=written.stored_bytes,
                stored_sha256=written.stored_sha256.hex(),
                plaintext_sha256=written.plaintext_sha256.hex(), attempt_id=attempt_id)
        except BaseException:
            written.keep()  # not published: the partial resumes from its last checkpoint
            raise
        try:
            if os.path.lexists(final):  # appeared since the attempt began: not ours
                self._quarantine(rec, final, "appeared at the recording's path during its "
                                 "transfer; not the file this transfer wrote")
            return written.publish(final)
        finally:
            written.discard()  # a no-op once published

    # --- resume: a dead writer's partial becomes ours -------------------------------------

    def _resume(self, final: Path, mine: Path, info: RecordingInfo) -> Any:
        """Take over the best partial any earlier (now dead) writer of this recording left,
        under our own name, and prepare to resume from it; the others are removed. Only the
        lease holder calls this, so no live writer's partial is ever touched."""
        found = partials_for(final)
        if not found:
            return None
        best = max(found, key=_size)
        for other in found:
            if other != best:
                discard_partial(other)
        if best != mine:
            try:
                take_over(best, mine)
            except OSError:
                discard_partial(best)
                return None
        return load_resume(mine, expected_size=info.size, expected_sha256=info.sha256,
                           recipients=self.recipients,
                           batch_bytes=self.config.ingest.chunk_kib * 1024,
                           beat=self._beat("checking resume"))

    # --- adoption and quarantine --------------------------------------------------------

    def _adopt_or_quarantine(self, rec: RecordingRow, final: Path) -> RecordingRow | None:
        """A file is already at the recording's path. Adopt it (→ verified) only when the
        chain's last intent names it and it matches; otherwise move it aside."""
        intent = self.catalog.custody(rec.id).intent
        if intent is None or intent.path != str(final):
            reason = "no committed intent of this recording names it"
        elif rec.camera_sha256 is not None and intent.plaintext_sha256 != rec.camera_sha256:
            reason = "its intent was for other plaintext than the camera's"
        else:
            proof = prove(final, size=intent.stored_size, sha256=intent.stored_sha256,
                          beat=self._beat("proving"))
            if proof.ok:
                rec = self.catalog.mark_stored(
                    rec.id, self.owner, store_path=intent.path,
                    plaintext_sha256=intent.plaintext_sha256,
                    stored_sha256=intent.stored_sha256, stored_size=intent.stored_size,
                    adopted=True)
                self.log.warning("stored_file_adopted", recording=rec.camera_name,
                                 recording_id=rec.id, path=str(final), intent=intent.seq)
                return self.catalog.mark_verified(rec.id, self.owner, proof=proof.details())
            reason = f"it does not match its intent: {proof.reason}"
        self._quarantine(rec, final, reason)
        return None

    def _quarantine(self, rec: RecordingRow, path: Path, reason: str) -> Path:
        found = describe_file(path, self._beat("describing"))
        target = quarantine(self.root, path, self.catalog.now())
        self.catalog.record_event(
            EventKind.QUARANTINED, camera_serial=rec.camera_serial, recording_id=rec.id,
            details={"from": str(path), "to": str(target), "reason": reason, **found})
        self.log.warning("stored_file_quarantined", recording=rec.camera_name,
                         recording_id=rec.id, path=str(path), moved_to=str(target),
                         reason=reason)
        return target

    # --- proof before delete ------------------------------------------------------------

    def prove_copy(self, rec: RecordingRow, fresh: FileStamp | None) -> Proof | str:
        """Prove the stored copy against the chain (not the row). Returns the proof, or a
        reason when the row and its chain disagree (then nothing is proven or repaired)."""
        custody = self.catalog.custody(rec.id)
        problems = custody.problems or custody.mismatch(rec)
        if problems:
            return self._custody_broken(rec, problems)
        facts = custody.facts or {}
        vaulted = bool(facts.get("vault_version")) and not facts.get("vault_deleted_at")
        if facts.get("local_deleted_at"):
            # retention deleted the local copy on purpose: the camera's is past it too, unless
            # a hold came since and no vault copy keeps it
            if facts.get("legal_hold") and not vaulted:
                return "on legal hold and its local copy is gone: kept on the camera"
            return Proof(True, "retention_expired", size=facts.get("stored_size"),
                         sha256=facts.get("stored_sha256"))
        stored_on = facts.get("stored_on")
        if stored_on not in (None, self.catalog.host):
            # another dock host holds the copy: the vault's verified, locked copy proves it
            # here; without one the camera keeps its copy for that host (or the vault)
            if vaulted:
                return Proof(True, "vaulted", size=facts.get("stored_size"),
                             sha256=facts.get("stored_sha256"))
            return (f"stored on host {stored_on} and not in the vault yet: proven there, not "
                    "here; kept on the camera")
        return prove(Path(str(facts.get("store_path"))), size=facts.get("stored_size"),
                     sha256=facts.get("stored_sha256"), fresh=fresh, beat=self._beat("proving"))

    def record_damage(self, rec: RecordingRow, proof: Proof) -> RecordingRow:
        """The stored copy failed its proof: move what is there aside, record the damage;
        the row goes back to `failed` so the recording is ingested again from the camera."""
        path = Path(rec.store_path) if rec.store_path else None
        found: dict[str, Any] = {"path": str(path) if path else None, "size": proof.size,
                                 "sha256": proof.sha256, "how": proof.how}
        if path is not None and os.path.lexists(path):
            found["moved_to"] = str(self._quarantine(rec, path, proof.reason))
        reason = f"stored copy damaged ({proof.reason}); ingested again from the camera"
        self.log.error("stored_copy_damaged", recording=rec.camera_name, recording_id=rec.id,
                       error=proof.reason, path=found["path"])
        return self.catalog.mark_copy_damaged(rec.id, self.owner, reason=reason, found=found)

    def _custody_broken(self, rec: RecordingRow, problems: list[str]) -> str:
        reason = ("the catalog row disagrees with its custody chain (" + "; ".join(problems)
                  + "); kept on the camera until someone looks (dockctl verify)")
        self.log.error("custody_mismatch", recording=rec.camera_name, recording_id=rec.id,
                       error=reason)
        return reason

    # --- small things -----------------------------------------------------------------

    def _renew_now(self) -> None:
        self._renewed = 0.0
        self.keep_lease()

    def _on_bytes(self, done: int, total: int) -> None:
        self._done = done
        self.hooks.on_bytes(done, total)
        self.keep_lease()

    def _enough_space(self, size: int) -> bool:
        try:  # the store's directories are made by the first write: ask their disk
            free = shutil.disk_usage(nearest_existing(self.root)).free
        except OSError:
            return True  # let the write itself report what is wrong
        # the encrypted copy: the sealed payload and (well within 4 KiB) the header
        needed = sealed_size(size) + 4096 + (self.config.storage.min_free_mib << 20)
        return free >= needed

    def _log_transfer(self, info: RecordingInfo, offset: int, nbytes: int, outcome: str,
                      error: str | None, started: float, *, seconds: float | None = None,
                      sha256: str | None = None) -> None:
        """The canonical line per finished transfer attempt."""
        secs = seconds if seconds is not None else time.monotonic() - started
        event = self.log.info if outcome == "stored" else self.log.warning
        event("transfer", recording=info.name, bytes=nbytes, size=info.size, resumed_from=offset,
              seconds=round(secs, 3), mb_s=round(nbytes / secs / 1e6, 1) if secs > 0 else None,
              sha256=sha256, outcome=outcome, error=error)


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return -1


class _StopAwareStream:
    """Passes reads through, but raises Interrupted once the daemon is asked to stop, so the
    pipeline checkpoints what arrived and the next attempt resumes from there."""

    def __init__(self, inner: RecordingStream, stop: Any) -> None:
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

