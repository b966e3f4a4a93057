"""A hostile camera: scripted firmware that answers with crafted frames. The session must
raise a typed DeviceError for each, never hang, and stay usable (or be cleanly reopenable)."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import usb.core
from dockd_netco import DRIVER
from dockd_netco import protocol as p
from dockd_netco.host import NetcoSession
from dockd_netco_sim.device import describe
from dockd_sim.device import SimGone, SimNoAnswer, SimStall
from dockd_sim.pyusb_backend import SimBackend
from dockd_sim.spec import CameraSpec

from dockd.errors import (
    DeviceError,
    DeviceGone,
    DeviceRefused,
    DeviceTimeout,
    ProtocolError,
    Unsupported,
)
from dockd.model import RecordingInfo, RefusedRecording

Handler = Callable[[p.Frame], list[bytes]]
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def answer(cmd: p.Command, seq: int, payload: bytes = b"", status: int = p.Status.OK) -> bytes:
    return p.encode_frame(cmd, seq, payload, status=status, response=True)


def entry(name: bytes, size: int = 10) -> p.WireRecording:
    return p.WireRecording(name, size, WHEN, 1000, 0, bytes(32))


class ScriptedCamera:
    """SimCamera whose bulk answers come from per-command handlers."""

    def __init__(self, handlers: dict[p.Command, Handler]) -> None:
        self.description = describe(CameraSpec(serial="NC-666", slot=1))
        self.handlers = handlers
        self.queue: list[bytes] = []
        self.identify = p.encode_identify()
        self.state = p.DeviceState.IDLE
        self.resets = 0
        self.gone = False

    def control_in(self, request_type: int, request: int, value: int, index: int,
                   length: int) -> bytes:
        if request == p.REQ_IDENTIFY:
            return self.identify
        if request == p.REQ_STATUS:
            return p.encode_status(self.state, 0, 0)
        raise SimStall

    def control_out(self, request_type: int, request: int, value: int, index: int,
                    data: bytes) -> None:
        if request != p.REQ_RESET:
            raise SimStall
        self.resets += 1
        self.queue.clear()

    def bulk_write(self, endpoint: int, data: bytes) -> int:
        frame = p.decode_frame(data, expect_response=False)
        self.queue = list(self.handlers[frame.command](frame))
        return len(data)

    def bulk_read_into(self, endpoint: int, buffer: memoryview) -> int:
        if self.gone:
            raise SimGone
        if not self.queue:
            raise SimNoAnswer
        data = self.queue.pop(0)
        n = min(len(data), len(buffer))
        buffer[:n] = data[:n]
        return n

    def unplugged(self) -> bool:
        return self.gone

    def close(self) -> None:
        pass


def open_session(camera: ScriptedCamera, timeout_s: float = 0.05) -> NetcoSession:
    backend = SimBackend()
    backend.plug(camera)
    dev = next(iter(usb.core.find(find_all=True, backend=backend, idVendor=0x1209)))
    return DRIVER.open_session(dev, timeout_s=timeout_s)


def listing(*pages: tuple[int, int, list[p.WireRecording]]) -> Handler:
    def handle(frame: p.Frame) -> list[bytes]:
        page = p.decode_page_request(frame.payload)
        count, total, entries = pages[page]
        return [answer(frame.command, frame.seq,
                       p.encode_list_page(page, count, total, entries))]
    return handle


Blocks = Callable[[int], list[bytes]]  # the READ's sequence number → transfers after it


def reader(size: int, blocks: Blocks, length: int | None = None,
           offset: int | None = None) -> Handler:
    def handle(frame: p.Frame) -> list[bytes]:
        req = p.decode_read_request(frame.payload)
        n = min(req.length, size - req.offset) if length is None else length
        head = p.ReadAnswer(size, req.offset if offset is None else offset, n, 4096)
        return [answer(frame.command, frame.seq, p.encode_read_answer(head)),
                *blocks(frame.seq)]
    return handle


def block(seq: int, offset: int, data: bytes, crc: int | None = None,
          length: int | None = None) -> list[bytes]:
    head = p.DataHead(offset, len(data) if length is None else length,
                      zlib.crc32(data) if crc is None else crc)
    return [answer(p.Command.DATA, seq, p.encode_data_head(head)), data]


@pytest.mark.parametrize(("pages", "message"), [
    (((1, 3, [entry(b"a")]),), "announced 3 recordings but listed 1"),
    (((2, 1, [entry(b"a")]), (3, 1, [])), "page count from 2 to 3"),
    (((2, 1, [entry(b"a")]), (2, 2, [entry(b"b")])), "recording count from 1 to 2"),
    (((2, 1, [entry(b"a")]), (2, 1, [entry(b"b")])), "more recordings than its total"),
    # refused entries count towards the total like any other
    (((1, 1, [entry(b"a/b"), entry(b"\xff")]),), "2 entries on one page"),
    (((2, 2, [entry(b"a/b")]), (2, 2, [entry(b"..", p.MAX_RECORDING_SIZE + 1),
                                       entry(b"c")])), "more recordings than its total 2"),
    (((1, 3, [entry(b"a/b"), entry(b"a/b")]),), "announced 3 recordings but listed 2"),
])
def test_hostile_listings(pages, message: str) -> None:
    session = open_session(ScriptedCamera({p.Command.LIST_RECORDINGS: listing(*pages)}))
    with pytest.raises(ProtocolError, match=message):
        session.recordings()


def names_and_reasons(listed: list[RecordingInfo | RefusedRecording]) -> list[tuple[str, str]]:
    return [(e.name, "ok") if isinstance(e, RecordingInfo) else (e.label, e.reason)
            for e in listed]


@pytest.mark.parametrize(("bad", "label", "reason"), [
    ("clip\u202egpm.exe".encode(), "clip\\u202egpm.exe",
     "name contains control/format character U+202E"),
    (b"clip\x1b[2J.mp4", "clip\\x1b[2J.mp4", "name contains control/format character U+001B"),
    (b"clip\x00.mp4", "clip\\x00.mp4", "name contains NUL"),
    (b"clip\xff.mp4", "clip\\xff.mp4", "name is not UTF-8"),
    (b"../../etc/cron.d/x", "../../etc/cron.d/x", "name contains a path separator"),
    (b"..", "..", "name is a path component ('.' or '..')"),
])
def test_a_hostile_name_is_refused_and_its_siblings_listed(bad: bytes, label: str,
                                                          reason: str) -> None:
    # across pages: the refused entry sits on the first, a sibling on each page
    session = open_session(ScriptedCamera({p.Command.LIST_RECORDINGS: listing(
        (2, 3, [entry(b"first.mp4"), entry(bad, 77)]), (2, 3, [entry(b"last.mp4")]))}))
    listed = session.recordings()
    assert names_and_reasons(listed) == [("first.mp4", "ok"), (label, reason),
                                         ("last.mp4", "ok")]
    refused = listed[1]
    assert isinstance(refused, RefusedRecording)
    assert (refused.size, refused.started, refused.sha256) == (77, WHEN, bytes(32))
    assert (refused.duration_s, refused.prerecord_s) == (1.0, 0.0)


def test_a_size_over_the_limit_is_refused_as_claimed() -> None:
    huge = p.MAX_RECORDING_SIZE + 1
    session = open_session(ScriptedCamera({p.Command.LIST_RECORDINGS: listing(
        (1, 2, [entry(b"huge.mp4", huge), entry(b"ok.mp4")]))}))
    assert names_and_reasons(session.recordings()) == [
        ("huge.mp4", f"claims {huge} bytes, limit 1 TiB"), ("ok.mp4", "ok")]
    assert session.recordings()[0].size == huge  # clamped to nothing


DUP = "camera lists this name {} times: reading or deleting it by name would be ambiguous; " \
      "kept on the camera"


def test_every_entry_of_a_name_listed_twice_is_refused() -> None:
    # on different pages, with different sizes: READ or DELETE by name could reach either
    session = open_session(ScriptedCamera({p.Command.LIST_RECORDINGS: listing(
        (2, 4, [entry(b"a.mp4", 10), entry(b"dup.mp4", 20)]),
        (2, 4, [entry(b"dup.mp4", 30), entry(b"b.mp4", 40)]))}))
    listed = session.recordings()
    assert names_and_reasons(listed) == [("a.mp4", "ok"), ("dup.mp4", DUP.format(2)),
                                         ("dup.mp4", DUP.format(2)), ("b.mp4", "ok")]
    assert [e.size for e in listed] == [10, 20, 30, 40]


def test_a_name_listed_three_times_even_when_one_is_refused_for_its_size() -> None:
    huge = p.MAX_RECORDING_SIZE + 1
    session = open_session(ScriptedCamera({p.Command.LIST_RECORDINGS: listing(
        (1, 4, [entry(b"x.mp4"), entry(b"x.mp4", huge), entry(b"ok.mp4"), entry(b"x.mp4")]))}))
    assert names_and_reasons(session.recordings()) == [
        ("x.mp4", DUP.format(3)),
        ("x.mp4", f"claims {huge} bytes, limit 1 TiB; {DUP.format(3)}"),
        ("ok.mp4", "ok"),
        ("x.mp4", DUP.format(3)),
    ]


def test_a_hostile_name_listed_twice_keeps_both_reasons() -> None:
    session = open_session(ScriptedCamera({p.Command.LIST_RECORDINGS: listing(
        (1, 2, [entry(b"a\x00"), entry(b"a\x00")]))}))
    assert names_and_reasons(session.recordings()) == [
        ("a\\x00", f"name contains NUL; {DUP.format(2)}")] * 2


def test_a_name_too_long_to_frame_fails_the_whole_listing() -> None:
    session = open_session(ScriptedCamera({p.Command.LIST_RECORDINGS: listing(
        (1, 2, [entry(b"ok.mp4"), entry(b"a" * 256)]))}))
    with pytest.raises(ProtocolError, match="name of 256 bytes, limit 255"):
        session.recordings()


def test_answer_for_another_page() -> None:
    def handle(frame: p.Frame) -> list[bytes]:
        return [answer(frame.command, frame.seq, p.encode_list_page(1, 2, 0, []))]
    with pytest.raises(ProtocolError, match="page 1 when asked for page 0"):
        open_session(ScriptedCamera({p.Command.LIST_RECORDINGS: handle})).recordings()


DATA = bytes(range(256)) * 40  # 10240 bytes


def stream_of(blocks: Blocks, size: int = len(DATA),
              **kw: int) -> tuple[ScriptedCamera, NetcoSession]:
    camera = ScriptedCamera({p.Command.READ: reader(size, blocks, **kw),
                             p.Command.GET_BATTERY: lambda f: [answer(
                                 f.command, f.seq, p.BATTERY.pack(500, 0, 0, 0, 0, 0, 0, 0))]})
    return camera, open_session(camera)


def drain(stream) -> bytes:
    buf = memoryview(bytearray(100_000))
    out = bytearray()
    while n := stream.readinto(buf):
        out += buf[:n]
    return bytes(out)


def test_scripted_stream_reads_cleanly() -> None:
    _, session = stream_of(lambda s: [*block(s, 0, DATA[:4096]), *block(s, 4096, DATA[4096:8192]),
                                      *block(s, 8192, DATA[8192:])])
    assert drain(session.open_recording("x")) == DATA


@pytest.mark.parametrize(("blocks", "message"), [
    (lambda s: block(s, 0, DATA[:8192]), "exceeds the announced block size 4096"),
    # block header says 4096, the transfer carries less
    (lambda s: block(s, 0, DATA[:100], length=4096), "header said 4096"),
    (lambda s: block(s, 0, DATA[:4096], crc=1), "fails its CRC"),
    (lambda s: block(s, 8, DATA[:4096]), "data for 8, expected 0"),
    (lambda s: [answer(p.Command.GET_INFO, s)], "answered GET_INFO to DATA"),
    (lambda s: [answer(p.Command.DATA, s + 7)] * 5, "wrong sequence number"),
    (lambda s: [b"\x00" * 20], "magic"),
    (lambda s: [answer(p.Command.DATA, s, status=p.Status.READ_ERROR)], "flash"),
])
def test_hostile_data_blocks(blocks, message: str) -> None:
    camera, session = stream_of(blocks)
    with pytest.raises(DeviceError, match=message):
        drain(session.open_recording("x"))
    # the session recovers: RESET, then another command works
    resets = camera.resets
    assert session.battery().soc_percent == 50
    assert camera.resets == resets + 1


def test_more_bytes_than_the_read_answer_announced() -> None:
    _, session = stream_of(lambda s: block(s, 0, DATA[:4096]), length=100)
    with pytest.raises(ProtocolError, match="sends 4096 bytes, only 100 were announced"):
        drain(session.open_recording("x"))


def test_a_stale_frame_is_skipped() -> None:
    def blocks(s: int) -> list[bytes]:
        stale = answer(p.Command.DATA, s - 1)
        return [stale, *block(s, 0, DATA[:4096]), stale, *block(s, 4096, DATA[4096:8192]),
                *block(s, 8192, DATA[8192:])]
    _, session = stream_of(blocks)
    assert drain(session.open_recording("x")) == DATA


@pytest.mark.parametrize(("kw", "message"), [
    ({"offset": 5, "length": 10}, "answered READ at 5"),
    ({"length": 0}, "no data"),
    ({"size": p.MAX_RECORDING_SIZE + 1, "length": 10}, "1 TiB"),
])
def test_hostile_read_answers(kw: dict[str, int], message: str) -> None:
    _, session = stream_of(lambda s: [], **kw)
    with pytest.raises(ProtocolError, match=message):
        session.open_recording("x")


def test_size_changing_between_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(p, "MAX_READ_LENGTH", 4096)
    sizes = iter([len(DATA), len(DATA) + 1])

    def handle(frame: p.Frame) -> list[bytes]:
        req = p.decode_read_request(frame.payload)
        head = p.ReadAnswer(next(sizes), req.offset, 4096, 4096)
        return [answer(frame.command, frame.seq, p.encode_read_answer(head)),
                *block(frame.seq, req.offset, DATA[req.offset:req.offset + 4096])]
    session = open_session(ScriptedCamera({p.Command.READ: handle}))
    with pytest.raises(ProtocolError, match="size changed"):
        drain(session.open_recording("x"))


def test_camera_refusal_carries_its_status() -> None:
    camera = ScriptedCamera({p.Command.DELETE: lambda f: [answer(f.command, f.seq,
                                                                  status=p.Status.BUSY)]})
    with pytest.raises(DeviceRefused, match="busy") as e:
        open_session(camera).delete_recording("x")
    assert e.value.status == p.Status.BUSY


def test_unknown_status_code_is_a_protocol_error() -> None:
    camera = ScriptedCamera({p.Command.GET_BATTERY: lambda f: [answer(f.command, f.seq,
                                                                       status=0x42)]})
    with pytest.raises(ProtocolError, match="unknown status"):
        open_session(camera).battery()


def test_wrong_identify_block_is_refused_at_open() -> None:
    camera = ScriptedCamera({})
    camera.identify = b"XXXX" + camera.identify[4:]
    with pytest.raises(ProtocolError, match="not a NetCo camera"):
        open_session(camera)
    camera.identify = p.encode_identify()[:-1]
    with pytest.raises(ProtocolError, match="expected 16"):
        open_session(camera)


def test_camera_that_stays_busy_after_reset() -> None:
    camera = ScriptedCamera({})
    camera.state = p.DeviceState.STREAMING
    with pytest.raises(ProtocolError, match="still STREAMING"):
        open_session(camera)


def test_silent_camera_times_out_rather_than_hanging() -> None:
    session = open_session(ScriptedCamera({p.Command.GET_INFO: lambda f: []}))
    with pytest.raises(DeviceTimeout):
        session.identity()


def test_vanishing_camera() -> None:
    camera = ScriptedCamera({p.Command.GET_INFO: lambda f: []})
    session = open_session(camera)
    camera.gone = True
    with pytest.raises(DeviceGone):
        session.identity()
    session.close()


def test_command_the_firmware_does_not_know_is_unsupported() -> None:
    camera = ScriptedCamera({p.Command.SET_CLOCK: lambda f: [
        answer(f.command, f.seq, status=p.Status.UNKNOWN_COMMAND)]})
    with pytest.raises(Unsupported, match="SET_CLOCK"):
        open_session(camera).set_clock(WHEN)


def test_stalled_endpoint_is_refused_then_cleared() -> None:
    cleared: list[int] = []

    class StallingCamera(ScriptedCamera):
        stalls = 1

        def bulk_write(self, endpoint: int, data: bytes) -> int:
            if self.stalls:
                self.stalls -= 1
                raise SimStall
            return super().bulk_write(endpoint, data)

        def clear_halt(self, endpoint: int) -> None:
            cleared.append(endpoint)

    camera = StallingCamera({p.Command.GET_BATTERY: lambda f: [
        answer(f.command, f.seq, p.BATTERY.pack(500, 0, 0, 0, 0, 0, 0, 0))]})
    session = open_session(camera)
    with pytest.raises(DeviceRefused, match="stalled"):
        session.battery()
    assert session.battery().soc_percent == 50
    assert cleared == [p.EP_OUT, p.EP_IN]


def test_failed_open_releases_the_interface() -> None:
    camera = ScriptedCamera({})
    camera.identify = b"XXXX" + camera.identify[4:]
    backend = SimBackend()
    backend.plug(camera)
    dev = next(iter(usb.core.find(find_all=True, backend=backend, idVendor=0x1209)))
    with pytest.raises(ProtocolError):
        DRIVER.open_session(dev, timeout_s=0.05)
    assert backend.devices()[0].claimed == set()


def test_device_without_the_vendor_interface_is_unsupported() -> None:
    camera = ScriptedCamera({})
    camera.description = dataclasses.replace(camera.description, interfaces=(
        dataclasses.replace(camera.description.interfaces[0], interface_class=0x08),))
    with pytest.raises(Unsupported, match="vendor interface"):
        open_session(camera)
