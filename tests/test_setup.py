"""scripts/setup (and so scripts/demo and scripts/test) waits for apt's locks instead of
failing at once when another apt process holds them.

setup runs from a copy of the script in a throwaway checkout whose .venv is already up to
date, so only its Debian-package step does anything. The fast tests put a stand-in apt-get
first on PATH that reports the lock held a few times; the slow one holds the real locks
(the fcntl locks apt and dpkg take) and lets the real apt-get wait for them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LISTS_LOCK = Path("/var/lib/apt/lists/lock")
FRONTEND_LOCK = Path("/var/lib/dpkg/lock-frontend")


def checkout(tmp_path: Path) -> Path:
    """A checkout with scripts/setup and a .venv that needs nothing."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup", repo / "scripts" / "setup")
    (repo / "pyproject.toml").write_text("")
    python = repo / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexit 0\n")
    python.chmod(0o755)
    stamp = repo / ".venv" / ".dockd-installed"
    stamp.touch()
    later = time.time() + 60  # newer than pyproject.toml: setup installs nothing into .venv
    os.utime(stamp, (later, later))
    return repo


def tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)


def fake_apt(tmp_path: Path, *, busy_updates: int) -> tuple[Path, Path]:
    """dpkg-query says every package is missing, `id -u` says root, and apt-get logs its
    arguments and answers `update` as apt 2.6 does while another process holds the lists
    lock, `busy_updates` times."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    tool(bin_dir, "dpkg-query", "exit 1\n")
    tool(bin_dir, "id", "echo 0\n")
    tool(bin_dir, "apt-get", f"""\
        echo "$*" >> {log}
        case " $* " in
            *" update "*)
                n=$(grep -c ' update' {log})
                if [ "$n" -le {busy_updates} ]; then
                    echo "E: Could not get lock /var/lib/apt/lists/lock." \\
                         "It is held by process 4242 (apt-get)" >&2
                    echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
                    exit 100
                fi ;;
        esac
        exit 0
        """)
    return bin_dir, log


def run_setup(repo: Path, path: str, timeout_s: int | None = None,
              ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    if timeout_s is not None:
        env["DOCKD_APT_LOCK_TIMEOUT"] = str(timeout_s)
    return subprocess.run([str(repo / "scripts" / "setup")], check=False, capture_output=True,
                          text=True, timeout=600, env=env)


def test_setup_waits_while_another_apt_holds_the_lists_lock(tmp_path):
    repo = checkout(tmp_path)
    bin_dir, log = fake_apt(tmp_path, busy_updates=2)
    done = run_setup(repo, f"{bin_dir}:/usr/bin:/bin", timeout_s=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "another apt process holds its lock; waiting" in done.stdout
    calls = log.read_text().splitlines()
    assert [c for c in calls if " update" in c] == ["-o DPkg::Lock::Timeout=60 update -qq"] * 3
    [install] = [c for c in calls if " install " in c]
    # the dpkg lock is apt's own to wait for
    assert install.startswith("-o DPkg::Lock::Timeout=60 install -y")
    assert "python3-venv" in install and "age" in install


def test_setup_gives_up_with_one_clear_line_when_the_lock_stays_held(tmp_path):
    repo = checkout(tmp_path)
    bin_dir, log = fake_apt(tmp_path, busy_updates=1000)
    done = run_setup(repo, f"{bin_dir}:/usr/bin:/bin", timeout_s=2)
    assert done.returncode != 0
    assert done.stderr.startswith("setup: another apt process still holds its lock after 2 s"
                                  " (E: Could not get lock /var/lib/apt/lists/lock.")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert not [c for c in log.read_text().splitlines() if " install " in c]


LOCKER = textwrap.dedent("""\
    import fcntl, os, sys, time
    fds = [os.open(p, os.O_RDWR | os.O_CREAT, 0o640) for p in sys.argv[2:]]
    for fd in fds:
        fcntl.lockf(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(float(sys.argv[1]))
    """)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="apt's locks are root's")
@pytest.mark.skipif(shutil.which("apt-get") is None or not LISTS_LOCK.parent.is_dir()
                    or not FRONTEND_LOCK.parent.is_dir(), reason="not a Debian machine")
def test_setup_waits_for_the_real_apt_locks(tmp_path):
    """What the issue saw: another apt process holds the locks; setup waits, then the real
    apt-get update and install run (the packages are already installed: nothing changes)."""
    repo = checkout(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool(bin_dir, "dpkg-query", "exit 1\n")  # so setup goes to apt at all
    hold_s = 4.0
    holder = subprocess.Popen([sys.executable, "-c", LOCKER, str(hold_s), str(LISTS_LOCK),
                               str(FRONTEND_LOCK)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        done = run_setup(repo, f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin")
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "another apt process holds its lock; waiting" in done.stdout
    assert waited >= hold_s - 1.5
