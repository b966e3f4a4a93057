"""Re-checking a large partial before resuming it keeps systemd's watchdog fed, end to end.

The incident: a partial of a few GB takes longer to re-read and decrypt than WatchdogSec=30;
the camera worker reported no progress meanwhile, so the heartbeat withheld WATCHDOG=1,
systemd killed and restarted dockd, and the restart began the same check again, forever.
`load_resume(..., beat=)` now beats after every batch and the custodian's beat reaches
Liveness. tests/test_pipeline.py checks that load_resume calls the beat; this test checks the
whole chain on the real `dockd run` process, at a scale this machine can afford:

- run 1 stores all but the last few MiB of a 1 GiB recording, then the camera is pulled out
  (an `unplug` fault near the end, no redock): a checkpointed partial and its resume state
  are left (checkpoint_mib = 8);
- run 2 is the same scenario (the simulator remembers that the fault fired) under a
  NOTIFY_SOCKET bound by this test and WATCHDOG_USEC = 0.6 s. On this 2-core machine
  load_resume verifies 430-525 MB/s from the page cache (~2 s for 1 GiB); in the daemon, whose
  partial was written with O_DIRECT and is read back from disk, the check took 4-6.5 s: 3 to 10
  watchdog intervals. The test fails unless it took at least two (it would prove nothing).
  The transfer resumes (`transfer` stored, resumed_from > 0); no `watchdog_withheld` line; and
  over the window from `camera_docked` to the start of the resumed transfer (the `transfer`
  line's time minus its `seconds`), which the resume check fills, no gap between WATCHDOG=1
  datagrams (timed by this test's reader thread) is as long as the interval — systemd would
  not have restarted the daemon. Nothing is lost (`assert_nothing_lost`, decrypting with age).

On the old code (no beat during the check) the worker is silent for the whole check, so 0.6 s
in the heartbeat logs `watchdog_withheld` and sends nothing until the transfer starts. Against
a copy of dockd whose custodian passes no beat to load_resume (run with PYTHONPATH pointing
at it) this test fails: `watchdog_withheld` logged, one WATCHDOG=1 in a 4.3 s check, a 4.0 s
gap. With the beat: ~20 WATCHDOG=1 in the check, the longest gap ~0.3 s.

Disk: about 1 GiB (the partial grows into the stored file); wall time 20-35 s.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers_ingest import (
    EXIT_INCOMPLETE,
    assert_nothing_lost,
    leftovers,
    make_env,
    recording,
    run_daemon,
    scenario_toml,
    still_on_camera,
)

from dockd.store import sidecar_path

MIB = 1 << 20
SIZE = 1024 * MIB
CUT_AT = SIZE - 12 * MIB  # the camera leaves the bus when the host reads this byte
CHECKPOINT_MIB = 8
WATCHDOG_S = 0.6


class NotifyListener:
    """systemd's side of NOTIFY_SOCKET: every datagram with the wall-clock time it arrived
    (wall clock, to compare with the log's timestamps)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.time(), data.decode(errors="replace")))

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def pings(self) -> list[float]:
        return [t for t, m in self.messages if "WATCHDOG=1" in m.splitlines()]


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    lst = NotifyListener(tmp_path / "notify")
    yield lst
    lst.close()


def _at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def _gaps_over(pings: list[float], start: float, end: float) -> list[float]:
    """Gaps between consecutive WATCHDOG=1 arrivals that overlap [start, end]; the window's
    end counts as an arrival when none came after it (it is then a gap still growing)."""
    before = [t for t in pings if t <= start]
    inside = [t for t in pings if start < t < end]
    after = [t for t in pings if t >= end][:1] or [end]
    points = before[-1:] + inside + after
    return [b - a for a, b in itertools.pairwise(points)]


@pytest.mark.slow
def test_a_large_resume_check_keeps_the_watchdog_fed(tmp_path: Path, listener: NotifyListener,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, scenario_text=scenario_toml([{
        "serial": "NC-WDOG", "slot": 1, "link_mb_s": 0,
        "recording": [recording("BIG.MP4", SIZE, seed=31)],
        "fault": [{"kind": "unplug", "recording": "BIG.MP4", "at_byte": CUT_AT}],
    }]), ingest={"checkpoint_mib": CHECKPOINT_MIB, "transfer_timeout_s": 5.0})

    # run 1: cut near the end, no redock, no watchdog
    first = run_daemon(env, reset=True, timeout_s=120)
    assert first.returncode == EXIT_INCOMPLETE, first.stderr[-2000:]
    [cut] = first.named("transfer")
    assert cut["outcome"] == "gone", cut
    partials = [p for p in leftovers(env) if sidecar_path(p) in leftovers(env)]
    assert len(partials) == 1, leftovers(env)
    assert partials[0].stat().st_size > CUT_AT - 2 * CHECKPOINT_MIB * MIB
    assert still_on_camera(env) == {"NC-WDOG": {"BIG.MP4"}}

    # run 2: the same dock (the fault has fired), under systemd's watchdog
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
    monkeypatch.setenv("WATCHDOG_USEC", str(int(WATCHDOG_S * 1e6)))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    second = run_daemon(env, timeout_s=120)
    time.sleep(0.1)  # the last datagrams reach the reader
    assert second.returncode == 0, second.stderr[-2000:]
    [stored] = second.named("transfer")
    assert stored["outcome"] == "stored", stored
    resumed = int(stored["resumed_from"])
    assert CUT_AT - 2 * CHECKPOINT_MIB * MIB < resumed <= CUT_AT, stored

    # the resume check: from the camera docking to the resumed transfer's start
    [docked] = second.named("camera_docked")
    start, end = _at(docked), _at(stored) - float(stored["seconds"])
    check_s = end - start
    pings = listener.pings()
    gaps = _gaps_over(pings, start, end)
    inside = [t for t in pings if start < t < end]
    print(f"\nresume check of {resumed / MIB:.0f} MiB: {check_s:.2f} s "
          f"({resumed / check_s / 1e6:.0f} MB/s) against a watchdog of {WATCHDOG_S} s; "
          f"{len(inside)} WATCHDOG=1 meanwhile, longest gap {max(gaps):.2f} s")
    assert check_s >= 2 * WATCHDOG_S, (
        f"the resume check took {check_s:.2f} s, not the 2 x {WATCHDOG_S} s this test needs to "
        "prove anything: raise SIZE (or lower WATCHDOG_S) for this machine")
    assert second.named("watchdog_withheld") == [], second.named("watchdog_withheld")
    assert len(inside) >= check_s / WATCHDOG_S, (len(inside), check_s)
    assert max(gaps) < WATCHDOG_S, (
        f"WATCHDOG=1 stopped for {max(gaps):.2f} s (limit {WATCHDOG_S} s) during the "
        f"{check_s:.2f} s resume check; systemd would have restarted dockd. Gaps: "
        f"{[round(g, 2) for g in gaps]}")

    assert still_on_camera(env) == {"NC-WDOG": set()}
    assert leftovers(env) == []
    assert_nothing_lost(env, decrypt=True)
