"""A throwaway PostgreSQL cluster for tests: Debian's `initdb` and `pg_ctl` in a temp dir.

The cluster listens on a Unix socket in its own directory only (no TCP port to collide
with anything), trusts local connections for the user `dockd`, and runs with `fsync=off`
(the data dir is thrown away; durability of the catalog on PostgreSQL is PostgreSQL's).
As root it runs the server as the `postgres` user, since initdb refuses to run as root.

Fault injection is part of the fixture, not a test hack (like tests/vault_server.py for
SeaweedFS): `restart()` is an administrator's `pg_ctl restart -m fast` (every client
connection is terminated, transactions in flight are rolled back), `kill()` is a crash
(SIGKILL to the postmaster and every backend; the next `start()` runs crash recovery),
`stop()`/`start()` an outage of any length.

`pg_fixture()` makes a pytest fixture that skips, with the reason, when the server or
psycopg is not installed. `database_url()` gives each test a fresh schema (instant, unlike
CREATE DATABASE) as its search path.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

USER = "dockd"


def pg_tool(name: str) -> str | None:
    """A PostgreSQL server binary: PATH first, else Debian's newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return candidates[-1] if candidates else None


def available() -> tuple[bool, str]:
    """(True, "") when a cluster can be started here, else (False, why not)."""
    if not pg_tool("initdb") or not pg_tool("pg_ctl"):
        return False, "PostgreSQL server not installed (apt package: postgresql)"
    try:
        import psycopg  # noqa: F401, PLC0415 - optional: only when PostgreSQL tests run
    except ImportError:
        return False, "psycopg not installed (pip: psycopg[binary])"
    return True, ""


@dataclass
class PgServer:
    """One cluster in `base` (short: the socket path must fit in 107 bytes)."""

    base: Path
    as_user: list[str] = field(default_factory=list)
    #: seconds each start took
    start_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.initdb, self.pg_ctl = pg_tool("initdb"), pg_tool("pg_ctl")
        assert self.initdb and self.pg_ctl, "no PostgreSQL server binaries"
        self.data = self.base / "data"
        self.log = self.base / "log"

    @classmethod
    def create(cls) -> PgServer:
        """initdb into a new temp dir (not started yet)."""
        base = Path(tempfile.mkdtemp(prefix="dockd-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(base, "postgres", "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        server = cls(base, as_user)
        server._run(server.initdb or "", "-D", str(server.data), "-A", "trust", "-U", USER,
                    "-E", "UTF8", "--no-sync")
        return server

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.as_user, *argv], check=check, capture_output=True,
                              timeout=120)

    # --- lifecycle ------------------------------------------------------------------

    @property
    def socket_dir(self) -> str:
        return str(self.base)

    def start(self) -> float:
        t0 = time.monotonic()
        try:
            self._run(self.pg_ctl or "", "-D", str(self.data), "-l", str(self.log), "-w",
                      "-t", "60", "-o",
                      f"-k {self.base} -c listen_addresses='' -c fsync=off "
                      "-c max_connections=200", "start")
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"could not start PostgreSQL: "
                               f"{exc.stderr.decode(errors='replace')}\n{self.log_tail()}"
                               ) from None
        took = time.monotonic() - t0
        self.start_times.append(took)
        return took

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast|immediate|smart`; a stopped server is left alone."""
        self._run(self.pg_ctl or "", "-D", str(self.data), "-m", mode, "-w", "-t", "60",
                  "stop", check=False)

    def restart(self, mode: str = "fast") -> float:
        """What an administrator (or a package upgrade) does: connections are cut, open
        transactions roll back, the server is back a moment later."""
        self.stop(mode)
        return self.start()

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.postmaster_pid()
        return pid is not None and Path(f"/proc/{pid}").exists()

    def kill(self) -> None:
        """A crash: SIGKILL the postmaster and all its backends at once (the next start
        replays the WAL). Waits until every one of them is gone *and reaped*: the next
        postmaster tests the old one's PID from postmaster.pid with kill(pid, 0), which a
        zombie still answers, and refuses to start ("lock file already exists"). The
        postmaster is an orphan (pg_ctl exits), so init reaps it — this VM's init polls,
        a zombie lives ~1 s here — unless the orphan is ours to reap."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while left := [v for v in victims if Path(f"/proc/{v}").exists()]:
            for victim in left:
                if _zombie(victim) and _parent(victim) == os.getpid():
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(victim, os.WNOHANG)
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL processes {left} survived SIGKILL (or "
                                   "nobody reaps them)")
            time.sleep(0.02)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- databases --------------------------------------------------------------------

    def connect(self, **kwargs: Any) -> Any:
        import psycopg  # noqa: PLC0415

        return psycopg.connect(host=self.socket_dir, user=USER, dbname="postgres", **kwargs)

    def database_url(self, prefix: str = "t_") -> str:
        """A fresh, empty schema as the search path of a catalog URL."""
        name = prefix + uuid.uuid4().hex[:12]
        with self.connect(autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {name}")
        return self.url(name)

    def url(self, schema: str) -> str:
        return (f"postgresql+psycopg://{USER}@/postgres?host={self.socket_dir}"
                f"&options=-csearch_path%3D{schema}")


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (PostgreSQL's backends are the postmaster's children)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[1])


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2:].startswith("Z")


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """A started cluster, always destroyed afterwards."""
    server = PgServer.create()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def pg_fixture(scope: str = "module") -> Any:
    """A pytest fixture giving a running PgServer (one per `scope`), or a skip."""

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def _pg() -> Iterator[PgServer]:
        ok, why = available()
        if not ok:
            pytest.skip(why)
        try:
            with pg_server() as server:
                yield server
        except subprocess.CalledProcessError as exc:
            pytest.fail(f"could not set up PostgreSQL: {exc.stderr.decode(errors='replace')}")

    return _pg
