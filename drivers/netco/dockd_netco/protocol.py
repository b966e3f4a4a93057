"""The NetCo wire protocol: one codec for both ends (host driver and simulated firmware).

Layouts, limits and sequences are specified in docs/netco-protocol.md; this module is the
executable form of that document. Everything is little-endian.

Decoders treat their input as hostile: every length and count is checked against a fixed
bound *before* anything is sliced or looped over, and every failure is a
`dockd.errors.ProtocolError` whose message says what was wrong. Nothing here allocates more
than the bytes it was handed. One exception to failing as a whole: a listing entry that
frames cleanly but is unacceptable on its own comes back refused (`decode_list_page`).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from zlib_ng import zlib_ng

from dockd.errors import ProtocolError
from dockd.model import (
    BatterySnapshot,
    CameraIdentity,
    ChargingState,
    ListingEntry,
    RecordingInfo,
    RefusedRecording,
    ShiftEvent,
    ShiftEventKind,
    ShiftSample,
    control_char,
    escape_name,
    serial_problem,
)
from dockd.model import name_problem as model_name_problem

# --- USB shape ----------------------------------------------------------------------

VENDOR_ID = 0x1209  # pid.codes open vendor ID
PRODUCT_ID = 0xDC01
INTERFACE_CLASS = 0xFF
INTERFACE_NUMBER = 0
EP_OUT = 0x01
EP_IN = 0x81

#: vendor control requests (bmRequestType 0xC1 = IN|vendor|interface, 0x41 = OUT)
REQTYPE_IN = 0xC1
REQTYPE_OUT = 0x41
REQ_IDENTIFY = 0x01
REQ_STATUS = 0x02
REQ_RESET = 0x03

# --- limits (a decoder refuses anything beyond these) --------------------------------

PROTOCOL_VERSION = 1
MAGIC = b"NCBW"
HEADER = struct.Struct("<4sBBBBII")  # magic, version, flags, command, status, seq, length
CRC = struct.Struct("<I")
FRAME_OVERHEAD = HEADER.size + CRC.size
MAX_FRAME = 64 * 1024
MAX_PAYLOAD = MAX_FRAME - FRAME_OVERHEAD
FLAG_RESPONSE = 0x01

MAX_BLOCK = 1 << 20  # raw bytes in one data transfer
MAX_READ_LENGTH = 64 << 20  # bytes one READ command may ask for
MAX_RECORDING_SIZE = 1 << 40  # 1 TiB
MAX_NAME_BYTES = 255
MAX_TEXT_BYTES = 64
MAX_LIST_PAGES = 256
MAX_ENTRIES_PER_PAGE = 128
MAX_RECORDINGS = 16384
MAX_SHIFT_PAGES = 64
MAX_SAMPLES_PER_PAGE = 1024
MAX_EVENTS_PER_PAGE = 1024


class Command(enum.IntEnum):
    GET_INFO = 0x01
    GET_BATTERY = 0x02
    GET_SHIFT_LOG = 0x03
    LIST_RECORDINGS = 0x04
    READ = 0x05
    DELETE = 0x06
    SET_CLOCK = 0x07
    DONE = 0x08
    #: device → host only: announces one raw data block of a READ
    DATA = 0x80


class Status(enum.IntEnum):
    OK = 0x00
    UNKNOWN_COMMAND = 0x01
    BAD_REQUEST = 0x02
    NOT_FOUND = 0x03
    READ_ERROR = 0x04
    BUSY = 0x05
    BAD_FRAME = 0x06
    INTERNAL = 0x07


STATUS_TEXT: dict[Status, str] = {
    Status.OK: "ok",
    Status.UNKNOWN_COMMAND: "camera does not know this command",
    Status.BAD_REQUEST: "camera rejected the request's arguments",
    Status.NOT_FOUND: "no such recording on the camera",
    Status.READ_ERROR: "camera could not read its flash",
    Status.BUSY: "camera is busy",
    Status.BAD_FRAME: "camera received a damaged frame",
    Status.INTERNAL: "camera firmware error",
}

#: wire codes; order is part of the protocol, never reorder
CHARGING_CODES: dict[int, ChargingState] = {
    0: ChargingState.UNKNOWN,
    1: ChargingState.DISCHARGING,
    2: ChargingState.CHARGING,
    3: ChargingState.FULL,
    4: ChargingState.FAULT,
}
EVENT_CODES: dict[int, ShiftEventKind] = {
    1: ShiftEventKind.POWER_ON,
    2: ShiftEventKind.POWER_OFF,
    3: ShiftEventKind.DISPLAY_ON,
    4: ShiftEventKind.DISPLAY_OFF,
    5: ShiftEventKind.RECORD_START,
    6: ShiftEventKind.RECORD_STOP,
    7: ShiftEventKind.DOCKED,
    8: ShiftEventKind.UNDOCKED,
}
_CHARGING_TO_CODE = {v: k for k, v in CHARGING_CODES.items()}
_EVENT_TO_CODE = {v: k for k, v in EVENT_CODES.items()}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Bytes = bytes | bytearray | memoryview


# --- frames --------------------------------------------------------------------------


class UnknownCommand(ProtocolError):
    """A well-formed frame with a command code this protocol does not define (a camera
    answers it with UNKNOWN_COMMAND rather than BAD_FRAME)."""


# zlib-ng computes the very same CRC-32 as zlib, with carry-less multiplication: ~57 GB/s
# here against zlib's ~3.8 GB/s. Every data byte is CRC-checked on the host (and, in the
# simulator, computed on the camera's side too), so with zlib this was a fifth of ingest CPU.
crc32 = zlib_ng.crc32


@dataclass(frozen=True)
class Frame:
    command: Command
    seq: int
    status: Status
    payload: bytes
    response: bool


def encode_frame(
    command: int, seq: int, payload: Bytes = b"", *, status: int = Status.OK,
    response: bool = False,
) -> bytes:
    """A complete frame: header, payload, CRC32 over both. `command`/`status` are plain ints
    so a simulator can also send codes the decoder must refuse."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    flags = FLAG_RESPONSE if response else 0
    body = HEADER.pack(MAGIC, PROTOCOL_VERSION, flags, command, status, seq & 0xFFFFFFFF,
                       len(payload)) + bytes(payload)
    return body + CRC.pack(crc32(body))


