"""Alembic environment: migrate the connection handed over by `dockd.catalog.migrate`.

Run from code only (`config.attributes["connection"]`); a connection in an open transaction
makes the whole upgrade one transaction on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from dockd.catalog.schema import Base


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise TypeError("dockd migrations run from code: dockd.catalog.migrate.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_online()
