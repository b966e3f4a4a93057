"""sd_notify over a real AF_UNIX datagram socket, as systemd would receive it."""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_ingest import plain_config

from dockd.sdnotify import Heartbeat, Liveness, Notifier, slot_name


class Listener:
    """The systemd side: a bound datagram socket that collects messages."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.messages: list[tuple[float, str]] = []

    def collect(self, timeout_s: float) -> list[str]:
        """Messages arriving within `timeout_s` (appended to self.messages)."""
        got = []
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            self.messages.append((time.monotonic(), data.decode()))
            got.append(data.decode())
        return got

    def wait_for(self, line: str, timeout_s: float) -> str:
        """The first message so far (or arriving within `timeout_s`) holding `line`."""
        deadline = time.monotonic() + timeout_s
        while True:
            for _, msg in self.messages:
                if line in msg.splitlines():
                    return msg
            if time.monotonic() >= deadline:
                break
            self.collect(0.05)
        pytest.fail(f"no {line!r} within {timeout_s} s; got {[m for _, m in self.messages]}")


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    lst = Listener(str(tmp_path / "notify"))
    yield lst
    lst.sock.close()


def env_for(listener: Listener, **extra: str) -> dict[str, str]:
    return {"NOTIFY_SOCKET": listener.sock.getsockname(), **extra}


def test_ready_status_stopping_arrive(listener):
    n = Notifier(env_for(listener))
    assert n.ready("0 cameras docked")
    assert n.status("3 cameras docked, 1 transferring")
    assert n.stopping()
    assert listener.collect(0.2) == ["READY=1\nSTATUS=0 cameras docked",
                                     "STATUS=3 cameras docked, 1 transferring", "STOPPING=1"]


def test_abstract_socket_name():
    name = f"dockd-test-{os.getpid()}-{time.monotonic_ns()}"
    lst = Listener("\0" + name)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert lst.collect(0.2) == ["READY=1"]
    finally:
        lst.sock.close()


def test_status_is_one_line(listener):
    Notifier(env_for(listener)).status("two\nlines")
    assert listener.collect(0.2) == ["STATUS=two lines"]


def test_without_notify_socket_everything_is_a_noop():
    n = Notifier({"WATCHDOG_USEC": "400000"})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping()
    assert n.watchdog_interval() is None
    hb = Heartbeat(n, Liveness())
    hb()
    assert not hb.ready_sent


def test_send_to_a_vanished_socket_does_not_raise(tmp_path):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.enabled and not n.ready()


@pytest.mark.parametrize(("extra", "expected"), [
    ({"WATCHDOG_USEC": "400000"}, 0.4),
    ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": str(os.getpid())}, 0.4),
    ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
    ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "x"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "-5"}, None),
    ({}, None),
])
def test_watchdog_interval_follows_sd_watchdog_enabled(listener, extra, expected):
    assert Notifier(env_for(listener, **extra)).watchdog_interval() == expected


def run_heartbeat(hb: Heartbeat, listener: Listener, seconds: float) -> None:
    """A main loop: heartbeat, then wait ~10 ms (receiving, so arrival times are real)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        hb()
        listener.collect(0.01)


def pings(listener: Listener) -> list[float]:
    return [t for t, m in listener.messages if m == "WATCHDOG=1"]


def test_watchdog_pings_at_half_the_interval(listener):
    hb = Heartbeat(Notifier(env_for(listener, WATCHDOG_USEC="400000")), Liveness())
    run_heartbeat(hb, listener, 1.05)
    listener.collect(0.05)
    times = pings(listener)
    assert listener.messages[0][1] == "READY=1"
    assert 5 <= len(times) <= 7, times  # t = 0, 0.2, … 1.0
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.18 <= g <= 0.35 for g in gaps), gaps


def test_other_pid_disables_the_watchdog_but_not_ready(listener):
    env = env_for(listener, WATCHDOG_USEC="400000", WATCHDOG_PID=str(os.getpid() + 1))
    run_heartbeat(Heartbeat(Notifier(env), Liveness()), listener, 0.5)
    listener.collect(0.05)
    assert [m for _, m in listener.messages] == ["READY=1"]