def decode_frame(data: Bytes, *, expect_response: bool) -> Frame:
    """Decode exactly one frame occupying all of `data` (one bulk transfer)."""
    n = len(data)
    if n < FRAME_OVERHEAD:
        raise ProtocolError(f"frame too short: {n} bytes, a frame has at least "
                            f"{FRAME_OVERHEAD}")
    if n > MAX_FRAME:
        raise ProtocolError(f"frame too long: {n} bytes, limit {MAX_FRAME}")
    magic, version, flags, command, status, seq, length = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise ProtocolError(f"bad frame magic {bytes(magic)!r}")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {version}")
    if flags & ~FLAG_RESPONSE:
        raise ProtocolError(f"reserved frame flags set: 0x{flags:02x}")
    if bool(flags & FLAG_RESPONSE) != expect_response:
        raise ProtocolError("frame travels the wrong way (response flag)")
    if length > MAX_PAYLOAD:
        raise ProtocolError(f"frame announces {length} payload bytes, limit {MAX_PAYLOAD}")
    if n != FRAME_OVERHEAD + length:
        raise ProtocolError(f"frame announces {length} payload bytes but carries "
                            f"{n - FRAME_OVERHEAD}")
    (crc,) = CRC.unpack_from(data, HEADER.size + length)
    if crc32(memoryview(data)[: HEADER.size + length]) != crc:
        raise ProtocolError("frame CRC mismatch")
    try:
        cmd = Command(command)
    except ValueError:
        raise UnknownCommand(f"unknown command 0x{command:02x}") from None
    try:
        st = Status(status)
    except ValueError:
        raise ProtocolError(f"unknown status 0x{status:02x}") from None
    payload = bytes(memoryview(data)[HEADER.size : HEADER.size + length])
    return Frame(cmd, seq, st, payload, bool(flags & FLAG_RESPONSE))


# --- field readers/writers -----------------------------------------------------------


class Reader:
    """Bounds-checked cursor over a payload; every overrun is a ProtocolError."""

    def __init__(self, data: Bytes, what: str) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self.what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise ProtocolError(f"{self.what}: truncated (needs {n} more bytes, "
                                f"{self.remaining} left)")
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += n
        return out

    def unpack(self, fmt: struct.Struct) -> tuple[int, ...]:
        return fmt.unpack(self.take(fmt.size))

    def u16(self) -> int:
        return self.unpack(_U16)[0]

    def end(self) -> None:
        if self.remaining:
            raise ProtocolError(f"{self.what}: {self.remaining} unexpected trailing bytes")


