"""Core tables: docks, ports, cameras, dock sessions, recordings, transfer attempts.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockd.catalog.types import IdType, UTCDateTime

revision: str = "0001_core"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# frozen here on purpose: a later status is added by a later migration
_STATUSES = ("pending", "transferring", "stored", "verified", "failed", "deleted_from_camera")


def upgrade() -> None:
    op.create_table(
        "docks",
        sa.Column("id", IdType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_docks")),
        sa.UniqueConstraint("name", name=op.f("uq_docks_name")),
    )
    op.create_table(
        "ports",
        sa.Column("id", IdType, nullable=False),
        sa.Column("dock_id", IdType, nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["dock_id"], ["docks.id"], name=op.f("fk_ports_dock_id_docks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ports")),
        sa.UniqueConstraint("dock_id", "slot", name=op.f("uq_ports_dock_slot")),
    )
    op.create_table(
        "cameras",
        sa.Column("serial", sa.String(128), nullable=False),
        sa.Column("vendor", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("firmware", sa.String(200), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("last_clock_offset_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_cameras")),
    )
    op.create_table(
        "dock_sessions",
        sa.Column("id", IdType, nullable=False),
        sa.Column("camera_serial", sa.String(128), nullable=False),
        sa.Column("port_id", IdType, nullable=True),
        sa.Column("docked_at", UTCDateTime(), nullable=False),
        sa.Column("undocked_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("listed", sa.Integer(), nullable=False),
        sa.Column("already_known", sa.Integer(), nullable=False),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_serial"],
            ["cameras.serial"],
            name=op.f("fk_dock_sessions_camera_serial_cameras"),
        ),
        sa.ForeignKeyConstraint(
            ["port_id"], ["ports.id"], name=op.f("fk_dock_sessions_port_id_ports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dock_sessions")),
    )
    op.create_index(
        op.f("ix_dock_sessions_camera_serial"), "dock_sessions", ["camera_serial"], unique=False
    )
    op.create_table(
        "recordings",
        sa.Column("id", IdType, nullable=False),
        sa.Column("camera_serial", sa.String(128), nullable=False),
        sa.Column("camera_name", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("started", UTCDateTime(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("prerecord_s", sa.Float(), nullable=False),
        sa.Column("camera_sha256", sa.String(64), nullable=False),
        sa.Column("plaintext_sha256", sa.String(64), nullable=True),
        sa.Column("stored_sha256", sa.String(64), nullable=True),
        sa.Column("store_path", sa.Text(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in _STATUSES) + ")",
            name=op.f("ck_recordings_status"),
        ),
        sa.ForeignKeyConstraint(
            ["camera_serial"], ["cameras.serial"], name=op.f("fk_recordings_camera_serial_cameras")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint(
            "camera_serial", "camera_name", "started", "size", name=op.f("uq_recordings_identity")
        ),
        sa.UniqueConstraint("store_path", name=op.f("uq_recordings_store_path")),
    )
    op.create_index(
        op.f("ix_recordings_camera_serial"), "recordings", ["camera_serial"], unique=False
    )
    op.create_index(op.f("ix_recordings_status"), "recordings", ["status"], unique=False)
    op.create_table(
        "transfer_attempts",
        sa.Column("id", IdType, nullable=False),
        sa.Column("recording_id", IdType, nullable=False),
        sa.Column("session_id", IdType, nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("offset_from", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error_kind", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_transfer_attempts_recording_id_recordings"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["dock_sessions.id"],
            name=op.f("fk_transfer_attempts_session_id_dock_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_attempts")),
    )
    op.create_index(
        op.f("ix_transfer_attempts_recording_id"),
        "transfer_attempts",
        ["recording_id"],
        unique=False,
    )


def downgrade() -> None:
    raise RuntimeError("catalog downgrades are not supported: restore a backup instead")
