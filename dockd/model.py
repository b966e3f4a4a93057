"""What a camera tells us, as plain values. Drivers produce these; the core consumes them.

Every field has already been checked by the driver's decoder (ranges, encodings): a value
here is well-formed, though it may still be implausible (health checks judge that).
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime


class ChargingState(enum.Enum):
    UNKNOWN = "unknown"
    DISCHARGING = "discharging"
    CHARGING = "charging"
    FULL = "full"
    FAULT = "fault"


class ShiftEventKind(enum.Enum):
    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    DISPLAY_ON = "display_on"
    DISPLAY_OFF = "display_off"
    RECORD_START = "record_start"
    RECORD_STOP = "record_stop"
    DOCKED = "docked"
    UNDOCKED = "undocked"


@dataclass(frozen=True)
class CameraIdentity:
    serial: str
    model: str
    firmware: str
    vendor: str
    #: the camera's own clock when asked (timezone-aware, UTC)
    clock: datetime


@dataclass(frozen=True)
class BatterySnapshot:
    soc_percent: float
    voltage_mv: int
    current_ma: int  # positive = charging
    temperature_c: float
    cycle_count: int
    design_capacity_mah: int
    full_charge_capacity_mah: int
    charging: ChargingState


@dataclass(frozen=True)
class ShiftSample:
    at: datetime  # camera clock
    soc_percent: float
    voltage_mv: int
    current_ma: int
    temperature_c: float


@dataclass(frozen=True)
class ShiftEvent:
    at: datetime  # camera clock
    kind: ShiftEventKind


@dataclass(frozen=True)
class ShiftLog:
    samples: tuple[ShiftSample, ...] = ()
    events: tuple[ShiftEvent, ...] = ()


@dataclass(frozen=True)
class RecordingInfo:
    #: the camera's name for the recording, already checked (`name_problem` on every part):
    #: printable UTF-8, no NUL or control character; a camera that keeps folders may join
    #: their names with '/' (never '.', '..' or an empty part). The core never uses it as a
    #: path: the store sanitises it.
    name: str
    size: int
    started: datetime  # camera clock
    duration_s: float
    prerecord_s: float
    #: the camera's own SHA-256 of the plaintext (32 bytes); None when the camera keeps
    #: none (a mass-storage volume without a vendor sidecar): custody then starts with the
    #: hash taken while reading, and the catalog says so
    sha256: bytes | None = field(repr=False)

    @property
    def sha256_hex(self) -> str | None:
        return self.sha256.hex() if self.sha256 is not None else None


@dataclass(frozen=True)
class RefusedRecording:
    """A listing entry the driver could not accept (a hostile name, an impossible size, a
    name listed twice): refused on its own, so its siblings are still ingested. It is never
    read or deleted; it stays on the camera with `reason`, in the catalog as `refused`."""

    #: the name as the camera sent it, escaped into printable ASCII (`escape_name`)
    label: str
    reason: str
    size: int
    started: datetime  # camera clock
    sha256: bytes | None = field(repr=False)
    duration_s: float = 0.0
    prerecord_s: float = 0.0


#: what `CameraSession.recordings()` lists: recordings to ingest and entries refused alone
ListingEntry = RecordingInfo | RefusedRecording


def escape_name(raw: bytes, limit: int = 1024) -> str:
    """A camera's raw file name as printable ASCII for people and the catalog: printable
    ASCII stays, everything else (NUL, controls, U+202E, invalid UTF-8, and the backslash
    itself, so two names never share an escape) becomes an escape (`\\x00`, `\\u202e`,
    `\\x5c`), so nothing a camera sends can reorder or hide text on a terminal. A 255-byte
    name needs at most 1020 characters: the limit cuts only what no camera name can be."""
    out = []
    for ch in raw.decode("utf-8", errors="surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0x20 <= code < 0x7F and ch != "\\":
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    escaped = "".join(out)
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


#: Unicode categories no name may hold: controls, format characters (U+202E reorders text on
#: a terminal), surrogates, private use, line and paragraph separators
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
MAX_NAME_BYTES = 255
MAX_SERIAL = 128


def control_char(text: str) -> str | None:
    """The first character of `text` no name may hold, or None."""
    return next((ch for ch in text if unicodedata.category(ch) in _CONTROL_CATEGORIES), None)


def name_problem(raw: bytes, limit: int = MAX_NAME_BYTES) -> str | None:
    """Why `raw` is not a file name dockd accepts from a device, as one line that does not
    repeat the name (show it with `escape_name`); None if it is acceptable: 1..limit bytes of
    UTF-8, no NUL, path separator or control/format character, not '.' or '..'."""
    if not raw:
        return "name is empty"
    if len(raw) > limit:
        return f"name is {len(raw)} bytes, limit {limit}"
    try:
        name = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return "name is not UTF-8"
    if "\x00" in name:
        return "name contains NUL"
    if "/" in name or "\\" in name:
        return "name contains a path separator"
    if name.strip() in {".", ".."}:
        return "name is a path component ('.' or '..')"
    ch = control_char(name)
    if ch is not None:
        return f"name contains control/format character U+{ord(ch):04X}"
    return None


def serial_problem(serial: str) -> str | None:
    """Why `serial` cannot name a camera (it names a directory in the store), or None:
    1..MAX_SERIAL characters of [A-Za-z0-9._-], starting with a letter or digit."""
    if not serial or len(serial) > MAX_SERIAL:
        return f"camera serial must be 1 to {MAX_SERIAL} characters"
    ok = serial[0].isascii() and serial[0].isalnum() and all(
        c.isascii() and (c.isalnum() or c in "._-") for c in serial)
    return None if ok else f"camera serial {serial!r} has characters outside [A-Za-z0-9._-]"
