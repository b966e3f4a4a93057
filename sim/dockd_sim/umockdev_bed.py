"""A umockdev testbed that presents simulated cameras as real USB devices.

Each camera becomes a `usb_device` in a fake sysfs (so udev/pyudev see it hot-plugged) with a
device node whose usbdevfs ioctls are answered here (so Debian's libusb, and pyusb on top of
it, talk to it exactly as to hardware). The process must run under `umockdev-wrapper` (the
preload library), and the dock must exist before libusb is first initialised in the process:
libusb binds its hotplug monitor to the testbed at init. Debian's libusb-1.0-0 is needed
(the copy bundled in the libusb-package wheel ignores umockdev's uevents).

Ioctls arrive on umockdev's own thread. Transfers are queued to one worker thread per camera,
so a slow or throttled camera never blocks the ioctl thread (libusb busy-polls REAPURBNDELAY
meanwhile); all reads/writes of client memory stay on the ioctl thread.
"""

from __future__ import annotations

import errno
import functools
import os
import queue
import shutil
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from dockd_sim.device import SimCamera, SimGone, SimNoAnswer, SimStall, UsbDeviceDescription

log = structlog.get_logger(__name__)

# --- usbdevfs ABI (linux/usbdevice_fs.h, 64-bit) -------------------------------------------


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("U") << 8) | nr


_W, _R = 1, 2  # _IOC_WRITE, _IOC_READ
USBDEVFS_SETINTERFACE = _ioc(_R, 4, 8)
USBDEVFS_SETCONFIGURATION = _ioc(_R, 5, 4)
USBDEVFS_GETDRIVER = _ioc(_W, 8, 260)
USBDEVFS_SUBMITURB = _ioc(_R, 10, 56)
USBDEVFS_DISCARDURB = _ioc(0, 11, 0)
USBDEVFS_REAPURB = _ioc(_W, 12, 8)
USBDEVFS_REAPURBNDELAY = _ioc(_W, 13, 8)
USBDEVFS_CLAIMINTERFACE = _ioc(_R, 15, 4)
USBDEVFS_RELEASEINTERFACE = _ioc(_R, 16, 4)
USBDEVFS_CONNECTINFO = _ioc(_W, 17, 8)
USBDEVFS_RESET = _ioc(0, 20, 0)
USBDEVFS_CLEAR_HALT = _ioc(_R, 21, 4)
USBDEVFS_GET_CAPABILITIES = _ioc(_R, 26, 4)
USBDEVFS_GET_SPEED = _ioc(0, 31, 0)
USBDEVFS_RESETEP = _ioc(_R, 3, 4)

_CAP_ZERO_PACKET = 0x01
_CAP_NO_PACKET_SIZE_LIM = 0x04
_CAP_BULK_SCATTER_GATHER = 0x08
_CAP_REAP_AFTER_DISCONNECT = 0x10
# as a modern xHCI host: libusb then sends each bulk transfer as one URB, so the camera sees
# the host's whole buffer (BULK_CONTINUATION would split it into 16 KiB URBs)
_CAPS = _CAP_ZERO_PACKET | _CAP_NO_PACKET_SIZE_LIM | _CAP_BULK_SCATTER_GATHER
_CAPS |= _CAP_REAP_AFTER_DISCONNECT

_URB_SIZE = 56
_URB_HEAD = struct.Struct("<BBxxiI")  # type, endpoint, status, flags
_URB_BUFFER_OFFSET = 16
_URB_LENGTHS = struct.Struct("<ii")  # buffer_length, actual_length at offset 24
_URB_STATUS_OFFSET = 4
_URB_ACTUAL_OFFSET = 28
_URB_TYPE_ISO, _URB_TYPE_INTERRUPT, _URB_TYPE_CONTROL, _URB_TYPE_BULK = 0, 1, 2, 3
_SETUP = struct.Struct("<BBHHH")
_USB_SPEED_HIGH = 3

# standard requests the transport answers itself (the SimCamera sees vendor/class ones)
_GET_STATUS, _CLEAR_FEATURE, _SET_FEATURE = 0, 1, 3
_GET_DESCRIPTOR, _GET_CONFIGURATION, _SET_CONFIGURATION, _SET_INTERFACE = 6, 8, 9, 11
_PRELOAD_LIB = "libumockdev-preload"