_U16 = struct.Struct("<H")
_I64 = struct.Struct("<q")


def time_to_wire(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("camera times must be timezone-aware")
    delta = when - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def time_from_wire(us: int, what: str) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=us)
    except OverflowError:
        raise ProtocolError(f"{what}: time {us} µs since 1970 is outside years 1-9999") from None


def _name_field(raw: bytes) -> bytes:
    if len(raw) > 0xFFFF:
        raise ValueError("name longer than a u16 length allows")
    return _U16.pack(len(raw)) + raw


def _text_field(text: str) -> bytes:
    return _name_field(text.encode())


#: Cc control, Cf format (e.g. RTL override), Cs/Co surrogates/private, Zl/Zp breaks
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def _reject_controls(text: str, what: str) -> None:
    ch = control_char(text)
    if ch is not None:
        raise ProtocolError(f"{what}: contains control/format character U+{ord(ch):04X}")


def name_problem(raw: bytes) -> str | None:
    """Why `raw` is not a camera file name the host accepts (`dockd.model.name_problem`
    with the protocol's limit); None if it is acceptable."""
    return model_name_problem(raw, MAX_NAME_BYTES)


def check_name(raw: bytes) -> str:
    """A camera file name as the host accepts it: 1..255 bytes of UTF-8, no path
    separators, no NUL or control characters, not '.' or '..'."""
    problem = name_problem(raw)
    if problem is not None:
        raise ProtocolError(f'recording {problem}: "{escape_name(raw, 80)}"')
    return raw.decode("utf-8")


def _read_name(r: Reader) -> bytes:
    n = r.u16()
    if n > MAX_NAME_BYTES:
        raise ProtocolError(f"{r.what}: name of {n} bytes, limit {MAX_NAME_BYTES}")
    return r.take(n)


def _read_text(r: Reader, field: str) -> str:
    n = r.u16()
    if n > MAX_TEXT_BYTES:
        raise ProtocolError(f"{r.what}: {field} of {n} bytes, limit {MAX_TEXT_BYTES}")
    raw = r.take(n)
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ProtocolError(f"{r.what}: {field} is not UTF-8: {raw!r}") from None
    if not text:
        raise ProtocolError(f"{r.what}: {field} is empty")
    _reject_controls(text, f"{r.what}: {field}")
    return text


def _check_serial(serial: str) -> None:
    # the serial names directories in the store: keep it to a filename-safe alphabet
    problem = serial_problem(serial)
    if problem is not None:
        raise ProtocolError(problem)


# --- control transfers ---------------------------------------------------------------

IDENTIFY = struct.Struct("<4sBBHII")  # magic, version, flags, model code, max payload, block
IDENTIFY_MAGIC = b"NCID"
STATUS_BLOCK = struct.Struct("<BBHI")  # state, last status, reserved, last seq


class DeviceState(enum.IntEnum):
    IDLE = 0
    RESPONDING = 1
    STREAMING = 2


@dataclass(frozen=True)
class IdentifyBlock:
    version: int
    model_code: int
    max_payload: int
    max_block: int


@dataclass(frozen=True)
class StatusBlock:
    state: DeviceState
    last_status: Status
    last_seq: int


def encode_identify(model_code: int = 0x0300, max_block: int = MAX_BLOCK) -> bytes:
    return IDENTIFY.pack(IDENTIFY_MAGIC, PROTOCOL_VERSION, 0, model_code, MAX_PAYLOAD, max_block)


def decode_identify(data: Bytes) -> IdentifyBlock:
    if len(data) != IDENTIFY.size:
        raise ProtocolError(f"IDENTIFY answer is {len(data)} bytes, expected {IDENTIFY.size}")
    magic, version, _flags, model, max_payload, max_block = IDENTIFY.unpack(bytes(data))
    if magic != IDENTIFY_MAGIC:
        raise ProtocolError(f"IDENTIFY magic {magic!r} is not a NetCo camera")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"camera speaks protocol version {version}, driver speaks "
                            f"{PROTOCOL_VERSION}")
    if not 0 < max_payload <= MAX_PAYLOAD or not 0 < max_block <= MAX_BLOCK:
        raise ProtocolError(f"IDENTIFY limits out of range: payload {max_payload}, "
                            f"block {max_block}")
    return IdentifyBlock(version, model, max_payload, max_block)


