"""The in-process pyusb backend, driven through the unchanged pyusb core with a trivial
echo camera (no vendor model involved)."""

from __future__ import annotations

import array
import errno
import threading
import time

import pytest
import usb.core
import usb.util
from dockd_sim.device import (
    ENDPOINT_IN,
    USB_CLASS_VENDOR_SPEC,
    SimGone,
    SimNoAnswer,
    SimStall,
    UsbDeviceDescription,
    UsbEndpoint,
    UsbInterface,
)
from dockd_sim.pyusb_backend import SimBackend, sim_backend

EP_OUT = 0x01
EP_IN = 0x81
REQ_ECHO = 0x01  # IN: answers wValue's two bytes, then wIndex's
REQ_STORE = 0x02  # OUT: keeps the data; IN: gives it back
REQ_STALL = 0x03
REQ_SILENT = 0x04
REQ_TOO_LONG = 0x05


class EchoCamera:
    """Bulk: what is written is read back. Bulk reads of an empty buffer either stall,
    go silent or leave the bus, as set. Also a 'stream' mode that serves N bytes."""

    def __init__(self, serial: str = "ECHO-1") -> None:
        self.description = UsbDeviceDescription(
            vendor_id=0x1234, product_id=0x5678, manufacturer="Echo Co", product="Echo",
            serial=serial,
            interfaces=(UsbInterface(0, USB_CLASS_VENDOR_SPEC, endpoints=(
                UsbEndpoint(EP_OUT), UsbEndpoint(EP_IN | ENDPOINT_IN))),),
        )
        self.pending = bytearray()
        self.stored = b""
        self.when_empty = "stall"
        self.stream_left = 0
        self.gone = False
        self.closed = False
        self.lock = threading.Lock()
        self.halts_cleared: list[int] = []

    def control_in(self, request_type, request, value, index, length):
        if request == REQ_ECHO:
            return (value.to_bytes(2, "little") + index.to_bytes(2, "little"))[:length]
        if request == REQ_STORE:
            return self.stored[:length]
        if request == REQ_SILENT:
            raise SimNoAnswer
        if request == REQ_TOO_LONG:
            return bytes(length + 1)
        raise SimStall

    def control_out(self, request_type, request, value, index, data):
        if request != REQ_STORE:
            raise SimStall
        self.stored = data

    def bulk_write(self, endpoint, data):
        if self.gone:
            raise SimGone
        assert endpoint == EP_OUT
        with self.lock:
            self.pending += data
        return len(data)

    def bulk_read_into(self, endpoint, buffer):
        if self.gone:
            raise SimGone
        assert endpoint == EP_IN
        if self.stream_left:
            n = min(len(buffer), self.stream_left)
            buffer[:n] = b"\xab" * n
            self.stream_left -= n
            return n
        with self.lock:
            if self.pending:
                n = min(len(buffer), len(self.pending))
                buffer[:n] = self.pending[:n]
                del self.pending[:n]
                return n
        if self.when_empty == "silent":
            raise SimNoAnswer
        if self.when_empty == "gone":
            self.gone = True
            raise SimGone
        raise SimStall

    def clear_halt(self, endpoint):
        self.halts_cleared.append(endpoint)

    def unplugged(self):
        return self.gone

    def close(self):
        self.closed = True


@pytest.fixture
def backend():
    with sim_backend() as b:
        yield b


def find(backend: SimBackend, **kw) -> usb.core.Device:
    dev = usb.core.find(backend=backend, **kw)
    assert dev is not None
    return dev


def test_pyusb_finds_the_device_with_its_descriptors(backend):
    address = backend.plug(EchoCamera(), bus=1, port_numbers=(1, 3))
    dev = find(backend, idVendor=0x1234, idProduct=0x5678)
    assert (dev.bus, dev.address, dev.port_numbers, dev.port_number) == (1, address, (1, 3), 3)
    assert dev.speed == usb.util.SPEED_HIGH
    assert dev.bNumConfigurations == 1
    cfg = dev.get_active_configuration()
    assert cfg.bConfigurationValue == 1
    intf = cfg[(0, 0)]
    assert intf.bInterfaceClass == USB_CLASS_VENDOR_SPEC
    assert [ep.bEndpointAddress for ep in intf] == [EP_OUT, EP_IN]
    assert usb.core.find(backend=backend, idVendor=0x9999) is None


