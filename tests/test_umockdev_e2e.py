"""End to end through the production path: a simulated camera appears as a USB device in a
umockdev testbed → udev (pyudev, our UdevWatcher) reports it → the NetCo driver matches →
pyusb over Debian's libusb identifies it, lists and reads a recording byte-exact → it is
pulled and the REMOVE is reported.

The tests marked `umockdev` need the preload library: run them under `umockdev-wrapper`.
The plain suite runs them that way in a child process
(test_umockdev_tests_pass_under_the_wrapper), so one `pytest` covers them wherever umockdev
is installed, and says why where it is not. Below them: the ioctl logic alone, with the
client's memory faked, which runs everywhere.
"""

from __future__ import annotations

import errno
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import usb.core
import usb.util
from dockd_netco import DRIVER as NETCO
from dockd_netco_sim import simulate as netco_simulate
from dockd_sim import umockdev_bed as bed
from dockd_sim.content import GeneratedContent
from dockd_sim.device import (
    SimNoAnswer,
    SimStall,
    UsbDeviceDescription,
    UsbEndpoint,
    UsbInterface,
)
from dockd_sim.spec import CameraSpec, FaultKind, FaultSpec, RecordingSpec
from dockd_sim.state import CameraState
from dockd_sim.umockdev_bed import umockdev_available

from dockd.devices import DeviceOpener
from dockd.errors import DeviceGone
from dockd.events import Action, DeviceEvent, UsbDeviceRef
from dockd.registry import DriverRegistry
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
def test_a_slot_can_be_used_again(umockdev_dock, events):
    addresses = []
    for _ in range(2):
        umockdev_dock.plug(EchoCamera(), slot=9)
        try:
            dev = find_device(wait_for(events, Action.ADD, "1-1.9"))
            dev.write(0x01, b"hi", timeout=1000)
            assert bytes(dev.read(0x81, 16, timeout=1000)) == b"hi"
            addresses.append(dev.address)
        finally:
            umockdev_dock.unplug(9)
        wait_for(events, Action.REMOVE, "1-1.9")
    assert addresses[0] != addresses[1]  # a new address each time, as the kernel gives


@pytest.mark.umockdev
def test_two_cameras_transfer_at_once(umockdev_dock, events):
    slots = (2, 3)
    for slot in slots:
        umockdev_dock.plug(EchoCamera(), slot=slot)
    try:
        refs = [wait_for(events, Action.ADD, f"1-1.{slot}") for slot in slots]
        devices = [find_device(ref) for ref in refs]
        assert len({(d.bus, d.address) for d in devices}) == 2
        failures: list[BaseException] = []

        def talk(dev) -> None:
            try:
                for _ in range(20):
                    payload = os.urandom(64 * 1024)
                    dev.write(0x01, payload, timeout=2000)
                    assert bytes(dev.read(0x81, len(payload), timeout=2000)) == payload
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        threads = [threading.Thread(target=talk, args=(dev,)) for dev in devices]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not failures, failures
        assert not any(thread.is_alive() for thread in threads)
    finally:
        for slot in slots:
            umockdev_dock.unplug(slot)


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
    camera = netco_simulate(spec, state)
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


@pytest.mark.umockdev
def test_netco_camera_pulled_mid_recording(umockdev_dock, events, tmp_path):
    name = b"20260301_090000_0002.mp4"
    spec = CameraSpec(
        serial="NC-E2E-0043", slot=5,
        recordings=(RecordingSpec(name=name, started=datetime(2026, 3, 1, 9, tzinfo=UTC),
                                  size=600_000, seed=7),),
        faults=(FaultSpec(FaultKind.UNPLUG, recording=name, at_byte=250_000),),
    )
    camera = netco_simulate(spec, CameraState.load(spec, tmp_path / "state"))
    sys_path = umockdev_dock.plug(camera, slot=5)
    try:
        ref = wait_for(events, Action.ADD, "1-1.5")
        session = NETCO.open_session(find_device(ref), timeout_s=2.0)
        stream = session.open_recording(name.decode())
        buffer = memoryview(bytearray(64 * 1024))
        with pytest.raises(DeviceGone):
            while stream.readinto(buffer):
                pass
        assert stream.offset <= 250_000  # nothing past the point where it left
        session.close()
        assert wait_for(events, Action.REMOVE, "1-1.5").key == sys_path
    finally:
        umockdev_dock.unplug(5)
        camera.close()


