"""An in-process pyusb backend that presents `SimCamera` models as USB devices.

The unchanged pyusb core runs on top (`usb.core.find(backend=SimBackend())`): descriptors,
configuration, interface claims and endpoint lookup are pyusb's own work. This module
answers the standard control requests itself, hands vendor/class control and bulk transfers
to the camera model, and turns the model's exceptions into what libusb reports for real
hardware: SimStall → EPIPE, SimNoAnswer → a timeout after the host's own timeout,
SimGone or an unplugged device → ENODEV.
"""

from __future__ import annotations

import array
import errno
import itertools
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import usb.backend
import usb.core

from dockd_sim.device import (
    DESC_CONFIG,
    SimCamera,
    SimGone,
    SimNoAnswer,
    SimStall,
    UsbDeviceDescription,
)
from dockd_sim.link import LinkThrottle
from dockd_sim.port_fault import PortFault

T = TypeVar("T")

# libusb error codes (libusb.h), which pyusb's error mapping follows
LIBUSB_ERROR_IO = -1
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_NOT_FOUND = -5
LIBUSB_ERROR_TIMEOUT = -7
LIBUSB_ERROR_OVERFLOW = -8
LIBUSB_ERROR_PIPE = -9
LIBUSB_SPEED_HIGH = 3

_TYPE_MASK = 0x60
_TYPE_STANDARD = 0x00
_DIR_IN = 0x80
_GET_STATUS = 0x00
_CLEAR_FEATURE = 0x01
_SET_FEATURE = 0x03
_GET_DESCRIPTOR = 0x06
_GET_CONFIGURATION = 0x08
_SET_CONFIGURATION = 0x09
_GET_INTERFACE = 0x0A
_SET_INTERFACE = 0x0B
_MAX_ADDRESS = 127


def _gone() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)",
                             LIBUSB_ERROR_NO_DEVICE, errno.ENODEV)


def _pipe() -> usb.core.USBError:
    return usb.core.USBError("Pipe error", LIBUSB_ERROR_PIPE, errno.EPIPE)


def _not_found(what: str) -> usb.core.USBError:
    return usb.core.USBError(f"Entity not found: {what}", LIBUSB_ERROR_NOT_FOUND, errno.ENOENT)


