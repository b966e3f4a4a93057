"""The shared codec: round trips for every message, and hostile bytes → ProtocolError only."""

from __future__ import annotations

import contextlib
import struct
import time
import tracemalloc
import unicodedata
import zlib
from datetime import UTC, datetime

import pytest
from dockd_netco import protocol as p
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.errors import ProtocolError
from dockd.model import (
    BatterySnapshot,
    CameraIdentity,
    ChargingState,
    RecordingInfo,
    RefusedRecording,
    ShiftEvent,
    ShiftEventKind,
    ShiftSample,
    escape_name,
)

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30),
                     timezones=st.just(UTC))
safe_chars = st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Zl", "Zp"))
texts = st.text(safe_chars, min_size=1, max_size=16)
serials = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,30}\Z")
good_names = st.text(safe_chars, min_size=1, max_size=60).filter(
    lambda s: "/" not in s and "\\" not in s and s.strip() not in {".", ".."}
    and len(s.encode()) <= p.MAX_NAME_BYTES)
permille = st.integers(0, 1000)
i16 = st.integers(-0x8000, 0x7FFF)
i32 = st.integers(-0x80000000, 0x7FFFFFFF)


def raises_protocol_error_or_decodes(fn, data) -> None:
    with contextlib.suppress(ProtocolError):
        fn(data)


# --- round trips ---------------------------------------------------------------------


@FAST
@given(st.sampled_from(p.Command), u32, st.binary(max_size=3000), st.sampled_from(p.Status),
       st.booleans())
def test_frame_round_trip(command, seq, payload, status, response) -> None:
    frame = p.encode_frame(command, seq, payload, status=status, response=response)
    assert len(frame) == p.FRAME_OVERHEAD + len(payload)
    assert p.decode_frame(frame, expect_response=response) == p.Frame(
        command, seq, status, payload, response)


def test_frame_at_the_size_limit() -> None:
    payload = bytes(p.MAX_PAYLOAD)
    frame = p.encode_frame(p.Command.GET_INFO, 1, payload, response=True)
    assert len(frame) == p.MAX_FRAME
    assert p.decode_frame(frame, expect_response=True).payload == payload
    with pytest.raises(ValueError, match="exceeds"):
        p.encode_frame(p.Command.GET_INFO, 1, payload + b"x")


@FAST
@given(serials, texts, texts, texts, times)
def test_info_round_trip(serial, model, firmware, vendor, clock) -> None:
    ident = CameraIdentity(serial, model, firmware, vendor, clock)
    assert p.decode_info(p.encode_info(ident)) == ident


@FAST
@given(permille, u16, i32, i16, u32, u16, u16, st.sampled_from(ChargingState))
def test_battery_round_trip(soc, mv, ma, decic, cycles, design, full, charging) -> None:
    snap = BatterySnapshot(soc / 10, mv, ma, decic / 10, cycles, design, full, charging)
    assert p.decode_battery(p.encode_battery(snap)) == snap


samples = st.builds(ShiftSample, times, permille.map(lambda v: v / 10), u16, i32,
                    i16.map(lambda v: v / 10))
events = st.builds(ShiftEvent, times, st.sampled_from(ShiftEventKind))


@FAST
@given(st.integers(1, p.MAX_SHIFT_PAGES).flatmap(lambda c: st.tuples(st.integers(0, c - 1),
                                                                      st.just(c))),
       st.lists(samples, max_size=40), st.lists(events, max_size=40))
def test_shift_page_round_trip(page_count, ss, es) -> None:
    page = p.ShiftPage(page_count[0], page_count[1], tuple(ss), tuple(es))
    assert p.decode_shift_page(p.encode_shift_page(page)) == page


wire_recordings = st.builds(
    p.WireRecording, good_names.map(str.encode), st.integers(0, p.MAX_RECORDING_SIZE), times,
    u32, u32, st.binary(min_size=32, max_size=32))


