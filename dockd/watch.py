"""The production device watcher: udev hotplug through pyudev.

Enumerate at start, then listen to a monitor filtered in the kernel to USB devices. Each
device is reported once per appearance: duplicate "add"/"bind" events collapse by sys_path,
and a "remove" is reported only for a device that was reported added (with the reference
taken at add time: at remove time its sysfs attributes are already gone). A configured
device whose interfaces do not exist yet at "add" is reported at its "bind", which the
kernel sends once they do, so that matching can see its interface classes. A camera pulled
mid-transfer is an ordinary REMOVE here; the session notices on its own through ENODEV.

The callback runs on the watcher's thread: it must only enqueue.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pyudev
import structlog

from dockd.events import Action, DeviceEvent, UsbDeviceRef

log = structlog.get_logger(__name__)

_ADD_ACTIONS = frozenset({"add", "bind"})
_REMOVE_ACTIONS = frozenset({"remove"})


class UdevWatcher:
    """Reports USB devices appearing and disappearing, each once."""

    def __init__(self, callback: Callable[[DeviceEvent], None], *,
                 context: pyudev.Context | None = None, monitor: Any = None) -> None:
        """`context` and `monitor` are pyudev's unless given (tests give stand-ins)."""
        self._callback = callback
        self._context = context if context is not None else pyudev.Context()
        self._lock = threading.Lock()
        self._known: dict[str, UsbDeviceRef] = {}
        self._given_monitor = monitor
        self._monitor: Any = None
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = -1, -1

    # -- public --

    def start(self) -> None:
        """Listen first, then enumerate, so nothing plugged in between is missed."""
        if self._thread is not None:
            raise RuntimeError("watcher already started")
        monitor = self._given_monitor or pyudev.Monitor.from_netlink(self._context)
        monitor.filter_by("usb", "usb_device")  # in the kernel: other subsystems never wake us
        monitor.start()
        self._monitor = monitor
        for event in self.coldplug():
            self._deliver(event)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="udev-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        thread = self._thread
        if thread is None:
            return
        os.write(self._stop_w, b"x")
        thread.join(timeout_s)
        self._thread = None
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)
        self._stop_r, self._stop_w = -1, -1
        self._monitor = None

    def coldplug(self) -> list[DeviceEvent]:
        """ADD events for the USB devices present now that were not reported yet."""
        devices = self._context.list_devices(subsystem="usb", DEVTYPE="usb_device")
        return [event for device in devices
                if (event := self._appeared(device, wait_for_bind=False))]

    def resync(self) -> list[DeviceEvent]:
        """Events that bring what was reported in line with what is present now: after the
        monitor lost events (its socket overflowed), or whenever in doubt."""
        present = {str(d.sys_path): d
                   for d in self._context.list_devices(subsystem="usb", DEVTYPE="usb_device")}
        with self._lock:
            vanished = [self._known.pop(p) for p in list(self._known) if p not in present]
        events = [DeviceEvent(Action.REMOVE, ref) for ref in vanished]
        for device in present.values():
            if (event := self._appeared(device, wait_for_bind=False)) is not None:
                events.append(event)
        return events

    def known(self) -> list[UsbDeviceRef]:
        with self._lock:
            return list(self._known.values())

    def handle(self, device: Any, action: str | None) -> DeviceEvent | None:
        """Turn one udev event into a DeviceEvent, or None when it adds nothing new."""
        if action in _ADD_ACTIONS:
            return self._appeared(device, wait_for_bind=action == "add")
        if action in _REMOVE_ACTIONS:
            sys_path = str(device.sys_path)
            with self._lock:
                gone = self._known.pop(sys_path, None)
            return DeviceEvent(Action.REMOVE, gone) if gone is not None else None
        return None  # change, unbind, ...: nothing for the core

    def _appeared(self, device: Any, *, wait_for_bind: bool) -> DeviceEvent | None:
        sys_path = str(device.sys_path)
        with self._lock:
            if sys_path in self._known:
                return None
        ref = usb_device_ref(device)
        if ref is None:
            return None
        if wait_for_bind and not ref.interface_classes and _configured(device):
            # The kernel announces a device before creating its interfaces, then sends
            # "bind" once they exist: report it then, so matching sees its classes.
            return None
        with self._lock:
            if sys_path in self._known:
                return None
            self._known[sys_path] = ref
        return DeviceEvent(Action.ADD, ref)

    # -- the watcher thread --

    def _run(self) -> None:
        monitor = self._monitor
        assert monitor is not None
        while True:
            ready, _, _ = select.select([monitor.fileno(), self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                for device in _drain(monitor):
                    self._handle_safely(device)
            except OSError as exc:  # e.g. ENOBUFS: events were dropped, so look again
                log.warning("udev_monitor_lost_events", error=str(exc))
                for event in self.resync():
                    self._deliver(event)

    def _handle_safely(self, device: Any) -> None:
        try:
            event = self.handle(device, device.action)
        except Exception:  # one odd device must not end hotplug for all the others
            log.exception("udev_event_failed", sys_path=str(device.sys_path))
            return
        if event is not None:
            self._deliver(event)

    def _deliver(self, event: DeviceEvent) -> None:
        try:
            self._callback(event)
        except Exception:  # the watcher outlives a faulty consumer; the log says what broke
            log.exception("device_event_callback_failed", action=event.action.value,
                          port_path=event.device.port_path)


def _drain(monitor: Any) -> Iterable[Any]:
    while (device := monitor.poll(timeout=0)) is not None:
        yield device


def usb_device_ref(device: Any) -> UsbDeviceRef | None:
    """Build a reference from a pyudev usb_device; None when its sysfs data is unusable
    (it vanished while being read, or a field is malformed)."""
    try:
        bus = _int_attr(device, "busnum", "BUSNUM", 10)
        address = _int_attr(device, "devnum", "DEVNUM", 10)
        product = str(device.properties.get("PRODUCT", ""))
        parts = product.split("/") if product else []
        vendor_id = _hex_attr(device, "idVendor", parts[0] if len(parts) > 1 else None)
        product_id = _hex_attr(device, "idProduct", parts[1] if len(parts) > 1 else None)
    except (KeyError, ValueError, OSError) as exc:
        log.warning("usb_device_unreadable", sys_path=str(device.sys_path), error=str(exc))
        return None
    return UsbDeviceRef(
        key=str(device.sys_path),
        port_path=str(device.sys_name),
        bus_number=bus,
        address=address,
        vendor_id=vendor_id,
        product_id=product_id,
        interface_classes=_interface_classes(device),
        serial=_text_attr(device, "serial"),
    )


def _attr(device: Any, name: str) -> str | None:
    try:
        raw = device.attributes.get(name)
    except OSError:
        return None
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.strip()


def _configured(device: Any) -> bool:
    """Whether the device has an active configuration (and so will have interfaces)."""
    value = _attr(device, "bConfigurationValue")
    return bool(value) and value != "0"


def _int_attr(device: Any, attr: str, prop: str, base: int) -> int:
    text = _attr(device, attr) or device.properties.get(prop)
    if not text:
        raise KeyError(attr)
    value = int(str(text), base)
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{attr}={value} out of range")
    return value


def _hex_attr(device: Any, attr: str, fallback: str | None) -> int:
    text = _attr(device, attr) or fallback
    if not text:
        raise KeyError(attr)
    value = int(text, 16)
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{attr}={text!r} out of range")
    return value


def _text_attr(device: Any, name: str) -> str | None:
    text = _attr(device, name)
    return text if text else None


def _interface_classes(device: Any) -> tuple[int, ...]:
    """bInterfaceClass of the device's own interfaces ("1-1.3:1.0"), not of devices behind it
    (a hub's children). Empty when the interfaces are not bound yet."""
    prefix = f"{device.sys_name}:"
    classes: list[int] = []
    try:
        children = list(device.children)
    except OSError:
        return ()
    for child in children:
        if not str(child.sys_name).startswith(prefix):
            continue
        text = _attr(child, "bInterfaceClass")
        try:
            value = int(text, 16) if text else None
        except ValueError:
            continue
        if value is not None and 0 <= value <= 0xFF and value not in classes:
            classes.append(value)
    return tuple(classes)


def find_pyusb_device(ref: UsbDeviceRef, backend: Any = None, *, wait_s: float = 0.0) -> Any:
    """The pyusb device behind a reference, or None (gone, or the address was reused by
    another device).

    libusb learns of hot-plugged devices from its own udev listener, which may run a few
    milliseconds behind ours: `wait_s` allows it that long.
    """
    import usb.core  # noqa: PLC0415 - keep importing the watcher free of libusb

    def same_ids(dev: Any) -> bool:
        return bool(dev.idVendor == ref.vendor_id and dev.idProduct == ref.product_id)

    deadline = time.monotonic() + wait_s
    while True:
        found = usb.core.find(bus=ref.bus_number, address=ref.address, backend=backend,
                              custom_match=same_ids)
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(0.005)
