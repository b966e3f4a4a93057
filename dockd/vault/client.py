"""The vault's S3 layer: put age files into an Object Lock bucket and prove they are there.

Every call goes through `_call`, which turns botocore's exceptions into the typed errors
of dockd.vault.errors (one line: what, which object, what to do). Uploads live in
dockd.vault.upload; this module holds the client, the read side and the lock controls.

boto3 is imported here lazily (it is the optional `vault` extra), and the client never
reads ~/.aws: endpoint, region and credentials come only from VaultSettings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from dockd.vault.boto_errors import client_error_code, map_error
from dockd.vault.errors import (
    VaultError,
    VaultMisconfigured,
    VaultObjectMissing,
    VaultRefused,
    VaultUnreachable,
)
from dockd.vault.metadata import decode_metadata
from dockd.vault.settings import VaultSettings

#: the read size for downloads and hashing in the vault
PIECE = 4 << 20
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Receipt:
    """What the vault confirmed for one upload (after head_object checked it)."""

    #: the key as given to upload(); the object's full key is `object_key`
    key: str
    version_id: str
    size: int
    #: as the server reports it: base64 SHA-256, or for a multipart object the COMPOSITE
    #: checksum (SHA-256 of the parts' SHA-256s) with a `-<parts>` suffix
    checksum_sha256_b64: str
    etag: str
    object_key: str
    #: 0 for a single PUT, else the number of parts
    parts: int = 0


@dataclass(frozen=True)
class ObjectState:
    """One version as head_object sees it (nothing is downloaded)."""

    exists: bool
    size: int | None = None
    checksum: str | None = None
    retain_until: datetime | None = None
    lock_mode: str | None = None
    legal_hold: bool = False
    version_id: str | None = None
    etag: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BucketState:
    lock_enabled: bool
    default_mode: str | None
    default_retention: timedelta | None


class Download:
    """A streaming body of one version; read it in bounded pieces, then close it."""

    def __init__(self, body: Any, size: int, guard: Callable[[], Any]) -> None:
        self._body = body
        self.size = size
        self._guard = guard

    def read(self, amt: int) -> bytes:
        with self._guard():
            return bytes(self._body.read(amt))

    def pieces(self, piece: int = PIECE) -> Iterator[bytes]:
        while chunk := self.read(piece):
            yield chunk

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class VaultClient:
    def __init__(self, settings: VaultSettings) -> None:
        try:
            import boto3  # noqa: PLC0415 - optional dependency, loaded only with a vault
            from botocore.config import Config  # noqa: PLC0415
        except ImportError:
            raise VaultMisconfigured("the vault needs boto3: pip install 'dockd[vault]'") \
                from None
        self.settings = settings
        config = Config(
            connect_timeout=settings.connect_timeout_s,
            read_timeout=settings.read_timeout_s,
            retries={"mode": "standard", "max_attempts": settings.max_attempts},
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            # we always send our own ChecksumSHA256 where it matters; letting botocore add
            # CRC32 trailers to everything else would only cost a pass over each body
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # a private Session: nothing from ~/.aws or AWS_* can change where evidence goes
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key.reveal(),
            aws_secret_access_key=settings.secret_key.reveal(),
            region_name=settings.region)
        self._s3: Any = session.client("s3", endpoint_url=settings.endpoint, config=config)

    # --- plumbing -----------------------------------------------------------------

    def object_key(self, key: str) -> str:
        if not key or key.startswith("/"):
            raise ValueError(f"vault key {key!r} must be non-empty and relative")
        return self.settings.prefix + key

    def where(self, object_key: str | None = None) -> str:
        bucket = self.settings.bucket
        return f"{bucket}/{object_key}" if object_key is not None else f"bucket {bucket}"

    @contextmanager
    def _call(self, doing: str, object_key: str | None = None) -> Iterator[None]:
        """Run S3 calls; a botocore exception leaves as one VaultError line."""
        try:
            yield
        except Exception as exc:
            err = map_error(exc, endpoint=self.settings.endpoint, doing=doing,
                            what=self.where(object_key),
                            secrets=(self.settings.secret_key.reveal(),
                                     self.settings.access_key.reveal()))
            if err is None:
                raise
            err.code = client_error_code(exc)
            raise err from None

    # --- the bucket ---------------------------------------------------------------

    def check_bucket(self, min_retention: timedelta | None = None) -> BucketState:
        """Refuse a bucket unfit for evidence: missing, without Object Lock, or with a default
        retention shorter than `min_retention` (a default counts a year as 365 days)."""
        with self._call("checking Object Lock of"):
            doc = self._s3.get_object_lock_configuration(Bucket=self.settings.bucket)
        conf = doc.get("ObjectLockConfiguration") or {}
        if conf.get("ObjectLockEnabled") != "Enabled":
            raise VaultMisconfigured(
                f"vault {self.settings.endpoint}: {self.where()} has no Object Lock enabled; "
                "evidence needs a bucket created with Object Lock")
        default = (conf.get("Rule") or {}).get("DefaultRetention") or {}
        mode = default.get("Mode")
        retention: timedelta | None = None
        if "Days" in default or "Years" in default:
            retention = _DAY * (int(default.get("Days", 0)) + 365 * int(default.get("Years", 0)))
        if min_retention is not None and retention is not None and retention < min_retention:
            raise VaultMisconfigured(
                f"vault {self.settings.endpoint}: {self.where()} has a default retention of "
                f"{_days(retention)} ({mode}), shorter than the policy's {_days(min_retention)}; "
                "raise the bucket's default retention or use another bucket")
        return BucketState(lock_enabled=True, default_mode=str(mode) if mode else None,
                           default_retention=retention)

    # --- writing ------------------------------------------------------------------

    def upload(self, path: Path, key: str, *, stored_sha256: str, retain_until: datetime,
               legal_hold: bool, metadata: Mapping[str, str], resume_dir: Path,
               progress: Callable[[int], None] | None = None) -> Receipt:
        """Put one file into the vault under Object Lock, and prove it arrived intact.

        Files up to the part size go up in one PUT with ChecksumSHA256=`stored_sha256`, so
        the server checks the bytes; larger ones as a multipart upload that resumes from
        `resume_dir` after a crash or a broken link. `progress(n)` is called with the bytes
        the vault has confirmed so far. Raises VaultError (see dockd.vault.errors)."""
        from dockd.vault.upload import upload_file  # noqa: PLC0415 - keeps import order flat

        return upload_file(self, path, key, stored_sha256=stored_sha256,
                           retain_until=retain_until, legal_hold=legal_hold,
                           metadata=metadata, resume_dir=resume_dir, progress=progress)

    def set_legal_hold(self, key: str, version_id: str, on: bool) -> None:
        okey = self.object_key(key)
        with self._call("setting the legal hold of", okey):
            self._s3.put_object_legal_hold(
                Bucket=self.settings.bucket, Key=okey, VersionId=_vid(version_id),
                LegalHold={"Status": "ON" if on else "OFF"})

    def extend_retention(self, key: str, version_id: str, until: datetime) -> datetime:
        """Move the version's retain-until date later (never earlier); returns the date in
        force afterwards. The version keeps its lock mode (settings' mode if it had none)."""
        _aware(until, "until")
        state = self.head(key, version_id)
        if not state.exists:
            raise VaultObjectMissing(f"vault {self.settings.endpoint}: extending retention "
                                     f"of {self.where(self.object_key(key))}: no such version")
        if state.retain_until is not None and state.retain_until >= until:
            return state.retain_until
        okey = self.object_key(key)
        with self._call("extending the retention of", okey):
            self._s3.put_object_retention(
                Bucket=self.settings.bucket, Key=okey, VersionId=_vid(version_id),
                Retention={"Mode": state.lock_mode or self.settings.lock_mode,
                           "RetainUntilDate": until})
        return until

    def delete_version(self, key: str, version_id: str, *,
                       bypass_governance: bool = False) -> None:
        """Delete one version for good. A version under COMPLIANCE retention or legal hold
        is refused by the server (VaultRefused says which); GOVERNANCE retention yields only
        to `bypass_governance` with a key allowed to bypass it."""
        okey = self.object_key(key)
        try:
            with self._call("deleting", okey):
                self._s3.delete_object(Bucket=self.settings.bucket, Key=okey,
                                       VersionId=_vid(version_id),
                                       BypassGovernanceRetention=bypass_governance)
        except VaultRefused as exc:
            raise VaultRefused(f"{exc}{self._why_locked(key, version_id)}") from None

    def _why_locked(self, key: str, version_id: str) -> str:
        try:
            state = self.head(key, version_id)
        except VaultError:
            return ""
        if state.legal_hold:
            return " (the version is under legal hold)"
        if state.retain_until is not None and state.retain_until > datetime.now(UTC):
            return (f" (the version is under {state.lock_mode} retention until "
                    f"{state.retain_until:%Y-%m-%dT%H:%M:%SZ})")
        return ""

    # --- reading ------------------------------------------------------------------

    def head(self, key: str, version_id: str | None) -> ObjectState:
        """The version's size, checksum and lock, without downloading it; a missing key or
        version is `ObjectState(exists=False)`."""
        return self.head_object(self.object_key(key), version_id)

    def head_object(self, object_key: str, version_id: str | None) -> ObjectState:
        args: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": object_key,
                                "ChecksumMode": "ENABLED"}
        if version_id is not None:
            args["VersionId"] = _vid(version_id)
        try:
            with self._call("looking up", object_key):
                doc = self._s3.head_object(**args)
        except VaultObjectMissing:
            return ObjectState(exists=False)
        until = doc.get("ObjectLockRetainUntilDate")
        return ObjectState(
            exists=True,
            size=int(doc["ContentLength"]),
            checksum=doc.get("ChecksumSHA256"),
            retain_until=until.astimezone(UTC) if isinstance(until, datetime) else None,
            lock_mode=doc.get("ObjectLockMode"),
            legal_hold=doc.get("ObjectLockLegalHoldStatus") == "ON",
            version_id=doc.get("VersionId"),
            etag=str(doc.get("ETag", "")).strip('"') or None,
            metadata=decode_metadata(doc.get("Metadata") or {}),
        )

    def open_download(self, key: str, version_id: str) -> Download:
        okey = self.object_key(key)
        with self._call("downloading", okey):
            doc = self._s3.get_object(Bucket=self.settings.bucket, Key=okey,
                                      VersionId=_vid(version_id))
        return Download(doc["Body"], int(doc["ContentLength"]),
                        lambda: self._call("downloading", okey))

    def sha256_of(self, key: str, version_id: str, piece: int = PIECE) -> str:
        """Download the version and return its SHA-256 (hex), reading `piece` bytes at a
        time: what `check --read-data` does for the vault."""
        digest = hashlib.sha256()
        got = 0
        with self.open_download(key, version_id) as body:
            for chunk in body.pieces(piece):
                digest.update(chunk)
                got += len(chunk)
        if got != body.size:
            raise VaultUnreachable(f"vault {self.settings.endpoint}: downloading "
                             f"{self.where(self.object_key(key))}: got {got} of {body.size} "
                             "bytes; retry")
        return digest.hexdigest()


def _vid(version_id: str) -> str:
    # without a VersionId a delete adds a delete marker and a head reads whatever is latest:
    # never what evidence custody means
    if not version_id:
        raise ValueError("a vault version id is required")
    return version_id


def _aware(when: datetime, name: str) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")


def _days(span: timedelta) -> str:
    days = span / _DAY
    return f"{days:g} day" + ("" if days == 1 else "s")
