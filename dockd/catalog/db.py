"""Engine creation: durable SQLite settings, private file modes, PostgreSQL as is."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from dockd.errors import CatalogError
from dockd.store import fsync_dir

#: how long an SQLite writer waits for another one before giving up (ms)
BUSY_TIMEOUT_MS = 30_000


def sqlite_path(url: URL) -> Path | None:
    """The database file of an SQLite URL, None for other backends."""
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise CatalogError(f"catalog URL {url!s} is not a plain file: the catalog must be durable")
    return Path(url.database)


def prepare_sqlite_file(path: Path, *, create_dirs: bool) -> None:
    """Create the directory (0700) and the file (0600) before SQLite does, with private modes.

    SQLite creates its -wal and -shm files with the same mode as the database file.
    """
    parent = path.parent
    if not parent.is_dir():
        if not create_dirs:
            raise CatalogError(f"catalog directory {parent} does not exist")
        try:
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(
                f"cannot create catalog directory {parent}: {exc.strerror}"
            ) from exc
    existed = path.exists()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CatalogError(f"cannot open catalog file {path}: {exc.strerror}") from exc
    os.close(fd)
    if not existed:  # the new directory entry must survive a power cut like the rows in it
        fsync_dir(parent)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (see _sqlite_on_begin): pysqlite's own
    # implicit transactions start late and DEFERRED, which turns concurrent writers into
    # SQLITE_BUSY errors that no busy_timeout can wait out.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before the call returns, so a catalog row that says
        # "verified" survives a power cut, and only then may the camera copy be deleted.
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
    finally:
        cur.close()


#: execution option of a write transaction whose commit need not be durable on its own
#: (`Catalog.writing(durable=False)`): on SQLite it commits under `synchronous = NORMAL`, so
#: its WAL frames are written but not synced; the next `FULL` commit, on any connection,
#: syncs the WAL and them with it (the WAL is one file, replayed only as a whole prefix)
DEFERRED_SYNC = "dockd_deferred_sync"
_SYNC = "dockd_synchronous"


def _set_synchronous(dbapi_conn: Any, info: dict[str, Any], level: str) -> None:
    if info.get(_SYNC, "FULL") != level:
        try:
            dbapi_conn.execute(f"PRAGMA synchronous = {level}")
        except sqlite3.Error as exc:
            # the begin hook runs outside SQLAlchemy's error wrapping: give callers the
            # error type `Catalog.writing` turns into a CatalogError
            raise OperationalError(f"PRAGMA synchronous = {level}", None, exc) from exc
        info[_SYNC] = level


def _sqlite_on_begin(conn: Any) -> None:
    # Read-only work asks for a deferred transaction; everything else takes the write lock
    # at once, so a transaction never has to upgrade a read lock (a deadlock in WAL mode).
    options = conn.get_execution_options()
    if options.get("dockd_readonly"):
        conn.exec_driver_sql("BEGIN DEFERRED")
        return
    # every write transaction sets its own level: FULL unless it asked for a deferred sync
    proxied = conn.connection
    _set_synchronous(proxied.driver_connection, proxied.info,
                     "NORMAL" if options.get(DEFERRED_SYNC) else "FULL")
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_on_checkin(dbapi_conn: Any, record: Any) -> None:
    # a connection goes back to the pool as it came: synchronous = FULL (should this fail,
    # its next write transaction sets its level itself all the same)
    if dbapi_conn is not None and record is not None:
        with contextlib.suppress(sqlite3.Error):
            _set_synchronous(dbapi_conn, record.info, "FULL")


def make_engine(url: str, *, create_dirs: bool) -> Engine:
    parsed = make_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        prepare_sqlite_file(path, create_dirs=create_dirs)
        engine = create_engine(parsed, pool_pre_ping=False)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        event.listen(engine, "checkin", _sqlite_on_checkin)
        return engine
    return create_engine(parsed, pool_pre_ping=True)
