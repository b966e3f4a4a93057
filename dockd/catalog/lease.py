"""One owner per recording: who holds a recording's lease, and whether that owner still lives.

A transfer may write a recording's files only while it holds the recording's lease in the
catalog (`Catalog.take_lease`), the way Git writes `index.lock` with O_EXCL and distributed
systems use leases that expire. The owner is named precisely enough to be judged without
asking it:

    <host>|<boot id>|<pid>|<process start time>|<token>

- another host: alive until `lease_until`, which the owner renews while it works (its
  partial files live on its own disk; only the recording's custody is shared);
- this host, another boot: dead (a process cannot outlive a reboot);
- this host and boot, another process: alive while that pid runs *and* started when the
  owner said (a reused pid is not the owner);
- this process: alive while the token is registered (`live_token`), i.e. while the dock
  session that took it runs. Two cameras with one serial docked together are two sessions,
  two tokens: the second is refused while the first writes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

#: how long a lease held from another host lasts without renewal
LEASE_TTL = timedelta(minutes=2)
#: renew at most this often (progress calls `renew` far more often)
RENEW_EVERY_S = 20.0

_SEP = "|"
_tokens: set[str] = set()
_tokens_lock = threading.Lock()


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or
    None when no such process runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


@dataclass(frozen=True)
class LeaseOwner:
    host: str
    boot: str
    pid: int
    start: str
    token: str

    @property
    def key(self) -> str:
        return _SEP.join((self.host, self.boot, str(self.pid), self.start, self.token))

    @classmethod
    def parse(cls, key: str) -> LeaseOwner | None:
        parts = key.split(_SEP)
        if len(parts) != 5 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3], parts[4])

    @classmethod
    def here(cls, host: str, token: str) -> LeaseOwner:
        """An owner in this process (`host` as the catalog names this host)."""
        pid = os.getpid()
        return cls(host, boot_id(), pid, process_start(pid) or "?", token)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (session {self.token})"


def new_token() -> str:
    return secrets.token_hex(6)


@contextlib.contextmanager
def live_token(token: str) -> Iterator[str]:
    """Register a token for the duration of a dock session in this process."""
    with _tokens_lock:
        _tokens.add(token)
    try:
        yield token
    finally:
        with _tokens_lock:
            _tokens.discard(token)


def token_is_live(token: str) -> bool:
    with _tokens_lock:
        return token in _tokens


def owner_alive(key: str | None, until: datetime | None, *, host: str, now: datetime) -> bool:
    """Whether the lease named by (`key`, `until`) still binds anyone but its owner."""
    if key is None:
        return False
    owner = LeaseOwner.parse(key)
    if owner is None:
        return until is not None and until > now  # unreadable: trust only the clock
    if owner.host != host:
        return until is not None and until > now
    if owner.boot != boot_id():
        return False
    if process_start(owner.pid) != owner.start:
        return False  # that process is gone (its pid may be reused, by us too)
    if owner.pid == os.getpid():
        return token_is_live(owner.token)
    return True
