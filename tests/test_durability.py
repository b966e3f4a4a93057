"""Durability of the commit that lets a camera delete (docs/storage.md, "Durability").

The real `dockd run --once` process is traced with strace, and the order of its system
calls must be: fsync(partial) → renameat2(partial, final, RENAME_NOREPLACE) → fsync(the
final file's directory) → fdatasync/fsync of the catalog's WAL (a commit under
synchronous=FULL; NORMAL would not sync here) → the camera's delete (the simulated camera
persists its flash with the recording gone). The catalog file the daemon leaves is in WAL
mode. Skipped, with the reason, where strace is missing or ptrace is not allowed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers_ingest import Env, daemon_argv, make_env, recording, scenario_toml

STRACE = shutil.which("strace")
SYSCALLS = "fsync,fdatasync,rename,renameat,renameat2,link,linkat,write"
_LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)$")


@dataclass(frozen=True)
class Call:
    index: int
    tid: int
    name: str
    args: str


def _strace_works() -> str | None:
    if STRACE is None:
        return "strace is not installed (apt-get install -y strace)"
    probe = subprocess.run([STRACE, "-qq", "-e", "trace=none", "true"], capture_output=True,
                           text=True, check=False)
    return None if probe.returncode == 0 else f"strace cannot trace here: {probe.stderr}"


pytestmark = pytest.mark.skipif(_strace_works() is not None, reason=str(_strace_works()))


def traced_run(env: Env) -> list[Call]:
    trace = env.root / "trace.txt"
    assert STRACE is not None
    proc = subprocess.run([STRACE, "-f", "-qq", "-y", "-s", "512", "-e", f"trace={SYSCALLS}",
                           "-o", str(trace), *daemon_argv(env, reset=True)],
                          capture_output=True, text=True, timeout=120, check=False,
                          cwd=env.root)
    assert proc.returncode == 0, proc.stderr
    calls = []
    for i, line in enumerate(trace.read_text().splitlines()):
        m = _LINE.match(line)
        if m and "resumed>" not in line:
            calls.append(Call(i, int(m.group(1)), m.group(2), m.group(3)))
    return calls


def _first(calls: list[Call], after: int, what: str, pred: Callable[[Call], bool]) -> Call:
    for call in calls:
        if call.index > after and pred(call):
            return call
    raise AssertionError(f"no {what} after trace line {after}")


def test_file_dir_catalog_then_delete(tmp_path: Path) -> None:
    env = make_env(tmp_path, scenario_text=scenario_toml(
        [{"serial": "NC-DUR-1", "slot": 1, "recording": [recording("a.MP4", 300_000, 5)]}]))
    calls = traced_run(env)
    final_dir = env.store / "NC-DUR-1" / "2026" / "11" / "25"
    final = final_dir / "a.MP4.age"
    wal = f"{env.catalog_path}-wal>"

    publish = _first(calls, -1, "renameat2 NOREPLACE of the partial", lambda c: c.name in (
        "renameat2", "linkat", "link") and f'"{final}"' in c.args and ".partial" in c.args)
    if publish.name == "renameat2":
        assert "RENAME_NOREPLACE" in publish.args
    # the partial is named per writer: .a.MP4.age.<token>.partial
    named = re.search(r'"(' + re.escape(str(final_dir)) + r'/\.a\.MP4\.age\.\w+\.partial)"',
                      publish.args)
    assert named, publish.args
    partial = Path(named.group(1))
    synced = [c for c in calls if c.index < publish.index and c.name in ("fsync", "fdatasync")
              and f"<{partial}>" in c.args]
    assert synced, "the partial was never fsynced before it was published"
    # write-ahead: the intent naming the file is committed between its last fsync and the
    # rename (a WAL sync), and the resume state holding its key is gone before the rename
    intent = _first(calls, synced[-1].index, "the intent's commit (WAL sync)",
                    lambda c: c.name in ("fdatasync", "fsync") and wal in c.args)
    assert intent.index < publish.index, (intent, publish)
    # nothing was written to the partial between its last fsync and the rename
    late = [c for c in calls if synced[-1].index < c.index < publish.index
            and c.name == "write" and f"<{partial}>" in c.args]
    assert late == [], late
    dir_sync = _first(calls, publish.index, "fsync of the directory",
                      lambda c: c.name == "fsync" and f"<{final_dir}>)" in c.args)
    commit = _first(calls, dir_sync.index, "a catalog commit (WAL sync)",
                    lambda c: c.name in ("fdatasync", "fsync") and wal in c.args)
    delete = _first(calls, -1, "the camera's delete", lambda c: c.name == "write"
                    and "sim-state/.slot001-" in c.args and '\\"present\\": []' in c.args)
    assert publish.index < dir_sync.index < commit.index < delete.index, (
        publish, dir_sync, commit, delete)
    # one thread does it all, so trace order is execution order
    assert len({publish.tid, dir_sync.tid, commit.tid, delete.tid}) == 1


def test_the_daemons_catalog_is_in_wal_mode(tmp_path: Path) -> None:
    env = make_env(tmp_path, scenario_text=scenario_toml(
        [{"serial": "NC-DUR-2", "slot": 1, "recording": [recording("a.MP4", 1000, 5)]}]))
    calls = traced_run(env)
    header = env.catalog_path.read_bytes()[:100]
    assert header.startswith(b"SQLite format 3\x00")
    assert header[18:20] == b"\x02\x02", "file format read/write versions 2 = WAL"
    assert any(c.name == "fdatasync" and f"{env.catalog_path}-wal>" in c.args for c in calls)
