"""Run the packaged Alembic migrations from code (no alembic.ini at run time).

`upgrade` migrates in this process; `upgrade_in_child` runs the same upgrade in a short-lived
child (`python -m dockd.catalog.migrate_child`), so that a long-running daemon never holds
Alembic in memory: Python does not unload modules, and Alembic with its dependencies is
~12 MiB.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import as_file, files
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:  # Alembic is imported only when a migration has to run
    from alembic.config import Config
    from alembic.script import ScriptDirectory

from dockd.errors import CatalogError, CatalogVersionError

#: any constant: serialises migrations of several hosts on one PostgreSQL database
_PG_MIGRATION_LOCK = 0x646F636B64  # "dockd"


def _config() -> Config:
    from alembic.config import Config  # noqa: PLC0415

    cfg = Config()
    location = files("dockd.migrations")
    with as_file(location) as path:  # a real directory for normal and editable installs
        cfg.set_main_option("script_location", str(path))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    return MigrationContext.configure(conn).get_current_revision()


def _check_version(conn: Connection, script: ScriptDirectory) -> None:
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415
    from alembic.util import CommandError  # noqa: PLC0415

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


#: the newest migration; tests/test_migrations.py checks it against Alembic's script directory
HEAD = "0009_open_attempts"


def at_head(engine: Engine) -> bool:
    """True when the catalog is already at HEAD, checked with plain SQL: the daemon's usual
    start then does not import Alembic at all (about 12 MiB of memory and a fraction of a
    second of start-up, for every start)."""
    with engine.connect() as conn:
        if "alembic_version" not in inspect(conn).get_table_names():
            return False
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    return [r[0] for r in rows] == [HEAD]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the catalog to `revision` in one transaction, refusing a newer-than-code catalog."""
    if revision in ("head", HEAD) and at_head(engine):
        return
    from alembic import command  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    cfg = _config()
    script = ScriptDirectory.from_config(cfg)
    with engine.connect() as conn:
        # SQLite's ALTER runs as "batch": a new table, the rows copied, the old one dropped.
        # With foreign keys enforced, dropping a table that other rows reference fails (a
        # catalog with transfer attempts could never be upgraded). They are off for the
        # upgrade — a PRAGMA that only works outside a transaction, hence on the driver's
        # connection — and every reference is checked before the upgrade commits.
        raw = conn.connection.dbapi_connection if conn.dialect.name == "sqlite" else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys = OFF")
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                 {"k": _PG_MIGRATION_LOCK})
                _check_version(conn, script)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                if raw is not None and (bad := conn.exec_driver_sql(
                        "PRAGMA foreign_key_check").all()):
                    raise CatalogError(f"the upgraded catalog would break {len(bad)} "
                                       f"references (first: {tuple(bad[0])}); nothing changed")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys = ON")


#: the child's exit code for a CatalogVersionError (a newer catalog, or not a catalog at all)
EXIT_VERSION = 10
#: the child's exit code for any other typed catalog error
EXIT_CATALOG = 11
#: a migration is one transaction on a small catalog; this only bounds a hung child
_CHILD_TIMEOUT_S = 600


def upgrade_in_child(engine: Engine, url: str) -> None:
    """Like `upgrade(engine)`, but Alembic runs in a child process, only when needed.

    The URL goes to the child on stdin, never in argv (a PostgreSQL URL may hold a password
    that `ps` would show). The child's typed errors come back as the same types, with the
    child's own one-line message.
    """
    if at_head(engine):
        return
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dockd.catalog.migrate_child"],
            input=url, capture_output=True, text=True, timeout=_CHILD_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CatalogError(f"could not run the catalog migration: {exc}") from exc
    message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    if done.returncode == 0:
        return
    if done.returncode == EXIT_VERSION:
        raise CatalogVersionError(message)
    raise CatalogError(message or f"catalog migration exited with status {done.returncode}")
