"""A flag that a signal handler may set.

CPython runs a signal handler on the main thread between two bytecodes, possibly while that
thread holds a lock the handler would need: logging's, structlog's, a `threading.Event`'s
condition. A handler that takes any lock can therefore deadlock the daemon it was meant to
stop. `Flag.set` is one attribute store and takes none; readers poll it (the main loop
every 0.1 s, transfers at every read), which is all a stop or reload request needs.
"""

from __future__ import annotations

import time


class Flag:
    """`threading.Event`'s set/clear/is_set/wait without its lock."""

    __slots__ = ("_on", "value")

    def __init__(self) -> None:
        self._on = False
        #: what the setter said (a signal handler: the signal number)
        self.value: object = None

    def set(self, value: object = None) -> None:
        self.value = value
        self._on = True

    def clear(self) -> None:
        self._on = False

    def is_set(self) -> bool:
        return self._on

    def wait(self, timeout: float | None = None, poll_s: float = 0.05) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._on:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
        return True


class SignalFlags:
    """The daemon's signal handlers: SIGTERM and SIGINT set `stop` (with the signal number),
    SIGHUP sets `reload`. Installed as early as the process can (before the daemon's imports),
    so a stop asked for during start-up is a clean stop too."""

    def __init__(self) -> None:
        self.stop = Flag()
        self.reload = Flag()

    def install(self) -> SignalFlags:
        import signal  # noqa: PLC0415 - nothing else here needs it

        signal.signal(signal.SIGTERM, lambda signum, _f: self.stop.set(signum))
        signal.signal(signal.SIGINT, lambda signum, _f: self.stop.set(signum))
        signal.signal(signal.SIGHUP, lambda _s, _f: self.reload.set())
        return self
