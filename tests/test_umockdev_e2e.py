"""End to end through the production path: a simulated camera appears as a USB device in a
umockdev testbed → udev (pyudev, our UdevWatcher) reports it → the NetCo driver matches →
pyusb over Debian's libusb identifies it, lists and reads a recording byte-exact → it is
pulled and the REMOVE is reported.

The tests marked `umockdev` need the preload library: run them under `umockdev-wrapper`.
The plain suite runs them that way in a child process (the last test here), so one
`pytest` covers them wherever umockdev is installed, and says why where it is not.
"""

from __future__ import annotations

import errno
import os
import queue
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import usb.core
import usb.util
from dockd_netco import DRIVER as NETCO

from dockd.devices import DeviceOpener
from dockd.events import Action, DeviceEvent, UsbDeviceRef
from dockd.registry import DriverRegistry
from dockd.sim.content import GeneratedContent
from dockd.sim.device import (
    SimNoAnswer,
    SimStall,
    UsbDeviceDescription,
    UsbEndpoint,
    UsbInterface,
)
from dockd.sim.spec import CameraSpec, RecordingSpec
from dockd.sim.state import CameraState
from dockd.sim.umockdev_bed import umockdev_available
from dockd.watch import UdevWatcher, find_pyusb_device

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 5.0


class EchoCamera:
    """The smallest SimCamera: bulk OUT bytes come back on bulk IN; one vendor request."""

    description = UsbDeviceDescription(
        vendor_id=0x1209, product_id=0x0001, manufacturer="Echo Labs", product="Echo",
        serial="ECHO-0001",
        interfaces=(UsbInterface(0, 0xFF, endpoints=(UsbEndpoint(0x81), UsbEndpoint(0x01))),),
    )

    def __init__(self) -> None:
        self.pending = bytearray()
        self.last_out: bytes | None = None
        self.gone = False

    def control_in(self, request_type: int, request: int, value: int, index: int,
                   length: int) -> bytes:
        if request == 0x01:
            return b"pong:" + value.to_bytes(2, "little")
        raise SimStall

    def control_out(self, request_type: int, request: int, value: int, index: int,
                    data: bytes) -> None:
        if request != 0x02:
            raise SimStall
        self.last_out = data

    def bulk_write(self, endpoint: int, data: bytes) -> int:
        self.pending += data
        return len(data)

    def bulk_read_into(self, endpoint: int, buffer: memoryview) -> int:
        if not self.pending:
            raise SimNoAnswer
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        del self.pending[:n]
        return n

    def unplugged(self) -> bool:
        return self.gone

    def close(self) -> None:
        pass


@pytest.fixture
def events(umockdev_dock):
    """Device events as the daemon would receive them, through the production watcher."""
    received: queue.Queue[DeviceEvent] = queue.Queue()
    watcher = UdevWatcher(received.put)
    watcher.start()
    yield received
    watcher.stop()


def wait_for(events: queue.Queue[DeviceEvent], action: Action, port_path: str) -> UsbDeviceRef:
    deadline = time.monotonic() + WAIT_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = events.get(timeout=left)
        except queue.Empty:
            break
        if event.action is action and event.device.port_path == port_path:
            return event.device
    raise AssertionError(f"no {action.value} event for {port_path} within {WAIT_S}s")


def find_device(ref: UsbDeviceRef):
    device = find_pyusb_device(ref, wait_s=WAIT_S)
    assert device is not None, f"libusb never saw {ref}"
    return device


@pytest.mark.umockdev
def test_transport_answers_like_hardware(umockdev_dock, events):
    camera = EchoCamera()
    sys_path = umockdev_dock.plug(camera, slot=7)
    try:
        ref = wait_for(events, Action.ADD, "1-1.7")
        assert ref.key == sys_path
        assert (ref.vendor_id, ref.product_id, ref.serial) == (0x1209, 0x0001, "ECHO-0001")
        assert ref.slot == 7
        dev = find_device(ref)
        assert usb.util.get_string(dev, dev.iSerialNumber) == "ECHO-0001"
        assert usb.util.get_string(dev, dev.iManufacturer) == "Echo Labs"
        dev.set_configuration()
        usb.util.claim_interface(dev, 0)

        assert bytes(dev.ctrl_transfer(0xC0, 0x01, 0x1234, 0, 64)) == b"pong:\x34\x12"
        dev.ctrl_transfer(0x40, 0x02, 0, 0, b"settings")
        assert camera.last_out == b"settings"
        with pytest.raises(usb.core.USBError) as stall:
            dev.ctrl_transfer(0xC0, 0x09, 0, 0, 8)
        assert stall.value.errno == errno.EPIPE

        payload = os.urandom(300_000)
        assert dev.write(0x01, payload, timeout=2000) == len(payload)
        assert bytes(dev.read(0x81, len(payload), timeout=2000)) == payload

        started = time.monotonic()
        with pytest.raises(usb.core.USBTimeoutError):
            dev.read(0x81, 512, timeout=50)  # nothing to say: the host gives up
        assert time.monotonic() - started < 1.0
        dev.write(0x01, b"after the timeout")  # the discarded URB left nothing behind
        assert bytes(dev.read(0x81, 512, timeout=1000)) == b"after the timeout"
    finally:
        umockdev_dock.unplug(7)
    removed = wait_for(events, Action.REMOVE, "1-1.7")
    assert removed.key == sys_path
    with pytest.raises(usb.core.USBError) as gone:
        dev.write(0x01, b"x", timeout=200)
    assert gone.value.errno == errno.ENODEV


