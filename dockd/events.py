"""Device appearance/disappearance, as every watcher (udev or simulated) reports it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True)
class UsbDeviceRef:
    """A USB device as seen before any driver talks to it (from sysfs or the simulator)."""

    #: stable key for collapsing duplicate events (udev sys_path, or the simulator's path)
    key: str
    #: kernel port path, e.g. "1-1.3" (bus 1, root port 1, dock hub port 3)
    port_path: str
    bus: int
    address: int
    vendor_id: int
    product_id: int
    interface_classes: tuple[int, ...] = ()
    serial: str | None = None

    @property
    def slot(self) -> int:
        """Dock slot: the last port number in the port path (the dock hub's downstream port)."""
        last = self.port_path.rsplit(".", 1)[-1].rsplit("-", 1)[-1]
        return int(last) if last.isdigit() else 0


@dataclass(frozen=True)
class DeviceEvent:
    action: Action
    device: UsbDeviceRef
