"""The contract between a simulated camera (device side, shipped by a driver) and the
transports that present it as USB hardware (in-process pyusb backend, umockdev testbed).

A `SimCamera` answers USB transfers, nothing more: the transports turn its exceptions into
what libusb/pyusb would report for real hardware (EPIPE, ETIMEDOUT, ENODEV).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Protocol

USB_CLASS_VENDOR_SPEC = 0xFF
#: descriptor types (USB 2.0, table 9-5)
DESC_DEVICE, DESC_CONFIG, DESC_STRING = 1, 2, 3
ENDPOINT_IN = 0x80
TRANSFER_BULK = 0x02


class SimStall(Exception):
    """The endpoint halts (host sees EPIPE)."""


class SimNoAnswer(Exception):
    """The device does not answer; the host sees a timeout after its own timeout."""


class SimGone(Exception):
    """The device is no longer on the bus (host sees ENODEV)."""


@dataclass(frozen=True)
class UsbEndpoint:
    address: int
    attributes: int = TRANSFER_BULK
    max_packet_size: int = 512
    interval: int = 0


@dataclass(frozen=True)
class UsbInterface:
    number: int
    interface_class: int
    interface_subclass: int = 0
    interface_protocol: int = 0
    endpoints: tuple[UsbEndpoint, ...] = ()


@dataclass(frozen=True)
class UsbDeviceDescription:
    """Enough of a USB device's descriptors to enumerate it, in one place for both transports."""

    vendor_id: int
    product_id: int
    manufacturer: str
    product: str
    serial: str
    bcd_device: int = 0x0100
    bcd_usb: int = 0x0200
    device_class: int = 0
    max_packet_size0: int = 64
    interfaces: tuple[UsbInterface, ...] = field(default_factory=tuple)
    configuration_value: int = 1
    max_power_ma: int = 500

    #: string descriptor indexes (0 is the language table)
    I_MANUFACTURER = 1
    I_PRODUCT = 2
    I_SERIAL = 3

    def strings(self) -> dict[int, str]:
        return {
            self.I_MANUFACTURER: self.manufacturer,
            self.I_PRODUCT: self.product,
            self.I_SERIAL: self.serial,
        }

    def device_descriptor(self) -> bytes:
        return struct.pack(
            "<BBHBBBBHHHBBBB",
            18, 1, self.bcd_usb, self.device_class, 0, 0, self.max_packet_size0,
            self.vendor_id, self.product_id, self.bcd_device,
            self.I_MANUFACTURER, self.I_PRODUCT, self.I_SERIAL, 1,
        )  # fmt: skip

    def config_descriptor(self) -> bytes:
        body = b""
        for intf in self.interfaces:
            body += struct.pack(
                "<BBBBBBBBB", 9, 4, intf.number, 0, len(intf.endpoints),
                intf.interface_class, intf.interface_subclass, intf.interface_protocol, 0,
            )  # fmt: skip
            for ep in intf.endpoints:
                body += struct.pack(
                    "<BBBBHB", 7, 5, ep.address, ep.attributes, ep.max_packet_size, ep.interval
                )
        total = 9 + len(body)
        header = struct.pack(
            "<BBHBBBBB", 9, 2, total, len(self.interfaces), self.configuration_value, 0,
            0x80, self.max_power_ma // 2,
        )  # fmt: skip
        return header + body

    def string_descriptor(self, index: int) -> bytes:
        if index == 0:
            return struct.pack("<BBH", 4, 3, 0x0409)  # English (US)
        text = self.strings()[index].encode("utf-16-le")
        return struct.pack("<BB", 2 + len(text), 3) + text

    def descriptor(self, kind: int, index: int) -> bytes | None:
        """What GET_DESCRIPTOR(kind, index) answers — the one table both transports (the
        pyusb backend, the umockdev testbed) serve — or None (the device stalls)."""
        if kind == DESC_DEVICE and index == 0:
            return self.device_descriptor()
        if kind == DESC_CONFIG and index == 0:
            return self.config_descriptor()
        if kind == DESC_STRING and (index == 0 or index in self.strings()):
            return self.string_descriptor(index)[:255]
        return None


class SimCamera(Protocol):
    """Device side of a simulated camera, as USB sees it."""

    description: UsbDeviceDescription

    def control_in(self, request_type: int, request: int, value: int, index: int,
                   length: int) -> bytes:
        """Answer a device-to-host control request (vendor/class; standard ones are the
        transport's). Raise SimStall for unsupported requests."""
        ...

    def control_out(self, request_type: int, request: int, value: int, index: int,
                    data: bytes) -> None: ...

    def bulk_write(self, endpoint: int, data: bytes) -> int:
        """Host → device bulk transfer. Return bytes accepted."""
        ...

    def bulk_read_into(self, endpoint: int, buffer: memoryview) -> int:
        """Device → host bulk transfer: fill up to len(buffer); return bytes written.
        Raise SimNoAnswer when the device would not answer (host times out)."""
        ...

    def unplugged(self) -> bool:
        """True once the camera has left the bus (a fault or the scenario pulled it)."""
        ...

    def close(self) -> None:
        """Persist state (the camera's 'flash') and free resources."""
        ...