def encode_status(state: DeviceState, last_status: int, last_seq: int) -> bytes:
    return STATUS_BLOCK.pack(state, last_status, 0, last_seq & 0xFFFFFFFF)


def decode_status(data: Bytes) -> StatusBlock:
    if len(data) != STATUS_BLOCK.size:
        raise ProtocolError(f"STATUS answer is {len(data)} bytes, expected {STATUS_BLOCK.size}")
    state, last, _res, seq = STATUS_BLOCK.unpack(bytes(data))
    if state not in DeviceState._value2member_map_:
        raise ProtocolError(f"STATUS has unknown device state {state}")
    if last not in Status._value2member_map_:
        raise ProtocolError(f"STATUS has unknown last status {last}")
    return StatusBlock(DeviceState(state), Status(last), seq)


# --- GET_INFO ------------------------------------------------------------------------


def encode_info(identity: CameraIdentity) -> bytes:
    return b"".join([
        _text_field(identity.serial), _text_field(identity.model),
        _text_field(identity.firmware), _text_field(identity.vendor),
        _I64.pack(time_to_wire(identity.clock)),
    ])


def decode_info(payload: Bytes) -> CameraIdentity:
    r = Reader(payload, "GET_INFO answer")
    serial = _read_text(r, "serial")
    _check_serial(serial)
    model = _read_text(r, "model")
    firmware = _read_text(r, "firmware")
    vendor = _read_text(r, "vendor")
    (clock,) = r.unpack(_I64)
    r.end()
    return CameraIdentity(serial, model, firmware, vendor, time_from_wire(clock, r.what))


# --- GET_BATTERY ---------------------------------------------------------------------

BATTERY = struct.Struct("<HHihIHHB")


def encode_battery(b: BatterySnapshot) -> bytes:
    return BATTERY.pack(
        round(b.soc_percent * 10), b.voltage_mv, b.current_ma, round(b.temperature_c * 10),
        b.cycle_count, b.design_capacity_mah, b.full_charge_capacity_mah,
        _CHARGING_TO_CODE[b.charging],
    )


def _soc(permille: int, what: str) -> float:
    if permille > 1000:
        raise ProtocolError(f"{what}: state of charge {permille / 10}% is above 100%")
    return permille / 10


def decode_battery(payload: Bytes) -> BatterySnapshot:
    what = "GET_BATTERY answer"
    if len(payload) != BATTERY.size:
        raise ProtocolError(f"{what} is {len(payload)} bytes, expected {BATTERY.size}")
    soc, mv, ma, decic, cycles, design, full, charging = BATTERY.unpack(bytes(payload))
    if charging not in CHARGING_CODES:
        raise ProtocolError(f"{what}: unknown charging state {charging}")
    return BatterySnapshot(_soc(soc, what), mv, ma, decic / 10, cycles, design, full,
                           CHARGING_CODES[charging])


# --- GET_SHIFT_LOG -------------------------------------------------------------------

PAGE_REQUEST = struct.Struct("<H")
SHIFT_HEAD = struct.Struct("<HHHH")  # page, page count, samples, events
SAMPLE = struct.Struct("<qHHih")
EVENT = struct.Struct("<qB")


@dataclass(frozen=True)
class ShiftPage:
    page: int
    page_count: int
    samples: tuple[ShiftSample, ...]
    events: tuple[ShiftEvent, ...]


def encode_page_request(page: int) -> bytes:
    return PAGE_REQUEST.pack(page)


def decode_page_request(payload: Bytes) -> int:
    r = Reader(payload, "page request")
    page = r.u16()
    r.end()
    return page


def encode_shift_page(page: ShiftPage) -> bytes:
    parts = [SHIFT_HEAD.pack(page.page, page.page_count, len(page.samples), len(page.events))]
    parts += [SAMPLE.pack(time_to_wire(s.at), round(s.soc_percent * 10), s.voltage_mv,
                          s.current_ma, round(s.temperature_c * 10)) for s in page.samples]
    parts += [EVENT.pack(time_to_wire(e.at), _EVENT_TO_CODE[e.kind]) for e in page.events]
    return b"".join(parts)


def _check_page(page: int, count: int, limit: int, what: str) -> None:
    if not 1 <= count <= limit:
        raise ProtocolError(f"{what}: page count {count} outside 1..{limit}")
    if page >= count:
        raise ProtocolError(f"{what}: page {page} of {count} is past the last page")


