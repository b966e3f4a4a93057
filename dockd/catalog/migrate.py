"""Run the packaged Alembic migrations from code (no alembic.ini at run time)."""

from __future__ import annotations

from importlib.resources import as_file, files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, text

from dockd.errors import CatalogVersionError

#: any constant: serialises migrations of several hosts on one PostgreSQL database
_PG_MIGRATION_LOCK = 0x646F636B64  # "dockd"


def _config() -> Config:
    cfg = Config()
    location = files("dockd.migrations")
    with as_file(location) as path:  # a real directory for normal and editable installs
        cfg.set_main_option("script_location", str(path))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _check_version(conn: Connection, script: ScriptDirectory) -> None:
    heads = MigrationContext.configure(conn).get_current_heads()
    if not heads:
        tables = set(inspect(conn).get_table_names())
        if tables - {"alembic_version"}:
            raise CatalogVersionError(
                f"the database has tables ({', '.join(sorted(tables))}) but no dockd catalog "
                "version: not a dockd catalog, refusing to touch it"
            )
        return
    for rev in heads:
        try:
            known = script.get_revision(rev)
        except CommandError:
            known = None
        if known is None:
            raise CatalogVersionError(
                f"the catalog is at revision {rev}, newer than this dockd knows "
                f"(newest known: {script.get_current_head()}); upgrade dockd or use a backup"
            )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the catalog to `revision` in one transaction, refusing a newer-than-code catalog."""
    cfg = _config()
    script = ScriptDirectory.from_config(cfg)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        _check_version(conn, script)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
