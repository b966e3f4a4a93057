"""A faulty dock port: large bulk reads through it fail or arrive with a flipped bit.

Bound to the port, not the camera: any camera docked in that slot suffers it, which is what
lets health checks tell a bad port from a bad camera. Hits come from a seeded random stream
kept for the whole run of the dock, so a scenario gives the same hits every time.
"""

from __future__ import annotations

import errno
import random
import threading

import usb.core

from dockd_sim.spec import PORT_FAULT_MIN_BYTES, PortFaultKind, PortFaultSpec

LIBUSB_ERROR_IO = -1


class PortFault:
    def __init__(self, spec: PortFaultSpec) -> None:
        self.spec = spec
        self._rng = random.Random(spec.seed * 1000 + spec.slot)
        self._lock = threading.Lock()
        self.hits = 0

    def apply(self, data: memoryview, n: int) -> None:
        """Called with each bulk read's `n` received bytes; raises or corrupts on a hit."""
        if n < PORT_FAULT_MIN_BYTES:
            return
        with self._lock:
            if self._rng.random() >= self.spec.rate:
                return
            self.hits += 1
            bit = self._rng.randrange(n * 8)
        if self.spec.kind is PortFaultKind.READ_ERROR:
            raise usb.core.USBError("Input/Output Error", LIBUSB_ERROR_IO, errno.EIO)
        data[bit // 8] ^= 1 << (bit % 8)
