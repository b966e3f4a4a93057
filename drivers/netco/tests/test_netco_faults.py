"""Every scenario fault kind, injected by the simulated firmware, as the driver sees it."""

from __future__ import annotations

import hashlib
import time

import pytest
import usb.core
from dockd_netco import protocol
from dockd_sim.spec import FaultKind, FaultSpec
from netco_rig import MakeRig, content, read_all, rec

from dockd.errors import DeviceGone, DeviceRefused, DeviceTimeout, ProtocolError

MiB = 1 << 20
CLIP = rec(b"clip.mp4", 3 * MiB + 999, seed=7)
OTHER = rec(b"other.mp4", 5000, seed=8)
DATA = content(CLIP)


def fault(kind: FaultKind, at_byte: int = 0, recording: bytes | None = b"clip.mp4",
          times: int | None = 1, **kw: float) -> tuple[FaultSpec, ...]:
    return (FaultSpec(kind=kind, recording=recording, at_byte=at_byte, times=times, **kw),)


def read_until_error(stream) -> tuple[bytes, Exception]:
    buf = memoryview(bytearray(MiB))
    got = bytearray()
    try:
        while n := stream.readinto(buf):
            got += buf[:n]
    except Exception as e:
        return bytes(got), e
    raise AssertionError("the fault never fired")


def test_unplug_at_byte(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP, OTHER), fault(FaultKind.UNPLUG, at_byte=2 * MiB + 5))
    session = rig.session()
    stream = session.open_recording("clip.mp4")
    got, err = read_until_error(stream)
    assert isinstance(err, DeviceGone)
    assert rig.camera.unplugged()
    assert got == DATA[: 2 * MiB + 5]  # every byte before at_byte arrived intact
    with pytest.raises(DeviceGone):
        stream.readinto(memoryview(bytearray(10)))  # the stream stays failed
    with pytest.raises(DeviceGone):
        session.battery()
    session.close()  # closing a session on a vanished camera is quiet
    assert list(usb.core.find(find_all=True, backend=rig.backend)) == []  # off the bus
    rig.redock()  # the fault fired once (times=1) and that is remembered
    assert read_all(rig.session().open_recording("clip.mp4", 2 * MiB)) == DATA[2 * MiB:]


def test_stall_then_retry_on_same_session(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP,), fault(FaultKind.STALL, at_byte=MiB + 1))
    session = rig.session(timeout_s=0.05)
    got, err = read_until_error(session.open_recording("clip.mp4"))
    assert isinstance(err, DeviceTimeout)
    assert got == DATA[: MiB + 1]
    # the camera recovered; the session resyncs (RESET) and resumes where it stopped
    assert read_all(session.open_recording("clip.mp4", len(got))) == DATA[len(got):]


def test_unbound_stall_hits_the_next_command_then_recovers(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP,), fault(FaultKind.STALL, recording=None, times=2))
    session = rig.session(timeout_s=0.05)
    with pytest.raises(DeviceTimeout):
        session.identity()
    with pytest.raises(DeviceTimeout):
        session.battery()
    assert session.identity().serial == rig.spec.serial


def test_stall_then_new_session(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP,), fault(FaultKind.STALL, at_byte=0))
    first = rig.session(timeout_s=0.05)
    with pytest.raises(DeviceTimeout):
        read_all(first.open_recording("clip.mp4"))
    first.close()
    assert read_all(rig.session().open_recording("clip.mp4")) == DATA


def test_corrupt_in_transit_is_caught_and_a_fresh_read_is_clean(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP,), fault(FaultKind.CORRUPT, at_byte=2 * MiB + 77))
    session = rig.session()
    got, err = read_until_error(session.open_recording("clip.mp4"))
    assert isinstance(err, ProtocolError) and "CRC" in str(err)
    assert got == DATA[: 2 * MiB]
    assert read_all(session.open_recording("clip.mp4")) == DATA


def test_bad_frame_mid_stream(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP,), fault(FaultKind.BAD_FRAME, at_byte=MiB))
    session = rig.session()
    got, err = read_until_error(session.open_recording("clip.mp4"))
    assert isinstance(err, ProtocolError) and "CRC" in str(err)
    assert got == DATA[:MiB]
    assert read_all(session.open_recording("clip.mp4", MiB)) == DATA[MiB:]


def test_unbound_bad_frame_garbles_the_next_answer(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP,), fault(FaultKind.BAD_FRAME, recording=None))
    session = rig.session()
    with pytest.raises(ProtocolError, match="frame CRC mismatch"):
        session.recordings()
    assert [r.name for r in session.recordings()] == ["clip.mp4"]


def test_hash_mismatch_on_every_read(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP, OTHER), fault(FaultKind.HASH_MISMATCH, times=1))
    session = rig.session()
    for _ in range(2):
        listed = {r.name: r for r in session.recordings()}
        got = read_all(session.open_recording("clip.mp4"))
        assert got == DATA  # the bytes are the camera's bytes ...
        assert hashlib.sha256(got).digest() != listed["clip.mp4"].sha256  # ... its hash isn't
        assert hashlib.sha256(content(OTHER)).digest() == listed["other.mp4"].sha256


def test_read_error_status(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP,), fault(FaultKind.READ_ERROR, at_byte=3 * MiB))
    session = rig.session()
    got, err = read_until_error(session.open_recording("clip.mp4"))
    assert isinstance(err, DeviceRefused)
    assert err.status == protocol.Status.READ_ERROR
    assert got == DATA[: 3 * MiB]
    assert read_all(session.open_recording("clip.mp4")) == DATA  # times=1: fine again


def test_read_error_mid_block_delivers_the_bytes_before_it(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP,), fault(FaultKind.READ_ERROR, at_byte=1234))
    got, err = read_until_error(rig.session().open_recording("clip.mp4"))
    assert isinstance(err, DeviceRefused)
    assert got == DATA[:1234]


def test_read_error_repeats_while_times_lasts(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP,), fault(FaultKind.READ_ERROR, at_byte=10, times=None))
    session = rig.session()
    for _ in range(3):
        with pytest.raises(DeviceRefused):
            read_all(session.open_recording("clip.mp4"))
    assert read_all(session.open_recording("clip.mp4", MiB)) == DATA[MiB:]  # past the bad block


def test_slow_delays_each_transfer(make_rig: MakeRig) -> None:
    rig = make_rig((CLIP, OTHER), fault(FaultKind.SLOW, times=None, delay_s=0.02))
    session = rig.session()
    t0 = time.perf_counter()
    assert read_all(session.open_recording("other.mp4")) == content(OTHER)
    fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert read_all(session.open_recording("clip.mp4")) == DATA
    slow = time.perf_counter() - t0
    # READ answer + 4 x (DATA header + raw block) = 9 delayed transfers
    assert slow >= 9 * 0.02
    assert fast < 9 * 0.02


def test_faults_fire_only_for_their_recording(make_rig: MakeRig) -> None:
    faults = fault(FaultKind.READ_ERROR, at_byte=0) + fault(FaultKind.CORRUPT, at_byte=0)
    rig = make_rig((CLIP, OTHER), faults)
    session = rig.session()
    assert read_all(session.open_recording("other.mp4")) == content(OTHER)
    assert rig.state.faults_left(0) == 1 and rig.state.faults_left(1) == 1
