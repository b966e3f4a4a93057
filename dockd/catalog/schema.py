"""The catalog's tables as SQLAlchemy models (portable: SQLite and PostgreSQL).

The migrations in `dockd/migrations/versions` create exactly these tables; a test compares
the migrated database with this metadata so the two cannot drift apart.
Battery snapshots and shift logs get their own tables in a later migration.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dockd.catalog.types import IdType, RecordingStatus, UTCDateTime

#: stable constraint names, so later migrations can alter them on every backend
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUS_CHECK = "status IN (" + ", ".join(f"'{s.value}'" for s in RecordingStatus) + ")"
HASH_LEN = 64  # hex SHA-256


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Dock(Base):
    __tablename__ = "docks"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    host: Mapped[str] = mapped_column(String(255))


class Port(Base):
    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("dock_id", "slot", name="uq_ports_dock_slot"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    dock_id: Mapped[int] = mapped_column(ForeignKey("docks.id"))
    slot: Mapped[int] = mapped_column(Integer)


class Camera(Base):
    __tablename__ = "cameras"

    serial: Mapped[str] = mapped_column(String(128), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    firmware: Mapped[str] = mapped_column(String(200))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    #: camera clock minus host clock, seconds, at the last dock
    last_clock_offset_s: Mapped[float | None] = mapped_column(Float)


class DockSession(Base):
    __tablename__ = "dock_sessions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    camera_serial: Mapped[str] = mapped_column(ForeignKey("cameras.serial"), index=True)
    port_id: Mapped[int | None] = mapped_column(ForeignKey("ports.id"))
    docked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    undocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(64))
    # reconciliation: what the camera listed against what this session did with it
    listed: Mapped[int] = mapped_column(Integer, default=0)
    already_known: Mapped[int] = mapped_column(Integer, default=0)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    #: why nothing of the camera was listed (its listing could not be read), if so
    refusal: Mapped[str | None] = mapped_column(Text)


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (
        # the camera's hash belongs to the identity: a second recording with the same name,
        # start and size but other bytes (a cloned serial, a reused name) is its own recording
        UniqueConstraint(
            "camera_serial", "camera_name", "started", "size", "camera_sha256",
            name="uq_recordings_identity",
        ),
        # a camera that keeps no hash (NULL): its recordings are (serial, name, start, size);
        # a plain unique key would let NULLs repeat
        Index("uq_recordings_identity_unhashed", "camera_serial", "camera_name", "started",
              "size", unique=True, sqlite_where=text("camera_sha256 IS NULL"),
              postgresql_where=text("camera_sha256 IS NULL")),
        CheckConstraint(STATUS_CHECK, name="status"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    camera_serial: Mapped[str] = mapped_column(ForeignKey("cameras.serial"), index=True)
    #: the camera's own file name (drivers have checked it is printable UTF-8)
    camera_name: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    started: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_s: Mapped[float] = mapped_column(Float)
    prerecord_s: Mapped[float] = mapped_column(Float)
    #: the camera's own SHA-256 of the plaintext; None when it keeps none (custody starts
    #: with the hash taken while reading: plaintext_sha256)
    camera_sha256: Mapped[str | None] = mapped_column(String(HASH_LEN))
    plaintext_sha256: Mapped[str | None] = mapped_column(String(HASH_LEN))
    stored_sha256: Mapped[str | None] = mapped_column(String(HASH_LEN))
    #: bytes of the stored (encrypted) file
    stored_size: Mapped[int | None] = mapped_column(BigInteger)
    store_path: Mapped[str | None] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the one worker that may write this recording's files (dockd/catalog/lease.py)
    lease_owner: Mapped[str | None] = mapped_column(String(400))
    #: for an owner on another host: the lease ends here unless renewed
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # --- evidence leaves the dock (migration 0006; docs/vault.md, docs/retention.md) ---
    #: the host whose store holds the local copy (None: catalogued before hosts had ids)
    stored_on: Mapped[str | None] = mapped_column(String(255))
    #: the retention category (None: the default)
    category: Mapped[str | None] = mapped_column(String(64))
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    hold_reason: Mapped[str | None] = mapped_column(Text)
    vault_key: Mapped[str | None] = mapped_column(Text)
    vault_version: Mapped[str | None] = mapped_column(String(255))
    vault_checksum: Mapped[str | None] = mapped_column(String(255))
    #: the legal hold as set on the vault object (mirrors legal_hold once the vault caught up)
    vault_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    vault_lock_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: tombstones: when retention deleted the local copy / the vault's version
    local_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    vault_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TransferAttempt(Base):
    __tablename__ = "transfer_attempts"
    __table_args__ = (
        # the attempts still open (a transfer in flight, or one a crash left open): `status`
        # and the start-up's close_stale ask for them, and a fleet-year has a million closed
        # ones to scan past otherwise (migration 0009_open_attempts)
        Index("ix_transfer_attempts_open", "id", sqlite_where=text("finished_at IS NULL"),
              postgresql_where=text("finished_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("dock_sessions.id"))
    #: indexed: health reads the last days of attempts (migration 0007_scale)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offset_from: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    outcome: Mapped[str | None] = mapped_column(String(16))
    error_kind: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)


class AuditEvent(Base):
    """One link of the hash chain. `seq` is assigned by the appender, 1, 2, 3... without gaps."""

    __tablename__ = "audit_events"
    __table_args__ = (
        # one camera's / one recording's events in chain order, straight from the index
        # (migration 0007_scale)
        Index("ix_audit_events_camera_serial_seq", "camera_serial", "seq"),
        Index("ix_audit_events_recording_id_seq", "recording_id", "seq"),
    )

    #: IdType: on SQLite the rowid itself (INTEGER PRIMARY KEY), so the chain is walked in
    #: table order, not through a second index (migration 0007_scale)
    seq: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    camera_serial: Mapped[str | None] = mapped_column(String(128))
    recording_id: Mapped[int | None] = mapped_column(BigInteger)
    #: canonical JSON text; hashed exactly as stored
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    hash: Mapped[str] = mapped_column(String(HASH_LEN), unique=True)


class Setting(Base):
    """What the catalog says of itself (migration 0005): e.g. `mode` = simulated | real."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AuditHead(Base):
    """The single row (id=1) naming the last event: the append lock, and the tail check."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(HASH_LEN))


# --- health (migration 0003_health) -----------------------------------------------------


class DockCapture(Base):
    """What a camera told at one dock, beyond its recordings: clock, battery, host storage."""

    __tablename__ = "dock_captures"
    __table_args__ = (Index("ix_dock_captures_camera_serial_at", "camera_serial", "at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    camera_serial: Mapped[str] = mapped_column(ForeignKey("cameras.serial"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("dock_sessions.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: camera clock minus host clock, seconds, as measured at this dock (before any set)
    clock_offset_s: Mapped[float] = mapped_column(Float)
    clock_set: Mapped[bool] = mapped_column(Boolean, default=False)
    soc_percent: Mapped[float | None] = mapped_column(Float)
    voltage_mv: Mapped[int | None] = mapped_column(Integer)
    current_ma: Mapped[int | None] = mapped_column(Integer)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    cycle_count: Mapped[int | None] = mapped_column(Integer)
    design_capacity_mah: Mapped[int | None] = mapped_column(Integer)
    full_charge_capacity_mah: Mapped[int | None] = mapped_column(Integer)
    charging: Mapped[str | None] = mapped_column(String(16))
    storage_total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    storage_free_bytes: Mapped[int | None] = mapped_column(BigInteger)


class ShiftSampleRecord(Base):
    """One battery sample of a camera's shift log; `at` is host time (clock-corrected)."""

    __tablename__ = "shift_samples"
    __table_args__ = (
        UniqueConstraint("camera_serial", "camera_at", name="uq_shift_samples_camera_at"),
        Index("ix_shift_samples_camera_serial_at", "camera_serial", "at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    camera_serial: Mapped[str] = mapped_column(ForeignKey("cameras.serial"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("dock_sessions.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    camera_at: Mapped[datetime] = mapped_column(UTCDateTime)
    soc_percent: Mapped[float] = mapped_column(Float)
    voltage_mv: Mapped[int] = mapped_column(Integer)
    current_ma: Mapped[int] = mapped_column(Integer)
    temperature_c: Mapped[float] = mapped_column(Float)


class ShiftEventRecord(Base):
    """One event of a camera's shift log; `at` is host time (clock-corrected)."""

    __tablename__ = "shift_events"
    __table_args__ = (
        UniqueConstraint("camera_serial", "camera_at", "kind", name="uq_shift_events_camera_at"),
        Index("ix_shift_events_camera_serial_at", "camera_serial", "at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    camera_serial: Mapped[str] = mapped_column(ForeignKey("cameras.serial"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("dock_sessions.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    camera_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))


class DockedChargeReading(Base):
    """The daemon's battery reading of a camera still on the dock after its ingest (migration
    0008_docked_charge); `docked` false: the camera left at `at` (battery fields empty)."""

    __tablename__ = "docked_charge_readings"
    __table_args__ = (Index("ix_docked_charge_readings_camera_serial_at", "camera_serial", "at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    camera_serial: Mapped[str] = mapped_column(ForeignKey("cameras.serial"))
    #: the dock session the camera arrived with (its port)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("dock_sessions.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    docked: Mapped[bool] = mapped_column(Boolean)
    soc_percent: Mapped[float | None] = mapped_column(Float)
    voltage_mv: Mapped[int | None] = mapped_column(Integer)
    current_ma: Mapped[int | None] = mapped_column(Integer)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    charging: Mapped[str | None] = mapped_column(String(16))


class HealthFinding(Base):
    """A finding as last raised; `cleared_at` is set once it no longer holds."""

    __tablename__ = "health_findings"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    #: "<code>:<subject>", e.g. "battery_soh:NC-1" or "port_transfer:dock-a/3"
    key: Mapped[str] = mapped_column(String(400), unique=True)
    code: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    advice: Mapped[str] = mapped_column(Text)
    #: canonical JSON of the evidence
    evidence: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
