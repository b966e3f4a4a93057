"""A simulated link's speed: USB 2.0 moves ~40 MB/s in practice, not memory speed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MB = 1_000_000
# how far behind schedule a link may fall and catch up in a burst: small, so a pause
# (the host busy hashing) does not bank credit for a long burst afterwards
_SLACK_S = 0.02


class LinkThrottle:
    """Keeps throughput at or below `mb_s` megabytes (10^6 bytes) per second; 0 = unlimited.

    `consume(n)` books n bytes on the link and sleeps until they would have crossed it.
    Thread-safe: several transfers on one link share the rate.
    """

    def __init__(self, mb_s: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not mb_s >= 0:
            raise ValueError(f"link rate must be >= 0 MB/s, not {mb_s}")
        self.mb_s = mb_s
        self._bytes_per_s = mb_s * MB
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._due: float | None = None  # when the link is free again

    @property
    def unlimited(self) -> bool:
        return self._bytes_per_s == 0

    def consume(self, nbytes: int) -> None:
        if self._bytes_per_s == 0 or nbytes <= 0:
            return
        with self._lock:
            now = self._clock()
            start = now if self._due is None else max(self._due, now - _SLACK_S)
            self._due = start + nbytes / self._bytes_per_s
            wait = self._due - now
        if wait > 0:
            self._sleep(wait)
