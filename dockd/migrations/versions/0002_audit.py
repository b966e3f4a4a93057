"""Hash-chained audit trail: audit_events and the audit_head row (seq 0, genesis hash).

Revision ID: 0002_audit
Revises: 0001_core
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockd.catalog.types import UTCDateTime

revision: str = "0002_audit"
down_revision: str | None = "0001_core"
branch_labels: str | None = None
depends_on: str | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("camera_serial", sa.String(128), nullable=True),
        sa.Column("recording_id", sa.BigInteger(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
    )
    op.create_index(op.f("ix_audit_events_kind"), "audit_events", ["kind"], unique=False)
    op.create_index(
        op.f("ix_audit_events_camera_serial"), "audit_events", ["camera_serial"], unique=False
    )
    op.create_index(
        op.f("ix_audit_events_recording_id"), "audit_events", ["recording_id"], unique=False
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def downgrade() -> None:
    raise RuntimeError("catalog downgrades are not supported: restore a backup instead")
