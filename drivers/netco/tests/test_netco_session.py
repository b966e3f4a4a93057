"""Driver ↔ simulated firmware over the real pyusb core (SimBackend): every session call."""

from __future__ import annotations

import hashlib
import time
import tomllib
from datetime import UTC, datetime, timedelta

import pytest
from dockd_netco import DRIVER, protocol
from dockd_netco_sim import simulate as netco_simulate
from dockd_netco_sim.device import NetcoCamera
from dockd_sim.state import CameraState
from netco_rig import DEFAULT_RECORDINGS, SERIAL, STARTED, Rig, content, make_spec, read_all, rec

from dockd.driver import CameraSession
from dockd.errors import DeviceRefused
from dockd.model import ChargingState, RecordingInfo, RefusedRecording, ShiftEventKind

NAMES = [r.name.decode() for r in DEFAULT_RECORDINGS]


def test_driver_object_and_match_file() -> None:
    assert DRIVER.name == "netco" and DRIVER.vendor == "NetCo"
    rules = tomllib.loads(DRIVER.match_data().read_text())["match"]
    assert rules == [{"driver": "netco", "vendor_id": 0x1209, "product_id": 0xDC01,
                      "interface_class": 0xFF}]


def test_usb_description(rig: Rig) -> None:
    dev = rig.device()
    assert (dev.idVendor, dev.idProduct) == (0x1209, 0xDC01)
    assert (dev.manufacturer, dev.product, dev.serial_number) == ("NetCo", "NetCo BC-300",
                                                                  SERIAL)
    intf = dev.get_active_configuration()[(0, 0)]
    assert intf.bInterfaceClass == 0xFF
    assert sorted(ep.bEndpointAddress for ep in intf) == [0x01, 0x81]


def test_identity_battery_shift_log(rig: Rig) -> None:
    session = rig.session()
    assert isinstance(session, CameraSession)
    ident = session.identity()
    assert (ident.serial, ident.model, ident.firmware, ident.vendor) == (
        SERIAL, "BC-300", "3.2.1", "NetCo")
    assert abs(ident.clock - datetime.now(UTC)) < timedelta(seconds=5)
    battery = session.battery()
    assert battery.soc_percent == 81.5
    assert battery.temperature_c == -4.2
    assert battery.current_ma == -120
    assert battery.charging is ChargingState.DISCHARGING
    log = session.shift_log()
    assert [s.soc_percent for s in log.samples] == [90 - i for i in range(7)]
    assert [e.kind for e in log.events] == [ShiftEventKind.POWER_ON,
                                            ShiftEventKind.RECORD_START,
                                            ShiftEventKind.RECORD_STOP, ShiftEventKind.DOCKED]
    assert log.events[-1].at - log.events[0].at == timedelta(seconds=3600)
    session.close()


def test_paged_listing_and_shift_log(make_rig) -> None:
    recs = tuple(rec(f"clip{i:03d}.mp4".encode(), 10 + i) for i in range(11))
    rig = make_rig(recs, list_page_size=4, shift_page_size=3)
    session = rig.session()
    listed = session.recordings()
    assert [r.name for r in listed] == [f"clip{i:03d}.mp4" for i in range(11)]
    assert [r.size for r in listed] == [10 + i for i in range(11)]
    assert len(session.shift_log().samples) == 7


def test_recordings_metadata_and_hash(rig: Rig) -> None:
    listed = rig.session().recordings()
    assert [r.name for r in listed] == NAMES
    for info, spec in zip(listed, DEFAULT_RECORDINGS, strict=True):
        assert info.size == spec.size
        assert info.started == STARTED
        assert (info.duration_s, info.prerecord_s) == (61.5, 30.0)
        assert info.sha256 == hashlib.sha256(content(spec)).digest()


@pytest.mark.parametrize("chunk", [1 << 20, 4096, 3 << 20, 1_000_003])
def test_read_whole_recording_any_buffer_size(rig: Rig, chunk: int) -> None:
    stream = rig.session().open_recording(NAMES[0])
    assert (stream.offset, stream.size) == (0, DEFAULT_RECORDINGS[0].size)
    assert read_all(stream, chunk) == content(DEFAULT_RECORDINGS[0])
    assert stream.offset == stream.size
    assert stream.readinto(memoryview(bytearray(10))) == 0


@pytest.mark.parametrize("offset", [1, 511, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 12344])
def test_read_from_any_offset(rig: Rig, offset: int) -> None:
    stream = rig.session().open_recording(NAMES[0], offset)
    assert stream.offset == offset
    assert read_all(stream, 777_777) == content(DEFAULT_RECORDINGS[0])[offset:]


