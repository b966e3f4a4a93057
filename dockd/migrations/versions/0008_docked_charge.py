"""Charging watched while docked: the daemon's own battery readings of a docked camera.

`docked_charge_readings`: after a camera's ingest, while it stays on the dock, the daemon
reads its battery every `health.charge_poll_s` and keeps the reading here (host time, the
dock session it arrived with, so the port). A row with `docked` false marks the moment the
camera left. Kept apart from `dock_captures` (one per dock, which the trends and the clock
judge) and from `shift_samples` (the camera's own log, de-duplicated by camera time).

Revision ID: 0008_docked_charge
Revises: 0007_scale
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockd.catalog.types import IdType, UTCDateTime

revision: str = "0008_docked_charge"
down_revision: str | None = "0007_scale"
branch_labels: str | None = None
depends_on: str | None = None

_TABLE = "docked_charge_readings"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("id", IdType, nullable=False),
        sa.Column("camera_serial", sa.String(128), nullable=False),
        sa.Column("session_id", IdType, nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("docked", sa.Boolean(), nullable=False),
        sa.Column("soc_percent", sa.Float(), nullable=True),
        sa.Column("voltage_mv", sa.Integer(), nullable=True),
        sa.Column("current_ma", sa.Integer(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("charging", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(["camera_serial"], ["cameras.serial"],
                                name=op.f(f"fk_{_TABLE}_camera_serial_cameras")),
        sa.ForeignKeyConstraint(["session_id"], ["dock_sessions.id"],
                                name=op.f(f"fk_{_TABLE}_session_id_dock_sessions")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{_TABLE}")),
    )
    op.create_index(op.f(f"ix_{_TABLE}_camera_serial_at"), _TABLE, ["camera_serial", "at"],
                    unique=False)


def downgrade() -> None:
    raise RuntimeError("catalog downgrades are not supported: restore a backup instead")