def umockdev_available() -> tuple[bool, str]:
    """Whether a testbed can work in this process; the reason when it cannot."""
    if _PRELOAD_LIB not in os.environ.get("LD_PRELOAD", ""):
        return False, "umockdev is not preloaded (run under umockdev-wrapper)"
    try:
        _umockdev()
    except (ImportError, ValueError) as exc:
        return False, f"umockdev GObject bindings missing (gir1.2-umockdev-1.0, python3-gi): {exc}"
    return True, "umockdev preloaded"


@functools.cache
def _umockdev() -> Any:
    import gi  # noqa: PLC0415 - optional dependency, only where umockdev tests run

    gi.require_version("UMockdev", "1.0")
    from gi.repository import UMockdev  # noqa: PLC0415

    return UMockdev


# --- one camera's usbdevfs -----------------------------------------------------------------


class _IoctlData(Protocol):
    """The parts of UMockdev.IoctlData used here (a view of the client's memory)."""

    client_addr: int

    def resolve(self, offset: int, length: int) -> _IoctlData | None: ...

    def retrieve(self) -> bytes: ...

    def update(self, offset: int, data: bytes) -> None: ...

    def set_ptr(self, offset: int, child: _IoctlData) -> bool: ...


class _IoctlClient(Protocol):
    def get_request(self) -> int: ...

    def get_arg(self) -> _IoctlData: ...

    def complete(self, result: int, errno_: int) -> None: ...


class _Throttle(Protocol):
    def consume(self, nbytes: int) -> None: ...


@dataclass(frozen=True)
class _Outcome:
    """How a URB ended: what the kernel writes back into it."""

    status: int  # 0 or -errno, as in struct usbdevfs_urb
    actual: int = 0
    payload: bytes = b""
    #: where payload goes in the buffer
    payload_offset: int = 0


@dataclass(eq=False)
class _Urb:
    """A submitted URB: views of the client's memory and, once done, its outcome."""

    urb: _IoctlData
    buffer: _IoctlData | None
    type: int
    endpoint: int
    length: int
    out_data: bytes
    outcome: _Outcome | None = None


