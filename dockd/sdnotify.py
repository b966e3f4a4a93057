"""systemd's notify protocol (sd_notify) without a dependency, and a watchdog heartbeat.

The protocol is one datagram of `KEY=value` lines sent to the AF_UNIX socket named by
$NOTIFY_SOCKET (a path, or an abstract name written with a leading '@'). Without that variable
every call is a no-op, so the daemon runs the same under systemd, in a terminal and in tests.

The watchdog pings only while the daemon is truly alive: the main loop calls a `Heartbeat`
every iteration, and it sends WATCHDOG=1 only when every camera worker has shown progress
within the watchdog interval. A worker stuck in a driver stops the pings, so systemd restarts
dockd (resumable transfers make that safe) instead of a hung dock looking healthy.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping

import structlog

log = structlog.get_logger(__name__)


def _address(value: str) -> str | None:
    """The socket address in $NOTIFY_SOCKET; None for forms we do not speak (vsock:)."""
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace
    if value.startswith("/"):
        return value
    return None


class Notifier:
    """Sends sd_notify messages to $NOTIFY_SOCKET; does nothing when it is unset.

    A failed send is logged and otherwise ignored: telling systemd is never worth a crash.
    No lock: the signal handler sends STOPPING=1 on the main thread, possibly in the middle of
    another send, and one sendto() per message on a socket made up front needs none.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._env = dict(env)
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = _address(raw) if raw else None
        if raw and self.address is None:
            log.warning("notify_socket_unsupported", notify_socket=raw)
        self._sock: socket.socket | None = None
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *lines: str) -> bool:
        """Send one datagram of `KEY=value` lines; True if it was sent."""
        sock, address = self._sock, self.address
        if sock is None or address is None:
            return False
        try:
            sock.sendto("\n".join(lines).encode("utf-8", "replace"), address)
        except OSError as exc:
            log.warning("notify_failed", error=str(exc), message=lines[0] if lines else "")
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """The watchdog timeout in seconds, following sd_watchdog_enabled(3): set only when
        WATCHDOG_USEC is a positive integer and WATCHDOG_PID is unset or is this process."""
        if self.address is None:
            return None
        usec = self._env.get("WATCHDOG_USEC", "")
        pid = self._env.get("WATCHDOG_PID", "")
        if not usec.isdigit() or int(usec) <= 0:
            return None
        if pid and (not pid.isdigit() or int(pid) != os.getpid()):
            return None  # meant for another process (e.g. we were forked or exec'd into)
        return int(usec) / 1e6

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def slot_name(slot: int) -> str:
    """How the supervisor and the progress hook name a camera worker (they must agree)."""
    return f"slot {slot}"


class Liveness:
    """Which workers are busy, when each last made progress, and what it is doing."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._workers: dict[str, tuple[float, str]] = {}

    def beat(self, name: str, activity: str | None = None) -> None:
        """Progress from a worker (registers it if new)."""
        with self._lock:
            old = self._workers.get(name)
            keep = old[1] if old is not None else "working"
            self._workers[name] = (self._clock(), activity or keep)

    def done(self, name: str) -> None:
        with self._lock:
            self._workers.pop(name, None)

    @contextlib.contextmanager
    def working(self, name: str) -> Iterator[None]:
        """Register a worker for the duration of the block, however it ends."""
        self.beat(name)
        try:
            yield
        finally:
            self.done(name)

    def stale(self, limit_s: float) -> list[str]:
        """Workers silent for longer than `limit_s`."""
        now = self._clock()
        with self._lock:
            return sorted(n for n, (t, _) in self._workers.items() if now - t > limit_s)

    def count(self, activity: str) -> int:
        with self._lock:
            return sum(1 for _, a in self._workers.values() if a == activity)

    def on_progress(self, progress: object) -> None:
        """An `IngestContext.on_progress` hook: every progress report is a beat."""
        worker = getattr(progress, "worker", "") or None
        slot = getattr(progress, "slot", None)
        if worker is None and isinstance(slot, int):
            worker = slot_name(slot)
        if worker is not None:
            self.beat(worker, str(getattr(progress, "state", "") or "") or None)


class Heartbeat:
    """Called every main-loop iteration: READY once settled, STATUS on change, and
    WATCHDOG=1 at half the watchdog interval while no worker is stuck."""

    def __init__(self, notifier: Notifier, liveness: Liveness, *,
                 status: Callable[[], str] | None = None,
                 settled: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier = notifier
        self.liveness = liveness
        self._status = status
        self._settled = settled
        self._clock = clock
        self.interval = notifier.watchdog_interval()
        self.ready_sent = False
        self._last_status: str | None = None
        self._next_ping = 0.0
        self._withheld_for: list[str] = []

    def __call__(self) -> None:
        if not self.notifier.enabled:
            return
        text = self._status() if self._status is not None else None
        if not self.ready_sent:
            if self._settled():  # else start-up enumeration is still being dispatched
                self.notifier.ready(text)
                self.ready_sent = True
                self._last_status = text
        elif text is not None and text != self._last_status:
            self.notifier.status(text)
            self._last_status = text
        self._maybe_ping()  # before READY too: systemd's watchdog runs from the start

    def _maybe_ping(self) -> None:
        if self.interval is None:
            return
        now = self._clock()
        if now < self._next_ping:
            return
        stuck = self.liveness.stale(self.interval)
        if stuck:
            if stuck != self._withheld_for:  # say it once per change, not every 0.1 s
                log.error("watchdog_withheld", stuck=stuck, limit_s=self.interval,
                          reason="a camera worker made no progress; systemd will restart dockd")
                self._withheld_for = stuck
            return
        if self._withheld_for:
            log.info("watchdog_resumed")
            self._withheld_for = []
        self.notifier.watchdog()
        self._next_ping = now + self.interval / 2