class _Desc:
    """A descriptor as pyusb reads it: plain attributes."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


class PluggedDevice:
    """One simulated camera on the simulated bus."""

    def __init__(self, camera: SimCamera, bus: int, port_numbers: tuple[int, ...],
                 address: int, link_mb_s: float, port_fault: PortFault | None = None) -> None:
        self.camera = camera
        #: a fault of the dock port this device sits in (any camera there suffers it)
        self.port_fault = port_fault
        self.description: UsbDeviceDescription = camera.description
        self.bus = bus
        self.port_numbers = port_numbers
        self.address = address
        self.throttle = LinkThrottle(link_mb_s)
        self.configuration = self.description.configuration_value  # as usbcore leaves it
        self.claimed: set[int] = set()
        #: set on unplug: wakes transfers waiting for an answer that will never come
        self.removed = threading.Event()
        # a device handles one transfer at a time, as the camera model expects
        self.lock = threading.Lock()

    @property
    def port_path(self) -> str:
        """Kernel port path, e.g. "1-1.3"."""
        return f"{self.bus}-" + ".".join(str(p) for p in self.port_numbers)

    def present(self) -> bool:
        return not self.removed.is_set() and not self.camera.unplugged()


class _Handle:
    def __init__(self, device: PluggedDevice) -> None:
        self.device = device
        self.closed = False


class SimBackend(usb.backend.IBackend):  # type: ignore[misc]  # pyusb is untyped
    """pyusb backend over simulated cameras. Thread-safe: cameras run in parallel threads."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._devices: dict[int, PluggedDevice] = {}
        self._next_address = itertools.count(2)  # the kernel gives 1 to the root hub

    # --- the simulated bus ----------------------------------------------------------

    def plug(self, camera: SimCamera, *, bus: int = 1, port_numbers: tuple[int, ...] = (1, 1),
             address: int | None = None, link_mb_s: float = 0.0,
             port_fault: PortFault | None = None) -> int:
        """Put a camera on the bus; return its address (unique in this backend)."""
        with self._lock:
            if address is None:
                address = self._free_address()
            elif address in self._devices:
                raise ValueError(f"address {address} is in use")
            elif not 1 <= address <= _MAX_ADDRESS:
                raise ValueError(f"address {address} is outside 1..{_MAX_ADDRESS}")
            self._devices[address] = PluggedDevice(camera, bus, tuple(port_numbers), address,
                                                   link_mb_s, port_fault)
            return address

    def _free_address(self) -> int:
        for _ in range(_MAX_ADDRESS):
            candidate = (next(self._next_address) - 2) % (_MAX_ADDRESS - 1) + 2
            if candidate not in self._devices:
                return candidate
        raise RuntimeError("no free USB address: 126 devices are plugged")

    def unplug(self, address: int) -> None:
        """Take the device off the bus; its open handles answer ENODEV from now on.
        Unplugging an address that is not plugged does nothing (the dock and a fault may
        both pull the same camera)."""
        with self._lock:
            device = self._devices.pop(address, None)
        if device is not None:
            device.removed.set()

    def devices(self) -> list[PluggedDevice]:
        with self._lock:
            return list(self._devices.values())

    # --- enumeration and descriptors ------------------------------------------------

    def enumerate_devices(self) -> Iterator[PluggedDevice]:
        return iter([d for d in self.devices() if d.present()])

    def get_parent(self, dev: PluggedDevice) -> None:
        return None

    def get_device_descriptor(self, dev: PluggedDevice) -> _Desc:
        d = dev.description
        (b_length, b_type, bcd_usb, dev_class, dev_sub, dev_proto, mps0, vid, pid, bcd_dev,
         i_man, i_prod, i_serial, n_conf) = struct.unpack("<BBHBBBBHHHBBBB",
                                                          d.device_descriptor())
        return _Desc(
            bLength=b_length, bDescriptorType=b_type, bcdUSB=bcd_usb, bDeviceClass=dev_class,
            bDeviceSubClass=dev_sub, bDeviceProtocol=dev_proto, bMaxPacketSize0=mps0,
            idVendor=vid, idProduct=pid, bcdDevice=bcd_dev, iManufacturer=i_man,
            iProduct=i_prod, iSerialNumber=i_serial, bNumConfigurations=n_conf,
            address=dev.address, bus=dev.bus, port_number=dev.port_numbers[-1],
            port_numbers=dev.port_numbers, speed=LIBUSB_SPEED_HIGH,
        )

    def get_configuration_descriptor(self, dev: PluggedDevice, config: int) -> _Desc:
        if config != 0:
            raise IndexError(f"Invalid configuration index {config}")
        d = dev.description
        total = len(d.config_descriptor())
        return _Desc(
            bLength=9, bDescriptorType=DESC_CONFIG, wTotalLength=total,
            bNumInterfaces=len(d.interfaces), bConfigurationValue=d.configuration_value,
            iConfiguration=0, bmAttributes=0x80, bMaxPower=d.max_power_ma // 2,
            extra_descriptors=[],
        )

    def get_interface_descriptor(self, dev: PluggedDevice, intf: int, alt: int,
                                 config: int) -> _Desc:
        interfaces = dev.description.interfaces
        if config != 0 or not 0 <= intf < len(interfaces) or alt != 0:
            raise IndexError(f"Invalid interface index {intf} alt {alt}")
        i = interfaces[intf]
        return _Desc(
            bLength=9, bDescriptorType=4, bInterfaceNumber=i.number, bAlternateSetting=0,
            bNumEndpoints=len(i.endpoints), bInterfaceClass=i.interface_class,
            bInterfaceSubClass=i.interface_subclass, bInterfaceProtocol=i.interface_protocol,
            iInterface=0, extra_descriptors=[],
        )

    def get_endpoint_descriptor(self, dev: PluggedDevice, ep: int, intf: int, alt: int,
                                config: int) -> _Desc:
        self.get_interface_descriptor(dev, intf, alt, config)  # checks intf, alt, config
        endpoints = dev.description.interfaces[intf].endpoints
        if not 0 <= ep < len(endpoints):
            raise IndexError(f"Invalid endpoint index {ep}")
        e = endpoints[ep]
        return _Desc(
            bLength=7, bDescriptorType=5, bEndpointAddress=e.address, bmAttributes=e.attributes,
            wMaxPacketSize=e.max_packet_size, bInterval=e.interval, bRefresh=0,
            bSynchAddress=0, extra_descriptors=[],
        )

    # --- handles, configuration, interfaces ----------------------------------------

    def open_device(self, dev: PluggedDevice) -> _Handle:
        if not dev.present():
            raise _gone()
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        dev_handle.closed = True
        dev_handle.device.claimed.clear()

    def _live(self, handle: _Handle) -> PluggedDevice:
        if handle.closed:
            raise usb.core.USBError("Device handle is closed", LIBUSB_ERROR_IO, errno.EBADF)
        if not handle.device.present():
            raise _gone()
        return handle.device

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        dev = self._live(dev_handle)
        if config_value not in (0, dev.description.configuration_value):
            raise _not_found(f"configuration {config_value}")
        dev.configuration = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        return self._live(dev_handle).configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        dev = self._live(dev_handle)
        if intf not in dev.claimed or altsetting != 0:
            raise _not_found(f"interface {intf} alt {altsetting}")

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        dev = self._live(dev_handle)
        if intf not in {i.number for i in dev.description.interfaces}:
            raise _not_found(f"interface {intf}")
        dev.claimed.add(intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        dev = self._live(dev_handle)
        dev.claimed.discard(intf)

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        dev = self._live(dev_handle)
        hook: Callable[[int], None] | None = getattr(dev.camera, "clear_halt", None)
        if hook is not None:
            self._call(dev, 0, lambda: hook(ep))

    def reset_device(self, dev_handle: _Handle) -> None:
        dev = self._live(dev_handle)
        hook: Callable[[], None] | None = getattr(dev.camera, "reset", None)
        if hook is not None:
            self._call(dev, 0, hook)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        self._live(dev_handle)
        return False

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        self._live(dev_handle)

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        self._live(dev_handle)

    # --- transfers ------------------------------------------------------------------

    def _call(self, dev: PluggedDevice, timeout_ms: int, fn: Callable[[], T]) -> T:
        """Run one camera call and translate its exceptions as libusb would report them."""
        try:
            with dev.lock:
                if not dev.present():
                    raise _gone()
                return fn()
        except SimStall:
            raise _pipe() from None
        except SimGone:
            raise _gone() from None
        except SimNoAnswer:
            # the host waits its own timeout (0 = forever, as libusb) unless unplugged first
            if dev.removed.wait(timeout_ms / 1000 if timeout_ms > 0 else None):
                raise _gone() from None
            raise usb.core.USBTimeoutError("Operation timed out", LIBUSB_ERROR_TIMEOUT,
                                           errno.ETIMEDOUT) from None

    def bulk_write(self, dev_handle: _Handle, ep: int, intf: int, data: array.array[int],
                   timeout: int) -> int:
        dev = self._live(dev_handle)
        payload = bytes(memoryview(data).cast("B"))
        dev.throttle.consume(len(payload))
        return self._call(dev, timeout, lambda: dev.camera.bulk_write(ep, payload))

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: array.array[int],
                  timeout: int) -> int:
        dev = self._live(dev_handle)
        view = memoryview(buff).cast("B")
        n = self._call(dev, timeout, lambda: dev.camera.bulk_read_into(ep, view))
        if not 0 <= n <= len(view):
            raise usb.core.USBError("Overflow", LIBUSB_ERROR_OVERFLOW, errno.EOVERFLOW)
        dev.throttle.consume(n)
        if dev.port_fault is not None:
            dev.port_fault.apply(view, n)
        return n

    def ctrl_transfer(self, dev_handle: _Handle, bmRequestType: int, bRequest: int,
                      wValue: int, wIndex: int, data: array.array[int], timeout: int) -> int:
        dev = self._live(dev_handle)
        view = memoryview(data).cast("B")
        if bmRequestType & _TYPE_MASK == _TYPE_STANDARD:
            return self._standard(dev, bmRequestType, bRequest, wValue, wIndex, view)
        if bmRequestType & _DIR_IN:
            answer = self._call(dev, timeout, lambda: dev.camera.control_in(
                bmRequestType, bRequest, wValue, wIndex, len(view)))
            if len(answer) > len(view):
                raise usb.core.USBError("Overflow", LIBUSB_ERROR_OVERFLOW, errno.EOVERFLOW)
            view[:len(answer)] = answer
            return len(answer)
        payload = bytes(view)
        self._call(dev, timeout, lambda: dev.camera.control_out(
            bmRequestType, bRequest, wValue, wIndex, payload))
        return len(payload)

    def _standard(self, dev: PluggedDevice, request_type: int, request: int, value: int,
                  index: int, view: memoryview) -> int:
        """Chapter 9 requests, which the USB stack answers from the descriptors."""
        answer: bytes | None = None
        if request == _GET_DESCRIPTOR and request_type & _DIR_IN:
            answer = dev.description.descriptor(value >> 8, value & 0xFF)
        elif request == _GET_CONFIGURATION and request_type & _DIR_IN:
            answer = bytes([dev.configuration])
        elif request == _GET_STATUS and request_type & _DIR_IN:
            answer = b"\x00\x00"
        elif request == _GET_INTERFACE and request_type & _DIR_IN:
            answer = b"\x00"
        elif request == _SET_CONFIGURATION and not request_type & _DIR_IN:
            if value not in (0, dev.description.configuration_value):
                raise _pipe()
            dev.configuration = value
            return 0
        elif request in (_SET_INTERFACE, _CLEAR_FEATURE, _SET_FEATURE):
            return 0
        if answer is None:
            raise _pipe()
        n = min(len(answer), len(view))
        view[:n] = answer[:n]
        return n



@contextmanager
def sim_backend() -> Iterator[SimBackend]:
    """A backend whose devices are all unplugged on exit (tests, the demo)."""
    backend = SimBackend()
    try:
        yield backend
    finally:
        for device in backend.devices():
            backend.unplug(device.address)
