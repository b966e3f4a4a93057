"""The simulated firmware on its own (no host), and the host's pyusb error mapping."""

from __future__ import annotations

import dataclasses
import errno
from pathlib import Path

import pytest
import usb.core
from dockd_netco import protocol as p
from dockd_netco.host import translate_usb_error
from dockd_netco_sim.device import NetcoCamera
from dockd_sim.device import SimGone, SimNoAnswer, SimStall
from dockd_sim.spec import BatterySpec, FaultKind, FaultSpec
from dockd_sim.state import CameraState
from netco_rig import make_spec, rec

from dockd.errors import DeviceError, DeviceGone, DeviceRefused, DeviceTimeout, ProtocolError
from dockd.model import RecordingInfo, RefusedRecording


@pytest.fixture
def camera(tmp_path: Path) -> NetcoCamera:
    spec = make_spec((rec(b"a.mp4", 10_000),))
    return NetcoCamera(spec, CameraState.load(spec, tmp_path), block_size=4096)


def ask(camera: NetcoCamera, frame: bytes) -> bytes:
    camera.bulk_write(p.EP_OUT, frame)
    buf = bytearray(p.MAX_FRAME)
    n = camera.bulk_read_into(p.EP_IN, memoryview(buf))
    return bytes(buf[:n])


def status_of(camera: NetcoCamera) -> p.StatusBlock:
    return p.decode_status(camera.control_in(p.REQTYPE_IN, p.REQ_STATUS, 0, 0, 64))


def test_damaged_and_unknown_frames_get_error_answers(camera: NetcoCamera) -> None:
    good = p.encode_frame(p.Command.GET_BATTERY, 5)
    damaged = good[:-1] + bytes([good[-1] ^ 1])
    reply = p.decode_frame(ask(camera, damaged), expect_response=True)
    assert (reply.command, reply.seq, reply.status) == (p.Command.GET_BATTERY, 5,
                                                        p.Status.BAD_FRAME)
    raw = ask(camera, p.encode_frame(0x42, 6))
    assert (raw[6], raw[7]) == (0x42, p.Status.UNKNOWN_COMMAND)
    reply = p.decode_frame(ask(camera, p.encode_frame(p.Command.READ, 7, b"\x01")),
                           expect_response=True)
    assert reply.status is p.Status.BAD_REQUEST


def test_control_requests(camera: NetcoCamera) -> None:
    ident = p.decode_identify(camera.control_in(p.REQTYPE_IN, p.REQ_IDENTIFY, 0, 0, 16))
    assert ident.max_block == 4096
    for args in [(0xC0, p.REQ_IDENTIFY), (p.REQTYPE_IN, 0x77)]:
        with pytest.raises(SimStall):
            camera.control_in(*args, 0, 0, 64)
    with pytest.raises(SimStall):
        camera.control_in(p.REQTYPE_IN, p.REQ_IDENTIFY, 0, 0, 4)  # wLength too short
    with pytest.raises(SimStall):
        camera.control_out(p.REQTYPE_OUT, 0x77, 0, 0, b"")
    with pytest.raises(SimStall):
        camera.bulk_write(0x02, b"")


def test_status_and_reset_around_a_stream(camera: NetcoCamera) -> None:
    assert status_of(camera).state is p.DeviceState.IDLE
    with pytest.raises(SimNoAnswer):
        camera.bulk_read_into(p.EP_IN, memoryview(bytearray(64)))  # nothing to say
    req = p.encode_read_request(p.ReadRequest(b"a.mp4", 0, 10_000))
    answer = p.decode_frame(ask(camera, p.encode_frame(p.Command.READ, 9, req)),
                            expect_response=True)
    assert p.decode_read_answer(answer.payload) == p.ReadAnswer(10_000, 0, 10_000, 4096)
    head = p.decode_frame(_read(camera, p.MAX_FRAME), expect_response=True)
    assert p.decode_data_head(head.payload).length == 4096
    # a host with a small buffer gets the raw block in pieces
    assert len(_read(camera, 1000)) == 1000
    assert len(_read(camera, 4096)) == 3096
    status = status_of(camera)
    assert (status.state, status.last_seq) == (p.DeviceState.STREAMING, 9)
    camera.control_out(p.REQTYPE_OUT, p.REQ_RESET, 0, 0, b"")
    assert status_of(camera).state is p.DeviceState.IDLE
    with pytest.raises(SimNoAnswer):
        _read(camera, 64)


