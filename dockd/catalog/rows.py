"""Plain, immutable values the Catalog hands out (no ORM object ever leaves a transaction)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from dockd.catalog.types import RecordingStatus


@dataclass(frozen=True)
class CameraRow:
    serial: str
    vendor: str
    model: str
    firmware: str
    first_seen: datetime
    last_seen: datetime
    last_clock_offset_s: float | None


@dataclass(frozen=True)
class SessionCounts:
    """Reconciliation of one dock session: what the camera listed and what became of it."""

    listed: int = 0
    already_known: int = 0
    stored: int = 0
    deleted: int = 0
    failed: int = 0


@dataclass(frozen=True)
class SessionRow:
    id: int
    camera_serial: str
    port_id: int | None
    docked_at: datetime
    undocked_at: datetime | None
    outcome: str | None
    listed: int
    already_known: int
    stored: int
    deleted: int
    failed: int
    refusal: str | None = None


@dataclass(frozen=True)
class RecordingRow:
    id: int
    camera_serial: str
    camera_name: str
    size: int
    started: datetime
    duration_s: float
    prerecord_s: float
    camera_sha256: str | None
    plaintext_sha256: str | None
    stored_sha256: str | None
    store_path: str | None
    status: RecordingStatus
    failure_reason: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    stored_size: int | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    stored_on: str | None = None
    category: str | None = None
    legal_hold: bool = False
    hold_reason: str | None = None
    vault_key: str | None = None
    vault_version: str | None = None
    vault_checksum: str | None = None
    vault_hold: bool = False
    vault_lock_until: datetime | None = None
    local_deleted_at: datetime | None = None
    vault_deleted_at: datetime | None = None


@dataclass(frozen=True)
class CameraRefusals:
    """What a camera's latest dock could not take (`Catalog.refusals`)."""

    serial: str
    docked_at: datetime | None
    #: why nothing at all was listed, if so
    listing: str | None
    #: listing entries refused on their own at that dock (they stay on the camera)
    recordings: list[RecordingRow] = field(default_factory=list)


@dataclass(frozen=True)
class AttemptRow:
    id: int
    recording_id: int
    session_id: int | None
    started_at: datetime
    finished_at: datetime | None
    offset_from: int
    bytes: int
    outcome: str | None
    error_kind: str | None
    error_message: str | None


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: datetime
    kind: str
    actor: str
    host: str
    camera_serial: str | None
    recording_id: int | None
    #: canonical JSON text, exactly as hashed
    details: str
    prev_hash: str
    hash: str

    @property
    def details_dict(self) -> dict[str, Any]:
        value = json.loads(self.details)
        assert isinstance(value, dict)
        return value


@dataclass(frozen=True)
class ChainProblem:
    """One thing wrong with the audit chain. `seq` is the event it was found at, if any."""

    seq: int | None
    #: changed | missing | broken_link | tail | anchor
    problem: str
    message: str


@dataclass(frozen=True)
class StatusSnapshot:
    recordings_by_status: dict[str, int] = field(default_factory=dict)
    bytes_by_status: dict[str, int] = field(default_factory=dict)
    cameras: int = 0
    open_sessions: int = 0
    audit_seq: int = 0
    audit_head_hash: str = ""
    last_event_at: datetime | None = None


T = TypeVar("T")


def to_row(cls: type[T], obj: object) -> T:
    """Copy the same-named attributes of an ORM object into the dataclass `cls`."""
    values = {f.name: getattr(obj, f.name) for f in fields(cls)}  # type: ignore[arg-type]
    for key, value in values.items():
        # a just-written object still holds the caller's zone: hand out UTC like a read does
        if isinstance(value, datetime):
            values[key] = value.astimezone(UTC)
    if cls is RecordingRow:
        values["status"] = RecordingStatus(values["status"])
    return cls(**values)


#: RecordingRow's fields, in order (`recording_row` builds one from a row of these columns)
RECORDING_FIELDS = tuple(f.name for f in fields(RecordingRow))


def recording_row(values: Sequence[Any]) -> RecordingRow:
    """A RecordingRow from the columns RECORDING_FIELDS names, in that order: as `to_row`
    does (times in UTC, the status as its enum), without an ORM object in between."""
    row = dict(zip(RECORDING_FIELDS, values, strict=True))
    for key, value in row.items():
        if isinstance(value, datetime):
            row[key] = value.astimezone(UTC)
    row["status"] = RecordingStatus(row["status"])
    return RecordingRow(**row)


# --- health ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureRow:
    """What one dock captured beyond recordings (battery fields None when it could not tell)."""

    id: int
    camera_serial: str
    session_id: int | None
    at: datetime
    clock_offset_s: float
    clock_set: bool
    soc_percent: float | None
    voltage_mv: int | None
    current_ma: int | None
    temperature_c: float | None
    cycle_count: int | None
    design_capacity_mah: int | None
    full_charge_capacity_mah: int | None
    charging: str | None
    storage_total_bytes: int | None
    storage_free_bytes: int | None


@dataclass(frozen=True)
class ShiftSampleRow:
    camera_serial: str
    at: datetime  # host time
    soc_percent: float
    voltage_mv: int
    current_ma: int
    temperature_c: float


@dataclass(frozen=True)
class ShiftEventRow:
    camera_serial: str
    at: datetime  # host time
    kind: str


@dataclass(frozen=True)
class DockedChargeRow:
    """A battery reading of a camera still on the dock (or, `docked` false, its leaving),
    with the port of the dock session it arrived with."""

    camera_serial: str
    session_id: int | None
    dock: str | None
    slot: int | None
    at: datetime  # host time
    docked: bool
    soc_percent: float | None
    voltage_mv: int | None
    current_ma: int | None
    temperature_c: float | None
    charging: str | None


@dataclass(frozen=True)
class TransferRecord:
    """One finished transfer attempt with where it happened (for transfer health)."""

    camera_serial: str
    recording_id: int
    session_id: int | None
    dock: str | None
    slot: int | None
    started_at: datetime
    finished_at: datetime
    bytes: int
    ok: bool
    error_kind: str | None


@dataclass(frozen=True)
class FindingRecord:
    """A health finding as stored: raised, maybe cleared. `evidence` is canonical JSON."""

    key: str
    code: str
    subject: str
    severity: str
    summary: str
    advice: str
    evidence: str
    raised_at: datetime
    updated_at: datetime
    cleared_at: datetime | None


@dataclass(frozen=True)
class FindingDraft:
    """A finding as evaluated now, before it is stored (see `Catalog.sync_findings`)."""

    key: str
    code: str
    subject: str
    severity: str
    summary: str
    advice: str
    evidence: str
