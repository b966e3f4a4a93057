"""Evidence leaves the dock: which host holds a recording's local copy, its vault object
(key, version, checksum, legal hold, lock), its category and legal hold, and the tombstones
of copies deleted by retention.

Revision ID: 0006_vault
Revises: 0005_sources
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockd.catalog.types import UTCDateTime

revision: str = "0006_vault"
down_revision: str | None = "0005_sources"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("stored_on", sa.String(255), nullable=True))
        batch.add_column(sa.Column("category", sa.String(64), nullable=True))
        batch.add_column(sa.Column("legal_hold", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("vault_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("vault_version", sa.String(255), nullable=True))
        batch.add_column(sa.Column("vault_checksum", sa.String(255), nullable=True))
        batch.add_column(sa.Column("vault_hold", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("vault_lock_until", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("local_deleted_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("vault_deleted_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    raise RuntimeError("catalog downgrades are not supported: restore a backup instead")
