"""The transfer attempts still open, from a partial index.

`dockctl status` (transfers in flight) and the daemon's start-up (`close_stale`: attempts a
crash left open) ask for `finished_at IS NULL`; on a fleet-year catalog that was a scan of a
million closed attempts each time (84 ms of a 1.2 s start-up under the profiler). The index
holds only the open ones, so it stays a few rows whatever the catalog's size.

Revision ID: 0009_open_attempts
Revises: 0008_docked_charge
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009_open_attempts"
down_revision: str | None = "0008_docked_charge"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_transfer_attempts_open", "transfer_attempts", ["id"],
                    sqlite_where=sa.text("finished_at IS NULL"),
                    postgresql_where=sa.text("finished_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_transfer_attempts_open", table_name="transfer_attempts")