class UsbfsDevice:
    """Answers usbdevfs ioctls for one simulated camera."""

    def __init__(self, camera: SimCamera, *, devnum: int, throttle: _Throttle | None = None,
                 on_gone: Callable[[], None] | None = None) -> None:
        self.camera = camera
        self.description: UsbDeviceDescription = camera.description
        self.devnum = devnum
        self._throttle = throttle
        self._on_gone = on_gone
        self._lock = threading.Lock()
        self._inflight: dict[int, _Urb] = {}
        self._completed: deque[_Urb] = deque()
        self._jobs: queue.SimpleQueue[_Urb | None] = queue.SimpleQueue()
        self._gone = False
        self._worker = threading.Thread(target=self._work, name=f"usbfs-{devnum}", daemon=True)
        self._worker.start()

    @property
    def gone(self) -> bool:
        return self._gone

    def unplug(self) -> None:
        """From now on every ioctl fails with ENODEV, as for a device that left the bus."""
        self._gone = True
        self._jobs.put(None)

    # -- ioctl thread --

    def handle(self, client: _IoctlClient) -> bool:
        request = client.get_request()
        arg = client.get_arg()
        if self._gone or self.camera.unplugged():
            self._mark_gone()
        try:
            result, err = self._dispatch_gone(request, arg) if self._gone else (
                self._dispatch(request, arg))
        except Exception:  # a bug here must not take down umockdev's ioctl thread
            log.exception("usbfs_ioctl_failed", request=hex(request), devnum=self.devnum)
            result, err = -1, errno.EIO
        client.complete(result, err)
        return True

    def _dispatch(self, request: int, arg: _IoctlData) -> tuple[int, int]:
        if request == USBDEVFS_SUBMITURB:
            return self._submit(arg)
        if request in (USBDEVFS_REAPURBNDELAY, USBDEVFS_REAPURB):
            return self._reap(arg)
        if request == USBDEVFS_DISCARDURB:
            return self._discard(arg)
        if request == USBDEVFS_GET_CAPABILITIES:
            _write(arg, 4, struct.pack("<I", _CAPS))
            return 0, 0
        if request == USBDEVFS_CONNECTINFO:
            _write(arg, 8, struct.pack("<IBxxx", self.devnum, 0))
            return 0, 0
        if request == USBDEVFS_GET_SPEED:
            return _USB_SPEED_HIGH, 0
        if request == USBDEVFS_GETDRIVER:
            return -1, errno.ENODATA  # no kernel driver is bound to a camera
        if request == USBDEVFS_CLEAR_HALT:
            return self._clear_halt(arg)
        if request in (USBDEVFS_CLAIMINTERFACE, USBDEVFS_RELEASEINTERFACE,
                       USBDEVFS_SETCONFIGURATION, USBDEVFS_SETINTERFACE,
                       USBDEVFS_RESETEP, USBDEVFS_RESET):
            return 0, 0
        return -1, errno.ENOTTY

    def _dispatch_gone(self, request: int, arg: _IoctlData) -> tuple[int, int]:
        """After a disconnect, as the kernel: URBs still in flight finish with -ENODEV and
        can be reaped (libusb waits for them; refusing the reap would hang it), then
        everything fails with ENODEV."""
        if request in (USBDEVFS_REAPURBNDELAY, USBDEVFS_REAPURB):
            with self._lock:
                for job in self._inflight.values():
                    job.outcome = _Outcome(-errno.ENODEV)
                    self._completed.append(job)
                self._inflight.clear()
                if not self._completed:
                    return -1, errno.ENODEV
            return self._reap(arg)
        if request == USBDEVFS_DISCARDURB:
            return self._discard(arg)
        return -1, errno.ENODEV

    def _submit(self, arg: _IoctlData) -> tuple[int, int]:
        urb = arg.resolve(0, _URB_SIZE)
        if urb is None:
            return -1, errno.EFAULT
        raw = urb.retrieve()
        urb_type, endpoint, _status, _flags = _URB_HEAD.unpack_from(raw, 0)
        length, _actual = _URB_LENGTHS.unpack_from(raw, 24)
        if urb_type == _URB_TYPE_ISO or length < 0:
            return -1, errno.EINVAL
        if urb_type == _URB_TYPE_CONTROL and length < _SETUP.size:
            return -1, errno.EINVAL
        buffer = urb.resolve(_URB_BUFFER_OFFSET, length) if length else None
        out_data = b""
        if buffer is not None and (urb_type == _URB_TYPE_CONTROL or not endpoint & 0x80):
            out_data = buffer.retrieve()
        job = _Urb(urb, buffer, urb_type, endpoint, length, out_data)
        with self._lock:
            self._inflight[urb.client_addr] = job
        self._jobs.put(job)
        return 0, 0

    def _reap(self, arg: _IoctlData) -> tuple[int, int]:
        with self._lock:
            if not self._completed:
                return -1, errno.EAGAIN
            job = self._completed.popleft()
        outcome = job.outcome
        assert outcome is not None  # set before a URB is queued as completed
        if job.buffer is not None and outcome.payload:
            job.buffer.update(outcome.payload_offset, outcome.payload)
        job.urb.update(_URB_STATUS_OFFSET, struct.pack("<i", outcome.status))
        job.urb.update(_URB_ACTUAL_OFFSET, struct.pack("<i", outcome.actual))
        slot = arg.resolve(0, 8)
        if slot is None:
            return -1, errno.EFAULT
        slot.set_ptr(0, job.urb)
        return 0, 0

    def _discard(self, arg: _IoctlData) -> tuple[int, int]:
        (addr,) = struct.unpack_from("<Q", arg.retrieve().ljust(8, b"\0"))
        with self._lock:
            job = self._inflight.pop(addr, None)
            if job is None:
                return -1, errno.EINVAL
            job.outcome = _Outcome(-errno.ENOENT)  # what the kernel reports for a cancel
            self._completed.append(job)
        return 0, 0

    def _clear_halt(self, arg: _IoctlData) -> tuple[int, int]:
        """Tell the camera, if it cares (an optional SimCamera hook, as in the pyusb backend).
        Called on the ioctl thread: the hook must be quick."""
        target = arg.resolve(0, 4)
        hook = getattr(self.camera, "clear_halt", None)
        if target is not None and hook is not None:
            (endpoint,) = struct.unpack_from("<I", target.retrieve().ljust(4, b"\0"))
            try:
                hook(endpoint & 0xFF)
            except SimGone:
                self._mark_gone()
                return -1, errno.ENODEV
        return 0, 0

    def _mark_gone(self) -> None:
        if not self._gone:
            self._gone = True
            self._jobs.put(None)
            if self._on_gone is not None:
                self._on_gone()

    # -- worker thread --

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                outcome = self._run(job)
            except SimNoAnswer:
                continue  # stays in flight until the host discards it on its timeout
            except SimStall:
                outcome = _Outcome(-errno.EPIPE)
            except SimGone:
                self._mark_gone()
                outcome = _Outcome(-errno.ENODEV)
            except Exception:  # a simulator bug looks like a protocol error on the wire
                log.exception("sim_camera_failed", devnum=self.devnum)
                outcome = _Outcome(-errno.EPROTO)
            with self._lock:  # a URB the host discarded meanwhile keeps its -ENOENT
                if self._inflight.pop(job.urb.client_addr, None) is job:
                    job.outcome = outcome
                    self._completed.append(job)
            if self.camera.unplugged():
                self._mark_gone()

    def _run(self, job: _Urb) -> _Outcome:
        if job.type == _URB_TYPE_CONTROL:
            return self._control(job)
        if job.endpoint & 0x80:
            buf = bytearray(job.length)
            n = max(0, min(self.camera.bulk_read_into(job.endpoint, memoryview(buf)), job.length))
            outcome = _Outcome(0, n, bytes(buf[:n]))
        else:
            n = self.camera.bulk_write(job.endpoint, job.out_data)
            outcome = _Outcome(0, max(0, min(n, job.length)))
        if self._throttle is not None:
            self._throttle.consume(outcome.actual)
        return outcome

    def _control(self, job: _Urb) -> _Outcome:
        request_type, request, value, index, length = _SETUP.unpack_from(job.out_data, 0)
        length = min(length, job.length - _SETUP.size)
        if request_type & 0x60 == 0:  # standard request: the bus/transport's business
            answer = self._standard(request_type, request, value, length)
        elif request_type & 0x80:
            answer = self.camera.control_in(request_type, request, value, index, length)
        else:
            data = job.out_data[_SETUP.size:_SETUP.size + length]
            self.camera.control_out(request_type, request, value, index, data)
            return _Outcome(0, len(data))
        if not request_type & 0x80:
            return _Outcome(0, 0)  # a standard OUT request without data (SET_CONFIGURATION)
        payload = bytes(answer[:length])
        # control IN data follows the 8-byte setup packet in the URB's buffer
        return _Outcome(0, len(payload), payload, _SETUP.size)

    def _standard(self, request_type: int, request: int, value: int, length: int) -> bytes:
        desc = self.description
        if request == _GET_DESCRIPTOR and request_type & 0x80:
            answer = desc.descriptor(value >> 8, value & 0xFF)
            if answer is None:
                raise SimStall
            return answer
        if request == _GET_CONFIGURATION:
            return bytes([desc.configuration_value])
        if request == _GET_STATUS:
            return bytes(min(length, 2))
        if request in (_SET_CONFIGURATION, _SET_INTERFACE, _CLEAR_FEATURE, _SET_FEATURE):
            return b""
        raise SimStall


