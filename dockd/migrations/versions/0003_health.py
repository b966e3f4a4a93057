"""Health: per-dock captures (clock, battery, host storage), shift logs, findings.

Revision ID: 0003_health
Revises: 0002_audit
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from dockd.catalog.types import IdType, UTCDateTime

revision: str = "0003_health"
down_revision: str | None = "0002_audit"
branch_labels: str | None = None
depends_on: str | None = None


def _owner_columns(table: str) -> list[Any]:
    """id, camera_serial, session_id and at: every health table starts with these."""
    return [
        sa.Column("id", IdType, nullable=False),
        sa.Column("camera_serial", sa.String(128), nullable=False),
        sa.Column("session_id", IdType, nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_serial"], ["cameras.serial"], name=op.f(f"fk_{table}_camera_serial_cameras")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["dock_sessions.id"], name=op.f(f"fk_{table}_session_id_dock_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def _indexes(table: str) -> None:
    op.create_index(op.f(f"ix_{table}_camera_serial"), table, ["camera_serial"], unique=False)
    op.create_index(op.f(f"ix_{table}_at"), table, ["at"], unique=False)


def upgrade() -> None:
    op.create_table(
        "dock_captures",
        *_owner_columns("dock_captures"),
        sa.Column("clock_offset_s", sa.Float(), nullable=False),
        sa.Column("clock_set", sa.Boolean(), nullable=False),
        sa.Column("soc_percent", sa.Float(), nullable=True),
        sa.Column("voltage_mv", sa.Integer(), nullable=True),
        sa.Column("current_ma", sa.Integer(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("cycle_count", sa.Integer(), nullable=True),
        sa.Column("design_capacity_mah", sa.Integer(), nullable=True),
        sa.Column("full_charge_capacity_mah", sa.Integer(), nullable=True),
        sa.Column("charging", sa.String(16), nullable=True),
        sa.Column("storage_total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("storage_free_bytes", sa.BigInteger(), nullable=True),
    )
    _indexes("dock_captures")
    op.create_table(
        "shift_samples",
        *_owner_columns("shift_samples"),
        sa.Column("camera_at", UTCDateTime(), nullable=False),
        sa.Column("soc_percent", sa.Float(), nullable=False),
        sa.Column("voltage_mv", sa.Integer(), nullable=False),
        sa.Column("current_ma", sa.Integer(), nullable=False),
        sa.Column("temperature_c", sa.Float(), nullable=False),
        sa.UniqueConstraint(
            "camera_serial", "camera_at", name=op.f("uq_shift_samples_camera_at")
        ),
    )
    _indexes("shift_samples")
    op.create_table(
        "shift_events",
        *_owner_columns("shift_events"),
        sa.Column("camera_at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.UniqueConstraint(
            "camera_serial", "camera_at", "kind", name=op.f("uq_shift_events_camera_at")
        ),
    )
    _indexes("shift_events")
    op.create_table(
        "health_findings",
        sa.Column("id", IdType, nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("advice", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("cleared_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_findings")),
        sa.UniqueConstraint("key", name=op.f("uq_health_findings_key")),
    )
    op.create_index(
        op.f("ix_health_findings_cleared_at"), "health_findings", ["cleared_at"], unique=False
    )


def downgrade() -> None:
    raise RuntimeError("catalog downgrades are not supported: restore a backup instead")