def decode_shift_page(payload: Bytes) -> ShiftPage:
    r = Reader(payload, "GET_SHIFT_LOG answer")
    page, count, n_samples, n_events = r.unpack(SHIFT_HEAD)
    _check_page(page, count, MAX_SHIFT_PAGES, r.what)
    if n_samples > MAX_SAMPLES_PER_PAGE or n_events > MAX_EVENTS_PER_PAGE:
        raise ProtocolError(f"{r.what}: {n_samples} samples/{n_events} events on one page, "
                            f"limits {MAX_SAMPLES_PER_PAGE}/{MAX_EVENTS_PER_PAGE}")
    if r.remaining != n_samples * SAMPLE.size + n_events * EVENT.size:
        raise ProtocolError(f"{r.what}: {r.remaining} bytes do not hold {n_samples} samples "
                            f"and {n_events} events")
    samples = []
    for _ in range(n_samples):
        at, soc, mv, ma, decic = r.unpack(SAMPLE)
        samples.append(ShiftSample(time_from_wire(at, r.what), _soc(soc, r.what), mv, ma,
                                   decic / 10))
    events = []
    for _ in range(n_events):
        at, code = r.unpack(EVENT)
        if code not in EVENT_CODES:
            raise ProtocolError(f"{r.what}: unknown event kind {code}")
        events.append(ShiftEvent(time_from_wire(at, r.what), EVENT_CODES[code]))
    r.end()
    return ShiftPage(page, count, tuple(samples), tuple(events))


# --- LIST_RECORDINGS -----------------------------------------------------------------

LIST_HEAD = struct.Struct("<HHIH")  # page, page count, total, entries here
ENTRY_TAIL = struct.Struct("<QqII32s")  # size, started µs, duration ms, prerecord ms, sha


@dataclass(frozen=True)
class WireRecording:
    """A listing entry as the camera sends it (name still raw bytes)."""

    name: bytes
    size: int
    started: datetime
    duration_ms: int
    prerecord_ms: int
    sha256: bytes


@dataclass(frozen=True)
class ListPage:
    page: int
    page_count: int
    total: int
    #: in wire order; an entry whose own name or metadata is hostile is refused alone
    entries: tuple[ListingEntry, ...]
    #: each entry's name as the camera sent it (the host finds names listed twice by these)
    raw_names: tuple[bytes, ...]


def encode_list_page(page: int, page_count: int, total: int,
                     entries: list[WireRecording]) -> bytes:
    parts = [LIST_HEAD.pack(page, page_count, total, len(entries))]
    for e in entries:
        parts.append(_name_field(e.name))
        parts.append(ENTRY_TAIL.pack(e.size, time_to_wire(e.started), e.duration_ms,
                                     e.prerecord_ms, e.sha256))
    return b"".join(parts)


def decode_list_page(payload: Bytes) -> ListPage:
    """One page of the listing. The page's framing (head, counts, each entry's name length
    and fixed-size tail, no trailing bytes) must hold or the whole page is a ProtocolError:
    past a broken frame no entry can be trusted. An entry that frames cleanly but whose
    name, size or start time is unacceptable comes back as a `RefusedRecording`."""
    r = Reader(payload, "LIST_RECORDINGS answer")
    page, count, total, n = r.unpack(LIST_HEAD)
    _check_page(page, count, MAX_LIST_PAGES, r.what)
    if total > MAX_RECORDINGS:
        raise ProtocolError(f"{r.what}: {total} recordings, limit {MAX_RECORDINGS}")
    if n > MAX_ENTRIES_PER_PAGE or n > total:
        raise ProtocolError(f"{r.what}: {n} entries on one page (total {total}, "
                            f"limit {MAX_ENTRIES_PER_PAGE})")
    entries: list[ListingEntry] = []
    raw_names = []
    for _ in range(n):
        raw = _read_name(r)
        size, started, duration_ms, prerecord_ms, sha = r.unpack(ENTRY_TAIL)
        raw_names.append(raw)
        entries.append(_list_entry(raw, size, started, duration_ms, prerecord_ms, bytes(sha)))
    r.end()
    return ListPage(page, count, total, tuple(entries), tuple(raw_names))