def test_umockdev_tests_pass_under_the_wrapper():
    """The plain suite's door to the umockdev tests: run them preloaded, in a child."""
    ok, _ = umockdev_available()
    if ok:
        pytest.skip("already preloaded: the umockdev tests run in this process")
    wrapper = shutil.which("umockdev-wrapper")
    if wrapper is None:
        pytest.skip("umockdev is not installed (apt-get install umockdev gir1.2-umockdev-1.0)")
    try:
        bed._umockdev()
    except (ImportError, ValueError) as exc:
        pytest.skip(f"umockdev bindings missing (gir1.2-umockdev-1.0, python3-gi): {exc}")
    # the child's temporary files, umockdev's testbed trees among them (their finalizer may
    # not run at exit), go to a directory of their own that is removed afterwards; short, as
    # umockdev puts AF_UNIX sockets (108-byte paths at most) inside it
    scratch = tempfile.mkdtemp(prefix="dockd-um-", dir="/tmp")
    try:
        proc = subprocess.run(
            [wrapper, sys.executable, "-m", "pytest", "-m", "umockdev", "-p", "no:cacheprovider",
             "-q", "-rs"],  # every umockdev test in the project, wherever it lives
            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "TMPDIR": scratch},
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert " passed" in output and "skipped" not in output, output


# --- the ioctl logic alone, without umockdev (runs everywhere) -----------------------------


class Memory:
    """The client process's memory, as umockdev lets a handler see it."""

    def __init__(self) -> None:
        self.blocks: dict[int, bytearray] = {}
        self.next = 0x1000

    def alloc(self, data: bytes) -> int:
        addr, self.next = self.next, self.next + len(data) + 0x100
        self.blocks[addr] = bytearray(data)
        return addr


class Data:
    """A UMockdev.IoctlData stand-in over `Memory` (writes go straight through)."""

    def __init__(self, memory: Memory, addr: int, size: int) -> None:
        self.memory, self.client_addr, self.size = memory, addr, size

    def retrieve(self) -> bytes:
        return bytes(self.memory.blocks[self.client_addr][: self.size])

    def resolve(self, offset: int, length: int):
        pointer = int.from_bytes(self.retrieve()[offset : offset + 8], "little")
        return Data(self.memory, pointer, length) if pointer else None

    def update(self, offset: int, data: bytes) -> None:
        self.memory.blocks[self.client_addr][offset : offset + len(data)] = data

    def set_ptr(self, offset: int, child: Data) -> bool:
        self.update(offset, child.client_addr.to_bytes(8, "little"))
        return True


class Client:
    def __init__(self, request: int, arg: Data) -> None:
        self.request, self.arg, self.result = request, arg, None

    def get_request(self) -> int:
        return self.request

    def get_arg(self) -> Data:
        return self.arg

    def complete(self, result: int, errno_: int) -> None:
        self.result = (result, errno_)


class Host:
    """Plays libusb's part: submits URBs and reaps them, through UsbfsDevice.handle."""

    def __init__(self, camera) -> None:
        self.bed = bed
        self.memory = Memory()
        self.gone_calls = 0
        self.device = bed.UsbfsDevice(camera, devnum=5, on_gone=self.gone)

    def gone(self) -> None:
        self.gone_calls += 1

    def ioctl(self, request: int, arg_value: int | bytes = 0) -> tuple[int, int]:
        raw = arg_value if isinstance(arg_value, bytes) else arg_value.to_bytes(8, "little")
        client = Client(request, Data(self.memory, self.memory.alloc(raw), len(raw)))
        assert self.device.handle(client) is True
        assert client.result is not None
        return client.result

    def submit(self, urb_type: int, endpoint: int, buffer: bytes) -> int:
        buf = self.memory.alloc(buffer)
        urb = struct.pack("<BBxxiIxxxxQiiiiiIQ", urb_type, endpoint, 0, 0, buf, len(buffer),
                          0, 0, 0, 0, 0, 0)
        addr = self.memory.alloc(urb)
        assert self.ioctl(self.bed.USBDEVFS_SUBMITURB, addr) == (0, 0)
        return addr

    def reap(self, wait_s: float = 2.0) -> tuple[int, int, int, bytes]:
        """(urb address, status, actual_length, buffer) of the next finished URB."""
        deadline = time.monotonic() + wait_s
        while True:
            slot = self.memory.alloc(bytes(8))
            result = self.ioctl(self.bed.USBDEVFS_REAPURBNDELAY, slot)
            if result == (0, 0):
                break
            assert result == (-1, errno.EAGAIN)
            assert time.monotonic() < deadline, "no URB finished"
            time.sleep(0.001)
        addr = int.from_bytes(self.memory.blocks[slot][:8], "little")
        urb = self.memory.blocks[addr]
        status, = struct.unpack_from("<i", urb, 4)
        buf, length, actual = struct.unpack_from("<Qii", urb, 16)
        return addr, status, actual, bytes(self.memory.blocks[buf][:length])

    def nothing_to_reap(self) -> bool:
        time.sleep(0.02)
        return self.ioctl(self.bed.USBDEVFS_REAPURBNDELAY,
                          self.memory.alloc(bytes(8))) == (-1, errno.EAGAIN)