def test_reads_strings(backend):
    backend.plug(EchoCamera(serial="NC-100234"))
    dev = find(backend)
    assert usb.util.get_string(dev, dev.iSerialNumber) == "NC-100234"
    assert dev.manufacturer == "Echo Co" and dev.product == "Echo"
    assert dev.langids == (0x0409,)
    assert find(backend, serial_number="NC-100234") is not None


def test_raw_descriptors_match_what_the_model_describes(backend):
    camera = EchoCamera()
    backend.plug(camera)
    dev = find(backend)
    raw = dev.ctrl_transfer(0x80, 0x06, 0x0100, 0, 18)
    assert bytes(raw) == camera.description.device_descriptor()
    raw = dev.ctrl_transfer(0x80, 0x06, 0x0200, 0, 255)
    assert bytes(raw) == camera.description.config_descriptor()
    assert list(dev.ctrl_transfer(0x80, 0x08, 0, 0, 1)) == [1]
    with pytest.raises(usb.core.USBError) as info:
        dev.ctrl_transfer(0x80, 0x06, 0x0700, 0, 10)  # no such descriptor type
    assert info.value.errno == errno.EPIPE


def test_set_configuration_and_claim(backend):
    backend.plug(EchoCamera())
    dev = find(backend)
    dev.set_configuration()
    usb.util.claim_interface(dev, 0)
    with pytest.raises(usb.core.USBError):
        usb.util.claim_interface(dev, 5)
    usb.util.release_interface(dev, 0)
    usb.util.dispose_resources(dev)


def test_bulk_round_trip_and_into_a_given_buffer(backend):
    backend.plug(EchoCamera())
    dev = find(backend)
    dev.set_configuration()
    assert dev.write(EP_OUT, b"hello camera") == 12
    assert bytes(dev.read(EP_IN, 64)) == b"hello camera"
    dev.write(EP_OUT, bytes(range(256)) * 4)
    buf = array.array("B", bytes(600))
    assert dev.read(EP_IN, buf) == 600
    assert bytes(buf) == (bytes(range(256)) * 4)[:600]


def test_control_round_trip(backend):
    backend.plug(EchoCamera())
    dev = find(backend)
    assert bytes(dev.ctrl_transfer(0xC0, REQ_ECHO, 0x0201, 0x0403, 4)) == b"\x01\x02\x03\x04"
    assert dev.ctrl_transfer(0x40, REQ_STORE, 0, 0, b"stored!") == 7
    assert bytes(dev.ctrl_transfer(0xC0, REQ_STORE, 0, 0, 64)) == b"stored!"
    buf = array.array("B", bytes(3))
    assert dev.ctrl_transfer(0xC0, REQ_STORE, 0, 0, buf) == 3
    assert bytes(buf) == b"sto"


def test_stall_is_epipe(backend):
    camera = EchoCamera()
    backend.plug(camera)
    dev = find(backend)
    with pytest.raises(usb.core.USBError) as info:
        dev.ctrl_transfer(0xC0, REQ_STALL, 0, 0, 4)
    assert info.value.errno == errno.EPIPE
    assert not isinstance(info.value, usb.core.USBTimeoutError)
    with pytest.raises(usb.core.USBError) as info:
        dev.read(EP_IN, 64)
    assert info.value.errno == errno.EPIPE
    dev.clear_halt(EP_IN)
    assert camera.halts_cleared == [EP_IN]


def test_no_answer_times_out_after_the_hosts_timeout(backend):
    camera = EchoCamera()
    camera.when_empty = "silent"
    backend.plug(camera)
    dev = find(backend)
    start = time.monotonic()
    with pytest.raises(usb.core.USBTimeoutError) as info:
        dev.read(EP_IN, 64, timeout=150)
    elapsed = time.monotonic() - start
    assert 0.14 <= elapsed < 1.0
    assert info.value.errno == errno.ETIMEDOUT and info.value.backend_error_code == -7
    with pytest.raises(usb.core.USBTimeoutError):
        dev.ctrl_transfer(0xC0, REQ_SILENT, 0, 0, 4, timeout=20)


