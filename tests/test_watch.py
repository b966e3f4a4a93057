"""The udev watcher: building device references from sysfs, reporting each device once.

Unit tests use minimal stand-ins for pyudev devices (only the attributes the watcher
reads); the `umockdev` tests run the real pyudev monitor against a umockdev testbed.
"""

from __future__ import annotations

import os
import queue
import time
from collections import deque
from dataclasses import dataclass, field

import pytest
from dockd_sim.device import SimStall, UsbDeviceDescription, UsbEndpoint, UsbInterface
from dockd_sim.pyusb_backend import sim_backend
from structlog.testing import capture_logs

from dockd.events import Action, DeviceEvent, UsbDeviceRef
from dockd.watch import UdevWatcher, find_pyusb_device, usb_device_ref

HUB = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1"


@dataclass
class FakeDevice:
    """What the watcher reads from a pyudev Device."""

    sys_path: str
    attributes: dict[str, bytes] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    children: list[FakeDevice] = field(default_factory=list)
    action: str | None = None

    @property
    def sys_name(self) -> str:
        return self.sys_path.rsplit("/", 1)[-1]


def camera(slot: int = 3, *, devnum: int = 7, serial: bytes = b"NC-0001\n") -> FakeDevice:
    name = f"1-1.{slot}"
    path = f"{HUB}/{name}"
    return FakeDevice(
        path,
        attributes={"busnum": b"1\n", "devnum": f"{devnum}\n".encode(), "idVendor": b"1d50\n",
                    "idProduct": b"6099\n", "serial": serial},
        properties={"DEVTYPE": "usb_device", "PRODUCT": "1d50/6099/100"},
        children=[FakeDevice(f"{path}/{name}:1.0", {"bInterfaceClass": b"ff\n"}),
                  FakeDevice(f"{path}/{name}:1.1", {"bInterfaceClass": b"08\n"})],
    )


class FakeContext:
    def __init__(self, devices: list[FakeDevice]) -> None:
        self.devices = devices
        self.asked: list[dict[str, str]] = []

    def list_devices(self, **match: str) -> list[FakeDevice]:
        self.asked.append(match)
        return list(self.devices)


def watcher(devices: list[FakeDevice] | None = None) -> tuple[UdevWatcher, list[DeviceEvent]]:
    seen: list[DeviceEvent] = []
    return UdevWatcher(seen.append, context=FakeContext(devices or [])), seen


def test_reference_is_built_from_sysfs():
    ref = usb_device_ref(camera(3))
    assert ref == UsbDeviceRef(
        key=f"{HUB}/1-1.3", port_path="1-1.3", bus_number=1, address=7, vendor_id=0x1D50,
        product_id=0x6099, interface_classes=(0xFF, 0x08), serial="NC-0001",
    )
    assert ref.slot == 3


def test_interfaces_of_devices_behind_a_hub_are_not_the_hubs():
    hub = FakeDevice(HUB, {"busnum": b"1", "devnum": b"2", "idVendor": b"05e3",
                           "idProduct": b"0608"})
    cam = camera(2)
    hub.children = [FakeDevice(f"{HUB}/1-1:1.0", {"bInterfaceClass": b"09"}), cam,
                    *cam.children]
    ref = usb_device_ref(hub)
    assert ref is not None
    assert ref.interface_classes == (0x09,)
    assert ref.port_path == "1-1"


def test_properties_stand_in_for_missing_attributes():
    dev = FakeDevice(f"{HUB}/1-1.5", properties={"BUSNUM": "002", "DEVNUM": "011",
                                                  "PRODUCT": "abcd/12/100"})
    ref = usb_device_ref(dev)
    assert ref is not None
    assert (ref.bus_number, ref.address, ref.vendor_id, ref.product_id) == (2, 11, 0xABCD, 0x12)
    assert ref.serial is None
    assert ref.interface_classes == ()


@pytest.mark.parametrize("broken", [
    {"idVendor": b"zz\n"},       # not hex
    {"devnum": b"-1\n"},         # out of range
    {"busnum": b"70000\n"},      # out of range
    {"idProduct": b"123456\n"},  # wider than 16 bits
])
def test_unreadable_device_is_skipped_with_a_warning(broken):
    dev = camera()
    dev.attributes.update(broken)
    with capture_logs() as logs:
        assert usb_device_ref(dev) is None
    assert [entry["event"] for entry in logs] == ["usb_device_unreadable"]


def test_missing_identity_is_skipped():
    dev = FakeDevice(f"{HUB}/1-1.5", {"busnum": b"1", "devnum": b"4"})
    with capture_logs():
        assert usb_device_ref(dev) is None


def test_hostile_serial_is_text_not_a_crash():
    ref = usb_device_ref(camera(serial=b"\xff\xfeNC\n"))
    assert ref is not None
    assert ref.serial == "\ufffd\ufffdNC"