BULK, CONTROL = 3, 2


@pytest.fixture
def make_host():
    hosts: list[Host] = []

    def make(camera) -> Host:
        hosts.append(Host(camera))
        return hosts[-1]

    yield make
    for host in hosts:
        host.device.unplug()  # ends its worker thread


def test_bulk_out_then_in_round_trip(make_host):
    camera = EchoCamera()
    host = make_host(camera)
    out = host.submit(BULK, 0x01, b"hello camera")
    assert host.reap()[:3] == (out, 0, 12)
    inn = host.submit(BULK, 0x81, bytes(64))
    addr, status, actual, buf = host.reap()
    assert (addr, status, actual, buf[:actual]) == (inn, 0, 12, b"hello camera")


def test_control_requests_standard_and_vendor(make_host):
    host = make_host(EchoCamera())
    setup = struct.pack("<BBHHH", 0x80, 6, (3 << 8) | 3, 0x0409, 255)
    host.submit(CONTROL, 0, setup + bytes(255))
    _, status, actual, buf = host.reap()
    serial = EchoCamera.description.string_descriptor(3)
    assert (status, actual, buf[8 : 8 + actual]) == (0, len(serial), serial)

    host.submit(CONTROL, 0, struct.pack("<BBHHH", 0xC0, 0x01, 7, 0, 3) + bytes(3))
    _, status, actual, buf = host.reap()
    assert (status, buf[8 : 8 + actual]) == (0, b"pon")  # clamped to wLength

    host.submit(CONTROL, 0, struct.pack("<BBHHH", 0xC0, 0x55, 0, 0, 8) + bytes(8))
    assert host.reap()[1] == -errno.EPIPE


def test_unanswered_urb_waits_for_the_hosts_discard(make_host):
    host = make_host(EchoCamera())
    urb = host.submit(BULK, 0x81, bytes(512))
    assert host.nothing_to_reap()
    assert host.ioctl(host.bed.USBDEVFS_DISCARDURB, urb) == (0, 0)
    assert host.reap()[:3] == (urb, -errno.ENOENT, 0)
    assert host.ioctl(host.bed.USBDEVFS_DISCARDURB, urb) == (-1, errno.EINVAL)


def test_simulator_bug_is_a_protocol_error_not_a_crash(make_host):
    camera = EchoCamera()
    camera.bulk_write = lambda endpoint, data: 1 // 0
    host = make_host(camera)
    host.submit(BULK, 0x01, b"x")
    assert host.reap()[1] == -errno.EPROTO


def test_camera_leaving_the_bus_turns_every_ioctl_into_enodev(make_host):
    camera = EchoCamera()
    host = make_host(camera)
    assert host.ioctl(host.bed.USBDEVFS_GETDRIVER, bytes(260)) == (-1, errno.ENODATA)
    assert host.ioctl(0x5599, 0) == (-1, errno.ENOTTY)
    caps = host.memory.alloc(bytes(4))
    assert host.ioctl(host.bed.USBDEVFS_GET_CAPABILITIES, caps) == (0, 0)
    assert int.from_bytes(host.memory.blocks[caps][:4], "little") & 0x04  # NO_PACKET_SIZE_LIM
    camera.gone = True
    assert host.ioctl(host.bed.USBDEVFS_CLAIMINTERFACE, host.memory.alloc(bytes(4))) == (
        -1, errno.ENODEV)
    assert host.ioctl(host.bed.USBDEVFS_REAPURBNDELAY, host.memory.alloc(bytes(8))) == (
        -1, errno.ENODEV)
    assert host.gone_calls == 1  # the dock is told once, to send the "remove"


def test_urbs_in_flight_at_a_disconnect_are_reaped_with_enodev(make_host):
    """As the kernel does: libusb waits for every URB it submitted, so a reap after the
    device left must still hand them back (refusing it would hang the host)."""
    camera = EchoCamera()
    host = make_host(camera)
    urb = host.submit(BULK, 0x81, bytes(512))  # the camera has nothing to say: in flight
    assert host.nothing_to_reap()
    camera.gone = True
    assert host.reap()[:3] == (urb, -errno.ENODEV, 0)
    assert host.ioctl(host.bed.USBDEVFS_REAPURBNDELAY, host.memory.alloc(bytes(8))) == (
        -1, errno.ENODEV)
    assert host.ioctl(host.bed.USBDEVFS_SUBMITURB, host.memory.alloc(bytes(56))) == (
        -1, errno.ENODEV)