def _write(arg: _IoctlData, size: int, data: bytes) -> None:
    target = arg.resolve(0, size)
    if target is not None:
        target.update(0, data)


@functools.cache
def _handler_class() -> Any:
    """The GObject subclass umockdev calls; made on demand so this module imports without gi."""
    base = _umockdev().IoctlBase

    class _Handler(base):  # type: ignore[misc, valid-type]
        def __init__(self, device: UsbfsDevice) -> None:
            super().__init__()
            self.device = device

        def do_handle_ioctl(self, client: _IoctlClient) -> bool:
            return self.device.handle(client)

    return _Handler


# --- the dock ------------------------------------------------------------------------------


@dataclass
class _Plugged:
    sys_path: str
    devnode: str
    interfaces: tuple[str, ...]
    device: UsbfsDevice
    handler: Any


class UMockdevDock:
    """A dock (a USB hub) in a umockdev testbed; cameras are plugged into its slots.

    Create it before libusb is first initialised in the process. The dock does not own the
    cameras: whoever created them closes them.
    """

    _ROOT = "/devices/pci0000:00/0000:00:14.0"

    def __init__(self) -> None:
        ok, reason = umockdev_available()
        if not ok:
            raise RuntimeError(reason)
        libusb1 = sys.modules.get("usb.backend.libusb1")
        if libusb1 is not None and getattr(libusb1, "_lib_object", None) is not None:
            raise RuntimeError("libusb was initialised before the umockdev dock: it cannot "
                               "see the testbed's devices; create the dock first")
        self._testbed: Any = _umockdev().Testbed.new()
        self._lock = threading.RLock()
        self._hubs: set[str] = set()
        self._plugged: dict[int, _Plugged] = {}
        self._detached: list[tuple[str, Any]] = []
        self._next_devnum: dict[int, int] = {}
        self._closed = False

    def plug(self, camera: SimCamera, *, slot: int, bus: int = 1, hub_port_path: str = "1-1",
             link_mb_s: float = 0.0) -> str:
        """Dock a camera in `slot`; return its sysfs path. The udev "add" goes out at once."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the dock is closed")
            if slot in self._plugged:
                raise ValueError(f"slot {slot} is occupied")
            hub_path = self._ensure_hub(bus, hub_port_path)
            name = f"{hub_port_path}.{slot}"
            devnum = self._allocate_devnum(bus)
            devnode = f"/dev/bus/usb/{bus:03d}/{devnum:03d}"
            throttle = _make_throttle(link_mb_s)
            device = UsbfsDevice(camera, devnum=devnum, throttle=throttle,
                                 on_gone=functools.partial(self._gone_later, slot))
            handler = _handler_class()(device)
            # the ioctl handler must be in place before the add event goes out
            self._testbed.attach_ioctl(devnode, handler)
            desc = camera.description
            sys_path = f"{hub_path}/{name}"
            self._testbed.add_from_string(_usb_device_record(
                sys_path, bus=bus, devnum=devnum, desc=desc,
                descriptors=desc.device_descriptor() + desc.config_descriptor(),
            ))
            interfaces = []
            for intf in desc.interfaces:
                intf_path = f"{sys_path}/{name}:{desc.configuration_value}.{intf.number}"
                self._testbed.add_from_string(
                    f"P: {intf_path}\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_interface\n"
                    f"A: bInterfaceNumber={intf.number:02x}\n"
                    f"A: bInterfaceClass={intf.interface_class:02x}\n"
                    f"A: bInterfaceSubClass={intf.interface_subclass:02x}\n"
                    f"A: bInterfaceProtocol={intf.interface_protocol:02x}\n"
                    f"A: bNumEndpoints={len(intf.endpoints):02x}\n"
                )
                interfaces.append(intf_path)
            # as the kernel: "bind" once the generic driver has created the interfaces
            self._testbed.uevent("/sys" + sys_path, "bind")
            full = "/sys" + sys_path  # how udev (and so pyudev) names it under the preload
            self._plugged[slot] = _Plugged(full, devnode, tuple(interfaces), device, handler)
            log.debug("umockdev_plugged", slot=slot, sys_path=full, devnode=devnode)
            return full

    def unplug(self, slot: int) -> None:
        """Pull the camera out of `slot`: udev "remove", then the device leaves sysfs."""
        with self._lock:
            plugged = self._plugged.pop(slot, None)
            if plugged is None:
                return
            plugged.device.unplug()
            # children first, as the kernel; each one removed, or re-plugging this slot
            # would re-add an existing path (which aborts the process)
            for intf in reversed(plugged.interfaces):
                self._testbed.uevent("/sys" + intf, "remove")
                self._testbed.remove_device("/sys" + intf)
            self._testbed.uevent(plugged.sys_path, "remove")
            self._testbed.remove_device(plugged.sys_path)
            # keep the handler attached: clients still holding the node get ENODEV
            self._detached.append((plugged.devnode, plugged.handler))

    def uevent(self, slot: int, action: str) -> None:
        """Send an extra uevent for the camera in `slot` (udev repeats events: "add" after
        a coldplug trigger, "change", "bind"); the device itself is unchanged."""
        with self._lock:
            self._testbed.uevent(self._plugged[slot].sys_path, action)

    def plugged_slots(self) -> list[int]:
        with self._lock:
            return sorted(self._plugged)

    def close(self) -> None:
        """Unplug every camera, stop answering their device nodes, delete the testbed's tree.

        The testbed object itself is kept: dropping it while pyusb still holds a handle
        (released by a finalizer at exit) leaves that ioctl waiting on a dead socket. As its
        finalizer may then never run (pytest keeps fixtures to the end), the tree it would
        delete is deleted here, after the preload is told to pass everything through.
        """
        with self._lock:
            if self._closed:
                return
            for slot in list(self._plugged):
                self.unplug(slot)
            for devnode, _handler in self._detached:
                self._testbed.detach_ioctl(devnode)
            self._detached.clear()
            self._testbed.disable()
            root = self._testbed.get_root_dir()
            shutil.rmtree(root, ignore_errors=True)
            # when the finalizer does run (libusb was never started in this process, e.g. the
            # daemon ran as a child), it aborts the process if its tree is missing: leave it
            # an empty one to remove
            Path(root).mkdir(mode=0o700, exist_ok=True)
            self._closed = True

    def __enter__(self) -> UMockdevDock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --

    def _gone_later(self, slot: int) -> None:
        """The camera left the bus by itself (a fault): the kernel would send "remove"."""
        threading.Thread(target=self.unplug, args=(slot,), daemon=True).start()

    def _allocate_devnum(self, bus: int) -> int:
        devnum = self._next_devnum.get(bus, 2)  # 1 is the root hub's
        if devnum > 127:
            raise RuntimeError(f"bus {bus} ran out of device addresses")
        self._next_devnum[bus] = devnum + 1
        return devnum

    def _ensure_hub(self, bus: int, hub_port_path: str) -> str:
        root = f"{self._ROOT}/usb{bus}"
        if root not in self._hubs:
            self._testbed.add_from_string(_hub_record(root, bus=bus, devnum=1))
            self._hubs.add(root)
        path = root
        parts = hub_port_path.split(".")
        for depth in range(1, len(parts) + 1):
            path = f"{path}/{'.'.join(parts[:depth])}"
            if path not in self._hubs:
                devnum = self._allocate_devnum(bus)
                self._testbed.add_from_string(_hub_record(path, bus=bus, devnum=devnum))
                self._hubs.add(path)
        return path


def _make_throttle(link_mb_s: float) -> _Throttle | None:
    if link_mb_s <= 0:
        return None
    from dockd_sim.link import LinkThrottle  # noqa: PLC0415 - only needed for a rate limit

    throttle: _Throttle = LinkThrottle(link_mb_s)
    return throttle


def _usb_device_record(sys_path: str, *, bus: int, devnum: int, desc: UsbDeviceDescription,
                       descriptors: bytes) -> str:
    vid, pid = f"{desc.vendor_id:04x}", f"{desc.product_id:04x}"
    return (
        f"P: {sys_path}\nN: bus/usb/{bus:03d}/{devnum:03d}\n"
        "E: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\nE: DRIVER=usb\n"
        f"E: DEVNAME=/dev/bus/usb/{bus:03d}/{devnum:03d}\n"
        f"E: BUSNUM={bus:03d}\nE: DEVNUM={devnum:03d}\n"
        f"E: PRODUCT={desc.vendor_id:x}/{desc.product_id:x}/{desc.bcd_device:x}\n"
        f"A: idVendor={vid}\nA: idProduct={pid}\nA: bcdDevice={desc.bcd_device:04x}\n"
        f"A: busnum={bus}\nA: devnum={devnum}\nA: speed=480\n"
        f"A: bConfigurationValue={desc.configuration_value}\n"
        f"A: bNumInterfaces={len(desc.interfaces):2d}\n"
        f"A: manufacturer={_attr_text(desc.manufacturer)}\n"
        f"A: product={_attr_text(desc.product)}\n"
        f"A: serial={_attr_text(desc.serial)}\n"
        f"H: descriptors={descriptors.hex()}\n"
    )


def _hub_record(sys_path: str, *, bus: int, devnum: int) -> str:
    """A hub as udev sees it. No device node: libusb skips it, nothing needs to open it."""
    return (
        f"P: {sys_path}\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\nE: DRIVER=usb\n"
        f"E: BUSNUM={bus:03d}\nE: DEVNUM={devnum:03d}\n"
        f"A: idVendor=1d6b\nA: idProduct=0002\nA: busnum={bus}\nA: devnum={devnum}\n"
        "A: bDeviceClass=09\nA: speed=480\n"
    )


def _attr_text(text: str) -> str:
    """A sysfs attribute value on one record line (the record format is line based)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
