"""Device appearance/disappearance, as every watcher (udev, mounts, folders, simulated)
reports it.

A camera reaches dockd over one of three buses, each with its own reference:

- `usb`: a USB device a vendor protocol speaks to (`UsbDeviceRef`, from udev or the
  simulator; the driver gets the pyusb device);
- `volume`: a filesystem the system mounted (a mass-storage camera: `VolumeRef`, from the
  mount table; dockd never mounts anything itself);
- `folder`: a sub-folder of an export folder a vendor's software fills (`FolderRef`).

Matching (dockd/matching.py) reads each reference's `properties`; the supervisor needs only
`key`, `slot`, `port_path` and `worker`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class Action(enum.Enum):
    ADD = "add"
    REMOVE = "remove"
    #: something on a docked device changed (a folder got new files): look again
    CHANGE = "change"


class DeviceRef(Protocol):
    """What every bus's reference gives the core."""

    #: stable key for collapsing duplicate events
    @property
    def key(self) -> str: ...

    #: where it is attached, for people and health (a USB port path, a mount point)
    @property
    def port_path(self) -> str: ...

    @property
    def bus(self) -> str: ...

    @property
    def slot(self) -> int: ...

    @property
    def worker(self) -> str:
        """The name of its worker (liveness, logs): unique among docked devices."""
        ...

    @property
    def serial(self) -> str | None: ...

    def properties(self) -> Mapping[str, str]:
        """What match rules of its bus may test (docs/drivers.md)."""
        ...


def _slot_of(port_path: str) -> int:
    """The dock slot: the last port number of a USB port path ("1-1.3" → 3), else 0."""
    last = port_path.rsplit(".", 1)[-1].rsplit("-", 1)[-1]
    return int(last) if last.isdigit() else 0


@dataclass(frozen=True)
class UsbDeviceRef:
    """A USB device as seen before any driver talks to it (from sysfs or the simulator)."""

    #: stable key for collapsing duplicate events (udev sys_path, or the simulator's path)
    key: str
    #: kernel port path, e.g. "1-1.3" (bus 1, root port 1, dock hub port 3)
    port_path: str
    bus_number: int
    address: int
    vendor_id: int
    product_id: int
    interface_classes: tuple[int, ...] = ()
    serial: str | None = None

    bus = "usb"

    @property
    def slot(self) -> int:
        """Dock slot: the last port number in the port path (the dock hub's downstream port)."""
        return _slot_of(self.port_path)

    @property
    def worker(self) -> str:
        return f"slot {self.slot}"

    def properties(self) -> Mapping[str, str]:
        return {"vendor_id": f"{self.vendor_id:04x}", "product_id": f"{self.product_id:04x}",
                **({"serial": self.serial} if self.serial is not None else {})}


@dataclass(frozen=True)
class VolumeRef:
    """A mounted filesystem: a mass-storage camera the system's automounter (or an fstab or
    mount unit) mounted. Its properties come from the block device behind the mount: the
    filesystem's label, UUID and type, and the USB device it hangs off, if any."""

    #: the mount point (what the driver reads)
    mount: str
    #: the block device, e.g. /dev/sdb1
    device: str
    #: "major:minor" of the block device
    devnum: str
    fs_type: str
    fs_label: str | None = None
    fs_uuid: str | None = None
    #: the USB device behind the block device (a camera in a dock port), if any
    usb_port_path: str | None = None
    usb_vendor_id: int | None = None
    usb_product_id: int | None = None
    usb_serial: str | None = None

    bus = "volume"

    @property
    def key(self) -> str:
        return f"volume:{self.devnum}:{self.mount}"

    @property
    def port_path(self) -> str:
        return self.usb_port_path or self.mount

    @property
    def slot(self) -> int:
        return _slot_of(self.usb_port_path) if self.usb_port_path else 0

    @property
    def worker(self) -> str:
        return f"volume {self.mount}"

    @property
    def serial(self) -> str | None:
        return self.usb_serial

    def properties(self) -> Mapping[str, str]:
        props = {"fs_type": self.fs_type, "device": self.device, "mount": self.mount}
        for name, value in (("fs_label", self.fs_label), ("fs_uuid", self.fs_uuid),
                            ("serial", self.usb_serial)):
            if value is not None:
                props[name] = value
        if self.usb_vendor_id is not None:
            props["vendor_id"] = f"{self.usb_vendor_id:04x}"
        if self.usb_product_id is not None:
            props["product_id"] = f"{self.usb_product_id:04x}"
        return props


@dataclass(frozen=True)
class FolderRef:
    """One camera's sub-folder of an export folder (`root`, named by a match rule)."""

    path: str
    root: str
    #: the match rule's options travel with the reference (which root it came from)
    extra: Mapping[str, str] = field(default_factory=dict)

    bus = "folder"

    @property
    def key(self) -> str:
        return f"folder:{self.path}"

    @property
    def port_path(self) -> str:
        return self.path

    @property
    def slot(self) -> int:
        return 0

    @property
    def worker(self) -> str:
        return f"folder {self.path}"

    @property
    def serial(self) -> str | None:
        return None

    def properties(self) -> Mapping[str, str]:
        return {"root": self.root, "path": self.path, **self.extra}


AnyRef = UsbDeviceRef | VolumeRef | FolderRef


@dataclass(frozen=True)
class DeviceEvent:
    action: Action
    device: AnyRef
