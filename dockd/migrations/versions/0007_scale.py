"""A year of a city's fleet: the audit chain in its own order, and the indexes its readers need.

- SQLite: `audit_events.seq` becomes the table's rowid (INTEGER PRIMARY KEY). As a BIGINT
  primary key it was a separate index beside a hidden rowid, so walking the chain in `seq`
  order read every row through that index (163 s on 5.2 M events). The table is rebuilt by
  SQLite itself (INSERT ... SELECT): no value passes through Python, so every event keeps the
  exact text its hash was taken over, and the chain stays valid; row count, last `seq` and the
  hash of the last event are checked before and after. PostgreSQL keeps its BIGINT key.
- `audit_events` (camera_serial, seq) and (recording_id, seq): `dockctl audit --camera` and a
  recording's custody read one camera's or one recording's events in chain order straight from
  the index (they replace the single-column indexes, which they cover).
- `transfer_attempts.started_at`: health reads the last N days of attempts, not all of them.
- `shift_samples`, `shift_events`, `dock_captures` (camera_serial, at): one camera's log in time
  order without a sort (replacing the single-column camera_serial indexes they cover).

Revision ID: 0007_scale
Revises: 0006_vault
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_scale"
down_revision: str | None = "0006_vault"
branch_labels: str | None = None
depends_on: str | None = None

#: (table, old single-column index, new index, its columns)
_REPLACED = (
    ("audit_events", "ix_audit_events_camera_serial", "ix_audit_events_camera_serial_seq",
     ["camera_serial", "seq"]),
    ("audit_events", "ix_audit_events_recording_id", "ix_audit_events_recording_id_seq",
     ["recording_id", "seq"]),
    ("shift_samples", "ix_shift_samples_camera_serial", "ix_shift_samples_camera_serial_at",
     ["camera_serial", "at"]),
    ("shift_events", "ix_shift_events_camera_serial", "ix_shift_events_camera_serial_at",
     ["camera_serial", "at"]),
    ("dock_captures", "ix_dock_captures_camera_serial", "ix_dock_captures_camera_serial_at",
     ["camera_serial", "at"]),
)


def _chain_shape(conn: sa.Connection) -> tuple[int, int, str | None]:
    count, last = conn.execute(sa.text("SELECT count(*), max(seq) FROM audit_events")).one()
    tail = conn.execute(sa.text("SELECT hash FROM audit_events WHERE seq = :s"),
                        {"s": last}).scalar() if last is not None else None
    return int(count), int(last or 0), tail


def upgrade() -> None:
    conn = op.get_bind()
    # the old indexes go first, so the rebuild below does not build them again only to drop them
    for table, old, _new, _columns in _REPLACED:
        op.drop_index(op.f(old), table_name=table)
    if conn.dialect.name == "sqlite":
        before = _chain_shape(conn)
        # recreate="always": SQLite cannot change a column's type in place; batch mode copies
        # the rows in one INSERT ... SELECT inside this migration's transaction
        with op.batch_alter_table("audit_events", recreate="always") as batch:
            batch.alter_column("seq", existing_type=sa.BigInteger(), type_=sa.Integer(),
                               existing_nullable=False, autoincrement=False)
        after = _chain_shape(conn)
        if before != after:
            raise RuntimeError(f"audit_events changed while rebuilding it: {before} -> {after}")
    for table, _old, new, columns in _REPLACED:
        op.create_index(op.f(new), table, columns, unique=False)
    op.create_index(op.f("ix_transfer_attempts_started_at"), "transfer_attempts",
                    ["started_at"], unique=False)


def downgrade() -> None:
    raise RuntimeError("catalog downgrades are not supported: restore a backup instead")