def test_unplug_during_a_silent_wait_ends_it_with_enodev(backend):
    camera = EchoCamera()
    camera.when_empty = "silent"
    address = backend.plug(camera)
    dev = find(backend)
    threading.Timer(0.05, backend.unplug, args=(address,)).start()
    start = time.monotonic()
    with pytest.raises(usb.core.USBError) as info:
        dev.read(EP_IN, 64, timeout=5000)
    assert info.value.errno == errno.ENODEV
    assert time.monotonic() - start < 2


def test_enodev_after_unplug(backend):
    address = backend.plug(EchoCamera())
    dev = find(backend)
    dev.write(EP_OUT, b"x")
    backend.unplug(address)
    for action in (lambda: dev.read(EP_IN, 64), lambda: dev.write(EP_OUT, b"y"),
                   lambda: dev.ctrl_transfer(0xC0, REQ_ECHO, 0, 0, 4)):
        with pytest.raises(usb.core.USBError) as info:
            action()
        assert info.value.errno == errno.ENODEV
        assert info.value.backend_error_code == -4
    assert usb.core.find(backend=backend) is None
    backend.unplug(address)  # twice is harmless
    assert backend.devices() == []


def test_a_camera_that_leaves_by_itself_is_enodev_and_not_enumerated(backend):
    camera = EchoCamera()
    camera.when_empty = "gone"
    backend.plug(camera)
    dev = find(backend)
    with pytest.raises(usb.core.USBError) as info:
        dev.read(EP_IN, 64)
    assert info.value.errno == errno.ENODEV
    assert usb.core.find(backend=backend) is None


def test_answer_longer_than_asked_is_an_overflow(backend):
    backend.plug(EchoCamera())
    dev = find(backend)
    with pytest.raises(usb.core.USBError) as info:
        dev.ctrl_transfer(0xC0, REQ_TOO_LONG, 0, 0, 4)
    assert info.value.errno == errno.EOVERFLOW


def test_addresses_are_unique_and_explicit_ones_checked(backend):
    a = backend.plug(EchoCamera("A"))
    b = backend.plug(EchoCamera("B"))
    assert a != b
    assert backend.plug(EchoCamera("C"), address=50) == 50
    with pytest.raises(ValueError, match="in use"):
        backend.plug(EchoCamera("D"), address=50)
    serials = sorted(d.serial_number for d in usb.core.find(find_all=True, backend=backend))
    assert serials == ["A", "B", "C"]
    assert sorted(d.port_path for d in backend.devices()) == ["1-1.1"] * 3


def test_parallel_reads_from_several_cameras(backend):
    size = 8 << 20
    cameras = [EchoCamera(f"S{i}") for i in range(3)]
    for i, camera in enumerate(cameras):
        camera.stream_left = size
        backend.plug(camera, port_numbers=(1, i + 1))
    totals: dict[str, int] = {}

    def pull(dev: usb.core.Device) -> None:
        buf = array.array("B", bytes(1 << 20))
        total = 0
        while total < size:
            n = dev.read(EP_IN, buf, timeout=1000)
            assert bytes(buf[:1]) == b"\xab"
            total += n
        totals[dev.serial_number] = total

    threads = [threading.Thread(target=pull, args=(d,))
               for d in usb.core.find(find_all=True, backend=backend)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert totals == {"S0": size, "S1": size, "S2": size}


def test_link_rate_applies_to_bulk_reads(backend):
    camera = EchoCamera()
    camera.stream_left = 4_000_000
    backend.plug(camera, link_mb_s=20)
    dev = find(backend)
    buf = array.array("B", bytes(500_000))
    start = time.monotonic()
    total = 0
    while total < 4_000_000:
        total += dev.read(EP_IN, buf)
    elapsed = time.monotonic() - start
    assert elapsed >= 4_000_000 / 20e6 - 0.03  # 0.2 s at most 20 MB/s (minus the slack)
    assert elapsed < 2