def test_a_stuck_worker_stops_the_pings_and_progress_resumes_them(listener):
    now = [100.0]
    live = Liveness(clock=lambda: now[0])
    hb = Heartbeat(Notifier(env_for(listener, WATCHDOG_USEC="400000")), live,
                   clock=lambda: now[0])

    def advance(to: float) -> list[str]:
        while now[0] < to:
            now[0] = round(now[0] + 0.05, 2)
            hb()
        return [m for m in listener.collect(0.05) if m == "WATCHDOG=1"]

    live.beat(slot_name(1), "transferring")
    hb()  # READY=1, first ping
    assert advance(100.4) == ["WATCHDOG=1"] * 2  # 100.2, 100.4: still within the interval
    # the worker is now silent for > 0.4 s: no ping after 100.4 + …
    assert advance(101.5) == []
    live.beat(slot_name(1))  # it came back
    assert advance(101.6) == ["WATCHDOG=1"]
    with live.working(slot_name(2)):  # a fresh worker counts as alive
        assert advance(101.8) == ["WATCHDOG=1"]
    live.done(slot_name(1))
    now[0] += 10  # nobody working: idle is healthy
    assert advance(now[0] + 0.01) == ["WATCHDOG=1"]


def test_ready_waits_until_settled_and_status_is_sent_on_change(listener):
    settled = [False]
    text = ["0 cameras docked, 0 transferring"]
    hb = Heartbeat(Notifier(env_for(listener)), Liveness(), settled=lambda: settled[0],
                   status=lambda: text[0])
    hb()
    assert listener.collect(0.05) == []  # not before the start-up events are dispatched
    settled[0] = True
    text[0] = "1 camera docked, 0 transferring"
    hb()
    hb()
    text[0] = "1 camera docked, 1 transferring"
    hb()
    assert listener.collect(0.1) == ["READY=1\nSTATUS=1 camera docked, 0 transferring",
                                     "STATUS=1 camera docked, 1 transferring"]


def test_progress_hook_beats_and_counts_activity():
    class P:
        slot = 3
        state = "transferring"

    live = Liveness()
    live.on_progress(P())
    assert live.count("transferring") == 1
    live.done(slot_name(3))
    assert live.count("transferring") == 0


SCENARIO = """\
[dock]
name = "dock-t"
slots = 2

[[camera]]
serial = "NC-000001"
slot = 1
dock_at_s = 0.0
link_mb_s = 2          # 8 MiB take ~4 s: still transferring when SIGTERM comes

[[camera.recording]]
name = "20261125_140211_0001.MP4"
size = 8_388_608
seed = 1
started = "2026-11-25T14:02:11Z"
"""


@pytest.mark.slow
def test_real_daemon_ready_status_watchdog_stopping(tmp_path, listener):
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    config = plain_config(tmp_path)
    env = {**os.environ, **env_for(listener, WATCHDOG_USEC="1000000")}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dockd"), "run", "--config", str(config),
         "--simulate", str(scenario)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        ready = listener.wait_for("READY=1", 30)
        # READY comes after the start-up enumeration: the docked camera is already counted
        # (its worker may or may not have reached its first transfer by then)
        assert re.fullmatch(r"READY=1\nSTATUS=1 camera docked, [01] transferring", ready)
        listener.wait_for("STATUS=1 camera docked, 1 transferring", 10)
        # mid-transfer (a 1 MiB chunk every ~0.5 s) the worker counts as alive: pings go on
        since = time.monotonic()
        listener.collect(1.5)
        assert len([t for t in pings(listener) if t >= since]) >= 2, listener.messages
        proc.send_signal(signal.SIGTERM)
        listener.wait_for("STOPPING=1", 10)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out.decode()
    assert b"dockd_stopped" in out
    assert b"watchdog_withheld" not in out