@pytest.mark.umockdev
def test_camera_leaving_the_bus_by_itself_is_a_remove(umockdev_dock, events):
    camera = EchoCamera()
    umockdev_dock.plug(camera, slot=6)
    ref = wait_for(events, Action.ADD, "1-1.6")
    dev = find_device(ref)
    dev.write(0x01, b"ping", timeout=1000)
    camera.gone = True  # a fault in the camera: it drops off mid-conversation
    with pytest.raises(usb.core.USBError) as gone:
        dev.read(0x81, 512, timeout=1000)
    assert gone.value.errno == errno.ENODEV
    assert wait_for(events, Action.REMOVE, "1-1.6").key == ref.key
    assert 6 not in umockdev_dock.plugged_slots()


@pytest.mark.umockdev
def test_link_rate_is_applied_and_slots_are_exclusive(umockdev_dock, events):
    camera = EchoCamera()
    umockdev_dock.plug(camera, slot=8, link_mb_s=5.0)
    try:
        with pytest.raises(ValueError, match="occupied"):
            umockdev_dock.plug(EchoCamera(), slot=8)
        dev = find_device(wait_for(events, Action.ADD, "1-1.8"))
        payload = os.urandom(250_000)
        started = time.monotonic()
        dev.write(0x01, payload, timeout=2000)
        assert bytes(dev.read(0x81, len(payload), timeout=2000)) == payload
        assert time.monotonic() - started >= 0.07  # 500 kB over a 5 MB/s link: 0.1 s
    finally:
        umockdev_dock.unplug(8)


@pytest.mark.umockdev
def test_netco_camera_end_to_end(umockdev_dock, events, tmp_path):
    opener = DeviceOpener.from_registry(DriverRegistry.discover(), tmp_path / "drivers.d")
    name = b"20260301_081500_0001.mp4"
    spec = CameraSpec(
        serial="NC-E2E-0042", slot=4,
        recordings=(RecordingSpec(name=name, started=datetime(2026, 3, 1, 8, 15, tzinfo=UTC),
                                  duration_s=60.0, size=700_001, seed=42),),
    )
    state = CameraState.load(spec, tmp_path / "state")
    camera = NETCO.simulate(spec, state)
    sys_path = umockdev_dock.plug(camera, slot=4)
    try:
        ref = wait_for(events, Action.ADD, "1-1.4")
        assert ref.key == sys_path
        assert ref.serial == "NC-E2E-0042"
        matched = opener.match(ref)  # the packaged match data, as the daemon does it
        assert matched is not None and matched.driver.name == "netco"
        session = matched.driver.open_session(find_device(ref), timeout_s=2.0)
        try:
            assert session.identity().serial == "NC-E2E-0042"
            (info,) = session.recordings()
            assert info.name == name.decode()
            assert info.size == 700_001
            stream = session.open_recording(info.name)
            got = bytearray()
            buffer = bytearray(256 * 1024)
            while n := stream.readinto(memoryview(buffer)):
                got += buffer[:n]
            stream.close()
            expected = bytearray(700_001)
            GeneratedContent(700_001, 42).read_into(0, memoryview(expected))
            assert got == expected
        finally:
            session.close()
    finally:
        umockdev_dock.unplug(4)
        camera.close()
    assert wait_for(events, Action.REMOVE, "1-1.4").key == sys_path


def test_umockdev_tests_pass_under_the_wrapper():
    """The plain suite's door to the umockdev tests: run them preloaded, in a child."""
    ok, _ = umockdev_available()
    if ok:
        pytest.skip("already preloaded: the umockdev tests run in this process")
    wrapper = shutil.which("umockdev-wrapper")
    if wrapper is None:
        pytest.skip("umockdev is not installed (apt-get install umockdev gir1.2-umockdev-1.0)")
    proc = subprocess.run(
        [wrapper, sys.executable, "-m", "pytest", "-m", "umockdev", "-p", "no:cacheprovider",
         "-q", "-rs"],  # every umockdev test in the project, wherever it lives
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert " passed" in output and "skipped" not in output, output