@FAST
@given(st.lists(wire_recordings, max_size=12), st.integers(0, 100))
def test_list_page_round_trip(entries, extra) -> None:
    total = len(entries) + extra
    page = p.decode_list_page(p.encode_list_page(0, 3, total, entries))
    assert (page.page, page.page_count, page.total) == (0, 3, total)
    assert page.entries == tuple(
        RecordingInfo(e.name.decode(), e.size, e.started, e.duration_ms / 1000,
                      e.prerecord_ms / 1000, e.sha256) for e in entries)


@FAST
@given(good_names.map(str.encode), st.integers(0, 2**64 - 1),
       st.integers(1, p.MAX_READ_LENGTH))
def test_read_request_round_trip(name, offset, length) -> None:
    req = p.ReadRequest(name, offset, length)
    assert p.decode_read_request(p.encode_read_request(req)) == req


@FAST
@given(st.integers(0, p.MAX_RECORDING_SIZE).flatmap(lambda size: st.tuples(
    st.just(size), st.integers(0, size).flatmap(lambda off: st.tuples(
        st.just(off), st.integers(0, min(size - off, p.MAX_READ_LENGTH)))))),
    st.integers(1, p.MAX_BLOCK))
def test_read_answer_round_trip(size_off_len, block) -> None:
    size, (offset, length) = size_off_len
    answer = p.ReadAnswer(size, offset, length, block)
    assert p.decode_read_answer(p.encode_read_answer(answer)) == answer


@FAST
@given(st.integers(0, 2**64 - 1), st.integers(1, p.MAX_BLOCK), u32)
def test_data_head_round_trip(offset, length, crc) -> None:
    head = p.DataHead(offset, length, crc)
    assert p.decode_data_head(p.encode_data_head(head)) == head


@FAST
@given(good_names.map(str.encode), times, u16)
def test_small_messages_round_trip(name, when, page) -> None:
    assert p.decode_name(p.encode_name(name)) == name
    assert p.decode_clock(p.encode_clock(when)) == when
    assert p.decode_page_request(p.encode_page_request(page)) == page


def test_control_blocks_round_trip() -> None:
    ident = p.decode_identify(p.encode_identify(0x0301, 4096))
    assert (ident.version, ident.model_code, ident.max_block) == (1, 0x0301, 4096)
    status = p.decode_status(p.encode_status(p.DeviceState.STREAMING, p.Status.READ_ERROR, 7))
    assert status == p.StatusBlock(p.DeviceState.STREAMING, p.Status.READ_ERROR, 7)


# --- hostile bytes -------------------------------------------------------------------

DECODERS = [
    p.decode_info, p.decode_battery, p.decode_shift_page, p.decode_list_page,
    p.decode_read_request, p.decode_read_answer, p.decode_data_head, p.decode_name,
    p.decode_clock, p.decode_page_request, p.decode_identify, p.decode_status,
    lambda d: p.decode_frame(d, expect_response=True),
    lambda d: p.decode_frame(d, expect_response=False),
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DECODERS), st.binary(max_size=600))
def test_random_bytes_give_protocol_error_or_a_value(decoder, data) -> None:
    raises_protocol_error_or_decodes(decoder, data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DECODERS[:10]), st.data())