def test_status_is_idle_once_a_read_is_complete(camera: NetcoCamera) -> None:
    req = p.encode_read_request(p.ReadRequest(b"a.mp4", 8000, 5000))
    ask(camera, p.encode_frame(p.Command.READ, 3, req))
    _read(camera, p.MAX_FRAME)  # DATA header
    assert status_of(camera).state is p.DeviceState.STREAMING
    assert len(_read(camera, 4096)) == 2000  # the whole rest: 2000 bytes
    assert status_of(camera).state is p.DeviceState.IDLE


def _read(camera: NetcoCamera, size: int) -> bytes:
    buf = bytearray(size)
    n = camera.bulk_read_into(p.EP_IN, memoryview(buf))
    return bytes(buf[:n])


def test_gone_camera_answers_nothing(tmp_path: Path) -> None:
    spec = make_spec((rec(b"a.mp4", 10_000),),
                     (FaultSpec(FaultKind.UNPLUG, recording=b"a.mp4", at_byte=0),))
    state = CameraState.load(spec, tmp_path)
    camera = NetcoCamera(spec, state)
    req = p.encode_read_request(p.ReadRequest(b"a.mp4", 0, 100))
    ask(camera, p.encode_frame(p.Command.READ, 1, req))
    with pytest.raises(SimGone):
        _read(camera, p.MAX_FRAME)
    assert camera.unplugged()
    with pytest.raises(SimGone):
        camera.control_in(p.REQTYPE_IN, p.REQ_STATUS, 0, 0, 8)
    with pytest.raises(SimGone):
        camera.bulk_write(p.EP_OUT, b"")
    assert CameraState.load(spec, tmp_path).faults_left(0) == 0  # remembered on "flash"


def test_values_the_wire_cannot_carry_are_a_firmware_error(tmp_path: Path) -> None:
    spec = dataclasses.replace(make_spec(), battery=BatterySpec(voltage_mv=70_000))
    camera = NetcoCamera(spec, CameraState.load(spec, tmp_path))
    reply = p.decode_frame(ask(camera, p.encode_frame(p.Command.GET_BATTERY, 1)),
                           expect_response=True)
    assert reply.status is p.Status.INTERNAL


def test_a_hostile_name_on_the_camera_reaches_the_host_refused_alone(make_rig) -> None:
    rig = make_rig((rec(b"ok.mp4", 10), rec(b"../../etc/cron.d/x", 10)))
    ok, refused = rig.session().recordings()
    assert isinstance(ok, RecordingInfo) and ok.name == "ok.mp4"
    assert isinstance(refused, RefusedRecording)
    assert (refused.label, refused.reason) == ("../../etc/cron.d/x",
                                               "name contains a path separator")


@pytest.mark.parametrize(("error", "kind"), [
    (usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT), DeviceTimeout),
    (usb.core.USBError("No such device", -4, errno.ENODEV), DeviceGone),
    (usb.core.USBError("Entity not found", -5, errno.ENOENT), DeviceGone),
    (usb.core.USBError("No such device (it may have been disconnected)"), DeviceGone),
    (usb.core.USBError("Pipe error", -9, errno.EPIPE), DeviceRefused),
    (usb.core.USBError("Overflow", -8, errno.EOVERFLOW), ProtocolError),
    (usb.core.USBError("Input/Output Error", -1, errno.EIO), DeviceError),
])
def test_usb_error_mapping(error: Exception, kind: type[DeviceError]) -> None:
    mapped = translate_usb_error(error, "testing")
    assert type(mapped) is kind
    assert "while testing" in str(mapped)