def test_duplicate_adds_collapse_and_removes_use_the_ref_taken_at_add():
    w, _ = watcher()
    dev = camera(3)
    added = w.handle(dev, "add")
    assert added is not None and added.action is Action.ADD
    assert w.handle(dev, "add") is None
    assert w.handle(dev, "bind") is None
    assert w.handle(dev, "change") is None
    dev.attributes.clear()  # at remove time sysfs is already gone
    removed = w.handle(dev, "remove")
    assert removed == DeviceEvent(Action.REMOVE, added.device)
    assert w.handle(dev, "remove") is None
    assert w.known() == []


def test_remove_of_a_device_never_reported_is_ignored():
    w, _ = watcher()
    assert w.handle(camera(4), "remove") is None


def test_replugged_device_is_reported_again():
    w, _ = watcher()
    assert w.handle(camera(3, devnum=7), "add") is not None
    assert w.handle(camera(3, devnum=7), "remove") is not None
    again = w.handle(camera(3, devnum=8), "add")
    assert again is not None and again.device.address == 8


def test_configured_device_without_interfaces_yet_is_reported_at_bind():
    w, _ = watcher()
    dev = camera(3)
    dev.attributes["bConfigurationValue"] = b"1\n"
    interfaces, dev.children = dev.children, []
    assert w.handle(dev, "add") is None  # the kernel has not created the interfaces yet
    dev.children = interfaces
    event = w.handle(dev, "bind")
    assert event is not None and event.action is Action.ADD
    assert event.device.interface_classes == (0xFF, 0x08)
    assert w.handle(dev, "bind") is None


def test_unconfigured_device_is_reported_at_add():
    w, _ = watcher()
    dev = camera(3)
    dev.children = []
    dev.attributes["bConfigurationValue"] = b"\n"
    event = w.handle(dev, "add")
    assert event is not None and event.device.interface_classes == ()


def test_device_pulled_before_bind_is_never_reported():
    w, _ = watcher()
    dev = camera(3)
    dev.attributes["bConfigurationValue"] = b"1"
    dev.children = []
    assert w.handle(dev, "add") is None
    assert w.handle(dev, "remove") is None
    assert w.known() == []


def test_coldplug_does_not_wait_for_a_bind_that_already_happened():
    dev = camera(3)
    dev.attributes["bConfigurationValue"] = b"1"
    dev.children = []
    w, _ = watcher([dev])
    assert [e.device.port_path for e in w.coldplug()] == ["1-1.3"]


def test_bind_alone_counts_as_an_appearance():
    w, _ = watcher()
    event = w.handle(camera(3), "bind")
    assert event is not None and event.action is Action.ADD


def test_coldplug_reports_present_devices_once():
    devices = [camera(1, devnum=3), camera(2, devnum=4)]
    w, _ = watcher(devices)
    first = w.coldplug()
    assert [e.device.port_path for e in first] == ["1-1.1", "1-1.2"]
    assert all(e.action is Action.ADD for e in first)
    assert w.coldplug() == []
    assert w.handle(devices[0], "add") is None  # the monitor's copy of a coldplugged add
    assert w._context.asked == [{"subsystem": "usb", "DEVTYPE": "usb_device"}] * 2


def test_a_failing_callback_is_logged_not_fatal():
    def explode(event: DeviceEvent) -> None:
        raise RuntimeError("consumer bug")

    w = UdevWatcher(explode, context=FakeContext([]))
    ref = usb_device_ref(camera())
    assert ref is not None
    with capture_logs() as logs:
        w._deliver(DeviceEvent(Action.ADD, ref))
    assert logs[0]["event"] == "device_event_callback_failed"
    assert logs[0]["port_path"] == "1-1.3"


def test_resync_reports_what_changed_while_events_were_lost():
    one, two, three = camera(1, devnum=3), camera(2, devnum=4), camera(3, devnum=5)
    context = FakeContext([one, two])
    w = UdevWatcher(lambda event: None, context=context)
    w.coldplug()
    context.devices = [two, three]  # 1 left and 3 arrived unseen
    events = w.resync()
    assert [(e.action, e.device.port_path) for e in events] == [
        (Action.REMOVE, "1-1.1"), (Action.ADD, "1-1.3")]
    assert w.resync() == []