def test_read_spans_several_windows(make_rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # small windows and blocks exercise window/block boundaries without big files
    monkeypatch.setattr(protocol, "MAX_READ_LENGTH", 10_000)
    spec = rec(b"w.mp4", 95_001)
    rig = make_rig((spec,), block_size=4096)
    assert read_all(rig.session().open_recording("w.mp4", 3), 5000) == content(spec)[3:]


def test_read_empty_and_at_end(rig: Rig) -> None:
    session = rig.session()
    assert read_all(session.open_recording(NAMES[2])) == b""
    end = DEFAULT_RECORDINGS[1].size
    assert end is not None
    stream = session.open_recording(NAMES[1], end)
    assert stream.size == end and read_all(stream) == b""


def test_read_past_end_or_missing_is_refused(rig: Rig) -> None:
    session = rig.session()
    with pytest.raises(DeviceRefused) as e:
        session.open_recording(NAMES[1], 10_000_000)
    assert e.value.status == protocol.Status.BAD_REQUEST
    with pytest.raises(DeviceRefused) as e:
        session.open_recording("nope.mp4")
    assert e.value.status == protocol.Status.NOT_FOUND
    assert session.battery().soc_percent == 81.5  # the session is still usable


def test_bad_names_from_the_caller_are_value_errors(rig: Rig) -> None:
    session = rig.session()
    for bad in ["../x", "", "a/b", "x\x00"]:
        with pytest.raises(ValueError, match="not a camera recording name"):
            session.open_recording(bad)
    with pytest.raises(ValueError, match="outside"):
        session.open_recording(NAMES[0], -1)


def test_other_commands_between_blocks_resume_the_stream(rig: Rig) -> None:
    session = rig.session()
    stream = session.open_recording(NAMES[0])
    buf = memoryview(bytearray(100_000))
    got = bytearray()
    n = stream.readinto(buf)
    got += buf[:n]
    assert session.battery().soc_percent == 81.5  # interrupts the open READ window
    assert [r.name for r in session.recordings()] == NAMES
    got += read_all(stream, 300_000)
    assert bytes(got) == content(DEFAULT_RECORDINGS[0])


def test_delete(rig: Rig) -> None:
    session = rig.session()
    session.delete_recording(NAMES[1])
    assert [r.name for r in session.recordings()] == [NAMES[0], NAMES[2]]
    with pytest.raises(DeviceRefused) as e:
        session.delete_recording(NAMES[1])
    assert e.value.status == protocol.Status.NOT_FOUND
    session.close()
    rig.redock()  # the deletion is on the camera's flash
    assert [r.name for r in rig.session().recordings()] == [NAMES[0], NAMES[2]]


def test_hostile_entries_are_refused_alone_and_the_rest_ingestible(make_rig) -> None:
    # the simulated firmware lists what its flash holds, three entries a page
    recs = (
        rec(b"good_1.mp4", 1000, seed=1),
        rec("clip\u202egpm.exe".encode(), 10, seed=2),
        rec(b"clip\x07.mp4", 11, seed=3),
        rec(b"clip\x00.mp4", 12, seed=4),
        rec(b"clip\xe9.mp4", 13, seed=5),  # Latin-1, not UTF-8
        rec(b"a/b.mp4", 14, seed=6),
        rec(b"..", 15, seed=7),
        rec(b"twin.mp4", 16, seed=8),
        rec(b"good_2.mp4", 2000, seed=9),
        rec(b"twin.mp4", 17, seed=10),
    )
    rig = make_rig(recs, list_page_size=3)
    session = rig.session()
    listed = session.recordings()
    twice = ("camera lists this name 2 times: reading or deleting it by name would be "
             "ambiguous; kept on the camera")
    assert [(e.name, "ok") if isinstance(e, RecordingInfo) else (e.label, e.reason)
            for e in listed] == [
        ("good_1.mp4", "ok"),
        ("clip\\u202egpm.exe", "name contains control/format character U+202E"),
        ("clip\\x07.mp4", "name contains control/format character U+0007"),
        ("clip\\x00.mp4", "name contains NUL"),
        ("clip\\xe9.mp4", "name is not UTF-8"),
        ("a/b.mp4", "name contains a path separator"),
        ("..", "name is a path component ('.' or '..')"),
        ("twin.mp4", twice),
        ("good_2.mp4", "ok"),
        ("twin.mp4", twice),
    ]
    assert [e.size for e in listed] == [r.size for r in recs]
    assert all(e.sha256 == hashlib.sha256(content(r)).digest()
               for e, r in zip(listed, recs, strict=True))
    # the good siblings read and delete as usual; the refused ones stay listed, refused
    for name, spec in (("good_1.mp4", recs[0]), ("good_2.mp4", recs[8])):
        assert read_all(session.open_recording(name)) == content(spec)
        session.delete_recording(name)
    after = session.recordings()
    assert all(isinstance(e, RefusedRecording) for e in after)
    assert [e.size for e in after] == [10, 11, 12, 13, 14, 15, 16, 17]


def test_set_clock(rig: Rig) -> None:
    session = rig.session()
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    session.set_clock(when)
    assert abs(session.identity().clock - when) < timedelta(seconds=5)
    assert abs(rig.state.clock() - when) < timedelta(seconds=5)


def test_close_is_idempotent_and_a_new_session_works(rig: Rig) -> None:
    session = rig.session()
    stream = session.open_recording(NAMES[0])
    stream.readinto(memoryview(bytearray(10)))
    stream.close()
    session.close()
    session.close()
    assert rig.session().identity().serial == SERIAL


def test_session_left_mid_stream_does_not_confuse_the_next(rig: Rig) -> None:
    first = rig.session()
    stream = first.open_recording(NAMES[0])
    stream.readinto(memoryview(bytearray(10)))  # camera still holds queued blocks
    second = rig.session()
    assert second.identity().serial == SERIAL
    assert read_all(second.open_recording(NAMES[1])) == content(DEFAULT_RECORDINGS[1])


def test_model_from_spec(tmp_path) -> None:
    spec = make_spec(model="BC-400")
    camera = netco_simulate(spec, CameraState.load(spec, tmp_path))
    assert isinstance(camera, NetcoCamera)
    assert camera.description.product == "NetCo BC-400"


def test_throughput_is_not_per_packet(make_rig) -> None:
    spec = rec(b"big.mp4", 64 << 20)
    rig = make_rig((spec,))
    stream = rig.session().open_recording("big.mp4")
    buf = memoryview(bytearray(1 << 20))
    t0 = time.perf_counter()
    total = 0
    while n := stream.readinto(buf):
        total += n
    assert total == 64 << 20
    assert time.perf_counter() - t0 < 5  # ~100+ MB/s floor even on a loaded machine