def test_mutated_payloads_give_protocol_error_or_a_value(decoder, data) -> None:
    valid = {
        p.decode_info: p.encode_info(CameraIdentity("NC-1", "BC-300", "3.2.1", "NetCo",
                                                    datetime(2026, 1, 1, tzinfo=UTC))),
        p.decode_battery: p.encode_battery(BatterySnapshot(50, 3900, 10, 20, 1, 3000, 2900,
                                                           ChargingState.FULL)),
        p.decode_list_page: p.encode_list_page(0, 1, 2, [
            p.WireRecording(b"a.mp4", 10, datetime(2026, 1, 1, tzinfo=UTC), 1, 2, bytes(32)),
            p.WireRecording(b"b.mp4", 10, datetime(2026, 1, 1, tzinfo=UTC), 1, 2, bytes(32)),
        ]),
        p.decode_shift_page: p.encode_shift_page(p.ShiftPage(
            0, 1, (ShiftSample(datetime(2026, 1, 1, tzinfo=UTC), 50, 3900, 10, 20.5),),
            (ShiftEvent(datetime(2026, 1, 1, tzinfo=UTC), ShiftEventKind.DOCKED),))),
        p.decode_read_request: p.encode_read_request(p.ReadRequest(b"a.mp4", 0, 100)),
        p.decode_read_answer: p.encode_read_answer(p.ReadAnswer(100, 0, 100, 4096)),
        p.decode_data_head: p.encode_data_head(p.DataHead(0, 100, 5)),
        p.decode_name: p.encode_name(b"a.mp4"),
        p.decode_clock: p.encode_clock(datetime(2026, 1, 1, tzinfo=UTC)),
        p.decode_page_request: p.encode_page_request(3),
    }[decoder]
    buf = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 4))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(u8)
    cut = data.draw(st.integers(0, len(buf) + 4))
    raises_protocol_error_or_decodes(decoder, bytes(buf[:cut]) + bytes(max(0, cut - len(buf))))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.data())
def test_any_damage_to_a_frame_is_detected(payload, data) -> None:
    frame = bytearray(p.encode_frame(p.Command.READ, 9, payload, response=True))
    how = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if how == "flip":
        i = data.draw(st.integers(0, len(frame) - 1))
        frame[i] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        del frame[data.draw(st.integers(0, len(frame) - 1)):]
    else:
        frame += data.draw(st.binary(min_size=1, max_size=20))
    with pytest.raises(ProtocolError):
        p.decode_frame(frame, expect_response=True)


def _header(length: int, command: int = p.Command.GET_INFO, status: int = 0,
            flags: int = p.FLAG_RESPONSE, magic: bytes = p.MAGIC) -> bytes:
    return p.HEADER.pack(magic, p.PROTOCOL_VERSION, flags, command, status, 1, length)


