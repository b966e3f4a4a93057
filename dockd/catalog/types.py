"""Column types and vocabularies shared by the models, the migrations and the repository."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

#: autoincrement primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite
IdType = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps it as `timestamptz`; SQLite has no zone-aware type, so the value is stored
    as naive UTC text (fixed width, so it sorts) and the zone is put back on read. Naive values
    are refused on write: a timestamp whose zone is a guess is worse than none.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the catalog stores aware UTC times only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class RecordingStatus(enum.StrEnum):
    """Life of one recording. Only `verified` may become `deleted_from_camera`; `refused`
    (a listing entry with a hostile name or metadata) is never read nor deleted."""

    PENDING = "pending"
    TRANSFERRING = "transferring"
    STORED = "stored"
    VERIFIED = "verified"
    FAILED = "failed"
    DELETED_FROM_CAMERA = "deleted_from_camera"
    REFUSED = "refused"


class EventKind(enum.StrEnum):
    DOCKED = "docked"
    UNDOCKED = "undocked"
    TRANSFER_STARTED = "transfer_started"
    TRANSFER_FINISHED = "transfer_finished"
    TRANSFER_FAILED = "transfer_failed"
    STORED = "stored"
    VERIFIED = "verified"
    FAILED = "failed"
    DELETED_FROM_CAMERA = "deleted_from_camera"
    EXPORTED = "exported"
    VERIFIED_LATER = "verified_later"
    #: one `dockctl verify` run: what it read (all, a sample, those since a date), what it found
    VERIFY_RUN = "verify_run"
    CLOCK_SET = "clock_set"
    CAMERA_SEEN = "camera_seen"
    #: a camera listed a recording the catalog did not know (its facts, as first seen)
    LISTED = "listed"
    #: a listing entry refused on its own (hostile name or metadata); it stays on the camera
    REFUSED = "refused"
    #: the camera's whole listing could not be read; nothing of it was listed
    LISTING_REFUSED = "listing_refused"
    #: a docked device could not even be identified or opened
    CAMERA_REFUSED = "camera_refused"
    #: the path, size and SHA-256 of a file about to be published (write-ahead)
    PUBLISH_INTENT = "publish_intent"
    #: a file at a recording's path matched its committed intent and was taken as its copy
    ADOPTED = "adopted"
    #: a file found where it did not belong was moved aside, never adopted or overwritten
    QUARANTINED = "quarantined"
    #: the proof before a delete failed: the stored copy is missing or not what was recorded
    COPY_DAMAGED = "stored_copy_damaged"
    #: the facts of a recording catalogued before events carried them (migration 0004)
    CUSTODY_BASELINE = "custody_baseline"
    #: the chain disagrees with an anchor kept outside the catalog
    WITNESS_DISAGREES = "witness_disagrees"
    #: legal hold put on / released by a person; a retention category set
    HOLD_SET = "legal_hold_set"
    HOLD_RELEASED = "legal_hold_released"
    CATEGORY_SET = "category_set"
    #: the vault holds a verified copy; its hold mirrored, its lock extended, its version
    #: deleted after its lock ended
    VAULTED = "vaulted"
    VAULT_HOLD = "vault_hold_mirrored"
    VAULT_LOCK = "vault_lock_extended"
    VAULT_DELETED = "vault_deleted"
    #: retention deleted the local copy (a tombstone: the facts keep the hashes)
    DELETED_BY_RETENTION = "deleted_by_retention"


class AttemptOutcome(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