class FakeMonitor:
    """A pyudev Monitor stand-in: a real pipe to select on, a script of what poll returns."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        self.script: deque[FakeDevice | Exception] = deque()
        self.filters: list[tuple[str, str]] = []
        self.started = False

    def filter_by(self, subsystem: str, device_type: str) -> None:
        self.filters.append((subsystem, device_type))

    def start(self) -> None:
        self.started = True

    def fileno(self) -> int:
        return self.r

    def push(self, item: FakeDevice | Exception, action: str | None = None) -> None:
        if isinstance(item, FakeDevice):
            item = FakeDevice(item.sys_path, item.attributes, item.properties, item.children,
                              action)
        self.script.append(item)
        os.write(self.w, b"!")

    def poll(self, timeout: float = 0) -> FakeDevice | None:
        if not self.script:
            return None
        os.read(self.r, 1)
        item = self.script.popleft()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def test_watcher_thread_collapses_duplicates_and_survives_lost_events():
    present = camera(1, devnum=3)
    context = FakeContext([present])
    monitor = FakeMonitor()
    events: queue.Queue[DeviceEvent] = queue.Queue()
    w = UdevWatcher(events.put, context=context, monitor=monitor)
    try:
        w.start()
        assert monitor.filters == [("usb", "usb_device")] and monitor.started
        assert next_event(events).device.port_path == "1-1.1"  # coldplug, on start

        new = camera(2, devnum=4)
        monitor.push(present, "add")  # the monitor's copy of the coldplugged device
        monitor.push(new, "add")
        monitor.push(new, "bind")
        monitor.push(new, "change")
        added = next_event(events)
        assert (added.action, added.device.port_path) == (Action.ADD, "1-1.2")

        context.devices = [present, new, camera(3, devnum=5)]
        with capture_logs() as logs:
            monitor.push(OSError(105, "No buffer space available"))  # events were dropped
            found = next_event(events)
        assert (found.action, found.device.port_path) == (Action.ADD, "1-1.3")
        assert logs[0]["event"] == "udev_monitor_lost_events"

        monitor.push(new, "remove")
        monitor.push(new, "remove")
        removed = next_event(events)
        assert removed == DeviceEvent(Action.REMOVE, added.device)
        assert_quiet(events, 0.1)
    finally:
        w.stop()
        monitor.close()


class Quiet:
    description = UsbDeviceDescription(
        vendor_id=0x1D50, product_id=0x6099, manufacturer="Q", product="Quiet", serial="Q-1",
        interfaces=(UsbInterface(0, 0xFF, endpoints=(UsbEndpoint(0x81), UsbEndpoint(0x01))),),
    )

    def control_in(self, request_type, request, value, index, length):
        raise SimStall

    def control_out(self, request_type, request, value, index, data):
        raise SimStall

    def bulk_write(self, endpoint, data):
        raise SimStall

    def bulk_read_into(self, endpoint, buffer):
        raise SimStall

    def unplugged(self) -> bool:
        return False

    def close(self) -> None:
        pass


def test_find_pyusb_device_checks_address_and_ids():
    with sim_backend() as backend:
        address = backend.plug(Quiet(), port_numbers=(1, 3))
        ref = UsbDeviceRef(key="k", port_path="1-1.3", bus_number=1, address=address,
                           vendor_id=0x1D50, product_id=0x6099)
        dev = find_pyusb_device(ref, backend=backend)
        assert dev is not None and dev.address == address
        reused = UsbDeviceRef(key="k", port_path="1-1.3", bus_number=1, address=address,
                              vendor_id=0x1234, product_id=0x6099)
        assert find_pyusb_device(reused, backend=backend) is None
        backend.unplug(address)
        assert find_pyusb_device(ref, backend=backend) is None


# --- against real udev events (umockdev) -------------------------------------------------


def next_event(events: queue.Queue[DeviceEvent], timeout_s: float = 5.0) -> DeviceEvent:
    return events.get(timeout=timeout_s)


def assert_quiet(events: queue.Queue[DeviceEvent], for_s: float = 0.3) -> None:
    time.sleep(for_s)
    assert events.empty(), list(events.queue)


@pytest.mark.umockdev
def test_monitor_reports_each_device_once(umockdev_dock):
    umockdev_dock.plug(Quiet(), slot=1)  # present before the watcher starts
    events: queue.Queue[DeviceEvent] = queue.Queue()
    w = UdevWatcher(events.put)
    try:
        w.start()
        cold = [events.get_nowait() for _ in range(events.qsize())]
        ports = {e.device.port_path for e in cold}
        assert "1-1.1" in ports and "1-1" in ports  # the camera, and the dock's hub
        assert all(e.action is Action.ADD for e in cold)
        assert len(ports) == len(cold)
        umockdev_dock.uevent(1, "add")  # udev replays an add: nothing new
        assert_quiet(events)

        umockdev_dock.plug(Quiet(), slot=2)
        hot = next_event(events)
        assert (hot.action, hot.device.port_path) == (Action.ADD, "1-1.2")
        assert hot.device.bus_number == 1 and hot.device.vendor_id == 0x1D50
        assert hot.device.interface_classes == (0xFF,)  # reported at "bind", not at "add"
        umockdev_dock.uevent(2, "add")
        umockdev_dock.uevent(2, "change")
        assert_quiet(events)

        umockdev_dock.unplug(2)
        gone = next_event(events)
        assert gone == DeviceEvent(Action.REMOVE, hot.device)
        umockdev_dock.unplug(1)
        assert next_event(events).device.port_path == "1-1.1"
        assert_quiet(events)
    finally:
        w.stop()
        for slot in (1, 2):
            umockdev_dock.unplug(slot)