def _list_entry(raw: bytes, size: int, started_us: int, duration_ms: int, prerecord_ms: int,
                sha256: bytes) -> ListingEntry:
    problems = []
    name_trouble = name_problem(raw)
    if name_trouble is not None:
        problems.append(name_trouble)
    if size > MAX_RECORDING_SIZE:
        problems.append(f"claims {size} bytes, limit 1 TiB")
    try:
        started = time_from_wire(started_us, "start time")
    except ProtocolError:
        problems.append(f"start time {started_us} µs since 1970 is outside years 1-9999")
        started = _EPOCH
    if problems:
        return RefusedRecording(
            label=escape_name(raw), reason="; ".join(problems), size=size, started=started,
            sha256=sha256, duration_s=duration_ms / 1000, prerecord_s=prerecord_ms / 1000)
    return RecordingInfo(name=raw.decode("utf-8"), size=size, started=started,
                         duration_s=duration_ms / 1000, prerecord_s=prerecord_ms / 1000,
                         sha256=sha256)


# --- READ / DATA ---------------------------------------------------------------------

READ_TAIL = struct.Struct("<QI")  # offset, length
READ_ANSWER = struct.Struct("<QQII")  # size, offset, length, block size
DATA_HEAD = struct.Struct("<QII")  # offset, length, crc32 of the raw block


@dataclass(frozen=True)
class ReadRequest:
    name: bytes
    offset: int
    length: int


@dataclass(frozen=True)
class ReadAnswer:
    size: int
    offset: int
    length: int
    block_size: int


@dataclass(frozen=True)
class DataHead:
    offset: int
    length: int
    crc32: int


def encode_read_request(req: ReadRequest) -> bytes:
    return _name_field(req.name) + READ_TAIL.pack(req.offset, req.length)


def decode_read_request(payload: Bytes) -> ReadRequest:
    r = Reader(payload, "READ request")
    name = _read_name(r)
    offset, length = r.unpack(READ_TAIL)
    r.end()
    if not name:
        raise ProtocolError(f"{r.what}: empty name")
    if not 0 < length <= MAX_READ_LENGTH:
        raise ProtocolError(f"{r.what}: length {length} outside 1..{MAX_READ_LENGTH}")
    return ReadRequest(name, offset, length)


def encode_read_answer(a: ReadAnswer) -> bytes:
    return READ_ANSWER.pack(a.size, a.offset, a.length, a.block_size)


def decode_read_answer(payload: Bytes) -> ReadAnswer:
    what = "READ answer"
    if len(payload) != READ_ANSWER.size:
        raise ProtocolError(f"{what} is {len(payload)} bytes, expected {READ_ANSWER.size}")
    size, offset, length, block = READ_ANSWER.unpack(bytes(payload))
    if size > MAX_RECORDING_SIZE:
        raise ProtocolError(f"{what}: recording size {size} exceeds 1 TiB")
    if offset + length > size:
        raise ProtocolError(f"{what}: {length} bytes at {offset} run past size {size}")
    if length > MAX_READ_LENGTH:
        raise ProtocolError(f"{what}: length {length} exceeds {MAX_READ_LENGTH}")
    if not 0 < block <= MAX_BLOCK:
        raise ProtocolError(f"{what}: block size {block} outside 1..{MAX_BLOCK}")
    return ReadAnswer(size, offset, length, block)


def encode_data_head(h: DataHead) -> bytes:
    return DATA_HEAD.pack(h.offset, h.length, h.crc32)


def decode_data_head(payload: Bytes) -> DataHead:
    what = "DATA header"
    if len(payload) != DATA_HEAD.size:
        raise ProtocolError(f"{what} is {len(payload)} bytes, expected {DATA_HEAD.size}")
    offset, length, crc = DATA_HEAD.unpack(bytes(payload))
    if not 0 < length <= MAX_BLOCK:
        raise ProtocolError(f"{what}: block of {length} bytes outside 1..{MAX_BLOCK}")
    return DataHead(offset, length, crc)


# --- DELETE / SET_CLOCK --------------------------------------------------------------


def encode_name(name: bytes) -> bytes:
    return _name_field(name)


def decode_name(payload: Bytes) -> bytes:
    r = Reader(payload, "name request")
    name = _read_name(r)
    r.end()
    if not name:
        raise ProtocolError(f"{r.what}: empty name")
    return name


def encode_clock(when: datetime) -> bytes:
    return _I64.pack(time_to_wire(when))


def decode_clock(payload: Bytes) -> datetime:
    r = Reader(payload, "SET_CLOCK request")
    (us,) = r.unpack(_I64)
    r.end()
    return time_from_wire(us, r.what)


def expect_empty(payload: Bytes, what: str) -> None:
    if payload:
        raise ProtocolError(f"{what}: expected no payload, got {len(payload)} bytes")
