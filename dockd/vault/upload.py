"""Uploading one file: a single checked PUT, or a multipart upload that resumes.

Order of a multipart upload (each step durable before the next):
  1. hash the file once into per-part SHA-256s and the whole-file SHA-256; the latter must
     be the catalog's, or nothing is sent (the vault only ever gets the recorded bytes);
  2. continue the upload named in the resume file if list_parts confirms its parts and the
     file is the same (size, hash, part size), else abort it and create a new one, with
     the Object Lock mode, retain-until date and legal hold set on creation;
  3. each part goes up with its ChecksumSHA256 (the server refuses a part that differs) and
     its ETag is saved before the next part starts;
  4. `completing` is saved, then CompleteMultipartUpload with every part's checksum;
  5. head_object must show the size, the COMPOSITE checksum computed in step 1, and the
     lock; only then is the resume file removed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockd.store import storage_error
from dockd.vault.errors import (
    VaultError,
    VaultIntegrityError,
    VaultMisconfigured,
    VaultObjectMissing,
)
from dockd.vault.metadata import encode_metadata
from dockd.vault.parts import FileSlice, PartPlan, b64_of_hex, plan_parts, split_checksum
from dockd.vault.resume import (
    UploadState,
    drop_state,
    exclusive,
    load_state,
    save_state,
    state_path,
)

if TYPE_CHECKING:
    from dockd.vault.client import Receipt, VaultClient

#: S3 allows at most this many parts in one upload
MAX_PARTS = 10_000
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

Progress = Callable[[int], None]


def upload_file(vc: VaultClient, path: Path, key: str, *, stored_sha256: str,
                retain_until: datetime, legal_hold: bool, metadata: Mapping[str, str],
                resume_dir: Path, progress: Progress | None) -> Receipt:
    stored_sha256 = stored_sha256.lower()
    if not _SHA256_HEX.match(stored_sha256):
        raise ValueError("stored_sha256 must be 64 hex digits")
    if retain_until.tzinfo is None or retain_until.utcoffset() is None:
        raise ValueError("retain_until must be timezone-aware (UTC)")
    if retain_until <= datetime.now(UTC):
        raise ValueError(f"retain_until {retain_until.isoformat()} is not in the future")
    job = _Job(vc, path, vc.object_key(key), key, stored_sha256, retain_until, legal_hold,
               encode_metadata(metadata), progress or (lambda _n: None))
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise storage_error(exc, path, "reading for the vault") from exc
    spath = state_path(resume_dir, vc.settings.bucket, job.object_key)
    with exclusive(resume_dir, spath):
        if size <= vc.settings.part_bytes:
            stale = load_state(spath)
            if stale is not None:  # it was larger once; that upload will never complete
                job.abort(stale)
                drop_state(spath)
            return job.put_single(size)
        return job.put_multipart(size, spath)


class _Job:
    def __init__(self, vc: VaultClient, path: Path, object_key: str, key: str, sha256: str,
                 retain_until: datetime, legal_hold: bool, metadata: dict[str, str],
                 progress: Progress) -> None:
        self.vc = vc
        self.s3: Any = vc._s3  # this module is the client's upload half
        self.bucket = vc.settings.bucket
        self.path = path
        self.object_key = object_key
        self.key = key
        self.sha256 = sha256
        self.retain_until = retain_until
        self.legal_hold = legal_hold
        self.metadata = metadata
        self.progress = progress

    def _call(self, doing: str) -> Any:
        return self.vc._call(doing, self.object_key)

    def _lock_args(self) -> dict[str, Any]:
        return {"ObjectLockMode": self.vc.settings.lock_mode,
                "ObjectLockRetainUntilDate": self.retain_until,
                "ObjectLockLegalHoldStatus": "ON" if self.legal_hold else "OFF",
                "Metadata": self.metadata, "ContentType": "application/octet-stream"}

    def _fail(self, cls: type[VaultError], what: str) -> VaultError:
        return cls(f"vault {self.vc.settings.endpoint}: uploading "
                   f"{self.vc.where(self.object_key)}: {what}")

    # --- one PUT ------------------------------------------------------------------

    def put_single(self, size: int) -> Receipt:
        want = b64_of_hex(self.sha256)
        try:
            f = self.path.open("rb")
        except OSError as exc:
            raise storage_error(exc, self.path, "reading for the vault") from exc
        with f, self._call("uploading"):
            doc = self.s3.put_object(Bucket=self.bucket, Key=self.object_key, Body=f,
                                     ContentLength=size, ChecksumSHA256=want,
                                     **self._lock_args())
        got = doc.get("ChecksumSHA256")
        if got is not None and got != want:
            raise self._fail(VaultIntegrityError, f"the vault acknowledged SHA-256 {got}, "
                             f"not the file's {want}")
        self.progress(size)
        return self._finish(self._version(doc), size, want, str(doc.get("ETag", "")), 0)

    # --- multipart ------------------------------------------------------------------

    def put_multipart(self, size: int, spath: Path) -> Receipt:
        part_size = self.vc.settings.part_bytes
        if -(-size // part_size) > MAX_PARTS:
            raise self._fail(VaultMisconfigured, f"{size} bytes need more than {MAX_PARTS} "
                             f"parts of {part_size >> 20} MiB; raise vault.part_mib")
        try:
            plan = plan_parts(self.path, part_size)
        except OSError as exc:
            raise storage_error(exc, self.path, "hashing for the vault") from exc
        if plan.sha256 != self.sha256 or plan.size != size:
            raise self._fail(VaultIntegrityError, f"{self.path} does not hash to the SHA-256 "
                             "the catalog recorded (or changed while being read); nothing "
                             "was sent — check the stored file")
        state = load_state(spath)
        if state is not None and not self._same(state, plan):
            self.abort(state)
            drop_state(spath)
            state = None
        if state is not None:
            resumed = self._resume(state, plan, spath)
            if not isinstance(resumed, UploadState | None):
                return resumed  # it had completed; only the answer was lost
            state = resumed
        if state is None:
            state = self._create(plan)
            save_state(spath, state)
        self._send_parts(state, plan, spath)
        return self._complete(state, plan, spath)

    def _same(self, state: UploadState, plan: PartPlan) -> bool:
        return (state.bucket == self.bucket and state.object_key == self.object_key
                and state.size == plan.size and state.sha256 == plan.sha256
                and state.part_size == plan.part_size
                and state.part_sha256 == [plan.b64(n) for n in range(1, plan.count + 1)])

    def _create(self, plan: PartPlan) -> UploadState:
        with self._call("starting a multipart upload of"):
            doc = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.object_key,
                                                  ChecksumAlgorithm="SHA256",
                                                  **self._lock_args())
        return UploadState(bucket=self.bucket, object_key=self.object_key,
                           upload_id=str(doc["UploadId"]), size=plan.size,
                           sha256=plan.sha256, part_size=plan.part_size,
                           part_sha256=[plan.b64(n) for n in range(1, plan.count + 1)])

    def _resume(self, state: UploadState, plan: PartPlan,
                spath: Path) -> UploadState | Receipt | None:
        """Keep only the saved parts the server still has as saved. None when the upload is
        gone; a Receipt when it turns out to have completed (its answer was lost)."""
        listed: dict[int, tuple[str, int]] = {}
        try:
            marker = 0
            while True:
                with self._call("resuming the multipart upload of"):
                    doc = self.s3.list_parts(Bucket=self.bucket, Key=self.object_key,
                                             UploadId=state.upload_id,
                                             PartNumberMarker=marker)
                for part in doc.get("Parts") or []:
                    listed[int(part["PartNumber"])] = (str(part["ETag"]), int(part["Size"]))
                if not doc.get("IsTruncated"):
                    break
                marker = int(doc["NextPartNumberMarker"])
        except VaultError as exc:
            if exc.code != "NoSuchUpload":
                raise
            drop_state(spath)  # aborted, expired, or completed: the id is of no more use
            return self._adopt(plan) if state.completing else None
        kept = {n: etag for n, etag in state.etags.items()
                if listed.get(n) == (etag, plan.bounds(n)[1])}
        if kept != state.etags or state.completing:
            state.etags = kept
            state.completing = False
            save_state(spath, state)
        return state

    def _adopt(self, plan: PartPlan) -> Receipt | None:
        """After a lost answer to Complete: the latest version is ours if it has our size
        and composite checksum (identical bytes are the same evidence)."""
        found = self.vc.head_object(self.object_key, None)
        if not found.exists or found.size != plan.size or found.checksum is None:
            return None
        value, parts = split_checksum(found.checksum)
        if value != plan.composite() or parts not in (None, plan.count) or not found.version_id:
            return None
        return self._finish(found.version_id, plan.size, found.checksum, found.etag or "",
                            plan.count)

    def _send_parts(self, state: UploadState, plan: PartPlan, spath: Path) -> None:
        done = sum(plan.bounds(n)[1] for n in state.etags)
        if done:
            self.progress(done)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise storage_error(exc, self.path, "reading for the vault") from exc
        try:
            for number in range(1, plan.count + 1):
                if number in state.etags:
                    continue
                offset, length = plan.bounds(number)
                want = plan.b64(number)
                with self._call(f"uploading part {number}/{plan.count} of"):
                    doc = self.s3.upload_part(Bucket=self.bucket, Key=self.object_key,
                                              UploadId=state.upload_id, PartNumber=number,
                                              Body=FileSlice(fd, offset, length),
                                              ContentLength=length, ChecksumSHA256=want)
                got = doc.get("ChecksumSHA256")
                if got is not None and got != want:
                    raise self._fail(VaultIntegrityError, f"part {number} acknowledged with "
                                     f"SHA-256 {got}, not {want}")
                state.etags[number] = str(doc["ETag"])
                save_state(spath, state)
                done += length
                self.progress(done)
        finally:
            os.close(fd)

    def _complete(self, state: UploadState, plan: PartPlan, spath: Path) -> Receipt:
        state.completing = True
        save_state(spath, state)
        parts = [{"PartNumber": n, "ETag": state.etags[n], "ChecksumSHA256": plan.b64(n)}
                 for n in range(1, plan.count + 1)]
        try:
            with self._call("completing the multipart upload of"):
                doc = self.s3.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.object_key, UploadId=state.upload_id,
                    MultipartUpload={"Parts": parts})
        except VaultError as exc:
            # a retry of a Complete that went through the first time: find what it made
            adopted = self._adopt(plan) if exc.code == "NoSuchUpload" else None
            if adopted is None:
                raise
            drop_state(spath)
            return adopted
        drop_state(spath)
        reported = doc.get("ChecksumSHA256")
        if reported is not None:
            value, count = split_checksum(reported)
            if value != plan.composite() or count not in (None, plan.count):
                raise self._fail(VaultIntegrityError, f"the vault assembled checksum "
                                 f"{reported}, not {plan.composite()}-{plan.count}")
        return self._finish(self._version(doc), plan.size, f"{plan.composite()}-{plan.count}",
                            str(doc.get("ETag", "")), plan.count)

    def abort(self, state: UploadState) -> None:
        """Abort an upload we will not continue (a vanished one is as good as aborted)."""
        try:
            with self.vc._call("aborting an old multipart upload of",
                               state.object_key):
                self.s3.abort_multipart_upload(Bucket=state.bucket, Key=state.object_key,
                                               UploadId=state.upload_id)
        except VaultObjectMissing:
            pass
        except VaultError as exc:
            if exc.code != "NoSuchUpload":
                raise

    def _version(self, doc: Mapping[str, Any]) -> str:
        version = doc.get("VersionId")
        if not version or version == "null":
            raise self._fail(VaultMisconfigured, "the vault gave no version id: the bucket is "
                             "not versioned, so it has no Object Lock")
        return str(version)

    # --- proof ------------------------------------------------------------------------

    def _finish(self, version_id: str, size: int, checksum: str, etag: str,
                parts: int) -> Receipt:
        """Bring the lock up to what was asked (a resumed upload keeps the lock it was
        created with) and prove the version by head_object: size, checksum, lock."""
        from dockd.vault.client import Receipt  # noqa: PLC0415 - client imports us lazily

        until = self.retain_until.replace(microsecond=0)  # S3 keeps whole seconds
        found = self.vc.head_object(self.object_key, version_id)
        changed = False
        if found.exists and (found.retain_until is None or found.retain_until < until):
            self.vc.extend_retention(self.key, version_id, self.retain_until)
            changed = True
        if found.exists and self.legal_hold and not found.legal_hold:
            self.vc.set_legal_hold(self.key, version_id, on=True)
            changed = True
        if changed:
            found = self.vc.head_object(self.object_key, version_id)
        if not found.exists:
            raise self._fail(VaultObjectMissing, f"version {version_id} is not there right "
                             "after the upload")
        if found.size != size:
            raise self._fail(VaultIntegrityError, f"version {version_id} has {found.size} "
                             f"bytes, the file {size}")
        want, _ = split_checksum(checksum)
        if found.checksum is None:
            raise self._fail(VaultIntegrityError, f"version {version_id}: the vault reports "
                             "no SHA-256, so the copy cannot be proven")
        got, got_parts = split_checksum(found.checksum)
        if got != want or (parts and got_parts not in (None, parts)):
            raise self._fail(VaultIntegrityError, f"version {version_id} has SHA-256 "
                             f"{found.checksum}, expected {checksum}")
        mode = self.vc.settings.lock_mode
        if (found.lock_mode not in (mode, "COMPLIANCE") or found.retain_until is None
                or found.retain_until < until
                or (self.legal_hold and not found.legal_hold)):
            raise self._fail(VaultMisconfigured, f"version {version_id} was stored without "
                             f"the requested lock ({mode} until {self.retain_until:%Y-%m-%d}"
                             f"{', legal hold' if self.legal_hold else ''}); check the "
                             "bucket's Object Lock")
        return Receipt(key=self.key, version_id=version_id, size=size,
                       checksum_sha256_b64=found.checksum, etag=etag.strip('"'),
                       object_key=self.object_key, parts=parts)

