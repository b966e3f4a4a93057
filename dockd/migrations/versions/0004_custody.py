"""Custody: leases, refused recordings, the stored size, the hash in a recording's identity,
session refusals, and a `custody_baseline` event per recording so the chain vouches for rows
catalogued before events carried their facts.

Revision ID: 0004_custody
Revises: 0003_health
Create Date: 2026-11-29
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from dockd.catalog.audit import canonical_details, event_hash, format_at
from dockd.catalog.types import UTCDateTime

revision: str = "0004_custody"
down_revision: str | None = "0003_health"
branch_labels: str | None = None
depends_on: str | None = None

_OLD = ("pending", "transferring", "stored", "verified", "failed", "deleted_from_camera")
_NEW = (*_OLD, "refused")
#: the custody facts as this revision defines them (dockd/catalog/custody.py, frozen here)
_FACTS = ("camera_serial", "camera_name", "started", "size", "duration_s", "prerecord_s",
          "camera_sha256", "plaintext_sha256", "stored_sha256", "stored_size", "store_path",
          "status")


_NUMBERS: dict[str, Any] = {
    "size": sa.BigInteger(), "stored_size": sa.BigInteger(), "duration_s": sa.Float(),
    "prerecord_s": sa.Float()}


def _check(statuses: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade() -> None:
    op.add_column("dock_sessions", sa.Column("refusal", sa.Text(), nullable=True))
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("stored_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(400), nullable=True))
        batch.add_column(sa.Column("lease_until", UTCDateTime(), nullable=True))
        batch.drop_constraint(op.f("uq_recordings_identity"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_recordings_identity"),
            ["camera_serial", "camera_name", "started", "size", "camera_sha256"])
        batch.drop_constraint(op.f("ck_recordings_status"), type_="check")
        batch.create_check_constraint(op.f("ck_recordings_status"), _check(_NEW))
    _baseline()


def _baseline() -> None:
    """One `custody_baseline` event per recording, carrying its facts as they are now."""
    conn = op.get_bind()
    head = conn.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    seq, prev = int(head.seq), str(head.hash)
    recordings = sa.table(
        "recordings", sa.column("id", sa.BigInteger()),
        *(sa.column(name, UTCDateTime() if name == "started" else sa.String())
          for name in _FACTS if name not in _NUMBERS),
        *(sa.column(name, kind) for name, kind in _NUMBERS.items()))
    rows = conn.execute(sa.select(recordings).order_by(recordings.c.id)).mappings().all()
    if not rows:
        return
    at = datetime.now(UTC)
    events = sa.table(
        "audit_events", sa.column("seq", sa.BigInteger()), sa.column("at", UTCDateTime()),
        sa.column("kind", sa.String()), sa.column("actor", sa.String()),
        sa.column("host", sa.String()), sa.column("camera_serial", sa.String()),
        sa.column("recording_id", sa.BigInteger()), sa.column("details", sa.Text()),
        sa.column("prev_hash", sa.String()), sa.column("hash", sa.String()))
    batch: list[dict[str, object]] = []
    for row in rows:
        facts = {name: _fact(row[name]) for name in _FACTS}
        details = canonical_details({"recording": facts,
                                     "note": "facts as catalogued before migration 0004"})
        seq += 1
        values = {"seq": seq, "at": at, "kind": "custody_baseline", "actor": "migration",
                  "host": "migration", "camera_serial": row["camera_serial"],
                  "recording_id": int(row["id"]), "details": details, "prev_hash": prev}
        prev = event_hash(**values)
        batch.append({**values, "hash": prev})
        if len(batch) >= 1000:
            op.bulk_insert(events, batch)
            batch = []
    if batch:
        op.bulk_insert(events, batch)
    conn.execute(sa.text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"),
                 {"seq": seq, "hash": prev})


def _fact(value: object) -> object:
    if isinstance(value, datetime):
        return format_at(value)
    json.dumps(value)  # anything else must already be a JSON value
    return value


def downgrade() -> None:
    raise RuntimeError("catalog downgrades are not supported: restore a backup instead")
