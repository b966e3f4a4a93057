"""Sources beyond a vendor protocol: a camera that keeps no hash (camera_sha256 NULL, its
identity kept unique by a partial index), and the catalog's settings (whether it holds
simulated or real evidence).

Revision ID: 0005_sources
Revises: 0004_custody
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_sources"
down_revision: str | None = "0004_custody"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.alter_column("camera_sha256", existing_type=sa.String(64), nullable=True)
    op.create_index("uq_recordings_identity_unhashed", "recordings",
                    ["camera_serial", "camera_name", "started", "size"], unique=True,
                    sqlite_where=sa.text("camera_sha256 IS NULL"),
                    postgresql_where=sa.text("camera_sha256 IS NULL"))
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )


def downgrade() -> None:
    raise RuntimeError("catalog downgrades are not supported: restore a backup instead")