@pytest.mark.parametrize("length", [p.MAX_PAYLOAD + 1, 1 << 31, 0xFFFFFFFF])
def test_huge_length_claims_fail_fast_without_allocating(length: int) -> None:
    head = _header(length)
    frame = head + b"\x00" * 100 + struct.pack("<I", zlib.crc32(head))
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ProtocolError, match="limit"):
        p.decode_frame(frame, expect_response=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.perf_counter() - t0 < 0.1
    assert peak < 64 * 1024


def test_frames_the_decoder_names() -> None:
    def sealed(head: bytes) -> bytes:
        return head + struct.pack("<I", zlib.crc32(head))

    cases = {
        "bad frame magic": sealed(_header(0, magic=b"XXXX")),
        "unknown command 0x42": sealed(_header(0, command=0x42)),
        "unknown status 0x99": sealed(_header(0, status=0x99)),
        "reserved frame flags": sealed(_header(0, flags=0x81)),
        "wrong way": sealed(_header(0, flags=0)),
        "frame CRC mismatch": _header(0) + b"\x00\x00\x00\x00",
        "too short": b"NCBW",
        "but carries": sealed(_header(5)),
        "frame too long": bytes(p.MAX_FRAME + 1),
    }
    for message, frame in cases.items():
        with pytest.raises(ProtocolError, match=message):
            p.decode_frame(frame, expect_response=True)


def test_absurd_counts_and_sizes() -> None:
    with pytest.raises(ProtocolError, match="limit 16384"):
        p.decode_list_page(p.encode_list_page(0, 1, p.MAX_RECORDINGS + 1, []))
    with pytest.raises(ProtocolError, match="entries on one page"):
        p.decode_list_page(p.LIST_HEAD.pack(0, 1, 1000, 60000))  # no allocation, no loop
    with pytest.raises(ProtocolError, match="page count"):
        p.decode_list_page(p.LIST_HEAD.pack(0, 60000, 0, 0))
    with pytest.raises(ProtocolError, match="page 3 of 2"):
        p.decode_list_page(p.LIST_HEAD.pack(3, 2, 0, 0))
    with pytest.raises(ProtocolError, match="samples"):
        p.decode_shift_page(p.SHIFT_HEAD.pack(0, 1, 65535, 0))
    with pytest.raises(ProtocolError, match="do not hold"):
        p.decode_shift_page(p.SHIFT_HEAD.pack(0, 1, 2, 0) + bytes(p.SAMPLE.size))
    with pytest.raises(ProtocolError, match="above 100%"):
        p.decode_battery(p.BATTERY.pack(1001, 0, 0, 0, 0, 0, 0, 0))
    with pytest.raises(ProtocolError, match="charging state"):
        p.decode_battery(p.BATTERY.pack(500, 0, 0, 0, 0, 0, 0, 9))
    with pytest.raises(ProtocolError, match="event kind"):
        p.decode_shift_page(p.SHIFT_HEAD.pack(0, 1, 0, 1) + p.EVENT.pack(0, 99))
    with pytest.raises(ProtocolError, match="years 1-9999"):
        p.decode_clock(struct.pack("<q", 2**63 - 1))
    with pytest.raises(ProtocolError, match="exceeds 1 TiB"):
        p.decode_read_answer(p.READ_ANSWER.pack(p.MAX_RECORDING_SIZE + 1, 0, 1, 4096))
    with pytest.raises(ProtocolError, match="run past"):
        p.decode_read_answer(p.READ_ANSWER.pack(100, 90, 11, 4096))
    with pytest.raises(ProtocolError, match="block size"):
        p.decode_read_answer(p.READ_ANSWER.pack(100, 0, 100, p.MAX_BLOCK + 1))
    with pytest.raises(ProtocolError, match=r"outside 1\.\."):
        p.decode_data_head(p.DATA_HEAD.pack(0, p.MAX_BLOCK + 1, 0))
    with pytest.raises(ProtocolError, match=r"outside 1\.\."):
        p.decode_data_head(p.DATA_HEAD.pack(0, 0, 0))
    # absurd wall-clock values that the format can carry are left to health checks
    assert p.decode_battery(p.BATTERY.pack(1000, 0, 0, 3000, 0, 0, 0, 0)).temperature_c == 300


WHEN = datetime(2026, 1, 1, tzinfo=UTC)
SHA = bytes(range(32))


def wire(name: bytes, size: int = 1, started: datetime = WHEN) -> p.WireRecording:
    return p.WireRecording(name, size, started, 1500, 250, SHA)


def raw_entry(name: bytes, size: int = 1, started_us: int = 0) -> bytes:
    """One listing entry as bytes, for values `encode_list_page` cannot produce."""
    return p.encode_name(name) + p.ENTRY_TAIL.pack(size, started_us, 1500, 250, SHA)


def listed_alone(bad: bytes | p.WireRecording) -> tuple[RecordingInfo | RefusedRecording, ...]:
    """The entries of one page holding a bad entry between two good siblings."""
    entry = bad if isinstance(bad, p.WireRecording) else wire(bad)
    page = p.decode_list_page(p.encode_list_page(
        0, 1, 3, [wire(b"before.mp4"), entry, wire(b"after.mp4")]))
    assert page.raw_names == (b"before.mp4", entry.name, b"after.mp4")
    before, _, after = page.entries
    assert isinstance(before, RecordingInfo) and before.name == "before.mp4"
    assert isinstance(after, RecordingInfo) and after.name == "after.mp4"
    return page.entries


HOSTILE_NAMES = [
    (b"", "name is empty"),
    (b"../evil.mp4", "name contains a path separator"),
    (b"..", "name is a path component ('.' or '..')"),
    (b".", "name is a path component ('.' or '..')"),
    (b" .. ", "name is a path component ('.' or '..')"),
    (b"dir/clip.mp4", "name contains a path separator"),
    (b"/etc/passwd", "name contains a path separator"),
    (b"c:\\clip.mp4", "name contains a path separator"),
    (b"clip\x00.mp4", "name contains NUL"),
    (b"clip\n.mp4", "name contains control/format character U+000A"),
    (b"clip\x1b[31m.mp4", "name contains control/format character U+001B"),
    (b"\xff\xfe.mp4", "name is not UTF-8"),
    (b"clip\xc0\xaf.mp4", "name is not UTF-8"),
    ("clip\u202egpm.exe".encode(), "name contains control/format character U+202E"),
    ("a\u2028b".encode(), "name contains control/format character U+2028"),
    (b"clip\x7f", "name contains control/format character U+007F"),
]


@pytest.mark.parametrize(("raw", "reason"), HOSTILE_NAMES)
def test_a_hostile_name_is_refused_alone(raw: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match="recording name"):
        p.check_name(raw)
    assert p.name_problem(raw) == reason
    _, refused, _ = listed_alone(raw)
    assert refused == RefusedRecording(label=escape_name(raw), reason=reason, size=1,
                                       started=WHEN, sha256=SHA, duration_s=1.5,
                                       prerecord_s=0.25)
    assert refused.label.isascii() and refused.label.isprintable()


@pytest.mark.parametrize(("raw", "label"), [
    ("clip\u202egpm.exe".encode(), "clip\\u202egpm.exe"),
    (b"clip\x00.mp4", "clip\\x00.mp4"),
    (b"clip\x1b[31m.mp4", "clip\\x1b[31m.mp4"),
    (b"\xff\xfe.mp4", "\\xff\\xfe.mp4"),
    (b"../evil.mp4", "../evil.mp4"),
])
def test_a_refused_label_shows_what_the_camera_sent_in_printable_ascii(raw: bytes,
                                                                       label: str) -> None:
    _, refused, _ = listed_alone(raw)
    assert isinstance(refused, RefusedRecording) and refused.label == label


def test_an_impossible_size_is_refused_alone_and_not_clamped() -> None:
    _, refused, _ = listed_alone(wire(b"huge.mp4", p.MAX_RECORDING_SIZE + 1))
    assert isinstance(refused, RefusedRecording)
    assert (refused.label, refused.size) == ("huge.mp4", p.MAX_RECORDING_SIZE + 1)
    assert refused.reason == "claims 1099511627777 bytes, limit 1 TiB"
    _, at_limit, _ = listed_alone(wire(b"tib.mp4", p.MAX_RECORDING_SIZE))
    assert isinstance(at_limit, RecordingInfo) and at_limit.size == p.MAX_RECORDING_SIZE


def test_a_start_time_out_of_range_is_refused_alone() -> None:
    payload = p.LIST_HEAD.pack(0, 1, 3, 3) + b"".join([
        raw_entry(b"a.mp4"), raw_entry(b"b.mp4", started_us=2**63 - 1), raw_entry(b"c.mp4")])
    a, b, c = p.decode_list_page(payload).entries
    assert isinstance(a, RecordingInfo) and isinstance(c, RecordingInfo)
    assert b == RefusedRecording(
        label="b.mp4", reason="start time 9223372036854775807 µs since 1970 is outside years "
        "1-9999", size=1, started=datetime(1970, 1, 1, tzinfo=UTC), sha256=SHA,
        duration_s=1.5, prerecord_s=0.25)


def test_every_problem_of_one_entry_is_in_its_reason() -> None:
    payload = p.LIST_HEAD.pack(0, 1, 1, 1) + raw_entry(b"a/b", p.MAX_RECORDING_SIZE + 5,
                                                       -(2**63))
    (refused,) = p.decode_list_page(payload).entries
    assert isinstance(refused, RefusedRecording)
    assert refused.reason == (
        "name contains a path separator; claims 1099511627781 bytes, limit 1 TiB; "
        "start time -9223372036854775808 µs since 1970 is outside years 1-9999")


@pytest.mark.parametrize(("payload", "message"), [
    # a name length beyond the limit: the entry's framing cannot be trusted, nor the rest
    (p.LIST_HEAD.pack(0, 1, 2, 2) + raw_entry(b"a" * 256) + raw_entry(b"ok.mp4"),
     "name of 256 bytes, limit 255"),
    (p.LIST_HEAD.pack(0, 1, 2, 2) + raw_entry(b"ok.mp4") + raw_entry(b"x\x00")[:-1],
     "truncated"),
    (p.LIST_HEAD.pack(0, 1, 1, 1) + raw_entry(b"x\x00") + b"\x00", "1 unexpected trailing"),
    (p.LIST_HEAD.pack(0, 1, 1, 2) + raw_entry(b"a/b") + raw_entry(b"ok"),
     "2 entries on one page"),
    (p.LIST_HEAD.pack(0, 1, 3, 2) + raw_entry(b"a/b"), "truncated"),
])
def test_a_broken_page_frame_still_fails_the_whole_page(payload: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        p.decode_list_page(payload)


@FAST
@given(st.lists(st.tuples(st.binary(max_size=p.MAX_NAME_BYTES),
                          st.integers(0, 2**64 - 1)), max_size=8))
def test_any_framed_entry_is_accepted_or_refused_alone(entries) -> None:
    payload = p.LIST_HEAD.pack(0, 1, len(entries), len(entries)) + b"".join(
        raw_entry(name, size) for name, size in entries)
    page = p.decode_list_page(payload)
    assert len(page.entries) == len(entries)
    for (name, size), got in zip(entries, page.entries, strict=True):
        assert got.size == size
        if isinstance(got, RecordingInfo):
            assert got.name == p.check_name(name) and size <= p.MAX_RECORDING_SIZE
        else:
            assert got.label == escape_name(name) and got.reason
            assert got.label.isascii() and got.label.isprintable()
            assert "\n" not in got.reason
            assert p.name_problem(name) is not None or size > p.MAX_RECORDING_SIZE


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_any_accepted_name_is_a_safe_file_name(raw: bytes) -> None:
    try:
        name = p.check_name(raw)
    except ProtocolError:
        return
    assert name.encode() == raw and 0 < len(raw) <= 255
    assert not set(name) & {"/", "\\", "\x00"}
    assert name.strip() not in {".", ".."}
    assert not any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
                   for c in name)


@FAST
@given(good_names)
def test_good_names_are_accepted(name: str) -> None:
    assert p.check_name(name.encode()) == name


@pytest.mark.parametrize("serial", ["../x", "a/b", ".hidden", "NC 1", "NÇ-1", "-x"])
def test_hostile_serials(serial: str) -> None:
    ident = CameraIdentity(serial, "m", "f", "v", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ProtocolError, match="serial"):
        p.decode_info(p.encode_info(ident))


def test_overlong_text_fields_are_refused() -> None:
    ident = CameraIdentity("NC-1", "m" * 65, "f", "v", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ProtocolError, match="model of 65 bytes"):
        p.decode_info(p.encode_info(ident))


@given(st.binary(max_size=70_000), st.integers(0, 64))
def test_the_protocol_crc_is_zlibs_crc32_on_any_bytes_and_views(data, skip):
    # the codec uses zlib-ng for speed; the wire format is zlib's CRC-32, byte for byte
    import array  # noqa: PLC0415

    view = memoryview(array.array("B", data))[skip:]
    assert p.crc32(data) == zlib.crc32(data)
    assert p.crc32(view) == zlib.crc32(view)
