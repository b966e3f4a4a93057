"""From a device event to an open driver session: match (data), find, open (driver).

What the driver gets depends on the bus: the pyusb device for `usb` (found through libusb,
or the simulator's backend), the reference itself for `volume` and `folder` (a mount point
or a directory the system made; the driver reads it beneath that path only).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import structlog

from dockd.driver import CameraSession, Driver
from dockd.errors import DeviceGone, NoDriver
from dockd.events import AnyRef, UsbDeviceRef
from dockd.matching import Matcher, MatchRule, load_dropins, parse_rules
from dockd.registry import DriverRegistry
from dockd.watch import find_pyusb_device

log = structlog.get_logger(__name__)

#: how long a just-announced device may take to become visible to libusb
FIND_WAIT_S = 2.0


@dataclass(frozen=True)
class Matched:
    ref: AnyRef
    driver: Driver
    rule: MatchRule


class DeviceOpener:
    """Matches devices to drivers and opens sessions over pyusb.

    `backend` is None in production (pyusb picks libusb) and the simulator's backend
    under `--simulate`: the same code path either way.
    """

    def __init__(self, registry: DriverRegistry, matcher: Matcher, backend: Any = None) -> None:
        self.registry = registry
        self.matcher = matcher
        self.backend = backend
        self._unmatched_logged: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_registry(cls, registry: DriverRegistry, dropin_dir: Any,
                      backend: Any = None) -> DeviceOpener:
        packaged = []
        for driver in registry.drivers.values():
            data = driver.match_data()
            packaged.extend(parse_rules(data.read_text(encoding="utf-8"),
                                        f"{driver.name}:{data.name}"))
        matcher = Matcher.build(packaged, load_dropins(dropin_dir), registry.drivers)
        return cls(registry, matcher, backend)

    def match(self, ref: AnyRef) -> Matched | None:
        rule = self.matcher.match(ref)
        driver = self.registry.get(rule.driver) if rule else None
        if rule is None or driver is None:
            with self._lock:
                first = ref.key not in self._unmatched_logged
                self._unmatched_logged.add(ref.key)
            if first:  # logged once per device, then ignored
                log.info("device_ignored", port=ref.port_path, bus=ref.bus,
                         reason="no driver matches", **dict(ref.properties()))
            return None
        return Matched(ref, driver, rule)

    def find_usb(self, ref: UsbDeviceRef) -> Any:
        # libusb's own hotplug listener may lag ours by milliseconds; the ids guard against
        # an address the kernel already gave to another device
        dev = find_pyusb_device(ref, self.backend, wait_s=FIND_WAIT_S)
        if dev is None:
            raise DeviceGone(f"device at port {ref.port_path} is no longer on the bus")
        return dev

    def open(self, ref: AnyRef, *, timeout_s: float) -> tuple[Matched, CameraSession]:
        matched = self.match(ref)
        if matched is None:
            raise NoDriver(f"no driver matches the {ref.bus} device at {ref.port_path}")
        device = self.find_usb(ref) if isinstance(ref, UsbDeviceRef) else ref
        session = matched.driver.open_session(device, timeout_s=timeout_s,
                                              options=matched.rule.options)
        return matched, session
